"""The stateful controls: kill switch, freeze windows, circuit breaker, global rate limit, cooldowns, PC budget.

Unlike the guardrails (pure checks of one plan against its facts and the caps), these read the remediation
log: what Medic changed recently, what failed, and the control flags humans set. They run when a plan is
made (triage) and again at apply time (executor), each refusal naming its limit and the observed value.

* **Kill switch**: a flag in the plans table (`control#kill-switch`, kept by `medic.ledger.items`), flipped by any
  approver (`medic control kill-switch on|off`, `/medic pause|resume` in Slack) or statically by
  `MEDIC_KILL_SWITCH=true`. While on, nothing is applied.
* **Freeze windows**: `MEDIC_FREEZE_WINDOWS`, `;`-separated, weekly (`Fri 18:00-Mon 08:00`, UTC) or absolute
  (`2026-12-24T00:00Z/2026-12-27T00:00Z`). Inside one, nothing is applied.
* **Circuit breaker**: after `MEDIC_CIRCUIT_BREAKER_FAILURES` remediations ended FAILED or ROLLED_BACK since
  the last reset, Medic only notifies until a human resets it (`medic control breaker-reset`).
* **Rate limit**: at most `MEDIC_MAX_CHANGES_PER_HOUR` changing plans applied per rolling hour, account-wide.
* **Cooldown**: no second change of the same kind on the same target within `MEDIC_COOLDOWN_S` of the last.
* **PC budget**: `MEDIC_PC_BUDGET` caps the provisioned concurrency Medic's changes have added and that is still
  in force (plans APPLIED or VERIFIED: raised floors, raised autoscaling minimums, pre-warms), account-wide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic.clock import iso, parse_iso
from medic.errors import ConfigError
from medic.ledger.items import Control
from medic.ledger.keys import BREAKER_KEY, KILL_SWITCH_KEY
from medic.plan import IN_FORCE, Plan, Refusal

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction
    from medic.config import Settings
    from medic.ledger.store import Ledger

__all__ = [
    "BREAKER_KEY",
    "CHANGED_STATES",
    "FAILED_STATES",
    "KILL_SWITCH_KEY",
    "Control",
    "FreezeWindow",
    "SafetyControls",
    "describe",
    "parse_freeze_windows",
    "pc_added",
]

#: States of plans whose changes reached AWS (or were being made): they count for cooldowns and the rate limit.
CHANGED_STATES = ("APPLYING", "APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK")
FAILED_STATES = ("FAILED", "ROLLED_BACK")
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WEEKLY = re.compile(r"^(?P<d1>[a-z]{3})\s+(?P<t1>\d{1,2}:\d{2})\s*-\s*(?P<d2>[a-z]{3})\s+(?P<t2>\d{1,2}:\d{2})$")


# -- freeze windows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreezeWindow:
    text: str
    start: datetime | None = None  # absolute
    end: datetime | None = None
    weekly: tuple[int, int] | None = None  # minutes of the week, start and end (may wrap)

    def contains(self, now: datetime) -> bool:
        if self.start is not None and self.end is not None:
            return self.start <= now < self.end
        assert self.weekly is not None
        utc = now.astimezone(UTC)
        minute = utc.weekday() * 1440 + utc.hour * 60 + utc.minute
        start, end = self.weekly
        return start <= minute < end if start < end else minute >= start or minute < end


def parse_freeze_windows(text: str) -> list[FreezeWindow]:
    """Parse `MEDIC_FREEZE_WINDOWS`; a bad entry is a `ConfigError` naming it."""
    windows = []
    for raw in (part.strip() for part in text.split(";")):
        if not raw:
            continue
        if "/" in raw:
            first, _, second = raw.partition("/")
            try:
                start, end = parse_iso(first.strip()), parse_iso(second.strip())
                valid = start.tzinfo is not None and end > start
            except (ValueError, TypeError):
                valid = False
            if not valid:
                raise ConfigError(
                    field="MEDIC_FREEZE_WINDOWS",
                    source="environment",
                    problem=f"{raw!r}: expected START/END in ISO 8601 with END after START",
                )
            windows.append(FreezeWindow(raw, start=start, end=end))
            continue
        match = _WEEKLY.match(raw.lower())
        if not match or match["d1"] not in _DAYS or match["d2"] not in _DAYS:
            raise ConfigError(
                field="MEDIC_FREEZE_WINDOWS",
                source="environment",
                problem=f"{raw!r}: expected e.g. 'Fri 18:00-Mon 08:00' (UTC) or START/END",
            )
        minutes = []
        for day, clock in ((match["d1"], match["t1"]), (match["d2"], match["t2"])):
            hours, mins = (int(x) for x in clock.split(":"))
            if hours > 23 or mins > 59:
                raise ConfigError(field="MEDIC_FREEZE_WINDOWS", source="environment", problem=f"{raw!r}: bad time")
            minutes.append(_DAYS[day] * 1440 + hours * 60 + mins)
        windows.append(FreezeWindow(raw, weekly=(minutes[0], minutes[1])))
    return windows


# -- the controls ----------------------------------------------------------------------------------


class SafetyControls:
    """Reads and sets the controls; `refusals` answers "may this plan change AWS now?"."""

    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.windows = parse_freeze_windows(settings.freeze_windows)

    # flags -----------------------------------------------------------------------------------------
    def control(self, key: str) -> Control:
        return self.ledger.control(key)

    def set_control(self, key: str, enabled: bool, by: str, reason: str, now: datetime) -> Control:
        """Set a flag and log who did it (the events table, under the control's key)."""
        control = Control(enabled=enabled, by=by, at=iso(now), reason=reason)
        self.ledger.put_control(key, control)
        self.ledger.append(key, "control_set", {"enabled": enabled, "by": by, "reason": reason}, now)
        return control

    def kill_switch(self) -> Control:
        if self.settings.kill_switch:
            return Control(enabled=True, by="MEDIC_KILL_SWITCH", reason="set in the environment")
        return self.control(KILL_SWITCH_KEY)

    def breaker_reset_at(self) -> str:
        """When a human last reset the circuit breaker ("" = never)."""
        return self.control(BREAKER_KEY).at

    # checks ----------------------------------------------------------------------------------------
    def refusals(self, plan: Plan, now: datetime) -> list[Refusal]:
        """Why `plan` may not change AWS now (empty: it may). Reads the log; never raises on an empty log."""
        changes = [a for a in plan.actions if a.kind != "advise"]
        if not changes:
            return []
        refusals: list[Refusal] = []
        switch = self.kill_switch()
        if switch.enabled:
            refusals.append(
                Refusal(
                    guard="kill_switch",
                    limit="off",
                    observed=f"on (by {switch.by} at {switch.at})",
                    message=f"the kill switch is on: {switch.reason or 'no reason given'}",
                )
            )
        for window in self.windows:
            if window.contains(now):
                refusals.append(
                    Refusal(
                        guard="freeze_window",
                        limit=window.text,
                        observed=iso(now),
                        message=f"inside the freeze window {window.text}",
                    )
                )
        since = now - timedelta(seconds=max(self.settings.cooldown_s, 3600))
        reset = self.breaker_reset_at()
        reset_at = parse_iso(reset) if reset else None
        # Two reads of the by_state index (one PartiQL SELECT each, every state of it at once): the changed states
        # of the window, and the failed ones from the earlier of the two windows (all of them, never reset).
        failed_since = None if reset_at is None else min(reset_at, since)
        read = self._plans_since(tuple(s for s in CHANGED_STATES if s not in FAILED_STATES), since)
        read_failed = self._plans_since(FAILED_STATES, failed_since)
        recent = sorted(
            [p for p in read + [f for f in read_failed if parse_iso(f.updated_at) >= since] if p.id != plan.id],
            key=lambda p: p.updated_at,
        )
        failures = [
            p for p in read_failed if p.id != plan.id and (reset_at is None or parse_iso(p.updated_at) >= reset_at)
        ]
        if len(failures) >= self.settings.circuit_breaker_failures:
            refusals.append(
                Refusal(
                    guard="circuit_breaker",
                    limit=self.settings.circuit_breaker_failures,
                    observed=len(failures),
                    message=f"the circuit breaker is open: {len(failures)} remediations failed since "
                    f"{reset or 'the start'} ({', '.join(p.id for p in failures[-3:])}); Medic only notifies "
                    "until a human resets it (medic control breaker-reset)",
                )
            )
        hour_ago = now - timedelta(hours=1)
        applied = [p for p in recent if p.applied_at and parse_iso(p.applied_at) >= hour_ago]
        if len(applied) >= self.settings.max_changes_per_hour:
            refusals.append(
                Refusal(
                    guard="rate_limit",
                    limit=f"{self.settings.max_changes_per_hour}/hour",
                    observed=len(applied),
                    message=f"{len(applied)} changing plans were applied in the last hour",
                )
            )
        budget = self.settings.pc_budget
        adding = sum(pc_added(a) for a in changes)
        if budget is not None and adding > 0:
            in_force = sum(pc_added(a) for p in self.ledger.by_states(IN_FORCE) if p.id != plan.id for a in p.changes)
            if in_force + adding > budget:
                refusals.append(
                    Refusal(
                        guard="pc_budget",
                        limit=budget,
                        observed=in_force + adding,
                        message=f"this plan adds {adding} provisioned executions to the {in_force} Medic's changes "
                        f"already keep in force, above the budget of {budget}",
                    )
                )
        cooldown_start = now - timedelta(seconds=self.settings.cooldown_s)
        for action in changes:
            for other in recent:
                if not other.applied_at or parse_iso(other.applied_at) < cooldown_start:
                    continue
                if any(a.kind == action.kind and a.target == action.target for a in other.changes):
                    until = parse_iso(other.applied_at) + timedelta(seconds=self.settings.cooldown_s)
                    refusals.append(
                        Refusal(
                            guard="cooldown",
                            limit=f"{self.settings.cooldown_s}s",
                            observed=other.applied_at,
                            message=(
                                f"{action.kind} on {action.target} was changed by {other.id} at "
                                f"{other.applied_at}; cooling down until {iso(until)}"
                            ),
                        )
                    )
                    break
        return refusals

    def _plans_since(self, states: tuple[str, ...], since: datetime | None) -> list[Plan]:
        plans = self.ledger.by_states(states, since=iso(since) if since else None)
        return sorted(plans, key=lambda p: (p.updated_at, _rank(states, p.status)))


def _rank(states: tuple[str, ...], state: str) -> int:
    """Where `state` comes in `states`: plans updated at the same instant are told in that order."""
    return states.index(state) if state in states else len(states)


def pc_added(action: PlannedAction) -> int:
    """Provisioned executions an action adds (0 for a cut or another kind). A new autoscaling target or pre-warm
    counts from the fixed floor it replaces, when the plan recorded one."""
    from medic.actions import get_action

    fields = get_action(action.kind).pc_fields  # the first is the floor the account pays for
    if not fields:
        return 0
    field = fields[0]
    before = action.before.get(field)
    if before is None:
        before = action.resource.get("fixed_floor") or action.before.get("min_capacity") or 0
    after = action.after.get(field) or 0
    return max(0, int(after) - int(before))


def describe(controls: SafetyControls, now: datetime) -> dict[str, Any]:
    """The controls' state, for `medic control status`."""
    switch = controls.kill_switch()
    reset = controls.breaker_reset_at()
    failures = controls._plans_since(FAILED_STATES, parse_iso(reset) if reset else None)
    return {
        "kill_switch": {"on": switch.enabled, "by": switch.by, "at": switch.at, "reason": switch.reason},
        "circuit_breaker": {
            "open": len(failures) >= controls.settings.circuit_breaker_failures,
            "failures_since_reset": len(failures),
            "threshold": controls.settings.circuit_breaker_failures,
            "reset_at": reset,
        },
        "freeze_windows": [{"window": w.text, "active": w.contains(now)} for w in controls.windows],
        "cooldown_s": controls.settings.cooldown_s,
        "max_changes_per_hour": controls.settings.max_changes_per_hour,
    }
