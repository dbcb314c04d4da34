"""Interactions: Slack's request URL (a Lambda Function URL) for Approve / Reject clicks.

Verifies the Slack signature before any other work, authorizes the approver, records the decision
with one conditional write, enqueues the plan for the executor and answers within Slack's 3 s.
"""

from typing import Any

from medic import runtime
from medic.log import bind
from medic.pipeline import handle_interaction


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind(function="interactions", request_id=getattr(context, "aws_request_id", ""))
    return handle_interaction(event, runtime.current())
