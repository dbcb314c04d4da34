"""Triage: an EventBridge "CloudWatch Alarm State Change" event → a plan in the remediation log.

Unexpected failures propagate: Lambda retries the asynchronous invocation, then the event goes to
the on-failure destination (the triage DLQ) with everything needed to replay it.
"""

from typing import Any

from medic import runtime
from medic.log import bind
from medic.usecases.triage import triage


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event, dict) else None
    bind(
        function="triage",
        request_id=getattr(context, "aws_request_id", ""),
        alarm=detail.get("alarmName", "") if isinstance(detail, dict) else "",
    )
    return triage(event, runtime.current())
