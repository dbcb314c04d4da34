"""The registry of actions, keyed by the vocabulary of docs/ARCHITECTURE.md §3."""

from __future__ import annotations

from functools import cache

from medic.actions.base import Action, PlannedAction
from medic.vocabulary import ACTION_KINDS


@cache
def registry() -> dict[str, Action]:
    """The implementations, imported at first use: what only reads plans (the interactions, the verifier's reads,
    the CLI) needs the vocabulary and `PlannedAction`, not the actions' modules (nor the facts they import)."""
    from medic.actions.advise import Advise
    from medic.actions.buffer import EnableSqsBuffer
    from medic.actions.concurrency import SetEventSourceMaxConcurrency, SetReservedConcurrency
    from medic.actions.memory import SetMemory
    from medic.actions.prewarm import SchedulePrewarm
    from medic.actions.provisioned import SetAutoscalingBounds, SetProvisionedConcurrency
    from medic.actions.quota import RequestQuotaIncrease

    return {
        action.kind: action
        for action in (
            SetProvisionedConcurrency(),
            SetAutoscalingBounds(),
            Advise(),
            SetReservedConcurrency(),
            SetEventSourceMaxConcurrency(),
            SetMemory(),
            EnableSqsBuffer(),
            SchedulePrewarm(),
            RequestQuotaIncrease(),
        )
    }


class UnknownAction(KeyError):
    def __init__(self, kind: str) -> None:
        if kind in ACTION_KINDS:
            message = f"action {kind!r} is in the vocabulary but not implemented yet; implemented: "
        else:
            message = f"unknown action {kind!r}; valid: "
        self.message = message + ", ".join(sorted(registry()))
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def get_action(kind: str) -> Action:
    try:
        return registry()[kind]
    except KeyError:
        raise UnknownAction(kind) from None


def action_params(kind: str) -> tuple[str, ...]:
    return get_action(kind).params


__all__ = ["ACTION_KINDS", "Action", "PlannedAction", "UnknownAction", "get_action", "registry"]
