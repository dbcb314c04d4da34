"""Fuzzing the runbook loader: the shipped runbook with rows deleted, altered and retyped, mangled YAML text, and
files that are not text at all.

The only outcomes allowed: a `Runbook` that decides without raising over the examples' facts, or a `RunbookError`
naming where (file, table, row, field) — never another exception, never an AWS call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzing import SYNTAX, examples, file_text, json_values, mutated, mutated_text, no_aws_calls, observe, yaml_text
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.config import DEFAULT_RUNBOOK
from medic.errors import RunbookError
from medic.planning.runbook import Runbook, decide, layer, load_runbook, parse_runbook, run_examples

TEXT = DEFAULT_RUNBOOK.read_text(encoding="utf-8")
DOCUMENT = yaml.safe_load(TEXT)
BASE = parse_runbook(TEXT, "lambda-latency.yaml")


def loaded_or_refused(load: Any) -> Runbook | RunbookError:
    """Run `load()`; a runbook must then decide over every example's facts (it is the one triage would use)."""
    with no_aws_calls() as attempted:
        try:
            runbook = load()
        except RunbookError as error:
            assert error.source and error.problem, f"a RunbookError that says nothing: {error!r}"
            observe(f"refused: {error.problem[:40]}")
            return error
        finally:
            assert not attempted
        observe("loaded")
        for result in run_examples(runbook):
            decide(runbook, result.decision.signal, {}, None)
        for example in runbook.examples:
            facts = {k: v for k, v in example.doc.facts.items() if k != "tags"}
            for signal in runbook.tables:
                decide(runbook, signal, facts, {"medic:managed": "true"})
    assert not attempted
    return runbook


@st.composite
def mutated_rows(draw: Any) -> Any:
    """The shipped runbook with its rows (the part authors edit) mutated: the rest stays valid."""
    document: dict[str, Any] = {**DOCUMENT, "tables": dict(DOCUMENT["tables"])}
    signal = draw(st.sampled_from(sorted(document["tables"])))
    document["tables"][signal] = draw(mutated(DOCUMENT["tables"][signal]))
    return document


def test_the_shipped_runbook_loads() -> None:
    assert isinstance(loaded_or_refused(lambda: parse_runbook(TEXT)), Runbook)


@settings(max_examples=examples(0.7))
@given(document=mutated_rows())
def test_a_runbook_with_mutated_rows_loads_or_is_refused(document: Any) -> None:
    loaded_or_refused(lambda: parse_runbook(yaml_text(document), "mutated.yaml"))


@settings(max_examples=examples(0.5))
@given(document=mutated(DOCUMENT))
def test_a_mutated_runbook_loads_or_is_refused(document: Any) -> None:
    loaded_or_refused(lambda: parse_runbook(yaml_text(document), "mutated.yaml"))


@settings(max_examples=examples(0.5))
@given(text=mutated_text(TEXT))
def test_a_mangled_runbook_text_loads_or_is_refused(text: str) -> None:
    loaded_or_refused(lambda: parse_runbook(file_text(text), "mangled.yaml"))


@settings(max_examples=examples(0.5))
@given(
    condition=st.one_of(st.text(max_size=60), st.sampled_from(SYNTAX)),
    parameter=st.one_of(st.text(max_size=60), st.integers(), st.floats(), st.booleans()),
    signal=st.sampled_from(sorted(DOCUMENT["tables"])),
)
def test_any_condition_or_parameter_text_compiles_or_is_refused(condition: str, parameter: Any, signal: str) -> None:
    """The expression language at the edge: whatever an author writes compiles, or is refused naming the row."""
    row = {"id": "fuzzed", "when": [condition], "diagnosis": "unexplained", "mode": "approve",
           "actions": [{"kind": "set_reserved_concurrency", "params": {"concurrency": parameter}}],
           "rationale": "fuzzed"}  # fmt: skip
    document = {"runbook": "fuzzed", "version": 1, "tables": {signal: {"rows": [row]}}}
    loaded_or_refused(lambda: parse_runbook(yaml_text(document), "fuzzed.yaml"))


@settings(max_examples=examples(0.5))
@given(document=st.one_of(json_values, st.dictionaries(st.sampled_from(sorted(DOCUMENT)), json_values)))
def test_any_yaml_document_loads_or_is_refused(document: Any) -> None:
    loaded_or_refused(lambda: parse_runbook(yaml_text(document), "random.yaml"))


@settings(max_examples=examples(0.5))
@given(table=st.sampled_from(sorted(DOCUMENT["tables"])).flatmap(lambda signal: mutated(DOCUMENT["tables"][signal])),
       signal=st.sampled_from(sorted(DOCUMENT["tables"])))  # fmt: skip
def test_a_mutated_override_layers_or_is_refused(table: Any, signal: str) -> None:
    override = {"runbook": "team-overrides", "version": 1, "extends": "lambda-latency", "tables": {signal: table}}
    loaded_or_refused(lambda: layer(BASE, yaml_text(override), "override.yaml"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runbooks")


@settings(max_examples=examples(0.3))
@given(
    content=st.one_of(
        st.binary(max_size=200),
        mutated_text(TEXT).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from([TEXT[:300].encode("utf-16"), "runbook: café\n".encode("latin-1")]),
    )
)
def test_a_runbook_file_of_any_bytes_loads_or_is_refused(folder: Path, content: bytes) -> None:
    path = folder / "fuzzed.yaml"
    path.write_bytes(content)
    result = loaded_or_refused(lambda: load_runbook(path))
    if isinstance(result, RunbookError):
        assert str(path) in result.source


@pytest.mark.parametrize("nesting", [100, 1000, 20_000])
def test_a_deeply_nested_runbook_is_refused(nesting: int) -> None:
    text = "runbook: deep\nversion: 1\ntables: " + "{a: " * nesting + "{}" + "}" * nesting + "\n"
    assert isinstance(loaded_or_refused(lambda: parse_runbook(text, "deep.yaml")), RunbookError)
