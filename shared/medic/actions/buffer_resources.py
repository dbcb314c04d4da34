"""The AWS resources behind an SQS buffer, as plain functions: the buffer queues and their policy, the event source
mapping that drains them, the EventBridge rules' targets and the SNS subscriptions that feed them.

`medic.actions.buffer.EnableSqsBuffer` decides what to change; these read and write one resource each, idempotently,
and refuse (ActionFailed) to touch a queue Medic did not create.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import PlannedAction
from medic.actions.request_checks import confine
from medic.aws import request_id
from medic.errors import ActionFailed, GuardrailRefused

if TYPE_CHECKING:
    from mypy_boto3_lambda.type_defs import ScalingConfigTypeDef

    from medic.aws import AwsClients

#: The function's own word that its handler takes SQS batches and its role may consume the buffer queues.

KIND: Final = "enable_sqs_buffer"
CREATED_BY_TAG: Final = {"medic:created-by": "medic"}
ORIGINAL_SUBSCRIPTION = "original_subscription:"
#: The subscription attributes Subscribe accepts for a lambda endpoint (RawMessageDelivery is not one of them).
RESTORABLE: Final = (
    "FilterPolicyScope",
    "FilterPolicy",
    "RedrivePolicy",
    "DeliveryPolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
)
#: The attributes of the function's subscription the queue's subscription takes too: the same messages get through.
FILTER: Final = ("FilterPolicyScope", "FilterPolicy")


def queue_policy(queue_arn: str, rule_arns: list[str], topic_arns: list[str]) -> str:
    """Let EventBridge send from exactly these rules, and SNS from exactly these topics."""
    statements = [
        {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": arns}},
        }
        for sid, service, arns in (
            ("medic-buffer-eventbridge", "events.amazonaws.com", rule_arns),
            ("medic-buffer-sns", "sns.amazonaws.com", topic_arns),
        )
        if arns
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def subscription(subscriptions: list[dict[str, Any]], protocol: str, endpoint: str) -> dict[str, Any] | None:
    return next((s for s in subscriptions if s.get("Protocol") == protocol and s.get("Endpoint") == endpoint), None)


def subscribed(subscriptions: list[dict[str, Any]], protocol: str, endpoint: str) -> bool:
    return subscription(subscriptions, protocol, endpoint) is not None


#: Every message a queue holds: visible, in flight (received, not yet deleted) and delayed.
COUNTS: Final = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def created_by_medic(clients: AwsClients, url: str) -> bool:
    tags = clients.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    return all(tags.get(key) == value for key, value in CREATED_BY_TAG.items())


def messages(clients: AwsClients, url: str) -> int:
    """How many messages the queue at `url` holds (approximately, as SQS counts them)."""
    attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNTS))["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in COUNTS)


def finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise GuardrailRefused("valid_value", ">= 0", value, "maximum_concurrency must be a finite count")
    return number


def list_subscriptions(clients: AwsClients, topic: str) -> list[dict[str, Any]] | None:
    """The topic's subscriptions; None when the topic is gone."""
    sns = clients.client("sns")
    found: list[dict[str, Any]] = []
    try:
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
            found += [dict(subscription) for subscription in page.get("Subscriptions", [])]
    except sns.exceptions.NotFoundException:
        return None
    return found


def function_arn(clients: AwsClients, action: PlannedAction) -> str:
    """The ARN the rules invoke and the mapping feeds: the alias's when qualified, else the function's."""
    assert action.function_name
    arn = clients.lambda_.get_function_configuration(FunctionName=action.function_name)["FunctionArn"]
    unqualified = ":".join(arn.split(":")[:7])
    return f"{unqualified}:{action.qualifier}" if action.qualifier else unqualified


def queue_arn(clients: AwsClients, queue: str) -> str | None:
    try:
        url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except clients.sqs.exceptions.QueueDoesNotExist:
        return None
    return clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue_url(clients: AwsClients, queue: str) -> str | None:
    try:
        return clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except clients.sqs.exceptions.QueueDoesNotExist:
        return None


def ensure_queue(clients: AwsClients, action: PlannedAction, queue: str, attributes: dict[str, str]) -> tuple[str, str]:
    sqs = confine(clients.sqs)
    try:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=queue, Attributes=attributes, tags=dict(CREATED_BY_TAG))["QueueUrl"]  # type: ignore[arg-type]
    else:
        if not created_by_medic(clients, url):
            raise ActionFailed(KIND, action.target, f"queue {queue} exists and was not created by Medic")
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def find_mapping(clients: AwsClients, queue_arn: str, action: PlannedAction) -> dict[str, Any] | None:
    """The mapping from the queue to this function (any qualifier: AWS reports the ARN it was given)."""
    paginator = clients.lambda_.get_paginator("list_event_source_mappings")
    for page in paginator.paginate(EventSourceArn=queue_arn):
        for mapping in page.get("EventSourceMappings", []):
            if str(mapping.get("FunctionArn", "")).split(":")[6:7] == [action.function_name]:
                return dict(mapping)
    return None


def ensure_mapping(clients: AwsClients, action: PlannedAction, queue_arn: str, function_arn: str) -> str:
    scaling: ScalingConfigTypeDef = {"MaximumConcurrency": int(action.after["maximum_concurrency"] or 0)}
    mapping = find_mapping(clients, queue_arn, action)
    if mapping is None:
        created = clients.lambda_.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=function_arn,
            ScalingConfig=scaling,
            Enabled=True,
        )
        return request_id(dict(created))
    if (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") != scaling["MaximumConcurrency"]:
        updated = clients.lambda_.update_event_source_mapping(UUID=str(mapping["UUID"]), ScalingConfig=scaling)
        return request_id(dict(updated))
    return ""


def rule_arn(clients: AwsClients, action: PlannedAction, rule: str) -> str:
    events = clients.client("events")
    try:
        return str(events.describe_rule(Name=rule)["Arn"])
    except events.exceptions.ResourceNotFoundException as exc:
        raise ActionFailed(KIND, action.target, f"EventBridge rule {rule} no longer exists") from exc


def rule_exists(clients: AwsClients, rule: str) -> bool:
    events = clients.client("events")
    try:
        events.describe_rule(Name=rule)
    except events.exceptions.ResourceNotFoundException:
        return False
    return True


def targets(clients: AwsClients, rule: str) -> list[dict[str, Any]]:
    events = clients.client("events")
    targets: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Rule": rule}
    while True:
        page = events.list_targets_by_rule(**kwargs)
        targets += [dict(target) for target in page.get("Targets", [])]
        if not page.get("NextToken"):
            return targets
        kwargs["NextToken"] = page["NextToken"]


def put_targets(clients: AwsClients, action: PlannedAction, rule: str, targets: list[dict[str, Any]]) -> str:
    response = clients.client("events").put_targets(Rule=rule, Targets=targets)
    if response.get("FailedEntryCount"):
        failures = "; ".join(
            f"{e.get('TargetId')}: {e.get('ErrorCode')} {e.get('ErrorMessage')}"
            for e in response.get("FailedEntries", [])
        )
        raise ActionFailed(KIND, action.target, f"rule {rule}: {failures}")
    return request_id(dict(response))


def move_subscription(clients: AwsClients, action: PlannedAction, topic: str, function_arn: str, queue_arn: str) -> str:
    """Record the function's subscription to `topic`, subscribe the queue alike, then unsubscribe the function."""
    sns = confine(clients.client("sns"))
    subscriptions = list_subscriptions(clients, topic) or []
    original = subscription(subscriptions, "lambda", function_arn)  # SNS keeps one per protocol and endpoint
    if original is None:
        return ""  # moved already
    arn = str(original["SubscriptionArn"])
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
    kept = {key: str(attributes[key]) for key in RESTORABLE if attributes.get(key)}
    action.resource.setdefault(
        f"{ORIGINAL_SUBSCRIPTION}{topic}", json.dumps({"SubscriptionArn": arn, "Attributes": kept}, sort_keys=True)
    )
    request = ""
    queued = subscription(subscriptions, "sqs", queue_arn)
    if queued is None:
        subscribed: dict[str, str] = {"RawMessageDelivery": "false"}
        subscribed.update((key, kept[key]) for key in FILTER if key in kept)
        response = sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=subscribed,
            ReturnSubscriptionArn=True,
        )
        queued = {"SubscriptionArn": str(response["SubscriptionArn"])}
        request = request_id(dict(response))
    if not str(queued["SubscriptionArn"]).startswith("arn:"):  # pending confirmation: the function stays
        raise ActionFailed(KIND, action.target, f"the queue's subscription to {topic} is {queued['SubscriptionArn']}")
    return request_id(dict(sns.unsubscribe(SubscriptionArn=arn))) or request


def restore_subscription(
    clients: AwsClients, action: PlannedAction, topic: str, function_arn: str, queue_arn: str | None
) -> str:
    """Re-subscribe the function to `topic` as recorded, then unsubscribe the queue; what was done, in words."""
    sns = confine(clients.client("sns"))
    subscriptions = list_subscriptions(clients, topic)
    if subscriptions is None:
        return f"SNS topic {topic} no longer exists"
    recorded = action.resource.get(f"{ORIGINAL_SUBSCRIPTION}{topic}")
    original: dict[str, Any] = json.loads(str(recorded)) if recorded else {}
    queued = [
        str(s["SubscriptionArn"])
        for s in subscriptions
        if queue_arn is not None and s.get("Protocol") == "sqs" and s.get("Endpoint") == queue_arn
    ]
    done = []
    if not subscribed(subscriptions, "lambda", function_arn) and (original or queued):
        response = sns.subscribe(
            TopicArn=topic,
            Protocol="lambda",
            Endpoint=function_arn,
            Attributes=dict(original.get("Attributes") or {}),
            ReturnSubscriptionArn=True,
        )
        was = f" (was {original['SubscriptionArn']})" if original else ""
        done.append(f"re-subscribed {function_arn} to {topic} as {response['SubscriptionArn']}{was}")
    for arn in queued:
        sns.unsubscribe(SubscriptionArn=arn)
        done.append(f"unsubscribed {action.resource['queue']} from {topic}")
    return "; ".join(done)


def remove_created(clients: AwsClients, action: PlannedAction, queue_arn: str | None) -> list[str]:
    """Delete the mapping, queue and DLQ apply created, once empty; what was done or kept, in words."""
    queue, dlq = str(action.resource["queue"]), str(action.resource["dlq"])
    mapping = find_mapping(clients, queue_arn, action) if queue_arn else None
    before = action.before.get("maximum_concurrency")
    if before is not None:  # the mapping (and its queue) predate the plan: restore its cap, delete nothing
        if mapping is not None and (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") != before:
            scaling: ScalingConfigTypeDef = {"MaximumConcurrency": int(before)}
            clients.lambda_.update_event_source_mapping(UUID=str(mapping["UUID"]), ScalingConfig=scaling)
        return [f"kept {queue}, {dlq} and their mapping: they existed before the plan"]
    notes = []
    if queue_arn is not None:
        url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        if not created_by_medic(clients, url):
            return [f"kept {queue}, {dlq} and the mapping: {queue} was not created by Medic"]
        left = messages(clients, url)
        if left:
            return [
                f"kept {queue} ({left} message(s) still buffered), {dlq} and the mapping so the messages drain "
                f"into {action.target}: delete them once {queue} is empty"
            ]
        if mapping is not None:
            clients.lambda_.delete_event_source_mapping(UUID=str(mapping["UUID"]))
            notes.append(f"deleted mapping {mapping['UUID']}")
        clients.sqs.delete_queue(QueueUrl=url)
        notes.append(f"deleted {queue} (empty)")
    dlq_url = queue_url(clients, dlq)
    if dlq_url is not None and created_by_medic(clients, dlq_url):
        failed = messages(clients, dlq_url)
        if failed:
            notes.append(f"kept {dlq}: it holds {failed} failed event(s) to replay or discard by hand")
        else:
            clients.sqs.delete_queue(QueueUrl=dlq_url)
            notes.append(f"deleted {dlq} (empty)")
    return notes
