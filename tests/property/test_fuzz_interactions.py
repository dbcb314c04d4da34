"""Fuzzing the Slack endpoint (functions/interactions/app.py → `medic.usecases.interactions.handle_interaction`).

Three kinds of requests: anything at all (random headers, bodies and base64 flags, unsigned or forged), requests
signed with the real signing secret whose body is random or a mutated button click or `/medic` command, and signed
requests broken in transport (stale, signed over another body, a base64 flag that lies).

The only outcomes allowed: an HTTP answer (2xx for a request Slack could have sent, 4xx with a reason otherwise;
never 5xx, never an exception), and AWS calls only to the remediation log (DynamoDB) and the signing secret (Secrets
Manager), plus the executor queue (SQS) when — and only when — an approver's valid click approved the plan.
Nothing else: no change anywhere.

DynamoDB, SQS and Secrets Manager are moto's in-process `mock_aws`, built once for the module; every example gets a
plan of its own (so no example depends on another's clicks).
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest
from fuzzing import examples, json_values, mutated, observe
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from medic import runtime
from medic.actions.base import PlannedAction
from medic.aws import AwsClients
from medic.chatops.requests import APPROVE_ACTION_ID, REJECT_ACTION_ID
from medic.chatops.transport import ConsoleTransport
from medic.clock import ManualClock, iso
from medic.config import Settings
from medic.plan import Plan, SlackRef, approval_hash
from medic.runtime import Runtime
from medic_tools.simulate import build_medic_infra
from support import slack_signed_headers

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TEAM, APP, CHANNEL, CARD_TS = "T0MEDIC", "A0MEDIC", "C0OPS", "1795410060.000100"
ONCALL, SECOND = "U0ONCALL", "U0SECOND"
START = datetime(2026, 11, 22, 5, 1, tzinfo=UTC)
PLAN = "p-PLAN"  # replaced by each example's own plan id wherever it appears in a request
#: What the endpoint may call, whatever it is sent (the executor's queue only after a valid approval).
LOG_AND_SECRET = frozenset({"dynamodb", "secretsmanager"})


def _handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("interactions_app", ROOT / "functions" / "interactions" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler  # type: ignore[no-any-return]


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class Endpoint:
    """The interactions handler over moto, and the AWS calls of the last request it was sent."""

    def __init__(self, rt: Runtime, secret: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        self.rt, self.secret, self.handler = rt, secret, handler
        self.calls: list[str] = []
        self.plans = itertools.count(1)
        self.last = ""

    def __repr__(self) -> str:
        return "Endpoint(the interactions handler over moto)"

    def new_plan(self) -> str:
        """A PROPOSED plan with its card, as triage leaves it; a fresh id for every example.

        The previous example's plan is dropped from the plans table (its log stays): `/medic status` reads every
        open plan, and a table growing by one plan per example would make each example slower than the last.
        """
        if self.last:
            self.rt.clients.dynamodb.delete_item(TableName=self.rt.settings.plans_table,
                                                 Key={"plan_id": {"S": self.last}})  # fmt: skip
        pid = self.last = f"p-{next(self.plans):016x}"
        now = iso(self.rt.clock.now())
        pc = PlannedAction(kind="set_provisioned_concurrency", target="checkout:live", function_name="checkout",
                           qualifier="live", primary="provisioned_concurrency", before={"provisioned_concurrency": 20},
                           after={"provisioned_concurrency": 72}, text="PC 20 → 72")  # fmt: skip
        plan = Plan(
            id=pid, status="PROPOSED", alarm_arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live",
            alarm_name="checkout-live", state_timestamp="2026-11-22T05:00:00.000Z", account="123456789012",
            region=REGION, signal="spillover", target="checkout:live", function_name="checkout", qualifier="live",
            diagnosis="pc_floor_too_low", rule="floor-too-low", mode="approve", actions=[pc],
            slack=SlackRef(channel=CHANNEL, ts=CARD_TS), created_at=now, updated_at=now,
            expires_at=iso(self.rt.clock.now() + timedelta(minutes=30)),
        )  # fmt: skip
        plan.approval_hash = approval_hash(plan)
        assert self.rt.ledger.create(plan)
        return pid

    def send(self, event: dict[str, Any], pid: str) -> dict[str, Any]:
        """Deliver `event` to the Lambda handler; check the answer and every AWS call it made."""
        self.calls.clear()
        response = self.handler(event, mock.Mock(aws_request_id="fuzz"))
        assert isinstance(response, dict) and isinstance(response.get("statusCode"), int), response
        status = response["statusCode"]
        assert 200 <= status < 500, f"answered {status}: {response.get('body')}"
        assert isinstance(json.loads(response["body"]).get("text"), str)
        approved = self.rt.ledger.get(pid)
        queued = [call for call in self.calls if call.startswith("sqs:")]
        if queued:
            assert queued == ["sqs:SendMessage"] and status == 200, f"{queued} answered {status}"
            assert approved is not None and approved.status == "APPROVED", "enqueued a plan that is not approved"
        others = [call for call in self.calls if call.split(":")[0] not in LOG_AND_SECRET | {"sqs"}]
        assert not others, f"AWS calls beyond the log and the secret: {others}"
        observe(f"answered {status}" + (" (approved, enqueued)" if queued else ""))
        return response


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    from botocore.client import BaseClient

    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            env.delenv(name, raising=False)
        clients = AwsClients(region=REGION)
        infra = build_medic_infra(clients)
        secret = clients.secrets.get_secret_value(SecretId=infra["signing_secret_arn"])["SecretString"]
        config = Settings(plans_table=infra["plans"], events_table=infra["events"], executor_queue_url=infra["queue"],
                          slack_channel=CHANNEL, slack_signing_secret_arn=infra["signing_secret_arn"],
                          slack_team_id=TEAM, slack_app_id=APP, approvers=frozenset({ONCALL, SECOND}), dry_run=False,
                          region=REGION)  # fmt: skip
        console = ConsoleTransport(_Sink(), show_json=False, ts=lambda: CARD_TS)
        rt = Runtime(config, clients=clients, clock=ManualClock(START), slack=console)
        served = Endpoint(rt, secret, _handler())
        original = BaseClient._make_api_call

        def recorded(client: BaseClient, operation: str, params: Any) -> Any:
            served.calls.append(f"{client.meta.service_model.service_name}:{operation}")
            return original(client, operation, params)

        runtime.install(rt)
        try:
            with mock.patch.object(BaseClient, "_make_api_call", recorded):
                yield served
        finally:
            runtime.install(None)


# -- requests --------------------------------------------------------------------------------------


def _bind(value: Any, pid: str) -> Any:
    """`value` with the plan placeholder replaced by this example's plan id."""
    if isinstance(value, str):
        return value.replace(PLAN, pid)
    if isinstance(value, list):
        return [_bind(item, pid) for item in value]
    if isinstance(value, dict):
        return {_bind(key, pid): _bind(item, pid) for key, item in value.items()}
    return value


def _click(action_id: str = APPROVE_ACTION_ID, user: str = ONCALL) -> dict[str, Any]:
    return {
        "type": "block_actions", "user": {"id": user, "username": "someone"}, "team": {"id": TEAM},
        "api_app_id": APP, "channel": {"id": CHANNEL}, "message": {"ts": CARD_TS},
        "response_url": "https://hooks.slack.com/actions/T0MEDIC/1/abc",
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"decide:{PLAN}", "value": PLAN,
                     "action_ts": "1795410061.000200"}],
    }  # fmt: skip


COMMAND = {"command": "/medic", "text": "status", "user_id": ONCALL, "user_name": "someone", "team_id": TEAM,
           "api_app_id": APP, "channel_id": CHANNEL, "response_url": "https://hooks.slack.com/commands/T0MEDIC/1/x",
           "trigger_id": "1.2.3"}  # fmt: skip
COMMAND_TEXTS = ["status", "pause fuzzing", "resume", "log", "log checkout", "log ../../etc", "explain",
                 f"explain {PLAN}", "explain p-0000000000000000", "help", "", "   ", "PAUSE", "<!channel>",
                 "log " + "x" * 70]  # fmt: skip
HEADER_NAMES = ["X-Slack-Signature", "x-slack-request-timestamp", "Content-Type", "user-agent", "X-Forwarded-For"]

headers_ = st.dictionaries(st.one_of(st.text(max_size=20), st.sampled_from(HEADER_NAMES)), st.text(max_size=40),
                           max_size=5)  # fmt: skip


def _form(fields: Any) -> str:
    """Form-encoded, as Slack sends it (whatever a mutation left in `fields`)."""
    if not isinstance(fields, dict):
        return ""
    return urlencode({str(k): str(v) for k, v in fields.items()}, errors="surrogatepass")


forms = st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=5).map(_form)
clicks = st.sampled_from([APPROVE_ACTION_ID, REJECT_ACTION_ID, "medic_other"]).flatmap(
    lambda action_id: mutated(_click(action_id), max_mutations=3) | st.just(_click(action_id))
)
commands = st.one_of(
    st.sampled_from(COMMAND_TEXTS).map(lambda text: {**COMMAND, "text": text}),
    st.sampled_from(COMMAND_TEXTS).map(lambda text: {**COMMAND, "text": text, "user_id": "U0OUTSIDER"}),
    mutated(COMMAND, max_mutations=2),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    forms.map(str.encode),
    clicks.map(lambda payload: _form({"payload": json.dumps(payload)}).encode()),
    clicks.map(lambda payload: _form({"payload": json.dumps(payload)[:-5]}).encode()),
    json_values.map(lambda value: _form({"payload": json.dumps(value)}).encode()),
    commands.map(lambda form: _form(form).encode()),
)


def function_url_event(body: bytes, headers: dict[str, str], base64_flag: bool) -> dict[str, Any]:
    return {
        "version": "2.0", "rawPath": "/", "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "192.0.2.1"}},
        "body": base64.b64encode(body).decode() if base64_flag else body.decode("utf-8", "replace"),
        "isBase64Encoded": base64_flag,
    }  # fmt: skip


def signed_headers(secret: str, body: bytes, *, age_s: int = 0) -> dict[str, str]:
    """A Function URL request's headers, signed by Slack's v0 signature over the raw body (any bytes)."""
    return {"content-type": "application/x-www-form-urlencoded", **slack_signed_headers(secret, body, age_s=age_s),
            "user-agent": "Slackbot 1.0"}  # fmt: skip


# -- properties ------------------------------------------------------------------------------------


@settings(max_examples=examples(0.5))
@given(headers=headers_, body=st.one_of(bodies, st.binary(max_size=100)), base64_flag=st.booleans(),
       raw=st.one_of(st.none(), st.text(max_size=100)))  # fmt: skip
def test_an_unsigned_or_forged_request_is_refused_and_changes_nothing(
    endpoint: Endpoint, headers: dict[str, str], body: bytes, base64_flag: bool, raw: str | None
) -> None:
    pid = endpoint.new_plan()
    event = function_url_event(_bind(body.decode("utf-8", "replace"), pid).encode(), headers, base64_flag)
    if raw is not None:
        event["body"] = raw
    response = endpoint.send(event, pid)
    assert response["statusCode"] in (400, 401, 413), response
    assert not any(call.startswith("sqs:") for call in endpoint.calls)
    plan = endpoint.rt.ledger.get(pid)
    assert plan is not None and plan.status == "PROPOSED"


@settings(max_examples=examples(0.7))
@given(body=bodies, base64_flag=st.booleans(), extra=headers_)
def test_a_signed_request_with_any_body_is_answered_within_4xx(
    endpoint: Endpoint, body: bytes, base64_flag: bool, extra: dict[str, str]
) -> None:
    pid = endpoint.new_plan()
    body = _bind(body.decode("utf-8", "surrogateescape"), pid).encode("utf-8", "surrogateescape")
    headers = {**{k: v for k, v in extra.items() if not k.lower().startswith("x-slack")},
               **signed_headers(endpoint.secret, body)}  # fmt: skip
    endpoint.send(function_url_event(body, headers, base64_flag or not _utf8(body)), pid)


@settings(max_examples=examples(0.5))
@given(
    payload=clicks,
    breakage=st.sampled_from(["stale", "future", "other body", "no signature", "bad base64", "huge", "uppercase"]),
)
def test_a_signed_request_broken_in_transport_is_refused(endpoint: Endpoint, payload: Any, breakage: str) -> None:
    pid = endpoint.new_plan()
    body = urlencode({"payload": json.dumps(_bind(payload, pid))}).encode()
    headers = signed_headers(endpoint.secret, body, age_s={"stale": 301, "future": -400}.get(breakage, 0))
    event = function_url_event(body, headers, base64_flag=True)
    if breakage == "other body":
        event["body"] = base64.b64encode(body + b"&x=1").decode()
    elif breakage == "no signature":
        del headers["x-slack-signature"]
    elif breakage == "bad base64":
        event["body"] = "%%%" + event["body"]
    elif breakage == "huge":
        huge = body + b"&pad=" + b"x" * (64 * 1024)
        event = function_url_event(huge, signed_headers(endpoint.secret, huge), base64_flag=True)
    elif breakage == "uppercase":  # header names are case-insensitive: this one is valid
        event["headers"] = {name.upper(): value for name, value in headers.items()}
    response = endpoint.send(event, pid)
    if breakage != "uppercase":
        assert response["statusCode"] in (400, 401, 413), (breakage, response)
        plan = endpoint.rt.ledger.get(pid)
        assert plan is not None and plan.status == "PROPOSED"


def test_an_approvers_valid_click_approves_exactly_once(endpoint: Endpoint) -> None:
    """The fuzzers' baseline: the unmutated click does reach the decision (so mutants test something)."""
    pid = endpoint.new_plan()
    body = urlencode({"payload": json.dumps(_bind(_click(), pid))}).encode()
    first = endpoint.send(function_url_event(body, signed_headers(endpoint.secret, body), True), pid)
    assert first["statusCode"] == 200 and endpoint.calls.count("sqs:SendMessage") == 1
    again = endpoint.send(function_url_event(body, signed_headers(endpoint.secret, body), True), pid)
    assert again["statusCode"] in (200, 409) and "sqs:SendMessage" not in endpoint.calls


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
