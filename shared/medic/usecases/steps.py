"""The steps an apply and a rollback share: the errors that fail a plan (not the executor), the live state compared
with a change's before and after, the executor's lease on a plan, undoing applied changes, and the guardrails re-read
on the live state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from medic.accounts import fact_collector
from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.alarms.signals import Signal
from medic.aws import AwsClients
from medic.errors import (
    ActionFailed,
)
from medic.plan import Plan, Refusal
from medic.planning.make import target_of
from medic.planning.recheck import guard_refusals
from medic.runtime import Runtime


def aws_errors() -> tuple[type[Exception], ...]:
    """What a step of an apply or a rollback may raise that fails the plan (not the executor): the action's own
    refusal, AWS's answers, and botocore's own errors raised before or instead of a call (a `ParamValidationError`
    such as a provisioned concurrency of 0, a connection or read timeout)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ActionFailed, ClientError, BotoCoreError


def same(live: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    return all(live.get(key) == value for key, value in expected.items())


def lease_terms(now: datetime, rt: Runtime) -> tuple[str, datetime]:
    """A new owner id for this executor's hold on a plan, and when the hold ends (the executor's timeout: a live
    executor never outlives it)."""
    import os

    return os.urandom(6).hex(), now + timedelta(seconds=rt.settings.executor_lease_s)


def undo(plan: Plan, applied: list[PlannedAction], rt: Runtime, clients: AwsClients) -> list[str]:
    errors: list[str] = []
    for action in reversed(applied):
        try:
            request = get_action(action.kind).rollback(clients, action)
            rt.ledger.append(
                plan.id,
                "rollback",
                {"target": action.target, "restored": action.before, "request_id": request},
                rt.clock.now(),
            )
        except aws_errors() as exc:
            errors.append(f"{action.target}: {exc}")
            rt.ledger.append(plan.id, "rollback_failed", {"target": action.target, "error": str(exc)}, rt.clock.now())
    return errors


def guard_refusals_now(plan: Plan, actions: list[PlannedAction], rt: Runtime, now: datetime) -> list[Refusal]:
    """The guardrails on `actions` as approved, against the facts re-read now (`medic.planning.recheck`)."""
    if not actions:
        return []
    signal = Signal(kind=plan.signal, target=target_of(plan), metric=None, reason="re-read at apply")
    facts = fact_collector(plan, rt).collect(signal, None, now)
    return guard_refusals(actions, facts, rt.settings, plan.region)
