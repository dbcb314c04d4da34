"""Fuzzing the scenario loader (`medic simulate`'s input, a public contract): the shipped scenarios mutated as
structures and as text, random YAML documents, and files that are not text at all.

The only outcomes allowed: a `Scenario`, or a `ScenarioError` naming the file and the first bad field (which
`medic simulate` turns into exit status 2) — never another exception, never an AWS call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzing import examples, file_text, json_values, mutated, mutated_text, no_aws_calls, observe, yaml_text
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.errors import ScenarioError
from medic_tools.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "scenarios").glob("*.yaml"))}
DOCUMENTS = {name: yaml.safe_load(text) for name, text in TEXTS.items()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


def loaded_or_refused(path: Path, content: str | bytes) -> Scenario | ScenarioError:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    with no_aws_calls() as attempted:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            assert error.source == str(path) and error.field and error.problem, f"says nothing: {error!r}"
            observe(f"refused at {error.field.split('.')[0]}")
            return error
        finally:
            assert not attempted
    observe("loaded")
    return scenario


def test_every_shipped_scenario_loads(folder: Path) -> None:
    for name, text in TEXTS.items():
        assert isinstance(loaded_or_refused(folder / name, text), Scenario), name


@settings(max_examples=examples(0.6))
@given(document=st.sampled_from(sorted(DOCUMENTS)).flatmap(lambda name: mutated(DOCUMENTS[name])))
def test_a_mutated_scenario_loads_or_is_refused(folder: Path, document: Any) -> None:
    loaded_or_refused(folder / "mutated.yaml", yaml_text(document))


@settings(max_examples=examples(0.5))
@given(text=st.sampled_from(sorted(TEXTS)).flatmap(lambda name: mutated_text(TEXTS[name])))
def test_a_mangled_scenario_text_loads_or_is_refused(folder: Path, text: str) -> None:
    loaded_or_refused(folder / "mangled.yaml", file_text(text))


@settings(max_examples=examples(0.3))
@given(document=st.one_of(json_values, st.dictionaries(st.sampled_from(sorted(Scenario.model_fields)), json_values)))
def test_any_yaml_document_loads_or_is_refused(folder: Path, document: Any) -> None:
    loaded_or_refused(folder / "random.yaml", yaml_text(document))


@settings(max_examples=examples(0.3))
@given(content=st.one_of(st.binary(max_size=200), st.just("world: {}\nalarm_event: café\n".encode("latin-1")),
                         st.just(TEXTS[sorted(TEXTS)[0]][:200].encode("utf-16"))))  # fmt: skip
def test_a_scenario_file_of_any_bytes_loads_or_is_refused(folder: Path, content: bytes) -> None:
    loaded_or_refused(folder / "bytes.yaml", content)


def test_a_missing_scenario_file_is_refused(folder: Path) -> None:
    with pytest.raises(ScenarioError) as refused:
        load_scenario(folder / "absent.yaml")
    assert refused.value.problem.startswith("cannot read")


@pytest.mark.parametrize("nesting", [100, 600])
def test_a_deeply_nested_scenario_is_refused(folder: Path, nesting: int) -> None:
    text = "world:\n  functions: " + "[" * nesting + "]" * nesting + "\n"
    assert isinstance(loaded_or_refused(folder / "deep.yaml", text), ScenarioError)
