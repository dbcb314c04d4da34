"""ChatOps end to end: forged and replayed Slack requests against the real interactions handler, on the embedded AWS.

Every attack of issue 5 is refused with its HTTP status, changes nothing in AWS (the plan stays PROPOSED, nothing is
queued for the executor, the function's provisioned concurrency stays 20) and leaves an entry in the remediation
log: on the plan's chain once the request names a plan that exists (`approval_refused`, `expired`), else on the
day's `refused#…` chain (`request_refused`). Requests are signed with slack_sdk's signer, as Slack signs them.
Also here: the two-person rule through `medic simulate`, Slack being down, and the endpoint's cold imports.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from medic.chatops.requests import APPROVE_ACTION_ID, MAX_BODY_BYTES, REJECT_ACTION_ID
from medic.chatops.transport import WebApiTransport
from medic.plan import Plan
from medic.runtime import Runtime, install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import APP, APPROVER, CHANNEL, SECOND_APPROVER, TEAM, Simulation, Story, simulate
from medic_tools.world.server import EmbeddedAWS
from support import slack_signed_headers

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # PC 20 → 72 on checkout:live, one approver
MEMORY = ROOT / "scenarios" / "p99-cpu-starved.yaml"  # set_memory: a high-risk plan, two approvers


@pytest.fixture
def world(aws: EmbeddedAWS) -> Iterator[Callable[..., Simulation]]:
    def build(path: Path = FLOOR, **settings: Any) -> Simulation:
        scenario = load_scenario(path)
        if settings:
            scenario = scenario.model_copy(update={"settings": {**scenario.settings, **settings}})
        sim = Simulation(scenario, str(path), aws.endpoint_url, Story(None))
        sim.setup()
        return sim

    yield build
    install(None)


@pytest.fixture
def sim(world: Callable[..., Simulation]) -> Simulation:
    return world()


def proposed(sim: Simulation) -> Plan:
    [plan] = sim.triage(sim.alarm_events())
    assert plan.status == "PROPOSED" and plan.slack.ts
    return plan


def rt(sim: Simulation) -> Runtime:
    assert sim.runtime is not None
    return sim.runtime


def payload(
    plan: Plan, *, action_id: str = APPROVE_ACTION_ID, user: str = APPROVER, **overrides: Any
) -> dict[str, Any]:
    """The `block_actions` payload of a click on the plan's card (as Slack sends it)."""
    body: dict[str, Any] = {
        "type": "block_actions", "user": {"id": user, "username": "oncall"}, "api_app_id": APP,
        "team": {"id": TEAM}, "channel": {"id": CHANNEL}, "message": {"ts": plan.slack.ts, "type": "message"},
        "response_url": f"https://hooks.slack.com/actions/{TEAM}/1/x",
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"decide:{plan.id}", "value": plan.id,
                     "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    body.update(overrides)
    return body


def form(value: Any) -> bytes:
    return urlencode({"payload": json.dumps(value)}).encode()


def request(sim: Simulation, body: bytes, *, secret: str | None = None, age_s: int = 0) -> dict[str, Any]:
    """A Function URL event carrying `body`, signed `age_s` seconds ago (negative: in the future)."""
    return {
        "version": "2.0", "rawPath": "/", "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    **slack_signed_headers(secret or rt(sim).signing_secret, body, age_s=age_s),
                    "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
        "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "203.0.113.9"}},
    }  # fmt: skip


def send(sim: Simulation, event: dict[str, Any]) -> tuple[int, str]:
    response = sim.handlers["interactions"](event, None)
    return response["statusCode"], json.loads(response["body"])["text"]


def refused(sim: Simulation, event: dict[str, Any]) -> str:
    """Send a click that changes nothing: Slack gets a 200 (any other status shows only a warning icon) and the
    clicker, alone, is told why through the click's response_url. Return what they were told."""
    response = sim.handlers["interactions"](event, None)
    body = json.loads(response["body"])
    assert (response["statusCode"], body["response_type"], body["replace_original"]) == (200, "ephemeral", False)
    clicker = json.loads(parse_qs(base64.b64decode(event["body"]).decode())["payload"][0])
    told = sim.console.whispers[-1]
    assert (told["user"], told["text"], told["via"]) == (clicker["user"]["id"], body["text"], clicker["response_url"])
    return str(body["text"])


def queued(sim: Simulation) -> int:
    attributes = sim.clients.sqs.get_queue_attributes(
        QueueUrl=sim.infra["queue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def provisioned(sim: Simulation) -> int:
    config = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    return int(config["RequestedProvisionedConcurrentExecutions"])


def assert_nothing_changed(sim: Simulation, plan: Plan) -> None:
    current = rt(sim).ledger.get(plan.id)
    assert current is not None and current.status == "PROPOSED" and current.decided_by == []
    assert queued(sim) == 0, "nothing was enqueued for the executor"
    sim.drain_executor()
    assert provisioned(sim) == 20, "no AWS change"


def refused_chain(sim: Simulation) -> list[dict[str, Any]]:
    return [e.data for e in rt(sim).ledger.events(f"refused#{sim.clock.now():%Y-%m-%d}") if e.kind == "request_refused"]


def plan_refusals(sim: Simulation, plan: Plan) -> list[dict[str, Any]]:
    return [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "approval_refused"]


# -- attacks before the plan is known: refused, nothing changed, kept in the day's refused chain ---------------


def _unsigned(sim: Simulation, plan: Plan) -> dict[str, Any]:
    event = request(sim, form(payload(plan)))
    del event["headers"]["x-slack-signature"], event["headers"]["x-slack-request-timestamp"]
    return event


def _wrong_signature(sim: Simulation, plan: Plan) -> dict[str, Any]:
    event = request(sim, form(payload(plan)))
    event["headers"]["x-slack-signature"] = "v0=" + "0" * 64
    return event


def _one_changed_byte(sim: Simulation, plan: Plan) -> dict[str, Any]:
    body = form(payload(plan, user=APPROVER))
    event = request(sim, body)
    tampered = body.replace(APPROVER.encode(), (APPROVER[:-1] + "X").encode())  # another user, same length
    assert len(tampered) == len(body) and sum(a != b for a, b in zip(body, tampered, strict=True)) == 1
    event["body"] = base64.b64encode(tampered).decode()
    return event


def _forged_timestamp(sim: Simulation, plan: Plan) -> dict[str, Any]:
    old = request(sim, form(payload(plan)), age_s=600)  # a captured request, too old to replay ...
    old["headers"]["x-slack-request-timestamp"] = str(int(time.time()))  # ... its timestamp header rewritten
    return old


def _other_signature_scheme(sim: Simulation, plan: Plan) -> dict[str, Any]:
    event = request(sim, form(payload(plan)))
    event["headers"]["x-slack-signature"] = event["headers"]["x-slack-signature"].replace("v0=", "v1=")
    return event


ATTACKS_BEFORE_THE_PLAN: dict[str, tuple[Callable[[Simulation, Plan], dict[str, Any]], int, str]] = {
    "missing-signature": (_unsigned, 401, "missing Slack signature headers"),
    "wrong-signature": (_wrong_signature, 401, "invalid or stale Slack signature"),
    "one-changed-byte": (_one_changed_byte, 401, "invalid or stale Slack signature"),
    "wrong-secret": (lambda s, p: request(s, form(payload(p)), secret="another-apps-signing-secret"), 401,
                     "invalid or stale Slack signature"),
    "stale-timestamp": (lambda s, p: request(s, form(payload(p)), age_s=301), 401, "invalid or stale Slack signature"),
    "future-timestamp": (lambda s, p: request(s, form(payload(p)), age_s=-600), 401,
                         "invalid or stale Slack signature"),
    "forged-timestamp-header": (_forged_timestamp, 401, "invalid or stale Slack signature"),
    "forged-signature-scheme": (_other_signature_scheme, 401, "invalid or stale Slack signature"),
    "payload-not-json": (lambda s, p: request(s, b"payload=%7Bnot+json"), 400,
                         "body is not a Slack interaction payload"),
    "body-not-a-form": (lambda s, p: request(s, json.dumps(payload(p)).encode()), 400,
                        "body is not a Slack interaction payload"),
    "oversized-body": (lambda s, p: request(s, form(payload(p, padding="x" * MAX_BODY_BYTES))), 413,
                       f"body larger than {MAX_BODY_BYTES} bytes"),
    "unknown-action-id": (lambda s, p: request(s, form(payload(p, action_id="medic_apply_now"))), 400,
                          "unknown action_id 'medic_apply_now'"),
    "not-a-plan-id": (lambda s, p: request(s, form({**payload(p), "actions": [{"action_id": APPROVE_ACTION_ID,
                                                                             "value": "*"}]})), 400,
                      "the button's value '*' is not a plan id"),
    "unknown-plan": (lambda s, p: request(s, form({**payload(p), "actions": [{"action_id": APPROVE_ACTION_ID,
                                                                            "value": "p-ffffffffffffffff"}]})), 404,
                     "no plan p-ffffffffffffffff"),
    "not-block-actions": (lambda s, p: request(s, form(payload(p, type="view_submission"))), 400,
                          "only block_actions interactions are handled"),
}  # fmt: skip


@pytest.mark.parametrize("attack", sorted(ATTACKS_BEFORE_THE_PLAN))
def test_an_attack_before_the_plan_is_refused_changes_nothing_and_is_logged(sim: Simulation, attack: str) -> None:
    build, status, reason = ATTACKS_BEFORE_THE_PLAN[attack]
    plan = proposed(sim)

    assert send(sim, build(sim, plan)) == (status, reason)

    assert_nothing_changed(sim, plan)
    [logged] = refused_chain(sim)
    assert (logged["status"], logged["reason"]) == (status, reason)
    assert logged["signed"] is (status not in (401, 413)), "the size is checked first, the signature next"
    assert logged["source_ip"] == "203.0.113.9" and logged["bytes"] > 0 and len(logged["sha256"]) == 64
    assert plan_refusals(sim, plan) == [], "an unverified request never writes to the plan's chain"


# -- attacks on the plan: refused (403 in the log), nothing changed, kept in the plan's chain --------------------------


ATTACKS_ON_THE_PLAN: dict[str, tuple[Callable[[Plan], dict[str, Any]], str]] = {
    "user-outside-approvers": (lambda p: payload(p, user="U0INTRUDER"), "user U0INTRUDER is not an approver"),
    "foreign-team": (lambda p: payload(p, team={"id": "T0EVIL"}), "team T0EVIL is not this workspace"),
    "foreign-app": (lambda p: payload(p, api_app_id="A0EVIL"), "app A0EVIL is not Medic"),
    "foreign-channel": (lambda p: payload(p, channel={"id": "C0ELSEWHERE"}),
                        "channel C0ELSEWHERE is not the plan's channel"),
    "another-message": (lambda p: payload(p, message={"ts": "1.000001"}),
                        "the click does not come from the plan's card"),
}  # fmt: skip


@pytest.mark.parametrize("attack", sorted(ATTACKS_ON_THE_PLAN))
def test_a_click_that_may_not_decide_is_refused_changes_nothing_and_is_logged(sim: Simulation, attack: str) -> None:
    build, reason = ATTACKS_ON_THE_PLAN[attack]
    plan = proposed(sim)
    event = request(sim, form(build(plan)))

    assert refused(sim, event) == reason

    assert_nothing_changed(sim, plan)
    [logged] = plan_refusals(sim, plan)
    assert (logged["status"], logged["reason"], logged["clicked"]) == (403, reason, APPROVE_ACTION_ID)


def test_a_replayed_click_is_refused_and_logged(sim: Simulation) -> None:
    plan = proposed(sim)
    reject = request(sim, form(payload(plan, action_id=REJECT_ACTION_ID)))

    assert send(sim, reject) == (200, f"REJECTED by <@{APPROVER}>")
    assert refused(sim, reject) == "replayed request: this exact click was handled"

    assert rt(sim).ledger.get(plan.id).status == "REJECTED"  # type: ignore[union-attr]
    assert queued(sim) == 0 and provisioned(sim) == 20
    [logged] = plan_refusals(sim, plan)
    assert (logged["status"], logged["user"]) == (409, APPROVER)
    [decision] = [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "rejection"]
    assert decision["request"] == logged["request"], "the log ties the replay to the request it repeats"


def test_a_replayed_approval_of_a_two_person_plan_is_refused_not_counted(world: Callable[..., Simulation]) -> None:
    sim = world(MEMORY)
    plan = proposed(sim)
    first = request(sim, form(payload(plan)))

    assert send(sim, first)[0] == 200
    assert refused(sim, first) == "replayed request: this exact click was handled"

    current = rt(sim).ledger.get(plan.id)
    assert current is not None and current.status == "PROPOSED" and current.decided_by == [APPROVER]
    assert queued(sim) == 0


def test_self_approval_of_a_high_risk_plan_is_refused(world: Callable[..., Simulation]) -> None:
    sim = world(MEMORY)
    plan = proposed(sim)

    first = send(sim, request(sim, form(payload(plan))))
    again = refused(sim, request(sim, form(payload(plan))))

    assert first[0] == 200 and "1 of 2 approvals" in first[1]
    assert again == f"{APPROVER} has already approved this plan: it needs a second, distinct approver"
    current = rt(sim).ledger.get(plan.id)
    assert current is not None and current.status == "PROPOSED"
    assert queued(sim) == 0
    sim.drain_executor()
    memory = sim.clients.lambda_.get_function_configuration(FunctionName="report-builder")["MemorySize"]
    assert memory == 256, "no AWS change"
    [logged] = plan_refusals(sim, plan)
    assert (logged["status"], logged["user"]) == (403, APPROVER)


def test_a_click_after_expiry_is_refused_and_the_card_says_so(sim: Simulation) -> None:
    plan = proposed(sim)
    sim.clock.advance(rt(sim).settings.approval_ttl_s + 1)

    text = refused(sim, request(sim, form(payload(plan))))

    assert text == f"This approval expired at {plan.expires_at}; nothing was changed."
    current = rt(sim).ledger.get(plan.id)
    assert current is not None and current.status == "EXPIRED"
    assert queued(sim) == 0 and provisioned(sim) == 20
    [expired] = [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "expired"]
    assert (expired["user"], expired["expires_at"]) == (APPROVER, plan.expires_at)
    shown = sim.console.messages[plan.slack.ts]
    assert not [b for b in shown["blocks"] if b["type"] == "actions"]
    assert (
        f"*EXPIRED* · expired at {plan.expires_at}; nothing was changed" in shown["blocks"][-1]["elements"][0]["text"]
    )
    assert refused(sim, request(sim, form(payload(plan)))) == text, "a later click too"
    assert [r["status"] for r in plan_refusals(sim, plan)] == [410], "the later click's refusal is logged as 410"


def test_a_click_on_a_plan_whose_live_state_drifted_changes_nothing(sim: Simulation) -> None:
    plan = proposed(sim)
    sim.clients.lambda_.put_provisioned_concurrency_config(  # a human changed it after the card was posted
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=30
    )

    # The endpoint never reads the live state (3 s, least privilege): the approval is recorded and the executor,
    # which re-reads the live state before any change, refuses it.
    assert send(sim, request(sim, form(payload(plan)))) == (200, f"APPROVED by <@{APPROVER}>")
    sim.drain_executor()

    assert rt(sim).ledger.get(plan.id).status == "DRIFTED"  # type: ignore[union-attr]
    assert provisioned(sim) == 30, "the human's change stands"
    [drifted] = [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "drifted"]
    assert drifted["live"] == {"provisioned_concurrency": 30}

    # A click on the drifted plan's card afterwards is refused as a conflict, and logged.
    late = request(sim, form(payload(plan, user=SECOND_APPROVER)))
    assert refused(sim, late).startswith("The live state drifted from this plan: nothing was changed")
    assert provisioned(sim) == 30
    assert [r["status"] for r in plan_refusals(sim, plan)] == [409]


def test_a_double_click_by_two_people_decides_once_and_tells_the_loser(sim: Simulation) -> None:
    plan = proposed(sim)

    assert send(sim, request(sim, form(payload(plan))))[0] == 200
    loser = send(sim, request(sim, form(payload(plan, action_id=REJECT_ACTION_ID, user=SECOND_APPROVER))))

    assert loser == (200, f"Already APPROVED (by {APPROVER}); your click changed nothing.")
    assert queued(sim) == 1
    [ignored] = [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "click_ignored"]
    assert (ignored["user"], ignored["status"]) == (SECOND_APPROVER, "APPROVED")


# -- the story through `medic simulate` ------------------------------------------------------------


def test_simulate_tells_the_two_person_approve_apply_thread_story(aws: EmbeddedAWS) -> None:
    out = io.StringIO()
    outcome = simulate(MEMORY, decide="approve", stream=out, show_json=False, aws=aws)

    text = out.getvalue()
    [plan] = outcome.plans
    assert plan.status == "VERIFIED" and plan.decided_by == [APPROVER, SECOND_APPROVER]
    steps = [
        f"Approval in Slack: {APPROVER} clicks Approve",
        "replaced through the click's response_url",
        "1 of 2 approvals",
        f"Approval in Slack: {SECOND_APPROVER} clicks Approve",
        f"approved by <@{APPROVER}> and <@{SECOND_APPROVER}>",
        "Executor: approved plan from SQS",
        "Slack thread reply (on ",
        ":wrench: Applied: set_memory on report-builder:live: memory_mb 256 → 512",
        ":large_green_circle: Verified",
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions), "the story is told in order"
    kinds = [event.kind for event in outcome.log]
    assert kinds.count("approval") == 2
    [graph] = [event.data for event in outcome.log if event.kind == "metric_graph"]
    assert graph == {"posted": False, "reason": "GetMetricWidgetImage: NotImplemented", "fallback": "text datapoints"}


# -- Slack being down ------------------------------------------------------------------------------


def _with_dead_slack(sim: Simulation) -> Runtime:
    with socket.socket() as probe:  # a port nobody listens on: every Slack call is refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    old = rt(sim)
    broken = Runtime(old.settings, clients=old.clients, clock=old.clock, slack=WebApiTransport("xoxb-x", dead))
    install(broken)
    sim.runtime = broken
    return broken


@pytest.mark.usefixtures("no_slack_backoff")
def test_slack_down_never_lets_an_approval_mode_plan_apply(sim: Simulation) -> None:
    runtime = _with_dead_slack(sim)
    [plan] = sim.triage(sim.alarm_events())

    assert plan.status == "PROPOSED" and not plan.slack.ts
    failed = [e.data for e in runtime.ledger.events(plan.id) if e.kind == "slack_failed"]
    assert failed and failed[0]["error"] == "SlackUnreachable"
    sim.drain_executor()
    assert queued(sim) == 0 and provisioned(sim) == 20
    # No card, so no click can come from one: a forged one for the plan is refused.
    status, text = send(sim, request(sim, form(payload(plan))))
    assert (status, text) == (200, "the plan has no card in Slack: a click cannot come from it")
    [logged] = plan_refusals(sim, plan)
    assert logged["status"] == 403


@pytest.mark.usefixtures("no_slack_backoff")
def test_slack_down_never_blocks_an_auto_mode_fix(world: Callable[..., Simulation], tmp_path: Path) -> None:
    override = tmp_path / "auto-floor.yaml"
    override.write_text(
        "runbook: auto-floor\nversion: 1\nextends: lambda-latency\ntables:\n  spillover:\n    rows:\n"
        "      - id: floor-too-low\n"
        '        when: ["not has_autoscaling", "spillover_invocations > 0", "peak_concurrency > pc_allocated"]\n'
        "        diagnosis: pc_floor_too_low\n        mode: auto\n        actions:\n"
        '          - {kind: set_provisioned_concurrency, params: {concurrency: "ceil(peak_concurrency * 1.2)"}}\n'
        "        rationale: The team lets Medic raise this floor on its own.\n",
        encoding="utf-8",
    )
    sim = world(FLOOR, runbook_overrides=str(override))
    runtime = _with_dead_slack(sim)

    [plan] = sim.triage(sim.alarm_events())
    assert plan.status == "APPROVED" and plan.mode == "auto"
    sim.drain_executor()

    applied = runtime.ledger.get(plan.id)
    assert applied is not None and applied.status == "APPLIED"
    assert provisioned(sim) == applied.changes[0].after["provisioned_concurrency"] > 20
    kinds = [e.kind for e in runtime.ledger.events(plan.id)]
    assert "slack_failed" in kinds and "aws_call" in kinds


# -- the endpoint's cold start: only the verify → authorize → write → enqueue path is imported -----


def test_a_fresh_process_decides_without_importing_the_pipeline(world: Callable[..., Simulation]) -> None:
    sim = world(FLOOR, approval_ttl_s=86400)  # the fresh process reads the system clock, not the simulator's
    plan = proposed(sim)
    settings = rt(sim).settings
    env = {
        **os.environ, "AWS_REGION": "us-east-1", "MEDIC_PLANS_TABLE": settings.plans_table,
        "MEDIC_EVENTS_TABLE": settings.events_table, "MEDIC_EXECUTOR_QUEUE_URL": settings.executor_queue_url,
        "MEDIC_SLACK_SIGNING_SECRET_ARN": settings.slack_signing_secret_arn, "MEDIC_APPROVERS": APPROVER,
        "MEDIC_SLACK_TEAM_ID": TEAM, "MEDIC_SLACK_APP_ID": APP, "MEDIC_DRY_RUN": "false",
    }  # fmt: skip
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'interactions')!r})\n"
        "import app\n"
        "at_import = sorted(sys.modules)\n"
        "response = app.handler(json.loads(sys.stdin.read()), None)\n"
        "print(json.dumps({'status': response['statusCode'], 'at_import': at_import, 'after': sorted(sys.modules)}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], input=json.dumps(request(sim, form(payload(plan)))),
                         capture_output=True, text=True, env=env, check=False, timeout=60)  # fmt: skip

    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["status"] == 200
    assert rt(sim).ledger.get(plan.id).status == "APPROVED"  # type: ignore[union-attr]
    heavy_at_import = {
        "boto3",
        "botocore",
        "medic.ledger.store",
        "medic.plan",
        "medic.chatops.blocks",
        "slack_sdk.web",
    }
    assert heavy_at_import.isdisjoint(result["at_import"]), "nothing heavy before the first request"
    never = {
        "medic.usecases.triage",
        "medic.usecases.execute",
        "medic.planning.make",
        "medic.planning.guardrails",
        "medic.planning.cost",
        "medic_tools.simulate",
        "slack_bolt",
        "moto",
    }
    assert never.isdisjoint(result["after"]), sorted(never & set(result["after"]))
