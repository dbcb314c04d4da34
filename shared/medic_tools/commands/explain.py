"""`medic explain`: the decision trace of a scenario's plans or of an alarm event (on live AWS facts or on a facts
file), as text or as JSON (`explain_json`)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from medic.errors import InputError
from medic_tools.commands.common import EXIT_OK
from medic_tools.commands.runbook import runbook_json

if TYPE_CHECKING:
    from medic.planning.runbook import Runbook


def add_arguments(explain: argparse.ArgumentParser) -> None:
    explain.add_argument("path", metavar="SCENARIO.yaml|EVENT.json")
    explain.add_argument("--facts", metavar="FACTS.json", help="for an EVENT: decide on these facts, not live AWS")
    explain.add_argument("--override", action="append", default=[], metavar="FILE", help="runbook override layer")
    explain.add_argument("--runbook", default=None, metavar="FILE", help="the base runbook (default: the shipped one)")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON (docs/RUNBOOK.md)")


def run(args: argparse.Namespace) -> int:
    """The decision trace of a scenario's plans or of an alarm event, as text or (--json) as data: `explain_json`."""
    from medic.config import DEFAULT_RUNBOOK
    from medic.planning.explain import (
        decision_json,
        explain_all,
        explain_decision,
        load_facts_file,
        plan_explanation_json,
    )
    from medic.planning.runbook import decide, load_runbook

    runbook = load_runbook(args.runbook or DEFAULT_RUNBOOK, args.override)
    if args.path.endswith((".yaml", ".yml")):
        from medic_tools.simulate import triage_only

        plans = triage_only(args.path, runbook)
        if args.json:
            print(explain_json(args.path, runbook, [plan_explanation_json(plan, runbook) for plan in plans]))
        else:
            print(explain_all(plans, runbook))
        return EXIT_OK
    from medic.alarms.events import parse_alarm_event
    from medic.alarms.signals import classify

    try:
        with open(args.path, encoding="utf-8") as handle:
            event = parse_alarm_event(handle.read(), source=args.path)
    except OSError as exc:
        raise InputError(field="(root)", source=args.path, problem=f"cannot read: {exc.strerror or exc}") from None
    signal = classify(event)
    explanation: dict[str, Any] = {
        "alarm": event.detail.alarm_name,
        "signal": signal.kind,
        "target": signal.target.display or None,
        "signal_reason": signal.reason,
        "plan": None,
        "no_decision": None,
        "decision": None,
    }
    if not args.json:
        print(
            f"alarm {event.detail.alarm_name} ({event.detail.state.value}) → signal {signal.kind} on "
            f"{signal.target.display}: {signal.reason}"
        )
    undecided = signal.undecided_reason(runbook.tables)
    if undecided is not None:  # as triage: a NOOP, no facts read, no table evaluated
        explanation["no_decision"] = undecided
        print(explain_json(args.path, runbook, [explanation]) if args.json else f"no decision: {undecided}")
        return EXIT_OK
    if args.facts:
        facts = load_facts_file(args.facts)
        tags = facts.pop("tags", None)
        sources: dict[str, str] = {name: args.facts for name in facts}
        missing: dict[str, str] = {}
    else:
        from medic.aws import AwsClients
        from medic.facts import FactCollector

        collected = FactCollector(AwsClients(region=event.region), ("medic:managed", "true")).collect(
            signal, event, event.detail.state.timestamp
        )
        facts, tags, sources, missing = collected.values(), collected.tags, collected.sources, collected.missing
    decision = decide(runbook, signal.kind, facts, tags)
    if args.json:
        explanation["decision"] = decision_json(decision, facts, sources, missing, runbook)
        print(explain_json(args.path, runbook, [explanation]))
    else:
        print(explain_decision(decision, facts, sources, missing, runbook))
    return EXIT_OK


def explain_json(source: str, runbook: Runbook, explanations: list[dict[str, Any]]) -> str:
    """`medic explain --json` (docs/RUNBOOK.md, "The trace"): what was explained, with which runbook, and one
    explanation per plan (a scenario) or for the alarm (an event)."""
    document = {"source": source, "runbook": runbook_json(runbook), "explanations": explanations}
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)
