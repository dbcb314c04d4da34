"""Verifier (scheduled): applied plans whose verification time has come → VERIFIED or FAILED."""

from typing import Any

from medic import runtime
from medic.log import bind
from medic.usecases.verify import verify_applied


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind(function="verifier", request_id=getattr(context, "aws_request_id", ""))
    return verify_applied(runtime.current())
