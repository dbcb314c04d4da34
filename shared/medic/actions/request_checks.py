"""What the actions' change requests may carry, checked on the client before a request is signed and sent.

IAM authorizes a call, not what it carries: the actions role's `lambda:UpdateFunctionConfiguration` on an opted-in
function lets a request change any field of its configuration (the role, the environment, the layers, the code's
handler), though `set_memory` owns `MemorySize` only; `sqs:SetQueueAttributes` on a buffer queue lets a request give
the queue any access policy; `sns:Subscribe` lets a request subscribe a buffer queue to any topic of the account
(Service Authorization Reference: no condition key names a configuration field, a queue attribute or a policy's
content). So Medic checks what IAM cannot, on every client an action changes AWS with (`confine`): a botocore
handler on `before-parameter-build` reads the request's parameters and refuses (`RequestRefused`, an `ActionFailed`:
the plan fails and what was applied is rolled back) any request that carries a field or a value the actions never
send. Nothing of a refused request reaches AWS.

    >>> import boto3
    >>> lam = confine(boto3.client("lambda", region_name="us-east-1"))
    >>> lam.update_function_configuration(FunctionName="checkout", MemorySize=2048, Environment={"Variables": {}})
    Traceback (most recent call last):
    ...
    medic.actions.request_checks.RequestRefused: UpdateFunctionConfiguration on checkout refused before it was sent: \
it may carry only FunctionName, MemorySize (set_memory owns MemorySize alone), not Environment
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from medic.errors import ActionFailed

#: The prefix of every queue the buffer creates (`buffer_queue_names`): the only queues Medic changes.
BUFFER_QUEUE_PREFIX: Final = "medic-buffer-"
#: UpdateFunctionConfiguration: the function, and the one field an action owns (`set_memory`).
CONFIGURATION_FIELDS: Final = frozenset({"FunctionName", "MemorySize"})
#: Queue attributes the buffer sets (DLQ retention, visibility timeout, redrive to its DLQ, its access policy).
QUEUE_ATTRIBUTES: Final = frozenset({"MessageRetentionPeriod", "VisibilityTimeout", "RedrivePolicy", "Policy"})
#: Who a buffer queue's policy may let send, and what: EventBridge rules and SNS topics, SendMessage, one source each.
QUEUE_SENDERS: Final = frozenset({"events.amazonaws.com", "sns.amazonaws.com"})
#: Subscription attributes: the queue's (not raw, the function's filter) and the function's restored on rollback.
SUBSCRIPTION_ATTRIBUTES: Final = {
    "sqs": frozenset({"RawMessageDelivery", "FilterPolicy", "FilterPolicyScope"}),
    "lambda": frozenset(
        {"FilterPolicyScope", "FilterPolicy", "RedrivePolicy", "DeliveryPolicy", "SubscriptionRoleArn", "ReplayPolicy"}
    ),
}


class RequestRefused(ActionFailed):
    """A change request an action was about to send carries what no action sends: refused before it was sent."""

    def __init__(self, operation: str, target: str, reason: str) -> None:
        super().__init__(operation, target, reason)

    def __str__(self) -> str:
        return f"{self.kind} on {self.target} refused before it was sent: {self.reason}"


Check = Callable[[Mapping[str, Any]], str | None]
_Client = TypeVar("_Client")


def _configuration(params: Mapping[str, Any]) -> str | None:
    extra = sorted(set(params) - CONFIGURATION_FIELDS)
    if extra:
        return (
            f"it may carry only {', '.join(sorted(CONFIGURATION_FIELDS))} (set_memory owns MemorySize alone), "
            f"not {', '.join(extra)}"
        )
    return None


def _queue_name(url_or_arn: str) -> str:
    return url_or_arn.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _queue_attributes(queue: str, attributes: Mapping[str, Any]) -> str | None:
    extra = sorted(set(attributes) - QUEUE_ATTRIBUTES)
    if extra:
        return f"a buffer queue's attributes are {', '.join(sorted(QUEUE_ATTRIBUTES))}, not {', '.join(extra)}"
    if "RedrivePolicy" in attributes:
        try:
            target = str(json.loads(str(attributes["RedrivePolicy"])).get("deadLetterTargetArn", ""))
        except (ValueError, AttributeError):
            return "its RedrivePolicy is not a JSON object"
        if not _queue_name(target).startswith(BUFFER_QUEUE_PREFIX):
            return f"its dead-letter queue {target!r} is not a buffer queue"
    if "Policy" in attributes:
        return _queue_policy(queue, str(attributes["Policy"]))
    return None


def _queue_policy(queue: str, text: str) -> str | None:
    """None when the policy only lets EventBridge or SNS send to this queue from named sources, else the problem."""
    try:
        statements = json.loads(text).get("Statement", [])
    except (ValueError, AttributeError):
        return "its Policy is not a JSON policy"
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict):
            return "its Policy holds a statement that is not an object"
        principal = statement.get("Principal")
        services = principal.get("Service") if isinstance(principal, dict) and set(principal) == {"Service"} else None
        condition = statement.get("Condition")
        sources = condition.get("ArnEquals", {}).get("aws:SourceArn") if isinstance(condition, dict) else None
        problems = [
            statement.get("Effect") != "Allow" and "an effect other than Allow",
            (not isinstance(services, str) or services not in QUEUE_SENDERS) and f"a principal {principal!r}",
            statement.get("Action") != "sqs:SendMessage" and f"the action {statement.get('Action')!r}",
            _queue_name(str(statement.get("Resource", ""))) != queue and f"the resource {statement.get('Resource')!r}",
            not sources and "no aws:SourceArn it is confined to",
            set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"} and "other elements",
        ]
        found = [problem for problem in problems if problem]
        if found:
            return (
                f"its Policy may only let EventBridge or SNS send from named sources to {queue}; a statement has "
                f"{', '.join(found)}"
            )
    return None


def _set_queue_attributes(params: Mapping[str, Any]) -> str | None:
    queue = _queue_name(str(params.get("QueueUrl", "")))
    if not queue.startswith(BUFFER_QUEUE_PREFIX):
        return f"Medic changes its buffer queues ({BUFFER_QUEUE_PREFIX}*) only, not {queue!r}"
    return _queue_attributes(queue, params.get("Attributes") or {})


def _create_queue(params: Mapping[str, Any]) -> str | None:
    queue = str(params.get("QueueName", ""))
    if not queue.startswith(BUFFER_QUEUE_PREFIX):
        return f"Medic creates its buffer queues ({BUFFER_QUEUE_PREFIX}*) only, not {queue!r}"
    if (params.get("tags") or {}).get("medic:created-by") != "medic":
        return "a buffer queue is created tagged medic:created-by=medic"
    return _queue_attributes(queue, params.get("Attributes") or {})


def _subscribe(params: Mapping[str, Any]) -> str | None:
    protocol, endpoint = str(params.get("Protocol", "")), str(params.get("Endpoint", ""))
    if protocol == "sqs":
        if not (endpoint.startswith("arn:") and _queue_name(endpoint).startswith(BUFFER_QUEUE_PREFIX)):
            return f"an sqs subscription goes to a buffer queue ({BUFFER_QUEUE_PREFIX}*), not {endpoint!r}"
    elif protocol == "lambda":
        if ":lambda:" not in endpoint or ":function:" not in endpoint:
            return f"a lambda subscription goes back to a function, not {endpoint!r}"
    else:
        return f"the buffer moves lambda and sqs subscriptions only, not {protocol!r}"
    extra = sorted(set(params.get("Attributes") or {}) - SUBSCRIPTION_ATTRIBUTES[protocol])
    if extra:
        return f"a {protocol} subscription carries {', '.join(sorted(SUBSCRIPTION_ATTRIBUTES[protocol]))}, not {extra}"
    return None


#: (service, operation) → its check. The service is botocore's event name for it (`service_id.hyphenize()`).
CHECKS: Final[dict[tuple[str, str], tuple[str, Check]]] = {
    ("lambda", "UpdateFunctionConfiguration"): ("FunctionName", _configuration),
    ("sqs", "SetQueueAttributes"): ("QueueUrl", _set_queue_attributes),
    ("sqs", "CreateQueue"): ("QueueName", _create_queue),
    ("sns", "Subscribe"): ("TopicArn", _subscribe),
}


def confine(client: _Client) -> _Client:
    """`client` with the checks of its service's change requests (`CHECKS`) registered, once: every later call of
    those operations on it is checked before it is sent, whatever code makes it."""
    meta: Any = getattr(client, "meta")  # noqa: B009 - botocore's clients are typed per service; meta is on all
    service = meta.service_model.service_id.hyphenize()
    for (checked_service, operation), (target_field, check) in CHECKS.items():
        if checked_service == service:
            meta.events.register(
                f"before-parameter-build.{service}.{operation}",
                _refuser(operation, target_field, check),
                unique_id=f"medic-request-check-{service}-{operation}",
            )
    return client


def _refuser(operation: str, target_field: str, check: Check) -> Callable[..., None]:
    def refuse_unless_owned(params: Mapping[str, Any], **_: Any) -> None:
        problem = check(params)
        if problem is not None:
            raise RequestRefused(operation, str(params.get(target_field, "?")), problem)

    return refuse_unless_owned
