"""`medic log show`: the whole story of one plan (or of another chain, such as a control flag's): its item in brief,
every record in order as `describe_event` words it, the plans it links to, and whether its chain holds.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medic.errors import InputError
from medic.ledger.audit.describe import describe_event
from medic.ledger.audit.listing import CLI, unreadable_lines, who_decided
from medic.ledger.keys import CONTROL_PREFIX
from medic.plan import IN_FORCE
from medic.stacks import REVERTED_RECORD, settled_by

if TYPE_CHECKING:
    from medic.ledger.store import ChainReport, Ledger, LogEvent, UnreadableItem, UnreadableRecord
    from medic.plan import Plan

_WIDTH = 86  # the text column of `log show`, after "#seq  time  label": 120 columns in all


@dataclass(frozen=True)
class PlanStory:
    """One plan (or another chain, e.g. a control flag), its records in order, and whether its chain holds."""

    chain_id: str
    plan: Plan | None
    events: list[LogEvent]
    chain: ChainReport
    unreadable: Sequence[UnreadableItem | UnreadableRecord] = ()

    @property
    def links(self) -> dict[str, Any]:
        """The plans this one points to, from its own records: the plan it re-proposes and the ones re-proposing it
        (`<id>-r1`), the open plan it was attached to in a storm, and the alarms attached to it."""

        def first(kind: str, key: str) -> str | None:
            return next((str(e.data[key]) for e in self.events if e.kind == kind and key in e.data), None)

        return {
            "reproposal_of": first("reproposal_of", "plan_id"),
            "reproposed_as": [str(e.data["plan_id"]) for e in self.events if e.kind == "reproposed"],
            "attached_to": first("superseded", "by"),
            "attached": [str(e.data["plan_id"]) for e in self.events if e.kind == "alarm_attached"],
        }

    def as_json(self) -> dict[str, Any]:
        """`log show --json`: the plan item, every record, the chain report and the links."""
        return {
            "plan_id": self.chain_id,
            "plan": self.plan.model_dump(mode="json") if self.plan else None,
            "events": [event.model_dump(mode="json") for event in self.events],
            "chain": self.chain.model_dump(mode="json"),
            "links": self.links,
            "unreadable": [item.model_dump(mode="json") for item in self.unreadable],
        }

    def text(self) -> str:
        """The readable story: the plan in brief, then every record in order, then the chain's status."""
        out = self._header()
        out += ["", f"Story: {len(self.events)} record{'s' if len(self.events) != 1 else ''}, in order (UTC)"]
        day = ""
        for event in self.events:
            if event.at[:10] != day:
                day = event.at[:10]
                out.append(f"  {day}")
            label, lines = describe_event(event)
            prefix = f"  #{event.seq:<3} {event.at[11:23]}  {label:<11} "
            wrapped = [part for line in lines for part in _wrap(line)]
            out.append(prefix + wrapped[0])
            out += [" " * len(prefix) + line for line in wrapped[1:]]
        out += ["", *unreadable_lines(self.unreadable), chain_status(self.chain)]
        return "\n".join(out)

    def _header(self) -> list[str]:
        plan = self.plan
        if plan is None:
            what = "a control flag" if self.chain_id.startswith(CONTROL_PREFIX) else "no plan item holds this id"
            if any(hasattr(item, "key") for item in self.unreadable):
                what = "its plan item cannot be read"
            return [f"chain {self.chain_id} ({what})"]
        out = [f"plan {plan.id}: {plan.status}"]
        verdict = (
            f"diagnosis {plan.diagnosis}, row {plan.rule}, mode {plan.mode}"
            if plan.diagnosis
            else f"no diagnosis: {plan.reason or 'no reason recorded'}"
        )
        out.append(f"  {plan.signal} on {plan.target} → {verdict}")
        if plan.alarm_name:
            out.append(f"  alarm {plan.alarm_name} at {plan.state_timestamp} ({plan.alarm_arn})")
        out.append(f"  created {plan.created_at}, updated {plan.updated_at}, decided by {who_decided(plan) or '-'}")
        if plan.slack.ts:
            out.append(f"  Slack card in {plan.slack.channel}, ts {plan.slack.ts}")
        out += self._template_lines(plan)
        links = self.links
        if links["reproposal_of"]:
            out.append(f"  re-proposal of {links['reproposal_of']} (medic log show {links['reproposal_of']})")
        out += [f"  re-proposed as {other} (medic log show {other})" for other in links["reproposed_as"]]
        if links["attached_to"]:
            out.append(f"  attached to the open plan {links['attached_to']}")
        if links["attached"]:
            out.append(f"  {len(links['attached'])} later alarm(s) attached: {', '.join(links['attached'])}")
        return out

    def _template_lines(self, plan: Plan) -> list[str]:
        """Whether the plan's changes wait for their CloudFormation template (`medic.stacks`)."""
        if not plan.template_warnings:
            return []
        settled = settled_by({event.kind for event in self.events})
        if settled == REVERTED_RECORD:
            state = "reverted by a deploy of its stack"
        elif settled is not None:
            state = "the template holds it"
        elif plan.status in IN_FORCE:
            state = "waiting for the template"
        else:
            state = f"never in force ({plan.status})"
        return [f"  CloudFormation: {state}", *(f"    {warning.text()}" for warning in plan.template_warnings)]


def load_story(ledger: Ledger, chain_id: str) -> PlanStory:
    """Read one plan's item, records and chain; an id with neither is an `InputError` naming it."""
    plan, problem = ledger.plan_or_problem(chain_id)
    events, unreadable = ledger.records(chain_id)
    if plan is None and problem is None and not events and not unreadable:
        raise InputError(
            field="PLAN",
            source=CLI,
            problem=f"no plan or log chain {chain_id!r} in {ledger.plans_table}/{ledger.events_table}",
        )
    from medic.ledger.store import UnreadableItem

    bad: list[UnreadableItem | UnreadableRecord] = [*unreadable]
    if problem is not None:
        bad.insert(0, UnreadableItem(key=chain_id, problem=problem))
    return PlanStory(chain_id, plan, events, ledger.verify_report(chain_id), bad)


def chain_status(report: ChainReport) -> str:
    """The chain's status in one line: `chain intact: …` or `chain BROKEN at record #n: why`."""
    if report.ok:
        return (
            f"chain intact: {report.events} record{'s' if report.events != 1 else ''}, every hash recomputed "
            "and linked to the one before, the last one matching the head anchor"
        )
    if report.first_bad_seq is None:
        return f"chain BROKEN: {report.problem}"
    return f"chain BROKEN at record #{report.first_bad_seq}: {report.problem}"


def _wrap(line: str) -> list[str]:
    return textwrap.wrap(line, _WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False) or [""]
