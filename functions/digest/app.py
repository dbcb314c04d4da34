"""Digest writer (scheduled, hourly): the heads of the remediation log's chains, to the Object Lock bucket.

Its role reads the log and puts digests, nothing else: no role that writes the log can write a digest, and this one
cannot change the log (docs/reliability.md, "Threat model: the log").
"""

from typing import Any

from medic import runtime
from medic.ledger.digests.writer import write_digest
from medic.log import bind


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind(function="digest", request_id=getattr(context, "aws_request_id", ""))
    return write_digest(runtime.current())
