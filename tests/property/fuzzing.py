"""What the fuzzers share: their example budget, a tripwire on AWS calls, and mutations of real inputs.

Mutations start from a real input (a sample event, the shipped runbook, a scenario): delete a key, replace a
value by one of another type, insert a key, duplicate or drop a list item, truncate — a few at a time, so most
mutants stay close to valid and reach deep into the models instead of being refused at the first field.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context


def examples(share: float) -> int:
    """This test's number of examples: `share` of the profile's (a costly test takes a smaller share)."""
    return max(1, round(settings.default.max_examples * share))


def observe(label: str) -> None:
    """Count `label` in the statistics (`--hypothesis-show-statistics`) when run under hypothesis."""
    if currently_in_test_context():
        event(label)


class AwsCalled(AssertionError):
    """Raised by the tripwire instead of sending any AWS request."""


@contextmanager
def no_aws_calls() -> Iterator[list[str]]:
    """Every AWS API call fails the test (the calls attempted are listed, should a handler swallow the error)."""
    from botocore.client import BaseClient

    attempted: list[str] = []

    def refuse(client: BaseClient, operation: str, params: Any) -> Any:
        attempted.append(f"{client.meta.service_model.service_name}:{operation}")
        raise AwsCalled(f"an AWS call was attempted: {attempted[-1]}")

    with mock.patch.object(BaseClient, "_make_api_call", refuse):
        yield attempted


# -- JSON-like values and their mutations ------------------------------------------------------------

#: Strings that mean something to the parsers (and a NUL, a non-ASCII letter, a lone surrogate).
SPECIAL_STRINGS = ("", "ALARM", "OK", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x", "2024-05-14T09:31:12Z",
                   "{}", "[]", "null", "p99", "-1", "1e999", "\x00", "ü", "\ud800")  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(SPECIAL_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _containers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict | list):
        yield path, value
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            yield from _containers(child, (*path, key))


@st.composite
def mutated(draw: Any, original: Any, max_mutations: int = 4) -> Any:
    """`original` (JSON-like) with a few structural mutations applied at random places."""
    value = copy.deepcopy(original)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, max_mutations]))):
        places = list(_containers(value))
        if not places:
            return draw(json_values)
        _, container = draw(st.sampled_from(places))
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        operation = draw(st.sampled_from(["delete", "replace", "replace", "insert", "retype", "duplicate"]))
        if operation == "insert" or not keys:
            if isinstance(container, dict):
                container[draw(st.one_of(st.text(max_size=12), st.sampled_from(sorted(map(str, keys)) or [""])))] = (
                    draw(json_values)
                )
            else:
                container.insert(draw(st.integers(0, len(container))), draw(json_values))
            continue
        key = draw(st.sampled_from(keys))
        if operation == "delete":
            del container[key]
        elif operation == "replace":
            container[key] = draw(json_values)
        elif operation == "retype":
            container[key] = _retyped(container[key], draw)
        elif isinstance(container, list):
            container.insert(key, copy.deepcopy(container[key]))
        else:
            container[draw(st.text(max_size=12))] = copy.deepcopy(container[key])
    return value


def _retyped(value: Any, draw: Any) -> Any:
    """The same content in another JSON type (a number as a string, a mapping as a list, …)."""
    if isinstance(value, dict):
        return draw(st.sampled_from([list(value.items()), list(value), str(value), None]))
    if isinstance(value, list):
        return draw(st.sampled_from([dict(enumerate(value)), str(value), len(value), None]))
    if isinstance(value, bool):
        return draw(st.sampled_from([int(value), str(value).lower(), [value]]))
    if isinstance(value, int | float):
        return draw(st.sampled_from([str(value), -value, value * 10**6, bool(value), [value], None]))
    if isinstance(value, str):
        return draw(st.sampled_from([value.upper(), value[: len(value) // 2], value * 3, [value], {"value": value}, 0]))
    return draw(json_values)


@st.composite
def mutated_text(draw: Any, original: str) -> str:
    """`original` text with a few byte-level edits: deletions, insertions, swaps, truncation."""
    text = original
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["delete", "insert", "truncate", "duplicate"]))
        at = draw(st.integers(0, len(text)))
        if operation == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif operation == "insert":
            text = text[:at] + draw(st.one_of(st.text(max_size=8), st.sampled_from(SYNTAX))) + text[at:]
        elif operation == "truncate":
            text = text[:at]
        else:
            end = at + draw(st.integers(1, 200))
            text = text[:end] + text[at:end] + text[end:]
    return text


def yaml_text(document: Any) -> str:
    """`document` as a YAML file would hold it (libyaml's emitter when there is one: ~10× faster)."""
    import yaml

    try:
        text = yaml.dump(document, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True,
                         sort_keys=False)  # fmt: skip
    except UnicodeEncodeError:  # a lone surrogate: the pure-Python emitter escapes it
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    return file_text(text)


def file_text(text: str) -> str:
    """`text` as a file can hold it: what reading UTF-8 gives (never a lone surrogate, which JSON escapes can make)."""
    return text.encode("utf-8", "replace").decode("utf-8")


#: Fragments that mean something to YAML or JSON parsers.
SYNTAX = ["\n", "  ", "\t", ":", ": ", "- ", "[", "]", "{", "}", "'", '"', "#", "&a ", "*a", "!!python/object ", "? ",
          "|", ">", "---\n", "...\n", "%YAML 1.1\n", "!!binary ", "<<: *a\n", "\ufeff", "\x00", "\\", ","]  # fmt: skip
