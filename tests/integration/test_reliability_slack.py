"""Slack faults through the real handlers (docs/reliability.md): rate limiting that outlasts slack_sdk's retries,
5xx, a Slack that hangs, and the card deleted while its plan is being decided and applied.

Slack is a fake Web API over real HTTP (pytest-httpserver) that records every call and answers as told; AWS is the
embedded world. Whatever Slack does, a decision is never undone, an approval-mode plan is never applied without a
card to click, and the failure is in the remediation log.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from floor import current, pc, rt
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from medic.chatops.requests import APPROVE_ACTION_ID
from medic.chatops.transport import WebApiTransport
from medic.plan import Plan
from medic.runtime import Runtime, install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import APP, APPROVER, CHANNEL, TEAM, Simulation, Story
from medic_tools.simulation_steps import after_fix
from medic_tools.world import alarms
from medic_tools.world.server import EmbeddedAWS
from support import slack_signed_headers

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78


@dataclass
class FakeSlack:
    """Slack's Web API and response_urls: answers `ok` with a fresh ts unless told otherwise per method."""

    server: HTTPServer
    answers: dict[str, Callable[[Request], Response]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _ts: int = 1795410060

    def handle(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[-1] if request.path.startswith("/api/") else "response_url"
        body: dict[str, Any] = {}
        if request.is_json:
            body = request.get_json() or {}
        elif request.form:
            body = {key: value for key, value in request.form.items()}
        self.calls.append((method, body))
        if method in self.answers:
            return self.answers[method](request)
        self._ts += 1
        return Response(json.dumps({"ok": True, "channel": CHANNEL, "ts": f"{self._ts}.000100"}),
                        content_type="application/json")  # fmt: skip

    def called(self, method: str) -> list[dict[str, Any]]:
        return [body for name, body in self.calls if name == method]

    @property
    def api(self) -> str:
        return self.server.url_for("/api/")


def slack_error(error: str, status: int = 200, **headers: str) -> Callable[[Request], Response]:
    body = json.dumps({"ok": False, "error": error})
    return lambda request: Response(body, status=status, headers=headers, content_type="application/json")


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    fake = FakeSlack(httpserver)
    httpserver.expect_request(re.compile(r"/.*")).respond_with_handler(fake.handle)
    return fake


@pytest.fixture
def sim(aws: EmbeddedAWS, slack: FakeSlack) -> Iterator[Simulation]:
    """The fixed-floor world; Medic's Slack transport is slack_sdk's WebClient talking to the fake over HTTP."""
    scenario = load_scenario(FLOOR).model_copy(update={"settings": {"slack_api_url": slack.api}})
    simulation = Simulation(scenario, str(FLOOR), aws.endpoint_url, Story(None))
    simulation.setup()
    old = simulation.runtime
    assert old is not None
    web = Runtime(old.settings, clients=old.clients, clock=old.clock, slack=WebApiTransport("xoxb-test", slack.api),
                  metrics_stream=old.metrics_stream)  # fmt: skip
    install(web)
    simulation.runtime = web
    yield simulation
    install(None)


def log(sim: Simulation, plan: Plan, kind: str) -> list[dict[str, Any]]:
    return [event.data for event in rt(sim).ledger.events(plan.id) if event.kind == kind]


def click(sim: Simulation, plan: Plan, slack: FakeSlack) -> dict[str, Any]:
    """An Approve click on the plan's card, signed as Slack signs it; its response_url points at the fake."""
    payload = {
        "type": "block_actions", "user": {"id": APPROVER, "username": "oncall"}, "api_app_id": APP,
        "team": {"id": TEAM}, "channel": {"id": CHANNEL}, "message": {"ts": plan.slack.ts, "type": "message"},
        "response_url": slack.server.url_for(f"/actions/{TEAM}/1/abc"),
        "actions": [{"type": "button", "action_id": APPROVE_ACTION_ID, "block_id": f"decide:{plan.id}",
                     "value": plan.id, "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    event = {
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    **slack_signed_headers(rt(sim).signing_secret, body)},
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "203.0.113.9"}},
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
    }  # fmt: skip
    return sim.handlers["interactions"](event, None)


# -- rate limiting and 5xx at the card ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [slack_error("ratelimited", 429, **{"Retry-After": "1"}), slack_error("internal_error", 500)],
    ids=["429-past-the-retries", "5xx"],
)
def test_slack_failing_at_the_card_keeps_the_plan_unapplied_and_logged_and_a_redelivery_posts_it(
    sim: Simulation, slack: FakeSlack, answer: Callable[[Request], Response]
) -> None:
    slack.answers["chat.postMessage"] = answer
    [event] = sim.alarm_events()

    started = time.monotonic()
    [plan] = sim.triage([event])

    assert plan.status == "PROPOSED" and not plan.slack.ts
    [failed] = log(sim, plan, "slack_failed")
    assert failed["error"] == "SlackApiError"
    posts = len(slack.called("chat.postMessage"))
    if "ratelimited" in failed["detail"]:
        assert posts == 3 and time.monotonic() - started >= 2.0, "Retry-After honoured twice, then given up"
    else:
        assert posts == 1 and "internal_error" in failed["detail"]
    sim.drain_executor()
    assert pc(sim) == 20, "no card, no click: an approval-mode plan is never applied"

    del slack.answers["chat.postMessage"]  # Slack is back; the same event again (a redelivery or `medic replay`)
    assert sim.handlers["triage"](event, None)["duplicate"] is True
    assert current(sim, plan).slack.ts and len(slack.called("chat.postMessage")) == posts + 1
    assert len(log(sim, plan, "slack_posted")) == 1


# -- Slack hangs ---------------------------------------------------------------------------------------------------


def test_a_slack_that_hangs_is_given_up_on_in_bounded_time_and_the_plan_stays_unapplied(
    sim: Simulation, slack: FakeSlack
) -> None:
    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(10)
        return Response(json.dumps({"ok": True, "ts": "1.1"}), content_type="application/json")

    slack.answers["chat.postMessage"] = hang
    transport = rt(sim).slack
    assert isinstance(transport, WebApiTransport)
    transport.client.timeout = 1  # Medic's is 5 s; the path is the same

    started = time.monotonic()
    try:
        [plan] = sim.triage(sim.alarm_events())
    finally:
        release.set()

    assert time.monotonic() - started < 8
    assert plan.status == "PROPOSED" and not plan.slack.ts
    [failed] = log(sim, plan, "slack_failed")
    assert failed["error"] == "SlackUnreachable" and "timed out" in failed["detail"]
    sim.drain_executor()
    assert pc(sim) == 20


# -- the card deleted mid-flow -------------------------------------------------------------------------------------


def test_a_card_deleted_mid_flow_never_undoes_the_decision_nor_stops_the_fix(sim: Simulation, slack: FakeSlack) -> None:
    [plan] = sim.triage(sim.alarm_events())
    assert plan.slack.ts
    # Someone deletes the card right after clicking Approve: every later edit or thread reply is refused.
    slack.answers["response_url"] = lambda request: Response("message_not_found", status=404)
    slack.answers["chat.update"] = slack_error("message_not_found")
    slack.answers["chat.postMessage"] = slack_error("thread_not_found")

    response = click(sim, plan, slack)
    assert response["statusCode"] == 200 and "APPROVED" in json.loads(response["body"])["text"]
    assert [name for name, _ in slack.calls[-2:]] == ["response_url", "chat.update"]
    [failed] = log(sim, plan, "slack_failed")
    assert (failed["call"], failed["error"]) == ("chat.update", "SlackApiError")
    assert "message_not_found" in failed["detail"]

    sim.drain_executor()
    assert current(sim, plan).status == "APPLIED" and pc(sim) == 78
    after_fix(sim.scenario, sim.clients, sim.clock, sim.region, alarms, sim.handlers["triage"], sim.story)
    sim.handlers["verifier"]({"source": "aws.events"}, None)

    assert current(sim, plan).status == "VERIFIED"
    replies = [body for body in slack.called("chat.postMessage") if body.get("thread_ts") == plan.slack.ts]
    assert replies, "the thread replies were attempted (and refused), never retried in a loop"
    assert len(replies) <= 3
    assert rt(sim).ledger.verify_chain(plan.id) is None
