"""Fuzzing the EventBridge edge: `parse_alarm_event` (then `classify`) on random and mutated events.

The seeds are the real-shaped sample events of events/*.json. The only outcomes allowed: a parsed
`AlarmStateChangeEvent` that `classify` turns into a `Signal` without raising, or an `EventError` that names a
field — never another exception, never an AWS call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzzing import examples, json_values, mutated, mutated_text, no_aws_calls, observe
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.alarms.events import AlarmStateChangeEvent, parse_alarm_event
from medic.alarms.signals import SIGNAL_KINDS, classify
from medic.errors import EventError

ROOT = Path(__file__).resolve().parents[2]
#: The other functions' sample events and `sam local`'s env.json, which share events/ with the alarm events.
NOT_ALARMS = ("env.json", "executor-", "interactions-", "verifier-", "digest-")
SAMPLES = {
    path.name: path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "events").glob("*.json"))
    if not path.name.startswith(NOT_ALARMS)
}
EVENTS = {name: json.loads(text) for name, text in SAMPLES.items()}


def parsed_or_refused(raw: Any) -> AlarmStateChangeEvent | EventError:
    """The edge as triage uses it; fails the test on any other outcome."""
    with no_aws_calls() as attempted:
        try:
            parsed = parse_alarm_event(raw)
        except EventError as error:
            assert error.field and error.problem, f"an EventError that names nothing: {error!r}"
            assert error.source == "event"
            observe(f"refused at {error.field.split('.')[0]}")
            return error
        finally:
            assert not attempted
        signal = classify(parsed)
    observe(f"parsed: {signal.kind}")
    assert signal.kind in SIGNAL_KINDS
    assert signal.target.kind == "none" or signal.kind != "unknown"
    assert not attempted
    return parsed


def test_every_sample_event_parses() -> None:
    for name, text in SAMPLES.items():
        assert isinstance(parsed_or_refused(text), AlarmStateChangeEvent), name


@settings(max_examples=examples(1.5))
@given(alarm=st.sampled_from(sorted(EVENTS)).flatmap(lambda name: mutated(EVENTS[name])))
def test_a_mutated_event_is_parsed_or_refused_with_a_field(alarm: Any) -> None:
    parsed_or_refused(alarm)


@settings(max_examples=examples(0.5))
@given(alarm=st.sampled_from(sorted(EVENTS)).flatmap(lambda name: mutated(EVENTS[name])))
def test_a_mutated_event_as_json_text_or_bytes_is_parsed_or_refused(alarm: Any) -> None:
    text = json.dumps(alarm, allow_nan=True)
    parsed_or_refused(text)
    parsed_or_refused(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=examples(1))
@given(data=st.data(), name=st.sampled_from(sorted(EVENTS)), state=st.sampled_from(["state", "previousState"]))
def test_a_mutated_reason_data_never_fails_the_event(data: st.DataObject, name: str, state: str) -> None:
    """reasonData is a JSON string inside the event: however it is mangled, the event still parses (kept raw)."""
    alarm = json.loads(SAMPLES[name])
    if state not in alarm["detail"]:
        return
    reason = json.loads(alarm["detail"][state].get("reasonData") or "{}")
    mangled = data.draw(st.one_of(mutated(reason).map(json.dumps), mutated_text(json.dumps(reason)), json_values))
    alarm["detail"][state]["reasonData"] = mangled
    result = parsed_or_refused(alarm)
    if isinstance(mangled, str):
        assert isinstance(result, AlarmStateChangeEvent), f"a bad reasonData failed the event: {result}"


@settings(max_examples=examples(0.5))
@given(text=st.sampled_from(sorted(SAMPLES)).flatmap(lambda name: mutated_text(SAMPLES[name])))
def test_a_mangled_event_text_is_parsed_or_refused(text: str) -> None:
    parsed_or_refused(text)


@settings(max_examples=examples(0.5))
@given(raw=st.one_of(json_values, st.text(), st.binary()))
def test_anything_at_all_is_parsed_or_refused(raw: Any) -> None:
    parsed_or_refused(raw)


@pytest.mark.parametrize("nesting", [50, 5000, 100_000])
def test_deeply_nested_json_is_refused(nesting: int) -> None:
    text = '{"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": ' + "[" * nesting
    text += "]" * nesting + "}"
    assert isinstance(parsed_or_refused(text), EventError)
