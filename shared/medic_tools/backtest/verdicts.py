"""One transition replayed: the rebuilt event → signal → facts as of the transition → runbook → plan, under one runbook
or two (`--against`: the facts are read once, decided twice), then compared with what the remediation log says triage
decided for the same transition. Read-only: no plan is written, no Slack message posted, no stateful control read.

The steps are triage's (`medic.usecases.triage`), through Medic's public entry points: `parse_alarm_event`,
`classify`, `FactCollector.collect(signal, event, now)` with `now` the transition's state timestamp, `decide`,
`plan_actions` (the guardrails' clamps and refusals, the costs), `target_of` (an unqualified alarm acts on the alias
its traffic hits, as triage sets it), and `plan_id` (the log's key for the transition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from medic.alarms.events import AlarmStateChangeEvent, parse_alarm_event
from medic.alarms.signals import Signal, classify
from medic.clock import iso
from medic.errors import EventError
from medic.facts import FactCollector, Facts
from medic.plan import Plan, plan_id
from medic.planning.make import plan_actions, target_of
from medic.planning.runbook import Runbook, decide
from medic_tools.backtest.events import StateChange, rebuild_event
from medic_tools.backtest.model import ActionRow, LogDecision, LogOutcome, Refusal, TransitionRow, Verdict
from medic_tools.backtest.period import ONE_MINUTE_RETENTION

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction
    from medic.aws import AwsClients
    from medic.config import Settings
    from medic.ledger.store import Ledger
    from medic_tools.backtest.history import ScopedAlarm

#: A fact is configuration (today's, not the transition's) when the API it was read from says so.
CONFIGURATION_SOURCES: Final = ("lambda:", "application-autoscaling:", "rds:", "tag:", "$LATEST")
#: What decides a transition, compared with the log and between runbooks ("altered").
COMPARED: Final = ("diagnosis", "rule", "mode", "actions")
ALTERING: Final = ("diagnosis", "mode", "actions")


def runbook_label(runbook: Runbook) -> str:
    return f"{runbook.name} v{runbook.version}" + (f" ({' + '.join(runbook.layers[1:])})" if runbook.layers[1:] else "")


def action_row(action: PlannedAction) -> ActionRow:
    return ActionRow(
        kind=action.kind,
        target=action.target,
        before=action.before.get(action.primary),
        after=action.after.get(action.primary),
        clamps=list(action.clamps),
        cost_monthly_usd=action.cost_monthly_usd,
        changes={key: [action.before.get(key), action.after.get(key)] for key in action.after},
    )


def _key(action: PlannedAction) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    return action.kind, action.target, dict(action.before), dict(action.after)


@dataclass
class Decided:
    """A verdict, the planned actions it is made of (kept to compare with the log's) and the facts its conditions
    read (the decision trace's, every row tried)."""

    verdict: Verdict
    actions: list[PlannedAction]
    read: frozenset[str] = frozenset()


def configuration_facts(facts: Facts) -> set[str]:
    """The facts the runbook sees that were read from configuration (today's, whatever the transition's time)."""
    values = facts.values()
    return {
        name
        for name, source in facts.sources.items()
        if name in values
        and source.startswith(CONFIGURATION_SOURCES)
        and "cloudwatch:" not in source
        and "logs:" not in source
    }


def verdict(runbook: Runbook, signal: Signal, facts: Facts | None, plan: Plan, settings: Settings) -> Decided:
    """What `runbook` decides on `facts`, and the plan triage would start (the status before the stateful controls,
    which a backtest does not read: kill switch, freeze windows, breaker, rate limit, cooldowns)."""
    label = runbook_label(runbook)
    undecided = signal.undecided_reason(runbook.tables)
    if undecided is not None or facts is None:
        return Decided(Verdict(runbook=label, status="NOOP", reason=undecided or "no facts"), [])
    decision = decide(runbook, signal.kind, facts.values(), facts.tags)
    read = frozenset(name for row in decision.trace for condition in row.conditions for name in condition.facts)
    if not decision.matched:
        return Decided(Verdict(runbook=label, status="NOOP", reason=decision.reason or None), [], read)
    actions, refusals = plan_actions(decision.actions, target_of(plan), facts, settings, plan.region)
    changes = [action for action in actions if action.kind != "advise"]
    if refusals:
        status = "BLOCKED"
    elif not changes or decision.mode == "notify":
        status = "NOOP"
    elif settings.dry_run or decision.mode == "approve":
        status = "PROPOSED"
    else:
        status = "APPROVED"
    costs = [action.cost_monthly_usd for action in actions if action.cost_monthly_usd is not None]
    return Decided(
        Verdict(
            runbook=label,
            diagnosis=decision.diagnosis,
            rule=decision.rule,
            mode=decision.mode,
            status=status,
            reason=decision.reason or None,
            actions=[action_row(action) for action in actions],
            blocked_by=[Refusal(guard=r.guard, message=r.message) for r in refusals],
            cost_monthly_usd=round(sum(costs), 2) if costs else None,
        ),
        actions,
        read,
    )


def altered(one: Decided, other: Decided) -> list[str]:
    """What differs between two verdicts of the same transition: diagnosis, mode, actions."""
    differs = []
    if one.verdict.diagnosis != other.verdict.diagnosis:
        differs.append("diagnosis")
    if one.verdict.mode != other.verdict.mode:
        differs.append("mode")
    if [_key(a) for a in one.actions] != [_key(a) for a in other.actions]:
        differs.append("actions")
    return differs


def _shown(actions: Sequence[PlannedAction]) -> str:
    """`set_provisioned_concurrency checkout:live 20 → 78, advise checkout:live` ("none" for no action)."""
    shown = [
        f"{a.kind} {a.target}"
        if a.kind == "advise"
        else f"{a.kind} {a.target} {a.before.get(a.primary)} → {a.after.get(a.primary)}"
        for a in actions
    ]
    return ", ".join(shown) or "none"


def compare_with_log(decided: Decided, logged: Plan) -> list[str]:
    """How the replayed decision differs from the logged plan's (diagnosis, rule, mode, actions); empty: equal."""
    differences = []
    for name in ("diagnosis", "rule", "mode"):
        then, now = getattr(logged, name), getattr(decided.verdict, name)
        if then != now:
            differences.append(f"{name}: {then} then, {now} now")
    if [_key(a) for a in logged.actions] != [_key(a) for a in decided.actions]:
        differences.append(f"actions: {_shown(logged.actions)} then; {_shown(decided.actions)} now")
    return differences


def transition_notes(change: StateChange, now: datetime) -> list[str]:
    """What a row must say about its transition's history item: unreadable, without reason data, or older than the
    60-second datapoints CloudWatch keeps."""
    notes = []
    if change.problem:
        notes.append(f"{change.problem}: the event has no state reason or reason data")
    elif change.new_reason_data is None:
        notes.append("the history item has no stateReasonData: the alarm's value and threshold are unknown")
    if now - change.time > ONE_MINUTE_RETENTION:
        notes.append(
            "older than 15 days: CloudWatch keeps 60-second datapoints 15 days, and the facts read "
            "60-second periods (the metric facts may find none)"
        )
    return notes


class Replayer:
    """Replays transitions on `clients` (read-only ones: `medic_tools.backtest.calls`), looking each up in `ledger`
    when there is one."""

    def __init__(
        self,
        clients: AwsClients,
        settings: Settings,
        runbook: Runbook,
        against: Runbook | None,
        ledger: Ledger | None,
        now: datetime,
        log_note: str = "",
    ) -> None:
        self.settings = settings
        self.runbook, self.against = runbook, against
        self.ledger = ledger
        self.now = now
        self.log_note = log_note
        self.collector = FactCollector(clients, settings.opt_in_tag)

    def replay(self, scoped: ScopedAlarm, change: StateChange, previous: datetime | None) -> TransitionRow:
        raw = rebuild_event(scoped.alarm, change, previous)
        arn = str(scoped.alarm["AlarmArn"])
        notes = transition_notes(change, self.now)
        try:
            event = parse_alarm_event(raw, source=f"history of {scoped.name}")
        except EventError as exc:
            pid = plan_id(arn, iso(change.time))
            empty = Verdict(runbook=runbook_label(self.runbook), status="NOOP", reason=f"rebuilt event invalid: {exc}")
            return TransitionRow(
                plan_id=pid,
                time=iso(change.time),
                alarm=scoped.name,
                alarm_arn=arn,
                target="(none)",
                signal="unknown",
                decision=empty,
                log=self._log_only(pid),
                notes=notes,
            )
        signal = classify(event)
        plan = self._plan(event, signal)
        runbooks = [self.runbook, *([self.against] if self.against is not None else [])]
        facts = None
        if any(signal.undecided_reason(runbook.tables) is None for runbook in runbooks):
            facts = self.collector.collect(signal, event, event.detail.state.timestamp)
            if plan.function_name and not plan.qualifier and facts.qualifier and facts.qualifier != "$LATEST":
                plan.qualifier = facts.qualifier  # as triage: an unqualified alarm acts on the alias the traffic hits
                plan.target = f"{plan.function_name}:{plan.qualifier}"
        decided = verdict(self.runbook, signal, facts, plan, self.settings)
        other = verdict(self.against, signal, facts, plan, self.settings) if self.against is not None else None
        log, logged = self._log(plan.id, decided)
        changed = _configuration_changed(logged, facts) if logged is not None and facts is not None else {}
        if changed:
            shown = "; ".join(f"{name} {then} → {now}" for name, (then, now) in changed.items())
            notes.append(f"configuration changed since then ({shown}): the replay decided on today's")
        elif logged is None and facts is not None:
            today = facts.values()
            read = sorted(decided.read & configuration_facts(facts))
            if read:
                shown = ", ".join(f"{name} {today[name]}" for name in read)
                notes.append(f"decided on today's configuration ({shown}): no plan in the log to tell what it was")
        return TransitionRow(
            plan_id=plan.id,
            time=plan.state_timestamp,
            alarm=scoped.name,
            alarm_arn=arn,
            function=plan.function_name,
            target=plan.target,
            signal=signal.kind,
            signal_reason=signal.reason,
            decision=decided.verdict,
            against=other.verdict if other is not None else None,
            altered=altered(decided, other) if other is not None else None,
            log=log,
            configuration_changed={name: list(values) for name, values in changed.items()},
            notes=notes,
        )

    def _plan(self, event: AlarmStateChangeEvent, signal: Signal) -> Plan:
        from medic.usecases.triage import new_plan

        return new_plan(event, signal, iso(event.detail.state.timestamp))

    def _log_only(self, pid: str) -> LogOutcome:
        if self.ledger is None:
            return LogOutcome(available=False, note=self.log_note or "log not available")
        found = self.ledger.get(pid)
        return LogOutcome(available=True, found=found is not None, plan_status=found.status if found else None)

    def _log(self, pid: str, decided: Decided) -> tuple[LogOutcome, Plan | None]:
        """What the log holds for the transition, compared with the replayed decision."""
        if self.ledger is None:
            return LogOutcome(available=False, note=self.log_note or "log not available"), None
        logged = self.ledger.get(pid)
        if logged is None:
            return LogOutcome(available=True, note="no plan in the log for this transition"), None
        records = {event.kind: event.data for event in self.ledger.events(pid)}
        outcome = LogOutcome(available=True, found=True, plan_status=logged.status)
        superseded = records.get("superseded")
        if superseded is not None:
            outcome.superseded_by = str(superseded.get("by") or "") or None
            outcome.note = (
                f"attached to the open plan {outcome.superseded_by} (a storm): triage decided nothing of its own"
            )
            return outcome, None
        created = records.get("plan_created")
        if created is None:
            outcome.note = "the log has no plan_created record for this plan"
            return outcome, logged
        outcome.decided = LogDecision(
            status=created.get("status"),
            diagnosis=logged.diagnosis,
            rule=logged.rule,
            mode=logged.mode,
            actions=[action_row(action) for action in logged.actions],
        )
        outcome.differences = compare_with_log(decided, logged)
        outcome.equal = not outcome.differences
        return outcome, logged


def _configuration_changed(logged: Plan, facts: Facts) -> dict[str, tuple[Any, Any]]:
    """The configuration facts whose value triage saw then (the logged plan's facts) differs from today's."""
    today = facts.values()
    changed: dict[str, tuple[Any, Any]] = {}
    for name in sorted(configuration_facts(facts)):
        if name not in logged.facts and name not in logged.missing_facts:
            continue  # triage never read it (facts are read on demand): nothing to compare with
        then, now = logged.facts.get(name), today.get(name)
        if then != now and not (then is None and now is None):
            changed[name] = (then, now)
    return changed
