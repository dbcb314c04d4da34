"""The interactions use case (`medic.usecases.interactions`): the two-person rule, the approver user group, the card
replaced
through the click's response_url, the `/medic` slash command, refusals kept in the log, and the metric graph.

DynamoDB, SQS and Secrets Manager are moto's in-process `mock_aws`; Slack is the console transport, or slack_sdk's
WebClient talking real HTTP to a fake Slack Web API (pytest-httpserver) that records every call. Requests are signed
with slack_sdk's own signer, as Slack signs them.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request

from medic.actions.base import PlannedAction
from medic.aws import AwsClients
from medic.chatops.graph import PNG_MAGIC, attach_metric_graph, metric_widget
from medic.chatops.requests import APPROVE_ACTION_ID, REJECT_ACTION_ID
from medic.chatops.transport import ConsoleTransport, SlackTransport, WebApiTransport
from medic.clock import ManualClock, iso
from medic.config import Settings
from medic.errors import ConfigError
from medic.plan import Plan, SlackRef, approval_hash
from medic.runtime import SECRET_TTL_S, Runtime
from medic.safety import KILL_SWITCH_KEY
from medic.usecases.interactions import (
    REFUSALS_LOGGED_PER_MINUTE,
    add_approval,
    approvals_required,
    fresh_response_url,
    handle_interaction,
)
from support import slack_signature, slack_signed_headers

REGION, PLANS, EVENTS = "us-east-1", "medic-plans", "medic-events"  # as tests/unit/conftest.py makes them
#: The clicks' response_url is hooks.slack.com, which no test reaches: its retry is not waited for.
pytestmark = pytest.mark.usefixtures("no_slack_backoff")

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM, APP, CHANNEL, CARD_TS = "T0MEDIC", "A0MEDIC", "C0OPS", "1795410060.000100"
ONCALL, SECOND, OUTSIDER, GROUP_MEMBER = "U0ONCALL", "U0SECOND", "U0OUTSIDER", "U0GROUPIE"
GROUP = "S0APPROVERS"
START = datetime(2026, 11, 22, 5, 1, tzinfo=UTC)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def aws(dynamodb: Any) -> dict[str, str]:
    """The executor queue and the signing secret, next to the two tables of `dynamodb` (all in mock_aws)."""
    clients = AwsClients(region=REGION)
    queue = clients.sqs.create_queue(QueueName="medic-executor")["QueueUrl"]
    secret = clients.secrets.create_secret(Name="medic/signing", SecretString=SECRET)["ARN"]
    return {"queue": queue, "secret": secret}


def settings(aws: dict[str, str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "plans_table": PLANS, "events_table": EVENTS, "executor_queue_url": aws["queue"], "slack_channel": CHANNEL,
        "slack_signing_secret_arn": aws["secret"], "slack_team_id": TEAM, "slack_app_id": APP,
        "approvers": frozenset({ONCALL, SECOND}), "dry_run": False, "region": REGION,
    }  # fmt: skip
    values.update(overrides)
    return Settings(**values)


def runtime(aws: dict[str, str], clock: ManualClock, slack: SlackTransport | None = None, **overrides: Any) -> Runtime:
    console = ConsoleTransport(show_json=False, ts=lambda: CARD_TS, stream=_Sink())
    return Runtime(settings(aws, **overrides), clients=AwsClients(region=REGION), clock=clock, slack=slack or console)


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def rt(aws: dict[str, str], clock: ManualClock) -> Runtime:
    return runtime(aws, clock)


def action(kind: str, primary: str, before: Any, after: Any, *, cost: float | None = None) -> PlannedAction:
    return PlannedAction(kind=kind, target="checkout:live", function_name="checkout", qualifier="live", primary=primary,
                         before={primary: before}, after={primary: after}, text=f"{kind} {before} → {after}",
                         cost_monthly_usd=cost)  # fmt: skip


PC_RAISE = ("set_provisioned_concurrency", "provisioned_concurrency", 20, 72)
MEMORY = ("set_memory", "memory_mb", 1024, 2048)


def make_plan(clock: ManualClock, *actions: PlannedAction, pid: str = "p-0123456789abcdef", **changes: Any) -> Plan:
    now = iso(clock.now())
    plan = Plan(
        id=pid, status="PROPOSED", alarm_arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live",
        alarm_name="checkout-live", state_timestamp="2026-11-22T05:00:00.000Z", account="123456789012",
        region=REGION, signal="spillover", target="checkout:live", function_name="checkout", qualifier="live",
        metric={"namespace": "AWS/Lambda", "name": "ProvisionedConcurrencySpilloverInvocations", "stat": "Sum",
                "period": 60, "dimensions": {"FunctionName": "checkout", "Resource": "checkout:live"}},
        alarm_value=340.0, alarm_threshold=0.0, recent_datapoints=[0.0, 12.0, 340.0], diagnosis="pc_floor_too_low",
        rule="floor-too-low", mode="approve", actions=list(actions or [action(*PC_RAISE)]),
        slack=SlackRef(channel=CHANNEL, ts=CARD_TS), created_at=now, updated_at=now,
        expires_at=iso(clock.now() + timedelta(minutes=30)),
    )  # fmt: skip
    plan.approval_hash = approval_hash(plan)
    return plan.model_copy(update=changes)


def stored(rt: Runtime, plan: Plan) -> Plan:
    assert rt.ledger.create(plan)
    return plan


def signed(body: bytes, *, age_s: int = 0) -> dict[str, Any]:
    return {
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    **slack_signed_headers(SECRET, body, age_s=age_s), "user-agent": "Slackbot 1.0"},
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "192.0.2.1"}},
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
    }  # fmt: skip


_clicks = iter(range(1, 10**6))


def click(plan_id: str, user: str = ONCALL, action_id: str = APPROVE_ACTION_ID, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions", "user": {"id": user, "username": "someone"}, "team": {"id": TEAM},
        "api_app_id": APP, "channel": {"id": CHANNEL}, "message": {"ts": CARD_TS},
        "response_url": "https://hooks.slack.com/actions/T0MEDIC/1/abc",
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"decide:{plan_id}", "value": plan_id,
                     "action_ts": f"{time.time():.6f}{next(_clicks)}"}],
    }  # fmt: skip
    payload.update(overrides)
    return signed(urlencode({"payload": json.dumps(payload)}).encode())


def command(text: str, user: str = ONCALL, **overrides: str) -> dict[str, Any]:
    form = {"command": "/medic", "text": text, "user_id": user, "user_name": "someone", "team_id": TEAM,
            "api_app_id": APP, "channel_id": CHANNEL, "response_url": "https://hooks.slack.com/commands/T0MEDIC/1/x",
            "trigger_id": "1.2.3", **overrides}  # fmt: skip
    return signed(urlencode(form).encode())


def answer(response: dict[str, Any]) -> tuple[int, str]:
    return response["statusCode"], json.loads(response["body"])["text"]


def refusal_statuses(rt: Runtime, chain: str) -> list[int]:
    return [int(event.data["status"]) for event in rt.ledger.events(chain) if event.kind == "approval_refused"]


def kinds(rt: Runtime, chain: str) -> list[str]:
    return [event.kind for event in rt.ledger.events(chain)]


def messages_in_queue(aws: dict[str, str]) -> int:
    attributes = AwsClients(region=REGION).sqs.get_queue_attributes(
        QueueUrl=aws["queue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def card(rt: Runtime) -> dict[str, Any]:
    assert isinstance(rt.slack, ConsoleTransport)
    return rt.slack.messages[CARD_TS]


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def status_line(message: dict[str, Any]) -> str:
    return str(message["blocks"][-1]["elements"][0]["text"])


# -- the two-person rule: which plans need two approvers -------------------------------------------


def test_a_provisioned_concurrency_raise_needs_one_approver(clock: ManualClock) -> None:
    assert approvals_required(make_plan(clock), Settings(plans_table="p", events_table="e")) == (1, [])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (action(*MEMORY), "set_memory on checkout:live"),
        (action("request_quota_increase", "concurrency_quota", 1000, 2000), "request_quota_increase on checkout:live"),
        (action("set_reserved_concurrency", "reserved_concurrency", 300, 100),
         "set_reserved_concurrency cut on checkout:live (300 → 100)"),
        (action("set_reserved_concurrency", "reserved_concurrency", None, 50),
         "set_reserved_concurrency cut on checkout:live (None → 50)"),
    ],
    ids=["memory", "quota", "reserved-cut", "reserved-cap-on-unreserved"],
)  # fmt: skip
def test_high_risk_changes_need_two_approvers(clock: ManualClock, change: PlannedAction, reason: str) -> None:
    assert approvals_required(make_plan(clock, change), Settings(plans_table="p", events_table="e")) == (2, [reason])


def test_a_reserved_concurrency_raise_is_not_a_cut(clock: ManualClock) -> None:
    raise_ = action("set_reserved_concurrency", "reserved_concurrency", 100, 300)
    assert approvals_required(make_plan(clock, raise_), Settings(plans_table="p", events_table="e")) == (1, [])


def test_a_plan_adding_more_than_the_cost_threshold_needs_two_approvers(clock: ManualClock) -> None:
    rules = Settings(plans_table="p", events_table="e", two_person_cost_usd=500)
    costly = make_plan(clock, action(*PC_RAISE, cost=420.0), action(*PC_RAISE, cost=120.0), action(*PC_RAISE))
    cheap = make_plan(clock, action(*PC_RAISE, cost=420.0), action(*PC_RAISE, cost=-300.0))

    assert approvals_required(costly, rules) == (2, ["adds $540.00/month, above $500.00"])
    assert approvals_required(cheap, rules) == (1, []), "savings and unknown costs are not counted"


def test_the_high_risk_kinds_are_configurable_and_checked_against_the_vocabulary(clock: ManualClock) -> None:
    env = {"MEDIC_PLANS_TABLE": "p", "MEDIC_EVENTS_TABLE": "e"}
    only_quota = Settings.from_env({**env, "MEDIC_TWO_PERSON_ACTIONS": "request_quota_increase"})
    assert approvals_required(make_plan(clock, action(*MEMORY)), only_quota) == (1, [])
    with pytest.raises(ConfigError, match=r"MEDIC_TWO_PERSON_ACTIONS.*'set_memroy'"):
        Settings.from_env({**env, "MEDIC_TWO_PERSON_ACTIONS": "set_memroy"})
    with pytest.raises(ConfigError, match="KIND:cut"):
        Settings.from_env({**env, "MEDIC_TWO_PERSON_ACTIONS": "set_memory:down"})
    assert Settings.from_env({**env, "MEDIC_APPROVER_GROUP": GROUP, "MEDIC_TWO_PERSON_COST_USD": "250"}).model_dump(
        include={"approver_group", "two_person_cost_usd", "approver_group_ttl_s"}
    ) == {"approver_group": GROUP, "two_person_cost_usd": 250.0, "approver_group_ttl_s": 300}


# -- the two-person rule at work -------------------------------------------------------------------


def test_the_first_approval_of_a_high_risk_plan_is_one_of_two(rt: Runtime, aws: dict[str, str],
                                                              clock: ManualClock) -> None:  # fmt: skip
    plan = stored(rt, make_plan(clock, action(*MEMORY)))

    status, text = answer(handle_interaction(click(plan.id, ONCALL), rt))

    assert status == 200
    assert text.startswith(f"Recorded: 1 of 2 approvals: <@{ONCALL}> at 2026-11-22T05:01:00.000Z")
    after = rt.ledger.get(plan.id)
    assert after is not None and after.status == "PROPOSED" and after.decided_by == [ONCALL]
    [approval] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "approval"]
    assert approval["first_of_two"] is True
    assert approval["approvals"] == [ONCALL] and approval["two_person"] == ["set_memory on checkout:live"]
    assert messages_in_queue(aws) == 0, "nothing is enqueued on one approval"
    shown = card(rt)
    assert buttons(shown) == [APPROVE_ACTION_ID, REJECT_ACTION_ID], "the second approver still has the buttons"
    assert "1 of 2 approvals" in status_line(shown) and "*PROPOSED*" in status_line(shown)


def test_a_second_distinct_approver_approves_it(rt: Runtime, aws: dict[str, str], clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock, action(*MEMORY)))
    handle_interaction(click(plan.id, ONCALL), rt)
    clock.advance(60)

    status, text = answer(handle_interaction(click(plan.id, SECOND), rt))

    assert (status, text) == (200, f"APPROVED by <@{ONCALL}> and <@{SECOND}>")
    after = rt.ledger.get(plan.id)
    assert after is not None and after.status == "APPROVED" and after.decided_by == [ONCALL, SECOND]
    first, second = [e.data for e in rt.ledger.events(plan.id) if e.kind == "approval"]
    assert (first["first_of_two"], second["first_of_two"]) == (True, False)
    assert second["approvals"] == [ONCALL, SECOND] and second["required"] == 2
    assert messages_in_queue(aws) == 1
    assert buttons(card(rt)) == []
    assert f"approved by <@{ONCALL}> and <@{SECOND}> at 2026-11-22T05:02:00.000Z" in status_line(card(rt))


def test_the_same_approver_twice_is_refused_and_logged(rt: Runtime, aws: dict[str, str], clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock, action(*MEMORY)))
    handle_interaction(click(plan.id, ONCALL), rt)

    status, text = answer(handle_interaction(click(plan.id, ONCALL), rt))

    assert status == 200, "Slack shows a clicker nothing of a refusal's body: they are told apart (ephemeral)"
    assert text == f"{ONCALL} has already approved this plan: it needs a second, distinct approver"
    assert rt.ledger.get(plan.id).status == "PROPOSED"  # type: ignore[union-attr]
    [refused] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "approval_refused"]
    assert refused["user"] == ONCALL and refused["status"] == 403
    assert messages_in_queue(aws) == 0


def test_concurrent_first_approvals_both_count(rt: Runtime, aws: dict[str, str], clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock, action(*MEMORY)))
    assert add_approval(rt, plan.id, SECOND) == frozenset({SECOND})  # a concurrent click's write landed first

    status, _ = answer(handle_interaction(click(plan.id, ONCALL), rt))

    assert status == 200
    after = rt.ledger.get(plan.id)
    assert after is not None and after.status == "APPROVED" and set(after.decided_by) == {ONCALL, SECOND}
    assert messages_in_queue(aws) == 1


def test_the_person_who_triggered_a_manual_plan_cannot_approve_it_alone(rt: Runtime, aws: dict[str, str],
                                                                        clock: ManualClock) -> None:  # fmt: skip
    plan = stored(rt, make_plan(clock, triggered_by=ONCALL))  # a low-risk change, but a manual plan

    status, text = answer(handle_interaction(click(plan.id, ONCALL), rt))
    assert status == 200 and "1 of 2 approvals" in text and "U0ONCALL triggered this plan" in text
    assert answer(handle_interaction(click(plan.id, ONCALL), rt))[0] == 200
    assert refusal_statuses(rt, plan.id) == [403]
    assert messages_in_queue(aws) == 0

    assert answer(handle_interaction(click(plan.id, SECOND), rt))[0] == 200
    assert rt.ledger.get(plan.id).decided_by == [ONCALL, SECOND]  # type: ignore[union-attr]
    assert messages_in_queue(aws) == 1


def test_another_approver_alone_may_approve_a_low_risk_manual_plan(rt: Runtime, clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock, triggered_by=ONCALL))

    assert answer(handle_interaction(click(plan.id, SECOND), rt)) == (200, f"APPROVED by <@{SECOND}>")


def test_a_reject_after_one_of_two_approvals_rejects(rt: Runtime, aws: dict[str, str], clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock, action(*MEMORY)))
    handle_interaction(click(plan.id, ONCALL), rt)

    assert answer(handle_interaction(click(plan.id, SECOND, REJECT_ACTION_ID), rt)) == (200, f"REJECTED by <@{SECOND}>")
    assert answer(handle_interaction(click(plan.id, ONCALL), rt))[1].startswith(f"Already REJECTED (by {SECOND})")
    assert messages_in_queue(aws) == 0


# -- the approver user group -----------------------------------------------------------------------


@pytest.fixture
def fake_slack(httpserver: HTTPServer) -> HTTPServer:
    """A fake Slack Web API that answers the calls the interactions path makes (and records them)."""
    httpserver.expect_request("/api/usergroups.users.list", method="POST").respond_with_json(
        {"ok": True, "users": [GROUP_MEMBER, "U0OTHER"]}
    )
    httpserver.expect_request("/api/chat.update", method="POST").respond_with_json({"ok": True, "ts": CARD_TS})
    return httpserver


def web(httpserver: HTTPServer) -> WebApiTransport:
    return WebApiTransport("xoxb-test", base_url=httpserver.url_for("/api/"))


def calls(httpserver: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def test_a_member_of_the_approver_group_approves_and_the_group_is_cached(
    aws: dict[str, str], clock: ManualClock, fake_slack: HTTPServer
) -> None:
    rt = runtime(aws, clock, web(fake_slack), approver_group=GROUP, slack_api_url=fake_slack.url_for("/api/"))
    first = stored(rt, make_plan(clock))
    second = stored(rt, make_plan(clock, pid="p-00000000000000ff"))

    assert answer(handle_interaction(click(first.id, GROUP_MEMBER), rt))[0] == 200
    clock.advance(299)
    assert answer(handle_interaction(click(second.id, GROUP_MEMBER, REJECT_ACTION_ID), rt))[0] == 200

    [lookup] = calls(fake_slack, "/api/usergroups.users.list")
    assert parse_qs(lookup.get_data(as_text=True)) == {"usergroup": [GROUP]}
    assert lookup.headers["Authorization"] == "Bearer xoxb-test"
    clock.advance(2)  # past the 300 s TTL: asked again
    third = stored(rt, make_plan(clock, pid="p-0000000000000aaa"))
    assert answer(handle_interaction(click(third.id, OUTSIDER), rt))[0] == 200
    assert refusal_statuses(rt, third.id) == [403]
    assert len(calls(fake_slack, "/api/usergroups.users.list")) == 2


def test_when_the_group_cannot_be_resolved_nobody_in_it_may_approve(
    aws: dict[str, str], clock: ManualClock, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/usergroups.users.list").respond_with_json({"ok": False, "error": "no_such_subteam"})
    rt = runtime(aws, clock, web(httpserver), approver_group=GROUP)
    plan = stored(rt, make_plan(clock))

    status, text = answer(handle_interaction(click(plan.id, GROUP_MEMBER), rt))

    assert (status, refusal_statuses(rt, plan.id)) == (200, [403])
    assert text.startswith(f"user {GROUP_MEMBER} is not an approver (the group {GROUP} is unknown: SlackApiError")
    assert rt.ledger.get(plan.id).status == "PROPOSED"  # type: ignore[union-attr]
    assert answer(handle_interaction(click(plan.id, ONCALL), rt))[0] == 200, "the listed approvers still decide"


# -- a click that changes nothing: 200, and the reason told to the clicker alone ---------------------


def test_a_refused_click_is_told_to_the_clicker_alone_through_the_response_url(
    aws: dict[str, str], clock: ManualClock, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/actions/T0MEDIC/1/abc", method="POST").respond_with_data("ok")
    rt = runtime(aws, clock, web(httpserver), slack_api_url=httpserver.url_for("/api/"))
    plan = stored(rt, make_plan(clock))

    response = handle_interaction(
        click(plan.id, OUTSIDER, response_url=httpserver.url_for("/actions/T0MEDIC/1/abc")), rt
    )

    assert (response["statusCode"], ephemeral(response)) == (200, f"user {OUTSIDER} is not an approver")
    [told] = calls(httpserver, "/actions/T0MEDIC/1/abc")
    assert told.get_json() == {"text": f"user {OUTSIDER} is not an approver", "response_type": "ephemeral",
                               "replace_original": False}  # fmt: skip
    assert refusal_statuses(rt, plan.id) == [403] and rt.ledger.get(plan.id).status == "PROPOSED"  # type: ignore[union-attr]


def test_without_a_fresh_response_url_the_clicker_is_told_with_chat_post_ephemeral(
    aws: dict[str, str], clock: ManualClock, fake_slack: HTTPServer
) -> None:
    fake_slack.expect_request("/api/chat.postEphemeral", method="POST").respond_with_json({"ok": True})
    rt = runtime(aws, clock, web(fake_slack), slack_api_url=fake_slack.url_for("/api/"))
    plan = stored(rt, make_plan(clock))
    clock.advance(rt.settings.approval_ttl_s + 1)

    response = handle_interaction(click(plan.id, ONCALL, response_url=""), rt)

    assert ephemeral(response) == f"This approval expired at {plan.expires_at}; nothing was changed."
    [told] = calls(fake_slack, "/api/chat.postEphemeral")
    sent = told.get_json()
    assert (sent["channel"], sent["user"], sent["text"]) == (CHANNEL, ONCALL, ephemeral(response))
    assert rt.ledger.get(plan.id).status == "EXPIRED"  # type: ignore[union-attr]


def test_when_slack_cannot_tell_the_clicker_the_refusal_still_stands_and_is_logged(
    aws: dict[str, str], clock: ManualClock, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/chat.postEphemeral").respond_with_json({"ok": False, "error": "channel_not_found"})
    rt = runtime(aws, clock, web(httpserver), slack_api_url=httpserver.url_for("/api/"))
    plan = stored(rt, make_plan(clock))

    response = handle_interaction(click(plan.id, OUTSIDER, response_url=""), rt)

    assert (response["statusCode"], refusal_statuses(rt, plan.id)) == (200, [403])
    assert rt.ledger.get(plan.id).status == "PROPOSED"  # type: ignore[union-attr]


# -- the card: response_url while valid, else chat.update ------------------------------------------


def test_a_fresh_response_url_replaces_the_card(
    aws: dict[str, str], clock: ManualClock, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/actions/T0MEDIC/1/abc", method="POST").respond_with_data("ok")
    rt = runtime(aws, clock, web(httpserver), slack_api_url=httpserver.url_for("/api/"))
    plan = stored(rt, make_plan(clock))

    handle_interaction(click(plan.id, response_url=httpserver.url_for("/actions/T0MEDIC/1/abc")), rt)

    [(request, _)] = httpserver.log
    assert request.path == "/actions/T0MEDIC/1/abc" and "Authorization" not in request.headers
    sent = request.get_json()
    assert sent["replace_original"] is True
    assert sent["text"] == f"Medic APPROVED: spillover on checkout:live — pc_floor_too_low (plan {plan.id})"
    assert [b["type"] for b in sent["blocks"]][-1] == "context" and "actions" not in [b["type"] for b in sent["blocks"]]
    assert f"approved by <@{ONCALL}>" in sent["blocks"][-1]["elements"][0]["text"]


@pytest.mark.parametrize(
    "where",
    ["https://evil.example/actions/T0MEDIC/1/abc", "http://hooks.slack.com/actions/T0MEDIC/1/abc", ""],
    ids=["foreign-origin", "not-https", "absent"],
)
def test_a_response_url_that_is_not_slacks_is_never_called(
    aws: dict[str, str], clock: ManualClock, fake_slack: HTTPServer, where: str
) -> None:
    rt = runtime(aws, clock, web(fake_slack))
    plan = stored(rt, make_plan(clock))

    assert answer(handle_interaction(click(plan.id, response_url=where), rt))[0] == 200

    [update] = calls(fake_slack, "/api/chat.update")
    assert (update.get_json()["channel"], update.get_json()["ts"]) == (CHANNEL, CARD_TS)


def test_a_failing_response_url_falls_back_to_chat_update(
    aws: dict[str, str], clock: ManualClock, fake_slack: HTTPServer
) -> None:
    fake_slack.expect_request("/actions/T0MEDIC/1/abc").respond_with_data("expired_url", status=404)
    rt = runtime(aws, clock, web(fake_slack), slack_api_url=fake_slack.url_for("/api/"))
    plan = stored(rt, make_plan(clock))

    handle_interaction(click(plan.id, response_url=fake_slack.url_for("/actions/T0MEDIC/1/abc")), rt)

    assert [r.path for r, _ in fake_slack.log] == ["/actions/T0MEDIC/1/abc", "/api/chat.update"]


def test_a_response_url_is_used_for_thirty_minutes_only() -> None:
    url, issued = "https://hooks.slack.com/actions/T0MEDIC/1/abc", START
    allowed = ("https://hooks.slack.com/",)

    assert fresh_response_url(url, issued, issued + timedelta(minutes=29, seconds=59), allowed) == url
    assert fresh_response_url(url, issued, issued + timedelta(minutes=30), allowed) == ""
    assert fresh_response_url(url, None, issued, allowed) == ""


def test_slack_being_down_never_undoes_a_decision(aws: dict[str, str], clock: ManualClock) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    rt = runtime(aws, clock, WebApiTransport("xoxb-test", base_url=dead))
    plan = stored(rt, make_plan(clock))

    assert answer(handle_interaction(click(plan.id), rt)) == (200, f"APPROVED by <@{ONCALL}>")

    assert rt.ledger.get(plan.id).status == "APPROVED"  # type: ignore[union-attr]
    assert messages_in_queue(aws) == 1
    [failed] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "slack_failed"]
    assert failed["call"] == "chat.update" and failed["error"] == "SlackUnreachable"


# -- the bot token: read from Secrets Manager only when a Web API call needs it --------------------

BOT_TOKEN = "xoxb-from-secrets-manager"


def deployed(aws: dict[str, str], clock: ManualClock, slack_api_url: str, token_arn: str = "") -> Runtime:
    """The runtime a deployed function builds: no injected transport, the bot token's ARN in the settings."""
    if not token_arn:
        token_arn = AwsClients(region=REGION).secrets.create_secret(Name="medic/bot", SecretString=BOT_TOKEN)["ARN"]
    return Runtime(settings(aws, slack_bot_token_secret_arn=token_arn, slack_api_url=slack_api_url),
                   clients=AwsClients(region=REGION), clock=clock)  # fmt: skip


def secret_reads(rt: Runtime) -> list[str]:
    """The SecretIds of every GetSecretValue the runtime's Secrets Manager client makes from now on."""
    reads: list[str] = []
    rt.clients.secrets.meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
    )
    return reads


def test_a_card_replaced_through_the_response_url_reads_no_bot_token(
    aws: dict[str, str], clock: ManualClock, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/actions/T0MEDIC/1/abc", method="POST").respond_with_data("ok")
    rt = deployed(aws, clock, httpserver.url_for("/api/"))
    reads = secret_reads(rt)
    plan = stored(rt, make_plan(clock))

    response = handle_interaction(click(plan.id, response_url=httpserver.url_for("/actions/T0MEDIC/1/abc")), rt)

    assert answer(response) == (200, f"APPROVED by <@{ONCALL}>")
    assert rt.ledger.get(plan.id).status == "APPROVED"  # type: ignore[union-attr]
    assert messages_in_queue(aws) == 1
    assert [r.path for r, _ in httpserver.log] == ["/actions/T0MEDIC/1/abc"]
    assert reads == [aws["secret"]], "the signing secret only: the response_url needs no bot token"


def test_chat_update_reads_the_bot_token_once_per_environment(
    aws: dict[str, str], clock: ManualClock, fake_slack: HTTPServer
) -> None:
    rt = deployed(aws, clock, fake_slack.url_for("/api/"))
    reads = secret_reads(rt)
    first = stored(rt, make_plan(clock))
    second = stored(rt, make_plan(clock, pid="p-00000000000000ff"))

    for plan in (first, second):  # no response_url: the card is edited with chat.update
        assert answer(handle_interaction(click(plan.id, response_url=""), rt))[0] == 200

    updates = calls(fake_slack, "/api/chat.update")
    assert [u.headers["Authorization"] for u in updates] == [f"Bearer {BOT_TOKEN}"] * 2
    assert reads == [aws["secret"], rt.settings.slack_bot_token_secret_arn]


def test_an_unreadable_bot_token_is_logged_and_never_undoes_a_decision(
    aws: dict[str, str], clock: ManualClock, fake_slack: HTTPServer
) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:medic/no-such-token-AbCdEf"
    rt = deployed(aws, clock, fake_slack.url_for("/api/"), token_arn=missing)
    plan = stored(rt, make_plan(clock))

    assert answer(handle_interaction(click(plan.id, response_url=""), rt)) == (200, f"APPROVED by <@{ONCALL}>")

    assert rt.ledger.get(plan.id).status == "APPROVED"  # type: ignore[union-attr]
    assert messages_in_queue(aws) == 1
    [failed] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "slack_failed"]
    assert failed == {"call": "bot token", "error": "ResourceNotFoundException"}
    assert calls(fake_slack, "/api/chat.update") == []


# -- the signing secret: cached for a while, read again when a rotation makes a signature fail ------


ROTATED = "0e1d2c3b4a59687766554433221100ff"


def signed_with(secret: str, body: bytes) -> dict[str, Any]:
    event = signed(body)
    timestamp = event["headers"]["x-slack-request-timestamp"]
    event["headers"]["x-slack-signature"] = slack_signature(secret, timestamp, body)
    return event


def payload_of(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["body"])


def test_a_rotated_signing_secret_is_in_force_at_the_first_click_after_the_rotation(
    aws: dict[str, str], rt: Runtime, clock: ManualClock
) -> None:
    reads = secret_reads(rt)
    first, second = stored(rt, make_plan(clock)), stored(rt, make_plan(clock, pid="p-00000000000000ff"))
    assert answer(handle_interaction(click(first.id), rt))[0] == 200  # the secret is read and cached

    AwsClients(region=REGION).secrets.put_secret_value(SecretId=aws["secret"], SecretString=ROTATED)
    clock.advance(120)
    response = handle_interaction(signed_with(ROTATED, payload_of(click(second.id))), rt)

    assert answer(response) == (200, f"APPROVED by <@{ONCALL}>")
    assert reads == [aws["secret"], aws["secret"]], "read once, then once again when the cached one failed"


def test_forged_signatures_cost_one_read_of_the_secret_a_minute_at_most(
    aws: dict[str, str], rt: Runtime, clock: ManualClock
) -> None:
    reads = secret_reads(rt)
    plan = stored(rt, make_plan(clock))

    statuses = []
    for _ in range(5):
        statuses.append(handle_interaction(signed_with("not-the-secret", payload_of(click(plan.id))), rt)["statusCode"])
        clock.advance(10)
    clock.advance(60)
    statuses.append(handle_interaction(signed_with("not-the-secret", payload_of(click(plan.id))), rt)["statusCode"])

    assert statuses == [401] * 6
    assert len(reads) == 2, "the first failure re-reads at once; the next within the minute do not; then one more"
    assert rt.ledger.get(plan.id).status == "PROPOSED"  # type: ignore[union-attr]


def test_the_cached_signing_secret_is_read_again_after_its_ttl(
    aws: dict[str, str], rt: Runtime, clock: ManualClock
) -> None:
    reads = secret_reads(rt)
    first, second = stored(rt, make_plan(clock)), stored(rt, make_plan(clock, pid="p-00000000000000ff"))
    assert answer(handle_interaction(click(first.id), rt))[0] == 200
    clock.advance(SECRET_TTL_S - 1)
    assert len(reads) == 1
    clock.advance(1)
    handle_interaction(click(second.id), rt)

    assert len(reads) == 2


# -- /medic ----------------------------------------------------------------------------------------


def ephemeral(response: dict[str, Any]) -> str:
    body = json.loads(response["body"])
    assert response["statusCode"] == 200 and body["response_type"] == "ephemeral"
    return str(body["text"])


def test_status_shows_open_plans_the_kill_switch_and_the_breaker(rt: Runtime, clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock, action(*MEMORY)))
    handle_interaction(click(plan.id, ONCALL), rt)

    text = ephemeral(handle_interaction(command("status"), rt))

    assert text.splitlines() == [
        "*Medic status*",
        ":large_green_circle: Kill switch off",
        ":large_green_circle: Circuit breaker closed (0 of 3 failures since the start)",
        "*Open plans* (1)",
        f"• `{plan.id}` *PROPOSED* spillover on `checkout:live` · pc_floor_too_low · 1 of 2 approvals (<@{ONCALL}>)",
    ]


def test_pause_and_resume_flip_the_kill_switch_and_are_logged(rt: Runtime, clock: ManualClock) -> None:
    paused = ephemeral(handle_interaction(command("pause deploy of payments in progress"), rt))

    assert paused.startswith(":octagonal_sign: Medic is paused: kill switch *ON* (by <@U0ONCALL>: deploy of payments")
    switch = rt.safety.kill_switch()
    assert (switch.enabled, switch.by, switch.reason) == (True, ONCALL, "deploy of payments in progress")
    assert "Kill switch *ON* (by <@U0ONCALL> at 2026-11-22T05:01:00.000Z)" in ephemeral(
        handle_interaction(command("status"), rt)
    )

    resumed = ephemeral(handle_interaction(command("resume", user=SECOND), rt))

    assert resumed == ":arrow_forward: Medic resumed: kill switch off (by <@U0SECOND>)."
    assert rt.safety.kill_switch().enabled is False
    logged = [(e.kind, e.data["enabled"], e.data["by"]) for e in rt.ledger.events(KILL_SWITCH_KEY)]
    assert logged == [("control_set", True, ONCALL), ("control_set", False, SECOND)]


def test_only_approvers_may_pause_and_the_attempt_is_logged(rt: Runtime) -> None:
    text = ephemeral(handle_interaction(command("pause", user=OUTSIDER), rt))

    assert text.startswith(":no_entry: Only Medic's approvers can pause Medic (user U0OUTSIDER is not an approver)")
    assert rt.safety.kill_switch().enabled is False
    [refused] = rt.ledger.events(KILL_SWITCH_KEY)
    assert (refused.kind, refused.data["user"], refused.data["command"]) == ("control_refused", OUTSIDER, "pause")


def test_log_lists_recent_remediations_optionally_of_one_function(rt: Runtime, clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock))
    handle_interaction(click(plan.id, ONCALL), rt)

    text = ephemeral(handle_interaction(command("log"), rt))
    assert text.splitlines() == [
        "*Recent remediations* (last 7 days, newest first)",
        f"• `{plan.id}` 2026-11-22T05:01Z *APPROVED* spillover on `checkout:live` · pc_floor_too_low · "
        f"set_provisioned_concurrency checkout:live · decided by {ONCALL}",
    ]
    assert ephemeral(handle_interaction(command("log checkout"), rt)).count(plan.id) == 1
    assert ephemeral(handle_interaction(command("log orders"), rt)) == "No remediations of `orders` in the last 7 days."
    assert ephemeral(handle_interaction(command("log <!channel>"), rt)).startswith("Usage: `/medic log [function]`")


def test_explain_shows_the_plans_decision(rt: Runtime, clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock))

    text = ephemeral(handle_interaction(command(f"explain {plan.id}"), rt))

    assert text.startswith(f"*Plan `{plan.id}`*\n```plan {plan.id}: checkout-live → spillover on checkout:live")
    assert ephemeral(handle_interaction(command("explain p-ffffffffffffffff"), rt)) == (
        "No plan `p-ffffffffffffffff` in the remediation log."
    )
    assert ephemeral(handle_interaction(command("explain"), rt)).startswith("Usage: `/medic explain <plan id>`")


@pytest.mark.parametrize("text", ["", "help", "reboot everything"])
def test_anything_else_shows_the_usage(rt: Runtime, text: str) -> None:
    answer_text = ephemeral(handle_interaction(command(text), rt))

    assert "`status`" in answer_text and "`pause [reason]`" in answer_text and "`explain <plan id>`" in answer_text
    assert answer_text.startswith("Unknown command `reboot`") == (text == "reboot everything")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"team_id": "T0OTHER"}, "team T0OTHER is not this workspace"),
     ({"api_app_id": "A0OTHER"}, "app A0OTHER is not Medic"),
     ({"user_id": ""}, "payload field user_id: Field required")],
    ids=["foreign-team", "foreign-app", "no-user"],
)  # fmt: skip
def test_a_command_from_elsewhere_is_refused_and_logged(rt: Runtime, overrides: dict[str, str], reason: str,
                                                        clock: ManualClock) -> None:  # fmt: skip
    status, text = answer(handle_interaction(command("pause", **overrides), rt))

    assert (status, text) == (403 if "field" not in reason else 400, reason)
    assert rt.safety.kill_switch().enabled is False
    [refused] = rt.ledger.events(f"refused#{clock.now():%Y-%m-%d}")
    assert (refused.kind, refused.data["reason"], refused.data["signed"]) == ("request_refused", reason, True)


def test_an_unsigned_command_is_refused_before_any_work(rt: Runtime) -> None:
    event = command("pause")
    event["headers"]["x-slack-signature"] = "v0=" + "0" * 64

    assert answer(handle_interaction(event, rt)) == (401, "invalid or stale Slack signature")
    assert rt.safety.kill_switch().enabled is False


# -- refusals in the log ---------------------------------------------------------------------------


def test_refusals_are_logged_with_a_per_minute_budget(rt: Runtime, clock: ManualClock) -> None:
    forged = {"headers": {}, "body": "payload=x", "requestContext": {"http": {"sourceIp": "198.51.100.7"}}}
    chain = f"refused#{clock.now():%Y-%m-%d}"

    for _ in range(REFUSALS_LOGGED_PER_MINUTE + 5):
        assert handle_interaction(forged, rt)["statusCode"] == 401
    clock.advance(60)
    handle_interaction(forged, rt)

    events = rt.ledger.events(chain)
    assert len(events) == REFUSALS_LOGGED_PER_MINUTE + 1
    first, last = events[0].data, events[-1].data
    assert (first["status"], first["reason"], first["signed"]) == (401, "missing Slack signature headers", False)
    assert (first["source_ip"], first["bytes"], len(first["sha256"])) == ("198.51.100.7", 9, 64)
    assert "payload=x" not in json.dumps(first), "the body itself is never kept"
    assert last["skipped_before"] == 5
    assert rt.ledger.verify_chain(chain) is None


def test_a_signed_payload_nested_too_deeply_is_refused_not_a_recursion_error(rt: Runtime, clock: ManualClock) -> None:
    plan = stored(rt, make_plan(clock))
    deep = click(plan.id, message={"ts": CARD_TS, "blocks": [json.loads("[" * 60 + "]" * 60)]})
    assert handle_interaction(deep, rt)["statusCode"] == 200, "a deep but bounded payload is a click like any other"

    bomb = click(plan.id, message={"ts": CARD_TS, "blocks": "BLOCKS"})
    body = base64.b64decode(bomb["body"]).replace(b"%22BLOCKS%22", b"%5B" * 9_000 + b"%5D" * 9_000)
    assert len(body) < 64 * 1024, "within the size Medic accepts: only its nesting is hostile"

    assert answer(handle_interaction(signed(body), rt)) == (400, "payload nested more than 64 levels deep")
    [refused] = [e for e in rt.ledger.events(f"refused#{clock.now():%Y-%m-%d}") if e.kind == "request_refused"]
    assert (refused.data["reason"], refused.data["signed"]) == ("payload nested more than 64 levels deep", True)


# -- the metric graph ------------------------------------------------------------------------------


class FakeCloudWatch:
    """Answers GetMetricWidgetImage with an image, or refuses it."""

    def __init__(self, image: bytes | None = None, error: str = "") -> None:
        self.image, self.error = image, error
        self.widgets: list[dict[str, Any]] = []

    def get_metric_widget_image(self, MetricWidget: str, OutputFormat: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.widgets.append(json.loads(MetricWidget))
        assert OutputFormat == "png"
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "GetMetricWidgetImage")
        return {"MetricWidgetImage": self.image}


PNG = PNG_MAGIC + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def test_the_widget_shows_the_metric_around_the_breach_with_the_threshold(clock: ManualClock) -> None:
    plan = make_plan(clock)
    assert plan.metric is not None

    widget = metric_widget(plan.metric, plan.state_timestamp, threshold=0.0, now=clock.now())

    assert widget["metrics"] == [["AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations", "FunctionName",
                                  "checkout", "Resource", "checkout:live", {"stat": "Sum"}]]  # fmt: skip
    assert (widget["start"], widget["end"], widget["period"]) == (
        "2026-11-22T04:00:00.000Z",
        "2026-11-22T05:15:00.000Z",
        60,
    )
    assert widget["annotations"] == {"vertical": [{"label": "ALARM", "value": "2026-11-22T05:00:00.000Z"}],
                                     "horizontal": [{"label": "threshold", "value": 0.0}]}  # fmt: skip


def upload_api(httpserver: HTTPServer) -> HTTPServer:
    """The three steps of files_upload_v2 on the fake Slack: the upload URL it hands out is its own."""
    httpserver.expect_request("/api/files.getUploadURLExternal").respond_with_json(
        {"ok": True, "upload_url": httpserver.url_for("/upload/F0GRAPH"), "file_id": "F0GRAPH"}
    )
    httpserver.expect_request("/upload/F0GRAPH", method="POST").respond_with_data("OK - 64")
    httpserver.expect_request("/api/files.completeUploadExternal").respond_with_json(
        {"ok": True, "files": [{"id": "F0GRAPH", "title": "graph"}]}
    )
    return httpserver


def test_the_graph_is_uploaded_into_the_cards_thread(rt: Runtime, clock: ManualClock, httpserver: HTTPServer) -> None:
    rt = runtime_with(rt, WebApiTransport("xoxb-test", base_url=upload_api(httpserver).url_for("/api/")))
    plan = stored(rt, make_plan(clock))
    cloudwatch = FakeCloudWatch(image=PNG)

    assert attach_metric_graph(plan, rt, CHANNEL, CARD_TS, clock.now(), cloudwatch=cloudwatch) == "F0GRAPH"

    assert [r.path for r, _ in httpserver.log] == [
        "/api/files.getUploadURLExternal",
        "/upload/F0GRAPH",
        "/api/files.completeUploadExternal",
    ]
    url_request, upload, complete = (r for r, _ in httpserver.log)
    assert parse_qs(url_request.get_data(as_text=True))["filename"] == [f"{plan.id}.png"]
    assert upload.get_data() == PNG
    completed = parse_qs(complete.get_data(as_text=True))
    assert (completed["channel_id"], completed["thread_ts"]) == ([CHANNEL], [CARD_TS])
    assert json.loads(completed["files"][0])[0]["title"].startswith("ProvisionedConcurrencySpilloverInvocations around")
    [logged] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "metric_graph"]
    assert (logged["posted"], logged["file_id"], logged["bytes"]) == (True, "F0GRAPH", len(PNG))
    assert cloudwatch.widgets == [logged["widget"]]


@pytest.mark.parametrize(
    ("cloudwatch", "reason"),
    [(FakeCloudWatch(error="AccessDenied"), "GetMetricWidgetImage: AccessDenied"),
     (FakeCloudWatch(image=b"<html>not an image</html>"), "GetMetricWidgetImage returned no PNG")],
    ids=["refused", "not-a-png"],
)  # fmt: skip
def test_without_an_image_the_card_keeps_its_text_datapoints(
    rt: Runtime, clock: ManualClock, httpserver: HTTPServer, cloudwatch: FakeCloudWatch, reason: str
) -> None:
    rt = runtime_with(rt, WebApiTransport("xoxb-test", base_url=httpserver.url_for("/api/")))
    plan = stored(rt, make_plan(clock))

    assert attach_metric_graph(plan, rt, CHANNEL, CARD_TS, clock.now(), cloudwatch=cloudwatch) is None

    assert httpserver.log == [], "nothing is uploaded"
    [logged] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "metric_graph"]
    assert logged == {"posted": False, "reason": reason, "fallback": "text datapoints"}


def test_a_refused_upload_is_logged_and_changes_nothing_else(rt: Runtime, clock: ManualClock,
                                                             httpserver: HTTPServer) -> None:  # fmt: skip
    httpserver.expect_request("/api/files.getUploadURLExternal").respond_with_json(
        {"ok": False, "error": "not_in_channel"}
    )
    rt = runtime_with(rt, WebApiTransport("xoxb-test", base_url=httpserver.url_for("/api/")))
    plan = stored(rt, make_plan(clock))

    assert attach_metric_graph(plan, rt, CHANNEL, CARD_TS, clock.now(), cloudwatch=FakeCloudWatch(image=PNG)) is None

    [logged] = [e.data for e in rt.ledger.events(plan.id) if e.kind == "metric_graph"]
    assert logged["posted"] is False and "not_in_channel" in logged["reason"]


def runtime_with(rt: Runtime, slack: SlackTransport) -> Runtime:
    return Runtime(rt.settings, clients=rt.clients, clock=rt.clock, slack=slack)
