"""What invokes the function, and so how: its event source mappings (`ListEventSourceMappings`: SQS, streams), the
producers its resource-based policies let invoke it (`GetPolicy` on the function and on the qualifier: EventBridge,
SNS, S3), and the invocation type derived from them (or from the tag medic:invocation). `event_rules` and
`sns_topics` read the producers back out of the `async_sources` fact (the SQS buffer rewires them).
"""

from __future__ import annotations

import json
from typing import Any, Final

from medic.aws import AwsClients
from medic.facts.model import INVOCATION_TAG, EventSourceFacts, Facts

ESM_FACTS: Final = ("event_sources", "has_sqs_source", "sqs_max_concurrency")
INVOCATION_TYPES: Final = ("sync", "async", "sqs", "stream")


def event_sources(clients: AwsClients, facts: Facts, name: str) -> None:
    facts.event_sources = mappings(clients, name)
    sqs = [source for source in facts.event_sources if source.kind == "sqs"]
    facts.has_sqs_source = bool(sqs)
    caps = [source.maximum_concurrency for source in sqs if source.maximum_concurrency is not None]
    facts.sqs_max_concurrency = min(caps) if caps else None
    for fact in ESM_FACTS:
        facts.sources[fact] = "lambda:ListEventSourceMappings"


def mappings(clients: AwsClients, name: str) -> list[EventSourceFacts]:
    """The function's event source mappings, each with its kind (the service of its source ARN)."""
    found: list[EventSourceFacts] = []
    paginator = clients.lambda_.get_paginator("list_event_source_mappings")
    kinds = {"sqs": "sqs", "kinesis": "kinesis", "dynamodb": "dynamodb", "kafka": "kafka", "mq": "mq"}
    for page in paginator.paginate(FunctionName=name):
        for mapping in page.get("EventSourceMappings", []):
            arn = str(mapping.get("EventSourceArn", ""))
            service = arn.split(":")[2] if arn.count(":") >= 2 else ""
            found.append(
                EventSourceFacts(
                    uuid=str(mapping["UUID"]),
                    source_arn=arn,
                    kind=kinds.get(service, "other"),
                    state=str(mapping.get("State", "")),
                    maximum_concurrency=(mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                    batch_size=mapping.get("BatchSize"),
                )
            )
    return found


def async_sources(clients: AwsClients, facts: Facts, name: str, qualifier: str | None) -> None:
    """Who may invoke the function asynchronously, from its resource-based policies (function and alias)."""
    client = clients.lambda_
    sources: list[str] = []
    scopes = [{"FunctionName": name}, *([{"FunctionName": name, "Qualifier": qualifier}] if qualifier else [])]
    for kwargs in scopes:
        try:
            policy = json.loads(client.get_policy(**kwargs)["Policy"])
        except client.exceptions.ResourceNotFoundException:
            continue
        for statement in policy.get("Statement", []):
            principal = statement.get("Principal", {})
            service = principal.get("Service", "") if isinstance(principal, dict) else ""
            source_arn = str(_condition_value(statement, "AWS:SourceArn") or "")
            if service == "events.amazonaws.com":
                sources.append(f"events:rule/{source_arn.rsplit('/', 1)[-1]}" if source_arn else "events:*")
            elif service == "sns.amazonaws.com":
                sources.append(f"sns:{source_arn or '*'}")
            elif service == "s3.amazonaws.com":
                sources.append(f"s3:{source_arn.rsplit(':', 1)[-1] or '*'}")
    facts.async_sources = ", ".join(dict.fromkeys(sources))
    facts.sources["async_sources"] = "lambda:GetPolicy (resource-based policy principals)"


def event_rules(async_sources: str | None) -> list[str]:
    """The EventBridge rule names among the `async_sources` fact (``events:rule/<name>, sns:<arn>, s3:<bucket>``).

    >>> event_rules("events:rule/nightly, sns:arn:aws:sns:us-east-1:123456789012:uploads, events:*, s3:photos")
    ['nightly']
    """
    rules = []
    for raw in (async_sources or "").split(","):
        entry = raw.strip()
        if entry.startswith("events:rule/") and entry.removeprefix("events:rule/"):
            rules.append(entry.removeprefix("events:rule/"))
    return list(dict.fromkeys(rules))


def sns_topics(async_sources: str | None) -> list[str]:
    """The SNS topic ARNs among the `async_sources` fact (``sns:*``, a policy without a source ARN, names none).

    >>> sns_topics("events:rule/nightly, sns:arn:aws:sns:us-east-1:123456789012:uploads, sns:*, s3:photos")
    ['arn:aws:sns:us-east-1:123456789012:uploads']
    """
    topics = []
    for raw in (async_sources or "").split(","):
        entry = raw.strip()
        if entry.startswith("sns:arn:"):
            topics.append(entry.removeprefix("sns:"))
    return list(dict.fromkeys(topics))


def invocation_type(facts: Facts) -> str:
    """The tag medic:invocation when valid; else an SQS/stream mapping; else async when a producer may invoke it
    asynchronously (resource-based policy) or events were queued for it (AsyncEventsReceived: S3, SNS, EventBridge or
    any caller with InvocationType Event); else sync."""
    tagged = (facts.tags or {}).get(INVOCATION_TAG)
    if tagged in INVOCATION_TYPES:
        return tagged
    kinds = {source.kind for source in facts.event_sources or []}
    if "sqs" in kinds:
        return "sqs"
    if kinds & {"kinesis", "dynamodb", "kafka", "mq"}:
        return "stream"
    return "async" if facts.async_sources or (facts.async_events_received or 0) > 0 else "sync"


def _condition_value(statement: dict[str, Any], key: str) -> Any:
    for operator_values in (statement.get("Condition") or {}).values():
        for name, value in operator_values.items():
            if name.lower() == key.lower():
                return value[0] if isinstance(value, list) else value
    return None
