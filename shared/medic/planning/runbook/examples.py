"""The runbook's examples (facts in, expected verdict out) run like tests by `medic runbook check`, and the JSON
Schema of a runbook file for editors (`medic runbook schema`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medic.facts import FACT_TYPES
from medic.planning.runbook.decisions import decide
from medic.planning.runbook.documents import RunbookDoc
from medic.planning.runbook.model import Example, Runbook
from medic.planning.verdict import Decision
from medic.vocabulary import ACTION_KINDS, DIAGNOSES


@dataclass(frozen=True)
class ExampleResult:
    name: str
    where: str
    problems: tuple[str, ...]
    decision: Decision

    @property
    def passed(self) -> bool:
        return not self.problems


def run_examples(runbook: Runbook) -> list[ExampleResult]:
    """Run the runbook's examples: each example's facts through its table, compared with its `expect`."""
    return [_run_example(runbook, example) for example in runbook.examples]


def _run_example(runbook: Runbook, example: Example) -> ExampleResult:
    doc = example.doc
    problems: list[str] = []
    facts: dict[str, Any] = {}
    tags: dict[str, str] | None = None
    for name, value in doc.facts.items():
        if name == "tags" and isinstance(value, dict):
            tags = {str(k): str(v) for k, v in value.items()}
            continue
        wanted = FACT_TYPES.get(name)
        if wanted is None:
            problems.append(f"unknown fact {name!r}")
        elif value is not None and not _fits(value, wanted):
            problems.append(f"fact {name!r} must be a {wanted.__name__}, got {value!r}")
        else:
            facts[name] = value
    decision = decide(runbook, doc.signal, facts, tags)
    if problems:
        return ExampleResult(doc.name, example.where, tuple(problems), decision)
    expect = doc.expect
    if expect.matched != decision.matched:
        problems.append(f"expected {'a match' if expect.matched else 'no match'}, got {decision.reason}")
    checks: list[tuple[str, Any, Any]] = [
        ("row", expect.row, decision.row),
        ("rows", expect.rows, decision.rows or ([decision.row] if decision.row else [])),
        ("diagnosis", expect.diagnosis, decision.diagnosis),
        ("mode", expect.mode, decision.mode),
        ("actions", expect.actions, [call.kind for call in decision.actions]),
    ]
    problems += [
        f"{key} is {got!r}, expected {wanted!r}" for key, wanted, got in checks if wanted is not None and got != wanted
    ]
    for kind, params in (expect.params or {}).items():
        call = next((c for c in decision.actions if c.kind == kind), None)
        if call is None:
            problems.append(f"no {kind} action to check params of")
            continue
        for name, value in params.items():
            if name not in call.params or not math.isclose(call.params[name], value, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{kind}.{name} is {call.params.get(name)!r}, expected {value!r}")
    return ExampleResult(doc.name, example.where, tuple(problems), decision)


def _fits(value: Any, wanted: type) -> bool:
    if wanted is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, wanted)


def runbook_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook file, for editors (`medic runbook schema`)."""
    schema = RunbookDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Medic runbook (decision tables)"
    definitions = schema.get("$defs", {})
    if "ActionDoc" in definitions:
        definitions["ActionDoc"]["properties"]["kind"]["enum"] = list(ACTION_KINDS)
    if "RowDoc" in definitions:
        definitions["RowDoc"]["properties"]["diagnosis"]["enum"] = sorted(set().union(*DIAGNOSES.values()))
    return schema
