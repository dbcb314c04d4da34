"""Executor: approved plans from the executor queue (SQS) → changes applied, verified, or rolled back.

Reports partial batch failures, so a failed record is redelivered and then lands in the DLQ.
"""

from typing import Any

from medic import runtime
from medic.log import bind
from medic.usecases.execute import execute_batch


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind(function="executor", request_id=getattr(context, "aws_request_id", ""))
    return execute_batch(event, runtime.current())
