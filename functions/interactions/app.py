"""Interactions: Slack's request URL (a Lambda Function URL) for the card's buttons and the `/medic` command.

Verifies the Slack signature before any other work, authorizes on IDs, records a decision with one conditional
write, enqueues the plan for the executor and answers within Slack's 3 s (cold start included:
`medic.usecases.interactions`
imports only what that path needs).
"""

from typing import Any

from medic import runtime
from medic.log import bind
from medic.usecases.interactions import handle_interaction


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind(function="interactions", request_id=getattr(context, "aws_request_id", ""))
    return handle_interaction(event, runtime.current())
