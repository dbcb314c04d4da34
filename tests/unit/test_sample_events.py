"""events/ for the functions other than triage, and `sam local`'s env.json: what each function is given and reads.

`sam local invoke <Function> -e events/<file> --env-vars events/env.json` must hand each function an event of the
shape it gets in AWS and the environment template.yaml gives it. Checked against the template and Medic's own
parsers: the executor message as the pipeline writes and `execute_batch` reads it, the click through the
interactions endpoint's parsing and signature check, the schedules against handlers that read nothing from them.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from template_script import load_check_script

from medic.alarms.events import parse_alarm_event
from medic.chatops.requests import APPROVE_ACTION_ID, function_url_body, parse_block_actions, verify_signature
from medic.clock import iso
from medic.errors import SlackRequestRefused
from medic.plan import plan_id
from medic.queue import ExecutorMessage
from medic.usecases.interactions import PLAN_ID
from support import slack_signed_headers

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
#: The sample event of each function other than triage (whose samples are the alarm events).
FUNCTION_EVENTS = {
    "executor-sqs.json": "ExecutorFunction",
    "interactions-function-url.json": "InteractionsFunction",
    "verifier-schedule.json": "VerifierFunction",
    "digest-schedule.json": "DigestFunction",
}
ENV = "env.json"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = load_check_script().load_template(ROOT / "template.yaml")
    return loaded


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _throttles_plan_id() -> str:
    """The plan events/throttles-alarm.json makes (triage's plan id: the alarm and its transition's time)."""
    event = parse_alarm_event((EVENTS / "throttles-alarm.json").read_bytes())
    return plan_id(event.alarm_arn, iso(event.detail.state.timestamp))


def _message_shapes() -> set[frozenset[str]]:
    """The key sets of the executor messages Medic writes (medic.queue.ExecutorMessage, its two shapes)."""
    apply, undo = ExecutorMessage(plan_id="p-0", approval_hash="0" * 64), ExecutorMessage(plan_id="p-0", rollback=True)
    return {frozenset(json.loads(message.body())) for message in (apply, undo)}


def test_events_holds_alarm_events_and_one_sample_per_other_function(template: dict[str, Any]) -> None:
    named = {path.name for path in EVENTS.glob("*.json") if path.name in FUNCTION_EVENTS or path.name == ENV}
    assert named == {*FUNCTION_EVENTS, ENV}
    assert set(FUNCTION_EVENTS.values()) == set(_functions(template)) - {"TriageFunction"}
    for path in sorted(EVENTS.glob("*.json")):
        if path.name not in named:  # the rest are triage's: CloudWatch alarm state changes
            assert parse_alarm_event(path.read_bytes(), source=path.name).source == "aws.cloudwatch"


def test_env_json_gives_each_function_the_variables_the_template_declares(template: dict[str, Any]) -> None:
    env = _load(ENV)
    functions = _functions(template)
    assert list(env) == list(functions), "one entry per function, by logical ID"
    shared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for name, properties in functions.items():
        own = set(properties.get("Environment", {}).get("Variables", {}))
        assert set(env[name]) == shared | own, name
        assert all(isinstance(value, str) for value in env[name].values()), f"{name}: environment values are strings"
        assert env[name]["MEDIC_DRY_RUN"] == "true"


def test_the_executor_event_carries_the_message_triage_and_interactions_enqueue() -> None:
    [record] = _load("executor-sqs.json")["Records"]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].startswith("arn:aws:sqs:")
    assert record["messageId"] and record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    body = json.loads(record["body"])
    # The executor reads it as medic.queue.ExecutorMessage, which every writer sends; the sample is one of its shapes.
    shapes = _message_shapes()
    assert shapes == {frozenset({"plan_id", "approval_hash"}), frozenset({"plan_id", "rollback"})}
    assert frozenset(body) in shapes
    assert PLAN_ID.fullmatch(body["plan_id"]) and body["plan_id"] == _throttles_plan_id()
    assert re.fullmatch(r"[0-9a-f]{64}", body["approval_hash"]), "a SHA-256 in hex, as medic.plan.approval_hash"
    message = ExecutorMessage.parse(record["body"])
    assert not message.rollback and json.loads(message.body()) == body


def test_the_click_parses_as_medic_reads_it_and_is_refused_until_re_signed() -> None:
    event = _load("interactions-function-url.json")
    headers, body = function_url_body(event)
    payload = parse_block_actions(body)
    [action] = payload.actions
    assert (action.action_id, action.value) == (APPROVE_ACTION_ID, _throttles_plan_id())
    settings = _load(ENV)["InteractionsFunction"]
    assert payload.team.id == settings["MEDIC_SLACK_TEAM_ID"] and payload.api_app_id == settings["MEDIC_SLACK_APP_ID"]
    assert payload.channel is not None and payload.channel.id == settings["MEDIC_SLACK_CHANNEL"]
    assert payload.user.id in settings["MEDIC_APPROVERS"].split(",")

    secret = "8f742231b10e8888abcd99yyyzzz85a5"  # any signing secret: the sample's signature is a placeholder
    with pytest.raises(SlackRequestRefused) as refused:
        verify_signature(headers, body, secret)
    assert refused.value.status == 401
    # Re-signed as events/README.md says: v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>"), with a current timestamp.
    verify_signature({**headers, **slack_signed_headers(secret, body)}, body, secret)
    assert base64.b64decode(event["body"]) == body and event["isBase64Encoded"] is True


@pytest.mark.parametrize(("sample", "function"), [("verifier-schedule.json", "VerifierFunction"),
                                                  ("digest-schedule.json", "DigestFunction")])  # fmt: skip
def test_the_schedules_are_the_templates_and_their_handlers_read_nothing_from_them(
    template: dict[str, Any], sample: str, function: str
) -> None:
    event = _load(sample)
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    [rule] = event["resources"]
    assert re.fullmatch(r"arn:aws:events:[a-z0-9-]+:\d{12}:rule/[\w.-]+", rule)
    events = _functions(template)[function]["Events"]
    assert [e["Type"] for e in events.values()] == ["Schedule"]
    app = ROOT / "functions" / function.removesuffix("Function").lower() / "app.py"
    [handler] = [n for n in ast.walk(ast.parse(app.read_text(encoding="utf-8"))) if isinstance(n, ast.FunctionDef)]
    read = {n.id for n in ast.walk(handler) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert handler.args.args[0].arg == "event" and "event" not in read, "the handler accepts any event"
