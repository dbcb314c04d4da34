"""The runbook: decision tables in YAML, validated and compiled once at load, evaluated per alarm.

- `documents`: the vocabulary (signals, modes, diagnoses) and the pydantic documents a runbook file is validated by;
- `model`: the compiled runbook (tables, rows, scopes, compiled actions, examples) and `notify_only`;
- `loading`: read, validate and compile a base runbook, layer its overrides (`load_runbook`, `parse_runbook`, `layer`);
- `reachability`: refuse a row that an earlier row always pre-empts;
- `locations`: turn an error's place in the document into file:line, table, row and field;
- `decisions`: `decide` (one table over the facts, with its trace) and `render` (a rationale's `{fact}` placeholders);
- `examples`: the runbook's examples run like tests, and the JSON Schema of a runbook file;
- `store`: `RunbookStore`, the runbook in use, reloaded on change, the last good one kept.
"""

from medic.planning.runbook.decisions import decide, render
from medic.planning.runbook.examples import ExampleResult, run_examples, runbook_schema
from medic.planning.runbook.loading import layer, load_runbook, parse_runbook
from medic.planning.runbook.model import CompiledAction, Row, Runbook, Scope, Table
from medic.planning.runbook.reachability import _check_reachable, _normal
from medic.planning.runbook.store import RunbookStore
from medic.vocabulary import DIAGNOSES, MODE_ORDER, SIGNALS

__all__ = [
    "DIAGNOSES",
    "MODE_ORDER",
    "SIGNALS",
    "CompiledAction",
    "ExampleResult",
    "Row",
    "Runbook",
    "RunbookStore",
    "Scope",
    "Table",
    "_check_reachable",
    "_normal",
    "decide",
    "layer",
    "load_runbook",
    "parse_runbook",
    "render",
    "run_examples",
    "runbook_schema",
]
