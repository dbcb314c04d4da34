"""`medic replay` against the embedded AWS over HTTP: saved events, the triage and executor DLQs, rejected inputs and
approved plans whose hand-over failed are re-driven through the pipeline, idempotently; a dry run by default.

The command runs as an operator would run it: `medic_tools.cli.main` with MEDIC_* and AWS_* pointing at the world. The
world's metrics end now (the command's clock is the system's), so a replayed alarm is decided on live facts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff
from floor import pc, rt

import medic.usecases.triage
from medic.aws import RETRY_MAX_ATTEMPTS
from medic.clock import iso, parse_iso
from medic.errors import EventError
from medic.log import configure
from medic.plan import Plan
from medic.runtime import install
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
BY = "U0ONCALL"
configure()  # Medic's logs bound to the session's stderr now, not to one test's `capsys` (closed after it)
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(InjectedFault\\):UserWarning")


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def sim(aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulation]:
    """The fixed-floor world with its metrics ending now, Medic's tables and queues, and the operator's environment
    for `medic replay` (the same tables and executor queue as the deployed functions)."""
    simulation = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    simulation.clock.set(datetime.now(UTC).replace(second=0, microsecond=0))
    simulation.setup()
    for name, value in {
        "MEDIC_PLANS_TABLE": simulation.infra["plans"], "MEDIC_EVENTS_TABLE": simulation.infra["events"],
        "MEDIC_EXECUTOR_QUEUE_URL": simulation.infra["queue"], "MEDIC_DRY_RUN": "false", "MEDIC_APPROVERS": BY,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("MEDIC_SLACK_BOT_TOKEN_SECRET_ARN", "MEDIC_RUNBOOK", "MEDIC_RUNBOOK_OVERRIDES", "MEDIC_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    yield simulation
    install(None)
    moto_ext.reset_knobs()


def plans(sim: Simulation) -> list[Plan]:
    return rt(sim).ledger.all_plans()


def kinds(sim: Simulation, plan_id: str) -> list[str]:
    return [event.kind for event in rt(sim).ledger.events(plan_id)]


def replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    """`medic replay ARGV --json`: the exit status and the per-input results."""
    status = main(["replay", *argv, "--json"])
    out = capsys.readouterr().out
    return status, (json.loads(out) if status != 2 else [])


def queue(sim: Simulation, name: str) -> str:
    return str(sim.clients.sqs.create_queue(QueueName=name)["QueueUrl"])


def depth(sim: Simulation, url: str) -> int:
    attributes = sim.clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def bodies(sim: Simulation, url: str) -> list[str]:
    messages = sim.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [m["Body"] for m in messages.get("Messages", [])]


def async_failure(event: dict[str, Any]) -> dict[str, Any]:
    """What Lambda's OnFailure destination (the triage DLQ) receives when triage failed past its retries."""
    return {
        "version": "1.0", "timestamp": iso(datetime.now(UTC)),
        "requestContext": {"requestId": "e4b46cbf-b738-4b8a-9c2f-0f8a5e2d7c11", "condition": "RetriesExhausted",
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:medic-triage:$LATEST",
                           "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "ClientError", "errorMessage": "InternalServerError (reached max retries)"},
    }  # fmt: skip


def later(event: dict[str, Any], minutes: int) -> dict[str, Any]:
    """The same alarm's next ALARM transition, `minutes` later."""
    moved = copy.deepcopy(event)
    fired = parse_iso(event["detail"]["state"]["timestamp"].replace("+0000", "+00:00"))
    moved["detail"]["state"]["timestamp"] = iso(fired + timedelta(minutes=minutes))
    moved["id"] = f"later-{minutes}"
    return moved


# -- a saved event -------------------------------------------------------------------------------------------------


def test_a_saved_event_is_a_dry_run_by_default_and_replaying_it_twice_makes_one_plan(
    sim: Simulation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [event] = sim.alarm_events()
    saved = tmp_path / "alarm.json"
    saved.write_text(json.dumps(event), encoding="utf-8")

    status, [dry] = replay(capsys, str(saved))
    assert (status, dry["outcome"], dry["kind"]) == (0, "would_triage", "alarm_event")
    assert plans(sim) == [], "a dry run re-drives nothing"
    pid = dry["plan_id"]
    assert dry["detail"] == f"makes plan {pid}"

    status, [first] = replay(capsys, str(saved), "--execute", "--by", BY)
    status_again, [second] = replay(capsys, str(saved), "--execute", "--by", BY)

    assert (status, first["outcome"], first["plan_id"]) == (0, "triaged", pid)
    assert (status_again, second["outcome"]) == (0, "duplicate")
    [plan] = plans(sim)
    assert plan.id == pid and plan.status == "PROPOSED" and plan.diagnosis == "pc_floor_too_low"
    replayed = [e.data for e in rt(sim).ledger.events(pid) if e.kind == "replayed"]
    assert [(r["outcome"], r["by"], r["source"]) for r in replayed] == [
        ("triaged", BY, f"file:{saved}"), ("duplicate", BY, f"file:{saved}")
    ]  # fmt: skip
    assert rt(sim).ledger.verify_chain(pid) is None
    assert main(["replay", str(saved)]) == 0 and "exists (PROPOSED)" in capsys.readouterr().out


# -- the triage DLQ ------------------------------------------------------------------------------------------------


def test_the_triage_dlq_is_re_driven_and_only_what_was_handled_is_deleted(
    sim: Simulation, capsys: pytest.CaptureFixture[str]
) -> None:
    [event] = sim.alarm_events()
    dlq = queue(sim, "medic-triage-dlq")
    sqs = sim.clients.sqs
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event), MessageAttributes={  # EventBridge's dead letter
        "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Lambda throttled the invocation"},
    })  # fmt: skip
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(async_failure(event)))  # the same transition, from Lambda
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(async_failure(later(event, 5))))  # the alarm fired again
    sqs.send_message(QueueUrl=dlq, MessageBody="{truncated")

    status, dry = replay(capsys, "--queue", dlq)
    assert status == 1 and depth(sim, dlq) == 4, "a dry run deletes nothing and gives every message back"
    assert sorted(r["outcome"] for r in dry) == ["unreplayable", "would_triage", "would_triage", "would_triage"]
    assert plans(sim) == []

    status, results = replay(capsys, "--queue", dlq, "--execute", "--by", BY)

    assert status == 1, "one message could not be replayed"
    outcomes = sorted((r["outcome"], r["deleted"]) for r in results)
    assert outcomes == [("duplicate", True), ("triaged", True), ("triaged", True), ("unreplayable", False)]
    [dead_lettered] = [r for r in results if "EventBridge gave up: SDK_CLIENT_ERROR" in r["note"]]
    assert dead_lettered["outcome"] in ("triaged", "duplicate") and dead_lettered["deleted"] is True
    by_status = sorted(p.status for p in plans(sim))
    assert by_status == ["PROPOSED", "SUPERSEDED"], "one plan per transition; the later alarm attached to it"
    assert bodies(sim, dlq) == ["{truncated"], "what failed stays in the DLQ, visible again"


def test_a_message_whose_re_drive_fails_stays_in_the_dlq_and_the_next_run_handles_it(
    sim: Simulation, capsys: pytest.CaptureFixture[str]
) -> None:
    [event] = sim.alarm_events()
    dlq = queue(sim, "medic-triage-dlq")
    sim.clients.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(async_failure(event)))
    for operation in ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem"):  # the log is still down
        moto_ext.inject_fault(operation, "InternalServerError", 500, times=RETRY_MAX_ATTEMPTS)

    status, [failed] = replay(capsys, "--queue", dlq, "--execute", "--by", BY)
    assert (status, failed["outcome"], failed["deleted"]) == (1, "failed", False)
    assert "InternalServerError" in failed["detail"] and depth(sim, dlq) == 1
    moto_ext.reset_knobs()

    status, [handled] = replay(capsys, "--queue", dlq, "--execute", "--by", BY)
    assert (status, handled["outcome"], handled["deleted"]) == (0, "triaged", True)
    assert depth(sim, dlq) == 0
    [plan] = plans(sim)
    assert plan.status == "PROPOSED" and kinds(sim, plan.id).count("alarm_received") == 1


# -- the executor DLQ ----------------------------------------------------------------------------------------------


def test_the_executor_dlq_sends_an_approved_plan_back_once_and_it_is_applied_once(
    sim: Simulation, capsys: pytest.CaptureFixture[str]
) -> None:
    [plan] = sim.triage(sim.alarm_events())
    assert sim.click(plan, "approve")["statusCode"] == 200
    sqs = sim.clients.sqs
    [message] = sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    sqs.delete_message(QueueUrl=sim.infra["queue"], ReceiptHandle=message["ReceiptHandle"])
    dlq = sqs.get_queue_url(QueueName="medic-executor-dlq")["QueueUrl"]  # the executor failed on it 3 times
    for body in (message["Body"], message["Body"], json.dumps({"plan_id": "p-0000000000000000"}), "not json"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)

    status, dry = replay(capsys, "--queue", dlq)
    assert status == 1 and depth(sim, dlq) == 4
    assert sorted(r["outcome"] for r in dry) == ["nothing_to_do", "unknown_plan", "unreplayable", "would_enqueue"]

    status, results = replay(capsys, "--queue", dlq, "--execute", "--by", BY)
    assert sorted((r["outcome"], r["deleted"]) for r in results) == [
        ("enqueued", True), ("nothing_to_do", True), ("unknown_plan", False), ("unreplayable", False),
    ]  # fmt: skip
    assert depth(sim, sim.infra["queue"]) == 1, "the plan went back to the executor once"
    with moto_ext.count_requests() as served:
        sim.drain_executor()

    assert rt(sim).ledger.get(plan.id).status == "APPLIED"  # type: ignore[union-attr]
    assert served.count("PutProvisionedConcurrencyConfig", succeeded=True) == 1 and pc(sim) == 78
    [enqueued] = [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "enqueued" and e.data.get("replayed_by")]
    assert enqueued["replayed_by"] == BY and enqueued["source"].startswith("queue:medic-executor-dlq#")
    status, again = replay(capsys, "--queue", dlq, "--execute", "--by", BY)
    assert sorted(r["outcome"] for r in again) == ["unknown_plan", "unreplayable"] and depth(sim, dlq) == 2


def test_an_approved_plan_whose_hand_over_failed_is_sent_back_by_its_id(
    sim: Simulation, capsys: pytest.CaptureFixture[str]
) -> None:
    [plan] = sim.triage(sim.alarm_events())
    moto_ext.inject_fault("SendMessage", "InternalError", 500, times=RETRY_MAX_ATTEMPTS)
    with pytest.raises(Exception, match="InternalError"):
        sim.click(plan, "approve")  # approved and logged; the hand-over to the executor failed
    moto_ext.reset_knobs()
    assert rt(sim).ledger.get(plan.id).status == "APPROVED" and depth(sim, sim.infra["queue"]) == 0  # type: ignore[union-attr]

    status, [sent] = replay(capsys, "--plan", plan.id, "--execute", "--by", BY)
    assert (status, sent["outcome"], sent["kind"]) == (0, "enqueued", "executor_message")
    sim.drain_executor()
    status, [after] = replay(capsys, "--plan", plan.id, "--execute", "--by", BY)

    assert rt(sim).ledger.get(plan.id).status == "APPLIED" and pc(sim) == 78  # type: ignore[union-attr]
    assert (status, after["outcome"]) == (0, "nothing_to_do") and "is APPLIED" in after["detail"]


# -- rejected inputs in the log ------------------------------------------------------------------------------------


def test_rejected_inputs_are_replayed_from_the_log_once_medic_can_read_them(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [event] = sim.alarm_events()
    real_parser = medic.usecases.triage.parse_alarm_event

    def older_parser(raw: Any, **kwargs: Any) -> Any:  # a Medic that did not know this event's shape yet
        raise EventError("detail.configuration", "event", "unsupported alarm configuration")

    monkeypatch.setattr(medic.usecases.triage, "parse_alarm_event", older_parser)
    rejected = sim.handlers["triage"](event, None)
    broken = sim.handlers["triage"]({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch"}, None)
    monkeypatch.setattr(medic.usecases.triage, "parse_alarm_event", real_parser)  # the upgrade
    assert rejected["status"] == broken["status"] == "rejected"

    status, results = replay(capsys, "--rejected", "--execute", "--by", BY)

    assert status == 1, "one input is still invalid"
    by_entry = {r["source"]: r for r in results}
    fixed, still = by_entry[f"log:{rejected['plan_id']}"], by_entry[f"log:{broken['plan_id']}"]
    assert fixed["outcome"] == "triaged" and still["outcome"] == "rejected"
    plan = rt(sim).ledger.get(fixed["plan_id"])
    assert plan is not None and plan.status == "PROPOSED"
    [note] = [e.data for e in rt(sim).ledger.events(rejected["plan_id"]) if e.kind == "replayed"]
    assert (note["plan_id"], note["outcome"], note["by"]) == (plan.id, "triaged", BY)

    status, again = replay(capsys, "--rejected", "--execute", "--by", BY)
    assert [r["source"] for r in again] == [f"log:{broken['plan_id']}"], "what was replayed is not replayed again"
    status, [explicit] = replay(capsys, "--plan", rejected["plan_id"], "--execute", "--by", BY)
    assert explicit["outcome"] == "duplicate" and len([p for p in plans(sim) if p.id.startswith("p-")]) == 1


# -- settings, refusals, bad input ---------------------------------------------------------------------------------


def test_settings_can_come_from_the_deployed_triage_function(
    sim: Simulation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    role = sim.clients.client("iam").create_role(RoleName="medic-triage", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    sim.clients.lambda_.create_function(
        FunctionName="medic-triage", Runtime="python3.13", Role=role, Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {
            "MEDIC_PLANS_TABLE": sim.infra["plans"], "MEDIC_EVENTS_TABLE": sim.infra["events"],
            "MEDIC_EXECUTOR_QUEUE_URL": sim.infra["queue"], "MEDIC_DRY_RUN": "true",
            "MEDIC_RUNBOOK": "/opt/lambda-latency.yaml", "POWERTOOLS_SERVICE_NAME": "medic",
        }},
    )  # fmt: skip
    for name in ("MEDIC_PLANS_TABLE", "MEDIC_EVENTS_TABLE", "MEDIC_EXECUTOR_QUEUE_URL", "MEDIC_DRY_RUN"):
        monkeypatch.delenv(name)
    [event] = sim.alarm_events()
    saved = tmp_path / "alarm.json"
    saved.write_text(json.dumps(event), encoding="utf-8")

    status, [result] = replay(capsys, str(saved), "--settings-from", "medic-triage", "--execute", "--by", BY)

    assert (status, result["outcome"]) == (0, "triaged")
    [plan] = plans(sim)
    assert plan.dry_run is True, "the function's MEDIC_DRY_RUN, not the operator's environment"
    assert main(["replay", str(saved), "--settings-from", "no-such-function"]) == 2
    assert "--settings-from" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to replay"),
        (["{file}", "--execute"], "--execute needs --by"),
        (["missing.json"], "cannot read"),
        (["{slack}"], "clicks are never replayed"),
        (["{garbage}"], "not JSON"),
        (["--plan", "p-0123456789abcdef"], "no such plan"),
    ],
    ids=["no-source", "no-by", "missing-file", "slack-click", "not-json", "unknown-plan"],
)
def test_bad_input_exits_2_with_a_clear_error_before_any_work(
    sim: Simulation, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    files = {
        "{file}": {"detail-type": "CloudWatch Alarm State Change"},
        "{slack}": {"headers": {"x-slack-signature": "v0=abc", "x-slack-request-timestamp": "1"}, "body": "payload="},
    }
    paths = {}
    for key, content in files.items():
        paths[key] = tmp_path / f"{key.strip('{}')}.json"
        paths[key].write_text(json.dumps(content), encoding="utf-8")
    paths["{garbage}"] = tmp_path / "garbage.json"
    paths["{garbage}"].write_text("not json at all", encoding="utf-8")
    resolved = [str(paths[a]) if a in paths else str(tmp_path / a) if a.endswith(".json") else a for a in argv]

    assert main(["replay", *resolved]) == 2
    assert message in capsys.readouterr().err
    assert plans(sim) == []


def test_the_text_report_says_what_would_happen_and_how_to_re_drive(
    sim: Simulation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [event] = sim.alarm_events()
    saved = tmp_path / "alarm.json"
    saved.write_text(json.dumps(async_failure(event)), encoding="utf-8")

    assert main(["replay", str(saved)]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Dry run: nothing was re-driven (add --execute --by WHO to re-drive).")
    assert "would_triage" in out and "Lambda gave up (RetriesExhausted, 3 attempts) on medic-triage" in out
    assert out.rstrip().endswith("1 input(s): 1 replayable, 0 not")


def test_replay_is_idempotent_under_every_source_at_once(
    sim: Simulation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same transition from a file, the triage DLQ (twice) and Lambda's failure record: one plan."""
    [event] = sim.alarm_events()
    saved = tmp_path / "alarm.json"
    saved.write_text(json.dumps([event, async_failure(event)]), encoding="utf-8")
    dlq = queue(sim, "medic-triage-dlq")
    for body in (event, event, async_failure(event)):
        sim.clients.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))

    status, results = replay(capsys, str(saved), "--queue", dlq, "--execute", "--by", BY)

    assert status == 0 and len(results) == 5
    assert sorted(r["outcome"] for r in results) == ["duplicate"] * 4 + ["triaged"]
    assert len({r["plan_id"] for r in results}) == 1
    assert [p.status for p in plans(sim)] == ["PROPOSED"] and depth(sim, dlq) == 0
