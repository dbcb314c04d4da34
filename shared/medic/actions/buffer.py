"""Put an SQS queue between a function's EventBridge and SNS producers and the function, drained at a capped rate."""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions import buffer_resources as resources
from medic.actions.base import Action, PlannedAction, Scalar
from medic.actions.budget import ESM_MIN_CONCURRENCY
from medic.actions.concurrency import ESM_MAX_CONCURRENCY
from medic.actions.request_checks import confine
from medic.errors import ActionFailed, GuardrailRefused
from medic.facts.invokers import event_rules, sns_topics
from medic.facts.model import SQS_BUFFER_TAG
from medic.planning.cost import (
    SQS_REQUESTS_PER_MESSAGE,
    Estimate,
    Rates,
    invocations_text,
    missing,
    monthly_invocations,
)

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts

#: The function's own word that its handler takes SQS batches and its role may consume the buffer queues.
READY_TAG: Final = SQS_BUFFER_TAG
#: AWS: set the source queue's visibility timeout to at least six times the function's timeout.
VISIBILITY_TIMEOUT_FACTOR: Final = 6
MAX_RECEIVE_COUNT: Final = 5
DLQ_RETENTION_S: Final = 14 * 24 * 3600
QUEUE_NAME_MAX: Final = 80
ESM_POLL_INTERVAL_S = 2.0
_ESM_SETTLING = frozenset({"Creating", "Enabling", "Updating"})
_ORIGINAL = "original_target:"
#: Why an S3 producer is never rewired by Medic.
S3_REFUSAL: Final = (
    "an S3 notification is part of the bucket's whole notification configuration: rewiring it is a human's call"
)


def buffer_queue_names(function_name: str) -> tuple[str, str]:
    """(queue, dead-letter queue): ``medic-buffer-<fn>`` and ``…-dlq``, shortened with a hash to fit SQS's 80.

    >>> buffer_queue_names("thumbnailer")
    ('medic-buffer-thumbnailer', 'medic-buffer-thumbnailer-dlq')
    """
    base = f"medic-buffer-{function_name}"
    if len(base) + len("-dlq") > QUEUE_NAME_MAX:
        digest = hashlib.sha256(function_name.encode()).hexdigest()[:8]
        base = base[: QUEUE_NAME_MAX - len("-dlq") - len(digest) - 1] + "-" + digest
    return base, f"{base}-dlq"


class EnableSqsBuffer(Action):
    """Buffer an asynchronously invoked function's EventBridge rules and SNS topics through SQS, at a capped rate.

    Creates (or finds) the dead-letter queue ``medic-buffer-<fn>-dlq`` and the queue ``medic-buffer-<fn>``
    (visibility timeout 6 × the function's timeout, redrive after 5 receives, tagged ``medic:created-by=medic``), a
    queue policy that lets EventBridge send from exactly these rules and SNS from exactly these topics, an event
    source mapping queue → function (the alias when qualified) with ScalingConfig.MaximumConcurrency =
    `maximum_concurrency` (2–1000), and finally points each rule's target that invoked the function at the queue
    (same target Id, Input/InputPath/InputTransformer preserved) and, for each topic with a ``lambda`` subscription
    to the function (the alias ARN when qualified), subscribes the queue (protocol ``sqs``, RawMessageDelivery
    false) before unsubscribing the function; the subscription's ARN and attributes (FilterPolicy, its scope,
    RedrivePolicy…) are recorded in ``resource`` (``original_subscription:<topic arn>``). The queue's subscription
    takes the function's filter policy (FilterPolicy, FilterPolicyScope), so the function gets the same messages.
    Re-running finds what exists.
    Nothing is sent unless the plan's queues are the function's own (`buffer_queue_names`), and every queue change,
    queue policy and subscription it sends is checked on the client first (`medic.actions.request_checks`): IAM lets
    the actions role set any attribute of a ``medic-buffer-*`` queue and subscribe one to any topic of the account.
    Refused unless the function carries ``medic:sqs-buffer=ready``: its handler receives SQS batches afterwards, a
    different event shape, and its role must be able to consume the queue. Each SQS record's ``body`` is then the
    EventBridge event (or the rule's transformed input) as it was, or, for a topic, the SNS envelope as JSON
    (``{"Type": "Notification", "MessageId", "TopicArn", "Message", "MessageAttributes", …}``: the payload is its
    ``Message``, not ``Records[0].Sns.Message`` any more). S3 producers are left to a human (their notifications are
    the bucket's whole notification configuration), as are policies naming no rule or topic (``events:*``,
    ``sns:*``). The function's async settings (retries, destinations) no longer apply to buffered events: the DLQ
    does.

    Rollback first points the rules back at the function (their original targets, as recorded at apply) and
    re-subscribes the function to each topic with its recorded attributes (a new subscription ARN: AWS never reuses
    one) before unsubscribing the queue, so no message published meanwhile is lost. Then it removes what apply
    created — the mapping, the queue and the DLQ — but only when nothing would be lost: the queue must hold no
    message (ApproximateNumberOfMessages + …NotVisible + …Delayed = 0), else the queue, DLQ and mapping stay so the
    buffered messages still drain into the function, and the returned text says so (delete them once the queue is
    empty); the DLQ is kept, and said so, while it holds failed events. A mapping that existed before the
    plan (its MaximumConcurrency is in ``before``) is only set back to that value, and nothing is deleted.

    ``before``/``after`` are ``{"buffered", "maximum_concurrency"}``: `read_live` says whether every producer (the
    rules' targets, the topics' subscriptions) points at the queue (True), at the function (False; partly moved counts
    as False, and apply completes it) or at neither (None: a rule, topic, target or subscription is gone, which is
    drift), and the mapping's MaximumConcurrency.

    Runbook example::

        actions:
          - kind: enable_sqs_buffer
            params: {maximum_concurrency: "max(2, floor(function_peak_concurrency * 0.8))"}
    """

    kind = "enable_sqs_buffer"
    must_change = True
    permissions = (
        "lambda:GetFunctionConfiguration",
        "lambda:ListEventSourceMappings",
        "lambda:CreateEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
        "lambda:GetEventSourceMapping",
        "lambda:DeleteEventSourceMapping",
        "sqs:GetQueueUrl",
        "sqs:CreateQueue",
        "sqs:GetQueueAttributes",
        "sqs:SetQueueAttributes",
        "sqs:ListQueueTags",
        "sqs:TagQueue",
        "sqs:DeleteQueue",
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "events:PutTargets",
        "sns:ListSubscriptionsByTopic",
        "sns:GetSubscriptionAttributes",
        "sns:Subscribe",
        "sns:Unsubscribe",
    )
    params = ("maximum_concurrency",)
    max_mode = "approve"

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        if target.kind != "function" or not target.function_name:
            raise GuardrailRefused("target", "a function", target.display, f"{self.kind} needs a function target")
        name = target.function_name
        qualifier = target.qualifier if target.qualifier != "$LATEST" else None
        key, ready = READY_TAG
        observed = (facts.tags or {}).get(key) if facts.tags is not None else "unknown (tags not read)"
        if observed != ready:
            raise GuardrailRefused(
                "sqs_ready",
                f"{key}={ready}",
                observed,
                f"{name}'s handler would receive SQS batches, a different event shape: tag it "
                f"{key}={ready} once it handles them and its role may consume the queue",
            )
        wanted_sources = "an EventBridge rule or SNS topic"
        if facts.async_sources is None:
            raise GuardrailRefused(
                "async_sources", wanted_sources, "unknown", f"{self.kind}: who invokes {name} could not be read"
            )
        rules, topics = event_rules(facts.async_sources), sns_topics(facts.async_sources)
        others = [
            entry.strip()
            for entry in facts.async_sources.split(",")
            if entry.strip() and not entry.strip().startswith(("events:rule/", "sns:arn:"))
        ]
        if not rules and not topics:
            s3 = f" ({S3_REFUSAL})" if any(other.startswith("s3:") for other in others) else ""
            raise GuardrailRefused(
                "async_sources",
                wanted_sources,
                facts.async_sources or "none",
                f"Medic rewires EventBridge rules and SNS topics only; {', '.join(others) or 'no producer'} "
                f"need(s) a human{s3}",
            )
        if not facts.timeout_s:
            raise GuardrailRefused(
                "facts",
                "timeout_s known",
                "unknown",
                f"{self.kind}: {name}'s timeout (for the queue's visibility timeout) is unknown",
            )
        wanted = math.ceil(resources.finite(params["maximum_concurrency"]))
        value = min(max(wanted, ESM_MIN_CONCURRENCY), ESM_MAX_CONCURRENCY)
        clamps = []
        if value != wanted:
            clamps.append(
                f"maximum_concurrency {wanted} → {value}: AWS's range is {ESM_MIN_CONCURRENCY}–{ESM_MAX_CONCURRENCY}"
            )
        queue, dlq = buffer_queue_names(name)
        existing = [s for s in facts.event_sources or [] if s.kind == "sqs" and s.source_arn.endswith(f":{queue}")]
        shown = f"{name}:{qualifier}" if qualifier else name
        producers = [
            *([f"EventBridge rule(s) {', '.join(rules)}"] if rules else []),
            *([f"SNS topic(s) {', '.join(topics)}"] if topics else []),
        ]
        text = (
            f"Buffer {shown}: {' and '.join(producers)} → SQS {queue} (DLQ {dlq} after {MAX_RECEIVE_COUNT} "
            f"receives) → {shown} at most {value} at a time."
        )
        if topics:
            text += (
                " The topics' lambda subscriptions become SQS subscriptions (not raw): the handler then finds the "
                "SNS envelope as JSON in each SQS record's body, the payload in its Message."
            )
        text += (
            " Rollback points every producer back at the function (a topic's subscription with its recorded "
            "attributes) and deletes the queues and mapping only once empty (buffered messages drain first)."
        )
        if others:
            s3 = f" ({S3_REFUSAL})" if any(other.startswith("s3:") for other in others) else ""
            text += f" Not rewired (a human's call): {', '.join(others)}{s3}."
        return [
            PlannedAction(
                kind=self.kind,
                target=shown,
                function_name=name,
                qualifier=qualifier,
                primary="buffered",
                before={
                    "buffered": False,
                    "maximum_concurrency": existing[0].maximum_concurrency if existing else None,
                },
                after={"buffered": True, "maximum_concurrency": value},
                text=text,
                clamps=clamps,
                resource={
                    "rules": ",".join(rules),
                    "topics": ",".join(topics),
                    "queue": queue,
                    "dlq": dlq,
                    "visibility_timeout_s": VISIBILITY_TIMEOUT_FACTOR * facts.timeout_s,
                },
            )
        ]

    # -- reading ------------------------------------------------------------------------------------
    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        function_arn = resources.function_arn(clients, action)
        queue_arn = resources.queue_arn(clients, str(action.resource["queue"]))
        states = []
        for rule in self._rules(action):
            arns = (
                [str(t["Arn"]) for t in resources.targets(clients, rule)]
                if resources.rule_exists(clients, rule)
                else []
            )
            if function_arn in arns:
                states.append("function")
            elif queue_arn is not None and queue_arn in arns:
                states.append("queue")
            else:
                states.append("none")
        for topic in self._topics(action):
            subscriptions = resources.list_subscriptions(clients, topic) or []
            if resources.subscribed(subscriptions, "lambda", function_arn):
                states.append("function")
            elif queue_arn is not None and resources.subscribed(subscriptions, "sqs", queue_arn):
                states.append("queue")
            else:
                states.append("none")
        buffered: bool | None = None
        if states and all(state == "queue" for state in states):
            buffered = True
        elif "none" not in states:
            buffered = False
        mapping = resources.find_mapping(clients, queue_arn, action) if queue_arn else None
        maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") if mapping else None
        return {"buffered": buffered, "maximum_concurrency": maximum}

    # -- changing -----------------------------------------------------------------------------------
    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        self._check_own_queues(action)
        function_arn = resources.function_arn(clients, action)
        rule_arns = [resources.rule_arn(clients, action, rule) for rule in self._rules(action)]
        topics = self._topics(action)
        for topic in topics:  # every topic still delivers to the function (or, applied before, to the queue)
            subscriptions = resources.list_subscriptions(clients, topic)
            if subscriptions is None:
                raise ActionFailed(self.kind, action.target, f"SNS topic {topic} no longer exists")
            if not resources.subscribed(subscriptions, "lambda", function_arn) and not any(
                s.get("Protocol") == "sqs" and str(s.get("Endpoint", "")).endswith(f":{action.resource['queue']}")
                for s in subscriptions
            ):
                raise ActionFailed(
                    self.kind, action.target, f"SNS topic {topic} has no lambda subscription to {function_arn}"
                )
        _, dlq_arn = resources.ensure_queue(
            clients, action, str(action.resource["dlq"]), {"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
        )
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        queue_url, queue_arn = resources.ensure_queue(
            clients,
            action,
            str(action.resource["queue"]),
            {
                "VisibilityTimeout": str(int(action.resource["visibility_timeout_s"] or 0)),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
        policy = resources.queue_policy(queue_arn, rule_arns, topics)
        confine(clients.sqs).set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
        resources.ensure_mapping(clients, action, queue_arn, function_arn)
        request = ""
        for rule in self._rules(action):
            moved = []
            for target in resources.targets(clients, rule):
                if target["Arn"] == function_arn:
                    action.resource.setdefault(f"{_ORIGINAL}{rule}:{target['Id']}", json.dumps(target, sort_keys=True))
                    moved.append({**{k: v for k, v in target.items() if k != "RoleArn"}, "Arn": queue_arn})
            if moved:
                request = resources.put_targets(clients, action, rule, moved)
        for topic in topics:
            request = resources.move_subscription(clients, action, topic, function_arn, queue_arn) or request
        return request

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        """Wait for the mapping to be enabled, then read back where the rules point."""
        queue_arn = resources.queue_arn(clients, str(action.resource["queue"]))
        deadline = clock.now().timestamp() + timeout_s
        while True:
            mapping = resources.find_mapping(clients, queue_arn, action) if queue_arn else None
            state = str(mapping.get("State", "")) if mapping else "missing"
            if mapping and state not in _ESM_SETTLING:
                break
            if clock.now().timestamp() >= deadline:
                raise ActionFailed(
                    self.kind, action.target, f"event source mapping still {state} after {timeout_s:.0f}s"
                )
            clock.sleep(ESM_POLL_INTERVAL_S)
        live = self.read_live(clients, action)
        if live != action.after:
            raise ActionFailed(self.kind, action.target, f"reads back as {live}, not {action.after}")
        return {**live, "mapping_state": state}

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        """Point the producers back at the function; then remove the mapping and queues unless messages are left."""
        self._check_own_queues(action)
        function_arn = resources.function_arn(clients, action)
        queue_arn = resources.queue_arn(clients, str(action.resource["queue"]))
        request = ""
        for rule in self._rules(action):
            if not resources.rule_exists(clients, rule):
                continue
            restored = []
            for target in resources.targets(clients, rule):
                if queue_arn is not None and target["Arn"] == queue_arn:
                    original = action.resource.get(f"{_ORIGINAL}{rule}:{target['Id']}")
                    restored.append(json.loads(str(original)) if original else {**target, "Arn": function_arn})
            if restored:
                request = resources.put_targets(clients, action, rule, restored)
        notes = []
        for topic in self._topics(action):
            note = resources.restore_subscription(clients, action, topic, function_arn, queue_arn)
            if note:
                notes.append(note)
        notes += resources.remove_created(clients, action, queue_arn)
        return "; ".join(part for part in (request, *notes) if part)

    # -- helpers ------------------------------------------------------------------------------------
    def _check_own_queues(self, action: PlannedAction) -> None:
        """Refuse, before any call, a plan whose queues are not this function's own buffer queues: apply would
        subscribe another queue to the topics and open its policy to them, rollback would delete it."""
        own = buffer_queue_names(str(action.function_name or ""))
        named = (str(action.resource.get("queue")), str(action.resource.get("dlq")))
        if not action.function_name or named != own:
            raise ActionFailed(
                self.kind,
                action.target,
                f"the plan names the queues {named[0]}, {named[1]}, not {action.function_name}'s own "
                f"buffer queues {own[0]}, {own[1]}",
            )

    @staticmethod
    def _rules(action: PlannedAction) -> list[str]:
        return [rule for rule in str(action.resource["rules"]).split(",") if rule]

    @staticmethod
    def _topics(action: PlannedAction) -> list[str]:
        """The topic ARNs the plan rewires (none in a plan made before SNS was buffered)."""
        return [topic for topic in str(action.resource.get("topics") or "").split(",") if topic]

    def estimate(self, action: PlannedAction, facts: Facts, rates: Rates) -> Estimate:
        monthly = monthly_invocations(facts, rates.table)
        if monthly is None:
            return None, missing(facts, "invocations")
        usd = monthly * SQS_REQUESTS_PER_MESSAGE * rates.sqs_per_million / 1_000_000
        return usd, (
            f"{invocations_text(facts, monthly, rates.table)}, each a message: × {SQS_REQUESTS_PER_MESSAGE} SQS "
            f"requests (send, receive, delete; batching lowers it) × ${rates.sqs_per_million:.2f} per million standard "
            f"requests; the free tier is not deducted ({rates.label})"
        )
