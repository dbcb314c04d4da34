"""Concurrency caps: a function's reserved concurrency, and the MaximumConcurrency of its SQS event source mappings.

Toward a database (a `db_connections` signal, target ``db <instance>``), the runbook gives both actions the same
parameter: the TOTAL concurrency budget toward the database. `medic.actions.budget.split_budget` splits that budget
over the database's consumers opted in to changes (what the others run now is counted as spent, and each of them
gets an `advise` line with the cap it should have); `set_reserved_concurrency` caps the opted-in consumers without an
SQS event source (one planned action each) and `set_event_source_max_concurrency` caps the opted-in queue
consumers' mappings, so the two actions together stay within the budget. A share never raises a cap that is already
lower: a cap toward a database only lowers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar, TemplateProperty
from medic.actions.budget import (
    ESM_MIN_CONCURRENCY,
    budget_note,
    database_consumers,
    spent_note,
    split_budget,
    unmanaged_advice,
)
from medic.aws import request_id
from medic.errors import ActionFailed, GuardrailRefused

if TYPE_CHECKING:
    from mypy_boto3_lambda.type_defs import ScalingConfigTypeDef

    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import EventSourceFacts, Facts

#: AWS's range of ScalingConfig.MaximumConcurrency on an SQS event source mapping.
ESM_MAX_CONCURRENCY: Final = 1000
#: How often `wait` polls an event source mapping that is still updating.
ESM_POLL_INTERVAL_S = 2.0
_ESM_SETTLING = frozenset({"Creating", "Enabling", "Updating"})


def _number(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise GuardrailRefused("valid_value", ">= 0", value, f"{name} must be a finite count")
    return number


def changing_first(actions: list[PlannedAction]) -> list[PlannedAction]:
    """The actions that change something; all of them when none does (the guardrails then refuse the plan)."""
    changing = [action for action in actions if action.before != action.after]
    return changing or actions


class SetReservedConcurrency(Action):
    """Set a function's reserved concurrency: a ceiling on its concurrent executions, carved out of the account.

    On a function target, `concurrency` is the function's new reserved concurrency (rounded up). On a database target it
    is the total concurrency budget toward the database: the opted-in consumers without an SQS event source get their
    share of it (`medic.actions.budget.split_budget`), one planned action each, and each such consumer not opted in gets
    an `advise` line instead; a share never raises a lower existing cap, and consumers already at 0 (stopped by a human)
    are left alone. Never plans 0 (docs/ARCHITECTURE.md §5). Rollback restores the previous value, or removes the
    reservation when there was none.

    Runbook example::

        actions:
          - kind: set_reserved_concurrency
            params: {concurrency: "floor(db_max_connections * 0.7)"}
    """

    kind = "set_reserved_concurrency"
    read_permissions = ("lambda:GetFunctionConcurrency",)
    cap = ("reserved_concurrency", "max_reserved_concurrency")
    must_change = True
    risk = "cut"
    free = "no charge for reserved concurrency (a cap and a guarantee, not billed)"
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
            split = split_budget(budget, consumers)
            capped = [c for c in consumers if c.managed and not c.sqs_sources and c.reserved_concurrency != 0]
            note = spent_note(split) + budget_note(split.rest, [c for c in consumers if c.managed])
            actions = [
                self._planned(
                    c.function_name,
                    c.reserved_concurrency,
                    split.shares[c.function_name],
                    f"Reserved concurrency on {c.function_name}: {_shown(c.reserved_concurrency)} → "
                    f"{split.shares[c.function_name]}, its share of {budget} concurrent executions toward "
                    f"{target.db_instance_id} (peak {_shown(c.peak_concurrency, 'unknown')}).{note}",
                )
                for c in capped
            ]
            others = [c for c in consumers if not c.sqs_sources]
            advice = unmanaged_advice(split, others, target.db_instance_id, "reserved concurrency")
            return (changing_first(actions) if actions else []) + advice
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

    def template_properties(self, action: PlannedAction) -> list[TemplateProperty]:
        return [
            TemplateProperty(
                resource_type="AWS::Lambda::Function",
                property="ReservedConcurrentExecutions",
                field="reserved_concurrency",
                value=action.after.get("reserved_concurrency"),
            )
        ]

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
    (`medic.actions.budget.split_budget`); each opted-in queue consumer's share is split evenly over its SQS mappings
    (at least 2 each) and never raises a mapping's lower existing cap; a queue consumer not opted in gets an `advise`
    line instead. Values are clamped to AWS's range 2–1000 and the clamp is
    recorded. Rollback restores the previous value; when there was none it passes an empty ``ScalingConfig``,
    which AWS documents as the way to remove the setting (moto stores it as ``{}``, read back as "not set").

    Runbook example::

        actions:
          - kind: set_event_source_max_concurrency
            params: {concurrency: "floor(db_max_connections * 0.7)"}
    """

    kind = "set_event_source_max_concurrency"
    read_permissions = ("lambda:GetEventSourceMapping",)
    must_change = True
    free = "no charge for an event source mapping's maximum concurrency"
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
            split = split_budget(budget, consumers)
            note = spent_note(split) + budget_note(split.rest, [c for c in consumers if c.managed])
            actions = []
            for consumer in consumers:
                queues = consumer.sqs_sources
                if not queues or not consumer.managed:
                    continue
                share = split.shares[consumer.function_name]
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
            queued = [c for c in consumers if c.sqs_sources]
            advice = unmanaged_advice(split, queued, target.db_instance_id, "MaximumConcurrency of its SQS mappings")
            return (changing_first(actions) if actions else []) + advice
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

    def template_properties(self, action: PlannedAction) -> list[TemplateProperty]:
        queue = str(action.resource.get("event_source_arn") or "").rsplit(":", 1)[-1] or str(action.resource["uuid"])
        return [
            TemplateProperty(
                resource_type="AWS::Lambda::EventSourceMapping",
                resource=f"{{function}}'s event source mapping from {queue}",
                property="ScalingConfig.MaximumConcurrency",
                field="maximum_concurrency",
                value=action.after.get("maximum_concurrency"),
                sam=f"{{function}}.Events.<the SQS event of {queue}>.Properties.ScalingConfig.MaximumConcurrency",
            )
        ]

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
