"""ChatOps in Slack: the plan card, verified interaction requests, and the two transports.

The card is built from a plan made the way triage makes one (shipped runbook → registered action →
guardrails). The Web API transport talks real HTTP to a fake Slack Web API (pytest-httpserver); the
interaction requests are signed with slack_sdk's own signer, as Slack would sign them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from medic.actions import get_action
from medic.alarms.signals import Target
from medic.chatops.blocks import (
    APPROVE_ACTION_ID,
    REJECT_ACTION_ID,
    SECTION_TEXT_LIMIT,
    blocks_json,
    plan_blocks,
    plan_summary,
)
from medic.chatops.requests import MAX_BODY_BYTES, function_url_body, parse_block_actions, verify_signature
from medic.chatops.transport import ConsoleTransport, WebApiTransport, render_block
from medic.clock import ManualClock, iso
from medic.config import DEFAULT_RUNBOOK, Settings
from medic.errors import SlackRequestRefused
from medic.facts import Facts
from medic.plan import Plan, approval_hash, plan_id
from medic.planning.guardrails import check_plan
from medic.planning.runbook import decide, load_runbook
from support import slack_signed_headers

ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live-spillover"
STATE_TS = "2026-11-22T05:00:00.000Z"
CHANNEL = "C0OPS"
TOKEN = "xoxb-medic-test-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVER = "U0APPROVER"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 5, 1, tzinfo=UTC))


def checkout_facts() -> Facts:
    """`checkout:live` with a fixed PC floor of 20, opted in, demand peaking at 60."""
    return Facts(
        function_name="checkout", qualifier="live", tags={"medic:managed": "true"}, managed=True,
        has_reserved_concurrency=False, unreserved_concurrency=900, pc_requested=20, pc_allocated=20,
        pc_status="READY", has_autoscaling=False, spillover_invocations=340.0, peak_concurrency=60.0,
        demand_concurrency_peak=60.0,
    )  # fmt: skip


def proposed_plan(clock: ManualClock, **changes: Any) -> Plan:
    """The plan triage proposes for the spillover alarm on `checkout:live` (floor 20 → 84, needs approval)."""
    facts = checkout_facts()
    decision = decide(load_runbook(DEFAULT_RUNBOOK), "spillover", facts.values())
    actions = [
        planned
        for call in decision.actions
        for planned in get_action(call.kind).plan(Target.function("checkout", "live"), call.params, facts)
    ]
    assert check_plan(actions, facts, Settings(plans_table="p", events_table="e")) == []
    now = iso(clock.now())
    plan = Plan(
        id=plan_id(ALARM_ARN, STATE_TS), status="PROPOSED", alarm_arn=ALARM_ARN, alarm_name="checkout-live-spillover",
        state_timestamp=STATE_TS, account="123456789012", region="us-east-1", signal="spillover",
        target="checkout:live", function_name="checkout", qualifier="live",
        metric={"namespace": "AWS/Lambda", "name": "ProvisionedConcurrencySpilloverInvocations", "stat": "Sum",
                "period": 60, "dimensions": {"FunctionName": "checkout", "Resource": "checkout:live"}},
        alarm_value=340.0, alarm_threshold=0.0, recent_datapoints=[0.0, 12.0, 340.0],
        diagnosis=decision.diagnosis, rule=decision.row, mode=decision.mode, rationale=decision.rationale,
        reason=decision.reason, actions=actions, decision=decision, created_at=now, updated_at=now,
    )  # fmt: skip
    plan.approval_hash = approval_hash(plan)
    return plan.model_copy(update=changes)


def of_type(blocks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [block for block in blocks if block["type"] == kind]


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [block["text"]["text"] for block in of_type(blocks, "section")]


# --- (a) the plan card ----------------------------------------------------------------------------


def test_a_proposed_plan_card_shows_what_fired_the_diagnosis_and_the_change(clock: ManualClock) -> None:
    plan = proposed_plan(clock)

    blocks = blocks_json(plan_blocks(plan))

    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "Medic: spillover on checkout:live"
    fired, diagnosis, change = section_texts(blocks)
    assert "*Alarm* `checkout-live-spillover` → ALARM at 2026-11-22T05:00:00.000Z" in fired
    assert "ProvisionedConcurrencySpilloverInvocations (Sum, 60s): *340* vs threshold 0" in fired
    assert "*Recent datapoints* 0, 12, 340" in fired
    assert diagnosis.startswith("*Diagnosis* `pc_floor_too_low` (runbook row `floor-too-low`, mode `approve`)\n")
    assert "demand peaked at 60 warm environments (60 concurrent executions)" in diagnosis
    assert change == "*Change* (before → after)\n• `checkout:live` provisioned_concurrency: 20 → *84*"
    assert blocks[-1]["type"] == "context"
    assert blocks[-1]["elements"][0]["text"] == f":hourglass_flowing_sand: *PROPOSED* · plan `{plan.id}`"


def test_advice_left_to_a_human_is_on_the_card(clock: ManualClock) -> None:
    from medic.actions.base import PlannedAction

    advice = PlannedAction(kind="advise", target="db orders-db", primary="advice",
                           text="orders-report is not opted in: Medic leaves it alone; cap it at 40")  # fmt: skip
    plan = proposed_plan(clock)
    plan = plan.model_copy(update={"actions": [*plan.actions, advice]})

    texts = section_texts(blocks_json(plan_blocks(plan)))

    assert "*Left to you*\n• orders-report is not opted in: Medic leaves it alone; cap it at 40" in texts
    assert not any("advice only" in text for text in texts)  # a bare advise row says nothing more than its rationale


def test_the_card_shows_why_each_earlier_row_did_not_match(clock: ManualClock) -> None:
    blocks = blocks_json(plan_blocks(proposed_plan(clock)))

    why = next(b for b in of_type(blocks, "context") if "Why this row" in b["elements"][0]["text"])
    assert why["elements"][0]["text"].splitlines() == [
        "*Why this row* (runbook rows in order)",
        "✘ pc-not-ready: `pc_status != 'READY'` is false (pc_status=\"READY\")",
        "✘ autoscaling-max-reached: `has_autoscaling` is false (has_autoscaling=False)",
        "✘ autoscaling-too-slow: `has_autoscaling` is false (has_autoscaling=False)",
        "✔ floor-too-low: matched: not has_autoscaling; spillover_invocations > 0; peak_concurrency > pc_allocated",
    ]


def test_a_proposed_plan_card_has_approve_with_a_confirm_dialog_and_reject(clock: ManualClock) -> None:
    plan = proposed_plan(clock)

    (actions,) = of_type(blocks_json(plan_blocks(plan)), "actions")

    assert actions["block_id"] == f"decide:{plan.id}"
    approve, reject = actions["elements"]
    assert approve["type"] == "button"
    assert approve["text"]["text"] == "Approve"
    assert approve["action_id"] == APPROVE_ACTION_ID
    assert approve["value"] == plan.id
    assert approve["style"] == "primary"
    assert approve["confirm"]["title"]["text"] == "Apply this change?"
    assert approve["confirm"]["text"]["text"] == "Provisioned concurrency on checkout:live: 20 → 84"
    assert approve["confirm"]["confirm"]["text"] == "Apply"
    assert approve["confirm"]["deny"]["text"] == "Cancel"
    assert reject["text"]["text"] == "Reject"
    assert reject["action_id"] == REJECT_ACTION_ID
    assert reject["value"] == plan.id
    assert reject["style"] == "danger"


def test_a_decided_card_has_no_buttons_and_says_who_decided(clock: ManualClock) -> None:
    plan = proposed_plan(clock)
    note = f"approved by <@{APPROVER}> at {iso(clock.now())}"

    blocks = blocks_json(plan_blocks(plan, decided_note=note))

    assert of_type(blocks, "actions") == []
    assert note in blocks[-1]["elements"][0]["text"]


@pytest.mark.parametrize("status", ["APPROVED", "REJECTED", "EXPIRED", "APPLIED", "VERIFIED"])
def test_a_plan_that_moved_on_has_no_buttons(clock: ManualClock, status: str) -> None:
    blocks = blocks_json(plan_blocks(proposed_plan(clock, status=status)))

    assert of_type(blocks, "actions") == []
    assert f"*{status}*" in blocks[-1]["elements"][0]["text"]


def test_a_dry_run_card_has_no_buttons_and_says_it_is_a_dry_run(clock: ManualClock) -> None:
    blocks = blocks_json(plan_blocks(proposed_plan(clock, dry_run=True)))

    assert of_type(blocks, "actions") == []
    assert "DRY RUN: proposal only, never applied" in blocks[-1]["elements"][0]["text"]
    assert "provisioned_concurrency: 20 → *84*" in section_texts(blocks)[2], "the proposal is still shown"


def test_a_blocked_card_lists_the_refusals_and_has_no_buttons(clock: ManualClock) -> None:
    plan = proposed_plan(clock)
    facts = checkout_facts().model_copy(update={"managed": False, "tags": {}})
    refusals = check_plan(plan.actions, facts, Settings(plans_table="p", events_table="e"))
    blocked = plan.model_copy(update={"status": "BLOCKED", "blocked_by": refusals})

    blocks = blocks_json(plan_blocks(blocked))

    assert of_type(blocks, "actions") == []
    assert (
        "*Blocked by guardrails*\n• `opt_in_tag`: checkout is not opted in to changes by tag "
        "(limit medic:managed=true, observed None)"
    ) in section_texts(blocks)


def test_a_card_without_a_diagnosis_says_why_nothing_is_done(clock: ManualClock) -> None:
    plan = proposed_plan(clock, status="NOOP", diagnosis=None, actions=[], reason="no row of table 'spillover' matched")

    blocks = blocks_json(plan_blocks(plan))

    assert "*No action*: no row of table 'spillover' matched" in section_texts(blocks)
    assert of_type(blocks, "actions") == []


def test_very_long_texts_are_clipped_to_block_kits_limits_and_still_validate(clock: ManualClock) -> None:
    plan = proposed_plan(clock, rationale="Spillover everywhere. " * 400, target="checkout:" + "a" * 200)
    plan.actions[0].text = "Provisioned concurrency, explained at length. " * 40
    plan.actions[0].clamps = [f"clamp {n}: " + "x" * 100 for n in range(60)]

    built = plan_blocks(plan)

    for block in built:
        block.validate_json()  # raises SlackObjectFormationError past a limit
    blocks = blocks_json(built)
    assert len(blocks[0]["text"]["text"]) <= 150
    for text in section_texts(blocks):
        assert len(text) <= SECTION_TEXT_LIMIT
    diagnosis = section_texts(blocks)[1]
    assert len(diagnosis) == SECTION_TEXT_LIMIT
    assert diagnosis.endswith("…")
    (actions,) = of_type(blocks, "actions")
    confirm_text = actions["elements"][0]["confirm"]["text"]["text"]
    assert len(confirm_text) <= 300
    assert confirm_text.endswith("…")


def test_the_notification_text_summarises_the_plan(clock: ManualClock) -> None:
    plan = proposed_plan(clock)

    assert plan_summary(plan) == f"Medic PROPOSED: spillover on checkout:live — pc_floor_too_low (plan {plan.id})"


# --- (b) interaction requests ---------------------------------------------------------------------


def click(plan_id_value: str = "p-0123456789abcdef", **overrides: Any) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when someone clicks Approve on a card."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": APPROVER, "username": "ana", "name": "ana", "team_id": "T0MEDIC"},
        "team": {"id": "T0MEDIC", "domain": "medic"},
        "api_app_id": "A0MEDIC",
        "channel": {"id": CHANNEL, "name": "ops"},
        "message": {"ts": "1795410060.000100", "type": "message"},
        "response_url": "https://hooks.slack.com/actions/T0MEDIC/1/abc",
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION_ID,
                "block_id": f"decide:{plan_id_value}",
                "value": plan_id_value,
                "action_ts": "1795410070.000200",
            },
        ],
    }
    payload.update(overrides)
    return payload


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(body: bytes, *, secret: str = SIGNING_SECRET, age_s: int = 0) -> dict[str, str]:
    """Headers as Slack signs a request sent `age_s` seconds ago (negative: from the future)."""
    return slack_signed_headers(secret, body, age_s=age_s)


def refused(call: Any, *args: Any) -> SlackRequestRefused:
    with pytest.raises(SlackRequestRefused) as raised:
        call(*args)
    return raised.value


def test_a_function_url_body_is_decoded_from_base64() -> None:
    body = form(click())
    event = {
        "headers": {"X-Slack-Signature": "v0=abc", "Content-Type": "application/x-www-form-urlencoded"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }

    headers, raw = function_url_body(event)

    assert raw == body
    assert headers == {"x-slack-signature": "v0=abc", "content-type": "application/x-www-form-urlencoded"}


def test_a_plain_function_url_body_is_taken_as_utf8() -> None:
    headers, raw = function_url_body({"headers": {}, "body": "payload=%7B%7D&note=caf\u00e9", "isBase64Encoded": False})

    assert raw == "payload=%7B%7D&note=café".encode()
    assert headers == {}


def test_a_function_url_event_without_body_or_headers_is_empty() -> None:
    assert function_url_body({}) == ({}, b"")


def test_an_oversized_body_is_refused_with_413() -> None:
    body = b"payload=" + b"x" * MAX_BODY_BYTES
    plain = {"body": body.decode()}
    encoded = {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}

    assert refused(function_url_body, plain).status == 413
    assert refused(function_url_body, encoded).status == 413
    function_url_body({"body": "x" * MAX_BODY_BYTES})  # exactly at the limit is fine


def test_a_body_that_is_not_base64_is_refused_with_400() -> None:
    error = refused(function_url_body, {"body": "not base64!", "isBase64Encoded": True})

    assert (error.status, error.reason) == (400, "body is not valid base64")


def test_a_correct_fresh_signature_is_accepted() -> None:
    body = form(click())

    verify_signature(signed_headers(body), body, SIGNING_SECRET)
    verify_signature(signed_headers(body, age_s=240), body, SIGNING_SECRET)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    body = form(click())

    error = refused(verify_signature, signed_headers(body, secret="another-apps-secret"), body, SIGNING_SECRET)

    assert (error.status, error.reason) == (401, "invalid or stale Slack signature")


def test_a_body_changed_by_one_byte_is_refused() -> None:
    body = form(click("p-0123456789abcdef"))
    headers = signed_headers(body)
    tampered = body.replace(b"p-0123456789abcdef", b"p-0123456789abcdeg", 1)
    assert len(tampered) == len(body) and tampered != body

    assert refused(verify_signature, headers, tampered, SIGNING_SECRET).status == 401


@pytest.mark.parametrize(("age_s", "why"), [(301, "stale"), (3600, "replayed an hour later"), (-600, "future")])
def test_a_signature_outside_five_minutes_is_refused(age_s: int, why: str) -> None:
    body = form(click())

    assert refused(verify_signature, signed_headers(body, age_s=age_s), body, SIGNING_SECRET).status == 401, why


@pytest.mark.parametrize("missing", ["x-slack-request-timestamp", "x-slack-signature"])
def test_a_request_without_slack_headers_is_refused(missing: str) -> None:
    body = form(click())
    headers = signed_headers(body)
    del headers[missing]

    error = refused(verify_signature, headers, body, SIGNING_SECRET)

    assert (error.status, error.reason) == (401, "missing Slack signature headers")


def test_without_a_signing_secret_nothing_is_accepted() -> None:
    body = form(click())

    assert refused(verify_signature, signed_headers(body), body, "").status == 500


def test_a_timestamp_that_is_not_a_number_is_refused_with_401() -> None:
    body = form(click())
    headers = {**signed_headers(body), "x-slack-request-timestamp": "yesterday"}

    assert refused(verify_signature, headers, body, SIGNING_SECRET).status == 401


def test_a_body_that_is_not_utf8_is_refused_with_401() -> None:
    body = b"payload=\xff\xfe"
    headers = {**signed_headers(b"payload="), "x-slack-signature": "v0=" + "0" * 64}

    assert refused(verify_signature, headers, body, SIGNING_SECRET).status == 401


def test_a_block_actions_payload_is_parsed() -> None:
    payload = parse_block_actions(form(click("p-0123456789abcdef")))

    assert payload.type == "block_actions"
    assert payload.user.id == APPROVER
    assert payload.team.id == "T0MEDIC"
    assert payload.api_app_id == "A0MEDIC"
    assert payload.channel is not None and payload.channel.id == CHANNEL
    assert payload.message is not None and payload.message.ts == "1795410060.000100"
    assert [(a.action_id, a.value) for a in payload.actions] == [(APPROVE_ACTION_ID, "p-0123456789abcdef")]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (json.dumps(click()).encode(), "body is not a Slack interaction payload"),
        (b"", "body is not a Slack interaction payload"),
        (b"token=abc&user=U1", "body is not a Slack interaction payload"),
        (b"payload=not-json", "body is not a Slack interaction payload"),
        (b"payload=%7B%22type%22", "body is not a Slack interaction payload"),
        (b"payload=\xff", "body is not a Slack interaction payload"),
        (form([click()]), "only block_actions interactions are handled"),
        (form(click(type="view_submission")), "only block_actions interactions are handled"),
        (form({k: v for k, v in click().items() if k != "type"}), "only block_actions interactions are handled"),
        (form({k: v for k, v in click().items() if k != "user"}), "payload field user: Field required"),
        (form(click(user={"name": "ana"})), "payload field user.id: Field required"),
        (form(click(actions=[])), "payload field actions: List should have at least 1 item"),
    ],
    ids=[
        "json-not-form",
        "empty",
        "form-without-payload",
        "payload-not-json",
        "payload-truncated-json",
        "not-utf8",
        "payload-a-list",
        "view-submission",
        "no-type",
        "no-user",
        "user-without-id",
        "no-actions",
    ],
)
def test_anything_but_a_block_actions_payload_is_refused_with_400(body: bytes, reason: str) -> None:
    error = refused(parse_block_actions, body)

    assert error.status == 400
    assert error.reason.startswith(reason)


# --- (c) the Web API transport over HTTP, against a fake Slack ------------------------------------


@pytest.fixture
def slack_api(httpserver: HTTPServer) -> WebApiTransport:
    return WebApiTransport(TOKEN, base_url=httpserver.url_for("/api/"))


def card(clock: ManualClock) -> list[Block]:
    return plan_blocks(proposed_plan(clock))


def test_post_returns_the_ts_slack_gave_the_message(
    httpserver: HTTPServer, slack_api: WebApiTransport, clock: ManualClock
) -> None:
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": CHANNEL, "ts": "1795410060.000100", "message": {}}
    )
    blocks = card(clock)

    ts = slack_api.post(CHANNEL, "Medic PROPOSED", blocks)

    assert ts == "1795410060.000100"
    ((request, _),) = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    sent = request.get_json()
    assert sent["channel"] == CHANNEL
    assert sent["text"] == "Medic PROPOSED"
    assert sent["blocks"] == blocks_json(blocks)


def test_update_edits_the_message_in_place(
    httpserver: HTTPServer, slack_api: WebApiTransport, clock: ManualClock
) -> None:
    httpserver.expect_request("/api/chat.update", method="POST").respond_with_json(
        {"ok": True, "channel": CHANNEL, "ts": "1795410060.000100"}
    )
    blocks = plan_blocks(proposed_plan(clock, status="APPROVED"), decided_note=f"approved by <@{APPROVER}>")

    slack_api.update(CHANNEL, "1795410060.000100", "Medic APPROVED", blocks)

    ((request, _),) = httpserver.log
    assert request.path == "/api/chat.update"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    sent = request.get_json()
    assert (sent["channel"], sent["ts"], sent["text"]) == (CHANNEL, "1795410060.000100", "Medic APPROVED")
    assert sent["blocks"] == blocks_json(blocks)


def test_the_token_is_read_at_the_first_web_api_call_and_not_for_a_response_url(
    httpserver: HTTPServer, clock: ManualClock
) -> None:
    httpserver.expect_request("/actions/T0MEDIC/1/abc", method="POST").respond_with_data("ok")
    httpserver.expect_request("/api/chat.update", method="POST").respond_with_json({"ok": True, "ts": "1.000100"})
    reads: list[str] = []

    def token() -> str:
        reads.append(TOKEN)
        return TOKEN

    transport = WebApiTransport(token, base_url=httpserver.url_for("/api/"))
    blocks = card(clock)

    transport.replace(httpserver.url_for("/actions/T0MEDIC/1/abc"), CHANNEL, "1.000100", "Medic APPROVED", blocks)
    assert reads == []
    transport.update(CHANNEL, "1.000100", "Medic APPROVED", blocks)
    transport.update(CHANNEL, "1.000100", "Medic APPROVED", blocks)

    assert reads == [TOKEN]
    assert [r.headers.get("Authorization") for r, _ in httpserver.log] == [None, f"Bearer {TOKEN}", f"Bearer {TOKEN}"]


def test_reply_posts_in_the_thread(httpserver: HTTPServer, slack_api: WebApiTransport) -> None:
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": CHANNEL, "ts": "1795410090.000300"}
    )

    ts = slack_api.reply(CHANNEL, "1795410060.000100", "Verified: the alarm is back to OK.")

    assert ts == "1795410090.000300"
    ((request, _),) = httpserver.log
    assert request.get_json()["thread_ts"] == "1795410060.000100"


def test_a_rate_limited_post_is_retried_after_retry_after(
    httpserver: HTTPServer, slack_api: WebApiTransport, clock: ManualClock
) -> None:
    httpserver.expect_oneshot_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": CHANNEL, "ts": "1795410061.000100"}
    )
    started = time.monotonic()

    ts = slack_api.post(CHANNEL, "Medic PROPOSED", card(clock))

    assert ts == "1795410061.000100"
    assert len(httpserver.log) == 2
    assert [response.status_code for _, response in httpserver.log] == [429, 200]
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"


def test_an_error_from_slack_raises_slack_api_error(
    httpserver: HTTPServer, slack_api: WebApiTransport, clock: ManualClock
) -> None:
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": False, "error": "channel_not_found"}
    )

    with pytest.raises(SlackApiError) as raised:
        slack_api.post("C0GONE", "Medic PROPOSED", card(clock))

    assert raised.value.response["error"] == "channel_not_found"
    assert len(httpserver.log) == 1, "a definitive error is not retried"


# --- (d) the console transport --------------------------------------------------------------------


def console(clock: ManualClock, *, show_json: bool) -> tuple[ConsoleTransport, io.StringIO]:
    stream = io.StringIO()
    transport = ConsoleTransport(stream, show_json=show_json, ts=lambda: f"{int(clock.now().timestamp())}.000100")
    return transport, stream


def test_the_console_renders_a_card_readably(clock: ManualClock) -> None:
    transport, stream = console(clock, show_json=False)
    plan = proposed_plan(clock)

    ts = transport.post("ops", plan_summary(plan), plan_blocks(plan))

    out = stream.getvalue()
    assert ts == f"{int(clock.now().timestamp())}.000100"
    assert f"┌─ Slack → #ops (new message ts={ts})" in out
    assert "│ MEDIC: SPILLOVER ON CHECKOUT:LIVE\n│ ═══" in out
    assert "│ Diagnosis `pc_floor_too_low` (runbook row `floor-too-low`, mode `approve`)" in out
    assert "│ • `checkout:live` provisioned_concurrency: 20 → 84" in out
    assert "│ [ Approve ]  [ Reject ]" in out
    assert f"│ :hourglass_flowing_sand: PROPOSED · plan `{plan.id}`" in out
    assert "Block Kit JSON" not in out
    assert all(len(line) <= 100 for line in out.splitlines() if line.startswith("│ ") and "`" not in line)


def test_the_console_prints_the_block_kit_json_when_asked(clock: ManualClock) -> None:
    transport, stream = console(clock, show_json=True)
    blocks = plan_blocks(proposed_plan(clock))

    transport.post("ops", "Medic PROPOSED", blocks)

    out = stream.getvalue()
    _, _, printed = out.partition("  Block Kit JSON:\n")
    assert json.loads(printed) == blocks_json(blocks)


def test_the_console_keeps_messages_and_updates_them_in_place(clock: ManualClock) -> None:
    transport, stream = console(clock, show_json=False)
    plan = proposed_plan(clock)

    first = transport.post("ops", "one", plan_blocks(plan))
    second = transport.post("ops", "two", plan_blocks(plan))
    transport.update("ops", first, "decided", plan_blocks(plan, decided_note="rejected by <@U0APPROVER>"))
    reply = transport.reply("ops", first, "Nothing was changed.")

    assert second == first[:-6] + "000101", "two messages in the same second get distinct ts"
    assert reply == first[:-6] + "000102"
    assert set(transport.messages) == {first, second}
    assert transport.messages[first]["text"] == "decided"
    assert of_type(transport.messages[first]["blocks"], "actions") == []
    assert of_type(transport.messages[second]["blocks"], "actions") != []
    assert transport.replies == [{"channel": "ops", "thread_ts": first, "ts": reply, "text": "Nothing was changed."}]
    out = stream.getvalue()
    assert f"(message ts={first} updated in place)" in out
    assert f"┆ Slack thread reply (on {first}): Nothing was changed." in out


@pytest.mark.parametrize(
    ("block", "lines"),
    [
        ({"type": "header", "text": {"type": "plain_text", "text": "Medic: throttles"}},
         ["MEDIC: THROTTLES", "═" * 16]),
        ({"type": "section", "text": {"type": "mrkdwn", "text": "*Bold* words\nsecond line"}},
         ["Bold words", "second line"]),
        ({"type": "divider"}, ["─" * 40]),
        ({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}}]},
         ["[ Go ]"]),
        ({"type": "image", "image_url": "https://example.com/x.png", "alt_text": "x"}, ["<image block>"]),
    ],
    ids=["header", "section", "divider", "actions", "other"],
)  # fmt: skip
def test_each_block_kind_renders_as_text(block: dict[str, Any], lines: list[str]) -> None:
    assert render_block(block) == lines


def test_a_long_section_wraps_for_a_terminal() -> None:
    lines = render_block({"type": "section", "text": {"type": "mrkdwn", "text": "word " * 60}})

    assert len(lines) > 1
    assert all(len(line) <= 96 for line in lines)


# --- (e) links, the two-person note, and the rendered example in docs/ -----------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "slack-card-example.json"


def test_the_card_links_the_alarm_and_the_function_in_the_console(clock: ManualClock) -> None:
    blocks = blocks_json(plan_blocks(proposed_plan(clock)))

    [links] = [b for b in of_type(blocks, "context") if "console.aws.amazon.com" in b["elements"][0]["text"]]
    assert links["elements"][0]["text"] == (
        "<https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/"
        "checkout-live-spillover|Alarm in the console> · <https://us-east-1.console.aws.amazon.com/lambda/home"
        "?region=us-east-1#/functions/checkout/aliases/live|checkout:live in Lambda>"
    )
    assert blocks.index(links) == len(blocks) - 4, "above the divider, the buttons and the status line"


def test_one_of_two_approvals_keeps_the_buttons_and_says_so(clock: ManualClock) -> None:
    plan = proposed_plan(clock, decided_by=[APPROVER])
    note = f":one: 1 of 2 approvals: <@{APPROVER}> at {iso(clock.now())}; a second approver is needed"

    blocks = blocks_json(plan_blocks(plan, approval_note=note))

    assert [e["action_id"] for e in of_type(blocks, "actions")[0]["elements"]] == [APPROVE_ACTION_ID, REJECT_ACTION_ID]
    assert blocks[-1]["elements"][0]["text"] == f":hourglass_flowing_sand: *PROPOSED* · {note} · plan `{plan.id}`"
    decided = blocks_json(plan_blocks(plan, approval_note=note, decided_note="rejected by <@U0SECOND>"))
    assert of_type(decided, "actions") == [] and note not in decided[-1]["elements"][0]["text"]


def example_message(clock: ManualClock) -> dict[str, Any]:
    """The message triage posts for the spillover plan, costs included: what docs/slack-card-example.json shows."""
    from medic.planning.cost import annotate_costs

    plan = proposed_plan(clock)
    annotate_costs(plan.actions, checkout_facts(), plan.region)
    return {"channel": CHANNEL, "text": plan_summary(plan), "blocks": blocks_json(plan_blocks(plan))}


def test_the_rendered_example_in_docs_is_current(clock: ManualClock) -> None:
    message = example_message(clock)
    rendered = json.dumps(message, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("MEDIC_UPDATE_DOCS") == "1":
        EXAMPLE.write_text(rendered, encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8") == rendered, (
        "docs/slack-card-example.json is stale: rerun this test with MEDIC_UPDATE_DOCS=1"
    )
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["header", "section", "section", "context", "section", "context", "divider", "actions", "context"]
    assert "Cost: " in message["blocks"][4]["text"]["text"]
