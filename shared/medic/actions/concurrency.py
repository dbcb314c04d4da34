"""Concurrency caps: a function's reserved concurrency, and the MaximumConcurrency of its SQS event source mappings.

Toward a database (a `db_connections` signal, target ``db <instance>``), the runbook gives both actions the same
parameter: the TOTAL concurrency budget toward the database. :func:`consumer_shares` splits that budget over all
the database's consumers; `set_reserved_concurrency` caps the consumers without an SQS event source (one planned
action each) and `set_event_source_max_concurrency` caps the queue consumers' mappings, so the two actions
together stay within the budget. A share never raises a cap that is already lower: a cap toward a database only
lowers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar
from medic.aws import request_id
from medic.errors import ActionFailed, GuardrailRefused

if TYPE_CHECKING:
    from mypy_boto3_lambda.type_defs import ScalingConfigTypeDef

    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import ConsumerFacts, EventSourceFacts, Facts
    from medic.signals import Target

#: AWS's range of ScalingConfig.MaximumConcurrency on an SQS event source mapping.
ESM_MIN_CONCURRENCY: Final = 2
ESM_MAX_CONCURRENCY: Final = 1000
#: How often `wait` polls an event source mapping that is still updating.
ESM_POLL_INTERVAL_S = 2.0
_ESM_SETTLING = frozenset({"Creating", "Enabling", "Updating"})


def _number(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise GuardrailRefused("valid_value", ">= 0", value, f"{name} must be a finite count")
    return number


def consumer_minimum(consumer: ConsumerFacts) -> int:
    """The smallest share a consumer can get: 1 execution, or 2 per SQS mapping (MaximumConcurrency's minimum)."""
    mappings = len(consumer.sqs_sources)
    return ESM_MIN_CONCURRENCY * mappings if mappings else 1


def consumer_shares(budget: int, consumers: list[ConsumerFacts]) -> dict[str, int]:
    """Split a concurrency `budget` toward a database over its consumers (function name → share).

    Shares are proportional to each consumer's peak concurrency (an equal split when any peak is unknown or all are
    zero), rounded down, and at least :func:`consumer_minimum` (1, or 2 per SQS mapping). A consumer whose
    proportional share falls below its minimum gets the minimum, and the rest of the budget is split over the others
    again, so the shares add up to at most `budget` whenever the budget covers the minimums. Finally a share never
    raises an existing reserved cap: it is ``min(share, reserved_concurrency)`` when the consumer has one.

    >>> from medic.facts import ConsumerFacts, EventSourceFacts
    >>> queue = EventSourceFacts(uuid="u1", source_arn="arn:aws:sqs:us-east-1:123456789012:orders", kind="sqs")
    >>> consumer_shares(280, [
    ...     ConsumerFacts(function_name="api", peak_concurrency=300),
    ...     ConsumerFacts(function_name="worker", peak_concurrency=100, event_sources=[queue]),
    ...     ConsumerFacts(function_name="report", peak_concurrency=1, reserved_concurrency=5),
    ... ])
    {'api': 209, 'worker': 69, 'report': 1}
    """
    if not consumers:
        return {}
    minimum = {c.function_name: consumer_minimum(c) for c in consumers}
    peaks = [c.peak_concurrency for c in consumers]
    proportional = all(peak is not None for peak in peaks) and sum(peak or 0.0 for peak in peaks) > 0
    weight = {c.function_name: float(c.peak_concurrency or 0.0) if proportional else 1.0 for c in consumers}
    fixed: dict[str, int] = {}
    free = [c.function_name for c in consumers]
    raw: dict[str, float] = {}
    while free:
        rest = budget - sum(fixed.values())
        total = sum(weight[name] for name in free)
        # rest × (a fraction ≤ 1): never overflows, whatever the budget (rest × weight could reach infinity)
        raw = {name: rest * (weight[name] / total) if total > 0 else 0.0 for name in free}
        below = [name for name in free if raw[name] < minimum[name]]
        if not below:
            break
        fixed.update((name, minimum[name]) for name in below)
        free = [name for name in free if name not in fixed]
    shares = {**{name: math.floor(raw[name] + 1e-9) for name in free}, **fixed}
    for consumer in consumers:
        if consumer.reserved_concurrency is not None:
            shares[consumer.function_name] = min(shares[consumer.function_name], consumer.reserved_concurrency)
    return {c.function_name: shares[c.function_name] for c in consumers}


def database_consumers(target: Target, facts: Facts, kind: str) -> list[ConsumerFacts]:
    """The consumers of the target database, or a refusal: an unknown or empty set never means "all"."""
    if facts.consumers is None:
        raise GuardrailRefused(
            "target",
            "the database's consumers",
            "unknown",
            f"{kind}: the consumers of "
            f"{target.db_instance_id} could not be read ({facts.missing.get('consumers', '?')})",
        )
    if not facts.consumers:
        raise GuardrailRefused(
            "target",
            "at least one consumer",
            0,
            f"{kind}: no function is tagged as a consumer of {target.db_instance_id}",
        )
    return facts.consumers


def _budget_note(budget: int, consumers: list[ConsumerFacts]) -> str:
    needed = sum(consumer_minimum(c) for c in consumers)
    if needed <= budget:
        return ""
    return (
        f" The budget {budget} is below the consumers' minimums ({needed}: 1 execution each, 2 per SQS "
        f"mapping), so together they may exceed it."
    )


def changing_first(actions: list[PlannedAction]) -> list[PlannedAction]:
    """The actions that change something; all of them when none does (the guardrails then refuse the plan)."""
    changing = [action for action in actions if action.before != action.after]
    return changing or actions


class SetReservedConcurrency(Action):
    """Set a function's reserved concurrency: a ceiling on its concurrent executions, carved out of the account.

    On a function target, `concurrency` is the function's new reserved concurrency (rounded up). On a database
    target it is the total concurrency budget toward the database: the consumers without an SQS event source get
    their share of it (:func:`consumer_shares`), one planned action each; a share never raises a lower existing cap,
    and consumers already at 0 (stopped by a human) are left alone. Never plans 0 (DESIGN §5). Rollback restores the
    previous value, or removes the reservation when there was none.

    Runbook example::

        actions:
          - kind: set_reserved_concurrency
            params: {concurrency: "floor(db_max_connections * 0.7)"}
    """

    kind = "set_reserved_concurrency"
    permissions = (
        "lambda:GetFunctionConcurrency",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
    )
    params = ("concurrency",)

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        if target.kind == "function" and target.function_name:
            after = math.ceil(_number(params["concurrency"], "concurrency"))
            if after == 0:
                raise GuardrailRefused(
                    "reserved_zero",
                    ">= 1",
                    0,
                    f"{self.kind}: reserved concurrency 0 stops {target.function_name} entirely; Medic never sets it",
                )
            before = facts.reserved_concurrency
            return [
                self._planned(
                    target.function_name,
                    before,
                    after,
                    f"Reserved concurrency on {target.function_name}: {_shown(before)} → {after}",
                )
            ]
        if target.kind == "db_instance" and target.db_instance_id:
            consumers = database_consumers(target, facts, self.kind)
            budget = math.floor(_number(params["concurrency"], "concurrency"))
            shares = consumer_shares(budget, consumers)
            note = _budget_note(budget, consumers)
            actions = [
                self._planned(
                    c.function_name,
                    c.reserved_concurrency,
                    shares[c.function_name],
                    f"Reserved concurrency on {c.function_name}: {_shown(c.reserved_concurrency)} → "
                    f"{shares[c.function_name]}, its share of {budget} concurrent executions toward "
                    f"{target.db_instance_id} (peak {_shown(c.peak_concurrency, 'unknown')}).{note}",
                )
                for c in consumers
                if not c.sqs_sources and c.reserved_concurrency != 0
            ]
            return changing_first(actions)
        raise GuardrailRefused(
            "target", "a function or a database", target.display, f"{self.kind} needs a function or a database target"
        )

    def _planned(self, function_name: str, before: int | None, after: int, text: str) -> PlannedAction:
        return PlannedAction(
            kind=self.kind,
            target=function_name,
            function_name=function_name,
            primary="reserved_concurrency",
            before={"reserved_concurrency": before},
            after={"reserved_concurrency": after},
            text=text,
        )

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        assert action.function_name
        response = clients.lambda_.get_function_concurrency(FunctionName=action.function_name)
        return {"reserved_concurrency": response.get("ReservedConcurrentExecutions")}

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        assert action.function_name
        value = int(action.after["reserved_concurrency"] or 0)
        if value < 1:
            raise ActionFailed(self.kind, action.target, "refusing to set reserved concurrency below 1")
        response = clients.lambda_.put_function_concurrency(
            FunctionName=action.function_name, ReservedConcurrentExecutions=value
        )
        return request_id(dict(response))

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        live = self.read_live(clients, action)
        if live["reserved_concurrency"] != action.after["reserved_concurrency"]:
            raise ActionFailed(
                self.kind,
                action.target,
                f"reserved concurrency reads {live['reserved_concurrency']}, "
                f"not {action.after['reserved_concurrency']}",
            )
        return live

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        assert action.function_name
        before = action.before.get("reserved_concurrency")
        if before is None:
            response: Any = clients.lambda_.delete_function_concurrency(FunctionName=action.function_name)
        else:
            response = clients.lambda_.put_function_concurrency(
                FunctionName=action.function_name, ReservedConcurrentExecutions=int(before)
            )
        return request_id(dict(response))


class SetEventSourceMaxConcurrency(Action):
    """Cap how many concurrent executions an SQS event source mapping may invoke (ScalingConfig.MaximumConcurrency).

    On a function target: one planned action per SQS mapping of the function (refused when it has none), each set
    to `concurrency`. On a database target, `concurrency` is the total budget toward the database
    (:func:`consumer_shares`); each queue consumer's share is split evenly over its SQS mappings (at least 2 each),
    and never raises a mapping's lower existing cap. Values are clamped to AWS's range 2–1000 and the clamp is
    recorded. Rollback restores the previous value; when there was none it passes an empty ``ScalingConfig``,
    which AWS documents as the way to remove the setting (moto stores it as ``{}``, read back as "not set").

    Runbook example::

        actions:
          - kind: set_event_source_max_concurrency
            params: {concurrency: "floor(db_max_connections * 0.7)"}
    """

    kind = "set_event_source_max_concurrency"
    permissions = ("lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping")
    params = ("concurrency",)

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        if target.kind == "function" and target.function_name:
            name = target.function_name
            if facts.event_sources is None:
                raise GuardrailRefused(
                    "event_source",
                    "an SQS event source mapping",
                    "unknown",
                    f"{self.kind}: the event source mappings of {name} could not be read",
                )
            queues = [source for source in facts.event_sources if source.kind == "sqs"]
            if not queues:
                kinds = ", ".join(sorted({source.kind for source in facts.event_sources})) or "none"
                raise GuardrailRefused(
                    "event_source",
                    "an SQS event source mapping",
                    kinds,
                    f"{self.kind}: {name} has no SQS event source mapping",
                )
            wanted = math.ceil(_number(params["concurrency"], "concurrency"))
            actions = [
                self._planned(
                    name, source, wanted, f"MaximumConcurrency of {name}'s mapping from {_queue_name(source)}"
                )
                for source in queues
            ]
            return changing_first(actions)
        if target.kind == "db_instance" and target.db_instance_id:
            consumers = database_consumers(target, facts, self.kind)
            budget = math.floor(_number(params["concurrency"], "concurrency"))
            shares = consumer_shares(budget, consumers)
            note = _budget_note(budget, consumers)
            actions = []
            for consumer in consumers:
                queues = consumer.sqs_sources
                if not queues:
                    continue
                share = shares[consumer.function_name]
                each = max(ESM_MIN_CONCURRENCY, share // len(queues))
                for source in queues:
                    value = each if source.maximum_concurrency is None else min(each, source.maximum_concurrency)
                    actions.append(
                        self._planned(
                            consumer.function_name,
                            source,
                            value,
                            f"MaximumConcurrency of {consumer.function_name}'s mapping from {_queue_name(source)}, its "
                            f"share of {budget} concurrent executions toward {target.db_instance_id} ({share} over "
                            f"{len(queues)} mapping(s)).{note}",
                        )
                    )
            return changing_first(actions)
        raise GuardrailRefused(
            "target", "a function or a database", target.display, f"{self.kind} needs a function or a database target"
        )

    def _planned(self, function_name: str, source: EventSourceFacts, wanted: int, what: str) -> PlannedAction:
        value = min(max(wanted, ESM_MIN_CONCURRENCY), ESM_MAX_CONCURRENCY)
        clamps = []
        if value != wanted:
            clamps.append(
                f"maximum_concurrency {wanted} → {value}: AWS's range is {ESM_MIN_CONCURRENCY}–{ESM_MAX_CONCURRENCY}"
            )
        before = source.maximum_concurrency
        return PlannedAction(
            kind=self.kind,
            target=f"{function_name} esm {source.uuid}",
            function_name=function_name,
            primary="maximum_concurrency",
            before={"maximum_concurrency": before},
            after={"maximum_concurrency": value},
            text=f"{what}: {_shown(before, 'not set')} → {value}",
            clamps=clamps,
            resource={"uuid": source.uuid, "event_source_arn": source.source_arn},
        )

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        mapping = clients.lambda_.get_event_source_mapping(UUID=str(action.resource["uuid"]))
        return {"maximum_concurrency": (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")}

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        value = int(action.after["maximum_concurrency"] or 0)
        return self._set(clients, action, {"MaximumConcurrency": value})

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        """Poll the mapping until it is no longer updating and reports the new MaximumConcurrency."""
        deadline = clock.now().timestamp() + timeout_s
        while True:
            mapping = clients.lambda_.get_event_source_mapping(UUID=str(action.resource["uuid"]))
            value = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
            state = str(mapping.get("State", ""))
            if state not in _ESM_SETTLING and value == action.after["maximum_concurrency"]:
                return {"maximum_concurrency": value, "state": state}
            if clock.now().timestamp() >= deadline:
                raise ActionFailed(
                    self.kind,
                    action.target,
                    f"mapping still {state or '?'} with MaximumConcurrency {value} after {timeout_s:.0f}s",
                )
            clock.sleep(ESM_POLL_INTERVAL_S)

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        before = action.before.get("maximum_concurrency")
        return self._set(clients, action, {} if before is None else {"MaximumConcurrency": int(before)})

    @staticmethod
    def _set(clients: AwsClients, action: PlannedAction, scaling: ScalingConfigTypeDef) -> str:
        response = clients.lambda_.update_event_source_mapping(
            UUID=str(action.resource["uuid"]),
            ScalingConfig=scaling,
        )
        return request_id(dict(response))


def _queue_name(source: EventSourceFacts) -> str:
    return source.source_arn.rsplit(":", 1)[-1] or source.uuid


def _shown(value: Scalar, none: str = "unreserved") -> str:
    return none if value is None else f"{value:g}" if isinstance(value, float) else str(value)
