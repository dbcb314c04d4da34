"""Delivery faults, through the real handlers on the embedded AWS (docs/reliability.md): the same alarm transition
under a new event id, an OK delivered before its ALARM, Lambda's asynchronous retries of triage after it died
mid-way, and a duplicate executor message delivered while another executor is mid-apply.

Each test counts what reached AWS (`moto_ext.count_requests`) to prove one effect per remediation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from floor import pc, rt

from medic.actions import get_action
from medic.aws import RETRY_MAX_ATTEMPTS
from medic.chatops.transport import ConsoleTransport
from medic.clock import iso, parse_iso
from medic.plan import Plan
from medic.runtime import Runtime, install
from medic_tools.simulate import Simulation
from medic_tools.world import moto_ext
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
PUT_PC = "PutProvisionedConcurrencyConfig"
# Injected 5xx codes that a service's model does not list (SQS's InternalError) make moto warn; they are AWS's own.
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(InjectedFault\\):UserWarning")
AUTO_FLOOR = """\
runbook: auto-floor
version: 1
extends: lambda-latency
tables:
  spillover:
    rows:
      - id: floor-too-low
        when: ["not has_autoscaling", "spillover_invocations > 0", "peak_concurrency > pc_allocated"]
        diagnosis: pc_floor_too_low
        mode: auto
        actions:
          - {kind: set_provisioned_concurrency, params: {concurrency: "ceil(peak_concurrency * 1.2)"}}
        rationale: The team lets Medic raise this floor on its own.
"""


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries happen at once (their delays are not slept): no wall-clock time to retry."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def auto_world(world: Callable[..., Simulation], tmp_path: Path) -> Simulation:
    """The same world, with a runbook layer that makes the floor raise `auto` (no approval)."""
    override = tmp_path / "auto-floor.yaml"
    override.write_text(AUTO_FLOOR, encoding="utf-8")
    return world(runbook_overrides=str(override))


def kinds(sim: Simulation, plan_id: str) -> list[str]:
    return [event.kind for event in rt(sim).ledger.events(plan_id)]


def plans(sim: Simulation) -> list[Plan]:
    return rt(sim).ledger.all_plans()


def swap_slack(sim: Simulation, transport: ConsoleTransport) -> Runtime:
    """Medic's runtime again, with another Slack transport (a new execution environment would build it so)."""
    old = rt(sim)
    fresh = Runtime(old.settings, clients=old.clients, clock=old.clock, slack=transport,
                    metrics_stream=old.metrics_stream)  # fmt: skip
    install(fresh)
    sim.runtime, sim.console = fresh, transport
    return fresh


# -- the same transition under a new event id ------------------------------------------------------


def test_the_same_transition_under_a_new_event_id_is_the_same_plan(world: Callable[..., Simulation]) -> None:
    sim = world()
    [event] = sim.alarm_events()
    [plan] = sim.triage([event])
    again = copy.deepcopy(event)
    again["id"] = "11111111-2222-4333-8444-555555555555"  # EventBridge re-emitted it (archive replay, a 2nd rule)
    again["time"] = iso(sim.clock.now() + timedelta(minutes=3)).replace(".000Z", "Z")
    state_ts = parse_iso(event["detail"]["state"]["timestamp"].replace("+0000", "+00:00"))
    again["detail"]["state"]["timestamp"] = iso(state_ts)  # the same instant, written as "…Z" not "…+0000"
    records = len(rt(sim).ledger.events(plan.id))

    with moto_ext.count_requests() as served:
        result = sim.handlers["triage"](again, None)

    assert result == {"plan_id": plan.id, "status": "PROPOSED", "duplicate": True}
    assert [p.id for p in plans(sim)] == [plan.id]
    assert len(rt(sim).ledger.events(plan.id)) == records, "nothing appended for a duplicate"
    assert len(sim.console.messages) == 1, "one card"
    assert served.count("SendMessage") == 0


# -- an OK delivered before its ALARM --------------------------------------------------------------


def test_an_ok_delivered_before_its_alarm_is_its_own_noop_and_the_alarm_still_makes_one_plan(
    world: Callable[..., Simulation],
) -> None:
    sim = world()
    [alarm] = sim.alarm_events()
    ok = copy.deepcopy(alarm)
    ok["id"] = "0b9d3f53-3c86-4c5e-8f0a-0f1d8c2b7e11"
    ok["detail"]["previousState"] = copy.deepcopy(alarm["detail"]["state"])
    fired = parse_iso(alarm["detail"]["state"]["timestamp"].replace("+0000", "+00:00"))
    ok["detail"]["state"].update(value="OK", timestamp=iso(fired + timedelta(minutes=2)), reason="recovered")

    first = sim.handlers["triage"](ok, None)  # EventBridge does not guarantee order
    [recovery] = plans(sim)
    assert (first["plan_id"], first["status"]) == (recovery.id, "NOOP")
    assert recovery.reason == "state OK: the alarm recovered; nothing to remediate"
    second = sim.handlers["triage"](alarm, None)

    [plan] = [p for p in plans(sim) if p.id != recovery.id]
    assert second["plan_id"] == plan.id and plan.status == "PROPOSED"
    assert plan.state_timestamp == iso(fired)  # the plan is the ALARM transition's, whatever arrived first
    late = sim.handlers["triage"](ok, None)
    assert late == {"plan_id": recovery.id, "status": "NOOP", "duplicate": True}, "a late OK never touches the plan"
    assert rt(sim).ledger.get(plan.id) == plan
    assert len(sim.console.messages) == 1, "the plan's card only"


# -- Lambda's asynchronous retries of triage -------------------------------------------------------


class DiesWhilePosting(ConsoleTransport):
    """Slack that hangs on the first post until Lambda kills the invocation (Task timed out)."""

    died = False

    def post(self, channel: str, text: str, blocks: Any) -> str:
        if not self.died:
            self.died = True
            raise TimeoutError("Task timed out after 60.00 seconds")
        return super().post(channel, text, blocks)


def test_triage_retried_after_a_timeout_mid_triage_posts_one_card(world: Callable[..., Simulation]) -> None:
    sim = world()
    swap_slack(sim, DiesWhilePosting(sim.console.stream, show_json=False, ts=sim.console._ts))
    [event] = sim.alarm_events()

    with pytest.raises(TimeoutError):
        sim.handlers["triage"](event, None)  # the invocation fails: Lambda retries it (MaximumRetryAttempts 2)
    [plan] = plans(sim)
    assert plan.status == "PROPOSED" and not plan.slack.ts
    retried = sim.handlers["triage"](event, None)

    assert retried == {"plan_id": plan.id, "status": "PROPOSED", "duplicate": True}
    [plan] = plans(sim)
    assert plan.slack.ts and len(sim.console.messages) == 1, "the retry posted the card, once"
    assert kinds(sim, plan.id).count("alarm_received") == 1 and kinds(sim, plan.id).count("slack_posted") == 1
    assert rt(sim).ledger.verify_chain(plan.id) is None
    assert sim.click(plan, "approve")["statusCode"] == 200
    sim.drain_executor()
    assert pc(sim) == 78


def test_triage_retried_after_sqs_failed_at_the_enqueue_applies_an_auto_plan_once(auto_world: Simulation) -> None:
    sim = auto_world
    [event] = sim.alarm_events()
    moto_ext.inject_fault("SendMessage", "InternalError", 500, times=RETRY_MAX_ATTEMPTS)

    with moto_ext.count_requests() as served:
        with pytest.raises(ClientError):
            sim.handlers["triage"](event, None)  # SQS failed past botocore's retries: the invocation fails
        [plan] = plans(sim)
        assert plan.status == "APPROVED" and plan.mode == "auto"
        retried = sim.handlers["triage"](event, None)  # Lambda's asynchronous retry
        sim.drain_executor()
        sim.handlers["triage"](event, None)  # and a late duplicate delivery
        sim.drain_executor()

    assert retried["duplicate"] is True
    [plan] = plans(sim)
    assert plan.status == "APPLIED", "the approved plan was enqueued by the retry, not lost"
    assert served.count("SendMessage", succeeded=True) == 1
    assert served.count(PUT_PC, succeeded=True) == 1
    assert pc(sim) == plan.changes[0].after["provisioned_concurrency"] > 20


def test_triage_retried_after_dynamodb_failed_makes_one_plan(world: Callable[..., Simulation]) -> None:
    sim = world()
    [event] = sim.alarm_events()
    for operation in ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem"):  # the log is down
        moto_ext.inject_fault(operation, "InternalServerError", 500, times=RETRY_MAX_ATTEMPTS)

    with pytest.raises(ClientError):
        sim.handlers["triage"](event, None)
    moto_ext.reset_knobs()  # DynamoDB is back before Lambda's retry
    retried = sim.handlers["triage"](event, None)

    [plan] = plans(sim)
    assert retried["plan_id"] == plan.id and plan.status == "PROPOSED" and plan.slack.ts
    assert len(sim.console.messages) == 1
    assert kinds(sim, plan.id).count("alarm_received") == 1
    assert rt(sim).ledger.verify_chain(plan.id) is None


# -- a duplicate executor message while another executor is mid-apply ------------------------------


def test_a_duplicate_executor_message_during_an_apply_makes_one_change(
    world: Callable[..., Simulation], monkeypatch: pytest.MonkeyPatch,
    after_visibility_timeout: Callable[[Simulation], None],
) -> None:  # fmt: skip
    """A standard SQS queue may hand one message to two executors at once. The first holds a lease on the plan
    (APPROVED → APPLYING, until the executor's timeout); the second finds it live, changes nothing and leaves its
    copy to the queue, which shows it again after the visibility timeout: the plan is done by then."""
    sim = world()
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    record = sqs_record(message)
    impl = get_action("set_provisioned_concurrency")
    original = impl.apply
    duplicate: list[dict[str, Any]] = []

    def apply_while_the_duplicate_runs(*args: Any, **kwargs: Any) -> Any:
        if not duplicate:  # the same message, delivered to a second executor while this one is about to apply
            duplicate.append({})
            duplicate.append(sim.handlers["executor"](sqs_event({**record, "messageId": "dup"}), None))
        return original(*args, **kwargs)

    monkeypatch.setattr(impl, "apply", apply_while_the_duplicate_runs)
    with moto_ext.count_requests() as served:
        first = sim.handlers["executor"](sqs_event(record), None)
        assert duplicate[1] == {"batchItemFailures": [{"itemIdentifier": "dup"}]}, "the duplicate waits its turn"
        after_visibility_timeout(sim)
        again = sim.handlers["executor"](sqs_event({**record, "messageId": "dup"}), None)

    assert first == again == {"batchItemFailures": []}
    assert served.count(PUT_PC, succeeded=True) == 1
    assert pc(sim) == 78
    final = rt(sim).ledger.get(plan.id)
    assert final is not None and final.status == "APPLIED" and (final.lease_owner, final.lease_until) == ("", None)
    assert kinds(sim, plan.id).count("applying") == 1 and "lease_taken_over" not in kinds(sim, plan.id)
    assert rt(sim).ledger.verify_chain(plan.id) is None


def test_a_redelivery_takes_over_an_apply_whose_executor_died(
    world: Callable[..., Simulation], after_visibility_timeout: Callable[[Simulation], None]
) -> None:
    """An executor that dies mid-apply (Lambda's timeout) releases nothing: its lease expires on its own, before SQS
    shows the message again, and the redelivery takes the plan over: recorded, with who held it until when."""
    sim = world()
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    record = sqs_record(message)
    ledger = rt(sim).ledger
    approved = ledger.get(plan.id)
    assert approved is not None
    held = ledger.lease(approved, sim.clock.now(), sim.clock.now() + timedelta(seconds=900), "dead-executor")
    waited = sim.handlers["executor"](sqs_event(record), None)
    assert waited == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert ledger.get(plan.id) == held, "nothing touched while the lease runs"

    after_visibility_timeout(sim)
    with moto_ext.count_requests() as served:
        assert sim.handlers["executor"](sqs_event(record), None) == {"batchItemFailures": []}

    final = ledger.get(plan.id)
    assert final is not None and final.status == "APPLIED"
    [taken] = [e for e in ledger.events(plan.id) if e.kind == "lease_taken_over"]
    assert taken.data["previous_owner"] == "dead-executor" and taken.data["expired_at"] == held.lease_until
    assert taken.data["lease_owner"] not in ("", "dead-executor")
    assert served.count(PUT_PC, succeeded=True) == 1 and pc(sim) == 78
