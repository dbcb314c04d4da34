"""AWS faults at each step of the pipeline (docs/reliability.md), injected at the embedded AWS's HTTP endpoint,
through the real handlers: facts throttled at triage, DynamoDB or SQS failing at the Slack approval, DynamoDB failing
when the executor starts, a ResourceConflictException on the change itself, CloudWatch failing at verification.

The apply step's own faults (throttling absorbed or not, an update in progress, a 5xx between two steps) are in
test_faults.py. botocore's backoff is not slept here: retries happen at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from floor import current, pc, rt

from medic.aws import RETRY_MAX_ATTEMPTS
from medic.errors import VerificationIncomplete
from medic.plan import Plan
from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.simulation_steps import after_fix
from medic_tools.world import alarms, moto_ext
from medic_tools.world.server import EmbeddedAWS
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
PUT_PC = "PutProvisionedConcurrencyConfig"
# Injected 5xx codes that a service's model does not list (SQS's InternalError) make moto warn; they are AWS's own.
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(InjectedFault\\):UserWarning")


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries happen at once (their delays are not slept): no wall-clock time to retry."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def sim(world: Callable[..., Simulation]) -> Simulation:
    """The fixed-floor world with Medic installed (the integration conftest's `world`)."""
    return world()


def kinds(sim: Simulation, plan: Plan) -> list[str]:
    return [event.kind for event in rt(sim).ledger.events(plan.id)]


def queued(sim: Simulation) -> int:
    attributes = sim.clients.sqs.get_queue_attributes(
        QueueUrl=sim.infra["queue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def outage(*operations: str, code: str = "InternalServerError", status: int = 500) -> None:
    """Every call of `operations` fails past botocore's retries (the first call of each, all its attempts)."""
    for operation in operations:
        moto_ext.inject_fault(operation, code, status, times=RETRY_MAX_ATTEMPTS)


def record_of(sim: Simulation) -> dict[str, Any]:
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"], VisibilityTimeout=0)["Messages"]
    return sqs_record(message)


# -- triage: facts throttled --------------------------------------------------------------------------------------


def test_facts_throttled_past_the_retries_are_unknown_with_the_reason_and_nothing_is_changed(sim: Simulation) -> None:
    moto_ext.inject_fault("GetProvisionedConcurrencyConfig", "TooManyRequestsException", 429, times=1000)

    with moto_ext.count_requests() as served:
        [plan] = sim.triage(sim.alarm_events())

    assert served.count("GetProvisionedConcurrencyConfig") == RETRY_MAX_ATTEMPTS, "bounded: never a retry storm"
    assert "TooManyRequestsException" in " ".join(plan.missing_facts.values())
    assert "pc_allocated" not in plan.facts
    assert plan.status in ("NOOP", "BLOCKED") and not plan.changes, "no change is planned on facts Medic could not read"
    assert plan.rule != "floor-too-low"
    moto_ext.reset_knobs()
    sim.drain_executor()
    assert pc(sim) == 20 and queued(sim) == 0


# -- interactions: DynamoDB or SQS failing at the decision ----------------------------------------------------------


def test_dynamodb_failing_at_the_decision_fails_the_click_and_the_next_click_decides_once(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    outage("UpdateItem", "TransactWriteItems")

    with pytest.raises(ClientError):  # the endpoint answers 5xx: Slack tells the approver it failed
        sim.click(plan, "approve")
    assert current(sim, plan).status == "PROPOSED" and queued(sim) == 0
    moto_ext.reset_knobs()
    assert sim.click(plan, "approve")["statusCode"] == 200

    assert current(sim, plan).status == "APPROVED" and queued(sim) == 1
    with moto_ext.count_requests() as served:
        sim.drain_executor()
    assert served.count(PUT_PC, succeeded=True) == 1 and pc(sim) == 78


def test_sqs_failing_at_the_approvals_enqueue_is_recovered_by_the_next_click(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    outage("SendMessage")

    with pytest.raises(ClientError):  # approved and logged, but not handed to the executor: the endpoint answers 5xx
        sim.click(plan, "approve")
    assert current(sim, plan).status == "APPROVED" and queued(sim) == 0
    moto_ext.reset_knobs()
    again = sim.click(plan, "approve")  # the approver clicks again (Slack showed the failure)

    assert again["statusCode"] == 200
    assert queued(sim) == 1, "the approved plan reached the executor queue"
    with moto_ext.count_requests() as served:
        sim.drain_executor()
        sim.click(plan, "approve")  # a third click changes nothing
        sim.drain_executor()
    assert served.count("SendMessage", succeeded=True) == 0
    assert served.count(PUT_PC, succeeded=True) == 1 and current(sim, plan).status == "APPLIED"
    assert kinds(sim, plan).count("enqueued") == 1


# -- executor: DynamoDB failing at the start, a conflict on the change ----------------------------------------------


def test_dynamodb_failing_when_the_executor_starts_leaves_the_message_for_redelivery(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    record = record_of(sim)
    outage("UpdateItem", "TransactWriteItems")

    first = sim.handlers["executor"](sqs_event(record), None)
    assert first == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}  # SQS redelivers it
    assert current(sim, plan).status == "APPROVED" and pc(sim) == 20
    moto_ext.reset_knobs()  # DynamoDB is back by the redelivery
    with moto_ext.count_requests() as served:
        again = sim.handlers["executor"](sqs_event(record), None)

    assert again == {"batchItemFailures": []}
    assert current(sim, plan).status == "APPLIED"
    assert served.count(PUT_PC, succeeded=True) == 1 and pc(sim) == 78


def test_a_conflict_on_the_change_fails_the_plan_clearly_with_nothing_changed(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    busy = "The operation cannot be performed at this time: an update is in progress"
    moto_ext.inject_fault(PUT_PC, "ResourceConflictException", 409, times=1000, message=busy)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    done = current(sim, plan)
    assert done.status == "FAILED"  # nothing was changed, so nothing to roll back; the breaker counts it
    assert served.count(PUT_PC) <= RETRY_MAX_ATTEMPTS and served.count(PUT_PC, succeeded=True) == 0
    [failed] = [e.data for e in rt(sim).ledger.events(plan.id) if e.kind == "action_failed"]
    assert "ResourceConflictException" in failed["error"]
    assert pc(sim) == 20 and queued(sim) == 0, "no loop: the message is consumed, the outcome is in the log"


# -- verifier: CloudWatch failing --------------------------------------------------------------------------------


def test_cloudwatch_failing_at_verification_keeps_the_plan_applied_until_the_next_run(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    sim.drain_executor()
    assert current(sim, plan).status == "APPLIED"
    after_fix(sim.scenario, sim.clients, sim.clock, sim.region, alarms, sim.handlers["triage"], sim.story)
    outage("DescribeAlarms", "GetMetricData", code="InternalServiceError")

    with pytest.raises(VerificationIncomplete) as failed:  # the run fails; the schedule runs it again a minute later
        sim.handlers["verifier"]({"source": "aws.events"}, None)
    assert list(failed.value.errors) == [plan.id] and "InternalServiceError" in failed.value.errors[plan.id]
    assert current(sim, plan).status == "APPLIED"
    moto_ext.reset_knobs()
    result = sim.handlers["verifier"]({"source": "aws.events"}, None)

    assert result["outcomes"] == {plan.id: "VERIFIED"}
    assert current(sim, plan).status == "VERIFIED"
    assert json.dumps(kinds(sim, plan)).count("verified") == 1


def test_one_plan_that_cannot_be_verified_does_not_stall_the_others(sim: Simulation) -> None:
    """Two applied plans on the same alarm's function; CloudWatch fails for whichever is verified first: the other is
    still verified in that run, the run reports the one it could not do, and the next run does it."""
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    sim.drain_executor()
    ledger, now = rt(sim).ledger, sim.clock.now()
    applied = current(sim, plan)
    other = applied.model_copy(update={"id": "p-0the0other0plan", "status": "PROPOSED"})
    ledger.create(other)
    for state in ("APPROVED", "APPLYING", "APPLIED"):
        other = ledger.transition(other, state, now)
    after_fix(sim.scenario, sim.clients, sim.clock, sim.region, alarms, sim.handlers["triage"], sim.story)
    moto_ext.inject_fault("DescribeAlarms", "InternalServiceError", 500, times=RETRY_MAX_ATTEMPTS)

    with pytest.raises(VerificationIncomplete) as failed:
        sim.handlers["verifier"]({"source": "aws.events"}, None)

    [stalled] = failed.value.errors
    [done] = {plan.id, other.id} - {stalled}
    assert ledger.get(done).status == "VERIFIED"  # type: ignore[union-attr]
    assert ledger.get(stalled).status == "APPLIED"  # type: ignore[union-attr]
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {stalled: "VERIFIED"}


@pytest.fixture
def failing_fix(aws: EmbeddedAWS) -> Iterator[Simulation]:
    """A fix that does not clear the alarm, under a team rule that asks for a rollback when verification fails: the
    plan is applied and its alarm is still firing when the verifier runs."""
    from medic.planning.runbook import layer, load_runbook

    team = Path(__file__).parent / "runbooks" / "checkout-team-rollback.yaml"
    shipped = load_runbook(ROOT / "runbooks" / "lambda-latency.yaml")
    runbook = layer(shipped, team.read_text(encoding="utf-8"), team.name)
    insufficient = ROOT / "scenarios" / "spillover-fix-insufficient.yaml"
    sim = Simulation(load_scenario(insufficient), str(insufficient), aws.endpoint_url, Story(None), runbook=runbook)
    try:
        sim.setup()
        [plan] = sim.triage(sim.alarm_events())
        sim.click(plan, "approve")
        sim.drain_executor()
        after_fix(sim.scenario, sim.clients, sim.clock, sim.region, alarms, sim.handlers["triage"], sim.story)
        yield sim
    finally:
        install(None)
        moto_ext.reset_knobs()


def test_a_rollback_whose_hand_off_failed_is_handed_again_by_the_next_run(failing_fix: Simulation) -> None:
    """SQS fails when the verifier hands the rollback to the executor. The plan is FAILED with no hand-off recorded:
    the next run hands it (once), and the executor rolls it back."""
    sim = failing_fix
    [plan] = rt(sim).ledger.all_plans()
    moto_ext.inject_fault("SendMessage", "InternalError", 500, times=RETRY_MAX_ATTEMPTS)

    with pytest.raises(VerificationIncomplete):
        sim.handlers["verifier"]({"source": "aws.events"}, None)
    failed = current(sim, plan)
    assert (failed.status, failed.rollback_requested_at) == ("FAILED", None)
    assert "rollback_requested" not in kinds(sim, plan)

    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {plan.id: "rollback_requested"}
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {}, "handed once"
    sim.drain_executor()

    assert current(sim, plan).status == "ROLLED_BACK"
    assert kinds(sim, plan).count("rollback_requested") == 1
    assert pc(sim) == 20
    assert rt(sim).ledger.verify_chain(plan.id) is None


def test_a_duplicate_rollback_message_during_a_rollback_rolls_back_once(
    failing_fix: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback message delivered to two executors at once: the first holds the FAILED plan (a lease), the
    second changes nothing and leaves its copy to the queue; shown again later, it finds the plan ROLLED_BACK."""
    from medic.actions import get_action

    sim = failing_fix
    [plan] = rt(sim).ledger.all_plans()
    sim.handlers["verifier"]({"source": "aws.events"}, None)
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    record = sqs_record(message)
    impl = get_action("set_provisioned_concurrency")
    original = impl.rollback
    duplicate: list[Any] = []

    def rollback_while_the_duplicate_runs(*args: Any, **kwargs: Any) -> Any:
        if not duplicate:
            duplicate.append(sim.handlers["executor"](sqs_event({**record, "messageId": "dup"}), None))
        return original(*args, **kwargs)

    monkeypatch.setattr(impl, "rollback", rollback_while_the_duplicate_runs)
    with moto_ext.count_requests() as served:
        first = sim.handlers["executor"](sqs_event(record), None)
        sim.clock.advance(3600)  # SQS shows the duplicate's copy again after its visibility timeout
        again = sim.handlers["executor"](sqs_event({**record, "messageId": "dup"}), None)

    assert duplicate == [{"batchItemFailures": [{"itemIdentifier": "dup"}]}]
    assert first == again == {"batchItemFailures": []}
    assert served.count(PUT_PC, succeeded=True) == 1, "one rollback call"
    final = current(sim, plan)
    assert final.status == "ROLLED_BACK" and pc(sim) == 20
    assert kinds(sim, plan).count("rolling_back") == 1 and kinds(sim, plan).count("rollback") == 1
    assert rt(sim).ledger.verify_chain(plan.id) is None
