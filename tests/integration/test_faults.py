"""Faults on the way to AWS, injected at moto's HTTP endpoint, through the real handlers (triage → Slack approval →
executor from the SQS queue).

Each test ends in the documented state, and proves that nothing was applied twice by counting the requests that
reached the endpoint (`moto_ext.count_requests`): throttling absorbed by botocore's retries, throttling that never
stops, a function update in progress, provisioned concurrency FAILED, a failure between two steps of a plan, a crash
mid-apply followed by a redelivery, duplicate deliveries and double clicks.

botocore's backoff is kept (its delays are recorded) but not slept: the tests take no wall-clock time to retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from medic.actions import get_action
from medic.actions.function_update import CONFLICT_ATTEMPTS
from medic.aws import retry_config
from medic.plan import Plan
from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
CPU = ROOT / "scenarios" / "p99-cpu-starved.yaml"  # set_memory on report-builder:live, 256 → 512 MB
DB = ROOT / "scenarios" / "db-connection-blowup.yaml"  # ESM cap on orders-worker, then reserved on orders-api
PUT_PC = "PutProvisionedConcurrencyConfig"


def attempts_allowed() -> int:
    """Requests botocore makes for one call under Medic's retry config (its `max_attempts` counts *retries*)."""
    retries = retry_config().retries or {}
    return int(retries.get("total_max_attempts") or retries["max_attempts"] + 1)


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore's standard retry mode computes, recorded; the retry happens at once."""
    delays: list[float] = []
    original = ExponentialBackoff.delay_amount

    def recorded(self: ExponentialBackoff, context: Any) -> float:
        delays.append(original(self, context))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", recorded)
    return delays


@pytest.fixture
def world(aws_server: EmbeddedAWS, backoff: list[float]) -> Iterator[Callable[[Path], Simulation]]:
    """Build a scenario's world on the embedded AWS (reset first) with Medic installed for the handlers."""

    def build(path: Path) -> Simulation:
        aws_server.reset()
        sim = Simulation(load_scenario(path), str(path), aws_server.endpoint_url, Story(None))
        sim.setup()
        return sim

    yield build
    install(None)
    moto_ext.reset_knobs()


def approved(sim: Simulation) -> Plan:
    """Triage the scenario's alarm and approve the plan in Slack; the plan waits in the executor queue."""
    [plan] = sim.triage(sim.alarm_events())
    assert plan.status == "PROPOSED"
    assert sim.approve(plan)["statusCode"] == 200  # two approvers where the two-person rule asks for them
    return plan


def final(sim: Simulation, plan: Plan) -> Plan:
    assert sim.runtime is not None
    found = sim.runtime.ledger.get(plan.id)
    assert found is not None
    return found


def log(sim: Simulation, plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    assert sim.runtime is not None
    return [(event.kind, event.data) for event in sim.runtime.ledger.events(plan.id)]


def kinds(sim: Simulation, plan: Plan) -> list[str]:
    return [kind for kind, _ in log(sim, plan)]


def pc(sim: Simulation) -> tuple[int, str]:
    config = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    return config["RequestedProvisionedConcurrentExecutions"], config["Status"]


def executor_record(sim: Simulation) -> dict[str, Any]:
    """The approved plan's message, received from the executor queue as the event source mapping would."""
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"], MaxNumberOfMessages=10)["Messages"]
    return sqs_record(message, receipt_handle=True)


# --- the world's request log and fault injector ---------------------------------------------------


def test_the_request_log_sees_every_call_and_an_injected_fault_is_awss_error(aws: EmbeddedAWS) -> None:
    lam = aws.client("lambda")
    raw = boto3.client("lambda", region_name="us-east-1", endpoint_url=aws.endpoint_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing",
                       config=Config(retries={"mode": "standard", "total_max_attempts": 1}))  # fmt: skip
    moto_ext.inject_fault("ListFunctions", "TooManyRequestsException", 429, times=2, message="Rate exceeded")

    with moto_ext.count_requests() as served:
        for _ in range(2):
            with pytest.raises(ClientError) as throttled:
                raw.list_functions()
            assert throttled.value.response["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}
            assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert raw.list_functions()["Functions"] == []
        with pytest.raises(ClientError):
            lam.get_function(FunctionName="missing")

    assert [(r.operation, r.status, r.injected) for r in served.requests] == [
        ("ListFunctions", 429, True), ("ListFunctions", 429, True), ("ListFunctions", 200, False),
        ("GetFunction", 404, False),
    ]  # fmt: skip
    assert served.count("ListFunctions", succeeded=True) == 1 and served.count("ListFunctions") == 3


def test_a_reset_clears_pending_faults_and_detaches_request_logs(aws: EmbeddedAWS) -> None:
    moto_ext.inject_fault("ListFunctions", "ServiceException", 500, times=99)
    with moto_ext.count_requests() as served:
        aws.reset()
        aws.client("lambda").list_functions()

    assert served.requests == []


def test_an_injected_fault_never_reaches_the_backend(aws: EmbeddedAWS) -> None:
    sqs = aws.client("sqs")
    moto_ext.inject_fault("CreateQueue", "InvalidParameterValue", 400)

    with pytest.raises(ClientError):
        sqs.create_queue(QueueName="never")

    assert sqs.list_queues().get("QueueUrls", []) == []


# --- a) throttling absorbed by botocore's retries -------------------------------------------------


def test_throttling_twice_is_absorbed_by_the_retry_config(world: Callable[[Path], Simulation],
                                                          backoff: list[float]) -> None:  # fmt: skip
    sim = world(FLOOR)
    plan = approved(sim)
    moto_ext.inject_fault(PUT_PC, "TooManyRequestsException", 429, times=2)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    assert final(sim, plan).status == "APPLIED"
    assert (served.count(PUT_PC), served.count(PUT_PC, succeeded=True)) == (3, 1)
    assert len(backoff) == 2 and all(0 <= delay <= 20 for delay in backoff)  # standard mode: jittered, capped 20 s
    assert pc(sim) == (78, "READY")
    assert kinds(sim, plan).count("aws_call") == 1


# --- b) throttling that never stops ---------------------------------------------------------------


def test_throttling_that_never_stops_ends_the_plan_clearly_after_bounded_attempts(
    world: Callable[[Path], Simulation], backoff: list[float]
) -> None:
    sim = world(FLOOR)
    plan = approved(sim)
    moto_ext.inject_fault(PUT_PC, "TooManyRequestsException", 429, times=1000)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    done = final(sim, plan)
    assert done.status == "FAILED"  # a clear FAILED: nothing was applied, so there was nothing to roll back
    assert served.count(PUT_PC) == attempts_allowed() == len(backoff) + 1
    assert served.count(PUT_PC, succeeded=True) == 0
    [(_, failed)] = [(kind, data) for kind, data in log(sim, plan) if kind == "action_failed"]
    assert "TooManyRequestsException" in failed["error"] and "reached max retries" in failed["error"]
    assert "aws_call" not in kinds(sim, plan)
    assert pc(sim) == (20, "READY")
    depth = sim.clients.sqs.get_queue_attributes(
        QueueUrl=sim.infra["queue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert depth == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}  # no loop


# --- c) a function update in progress -------------------------------------------------------------


def memory_of(sim: Simulation) -> tuple[str, int, int]:
    """(the alias's version, its memory, $LATEST's memory) of report-builder:live."""
    lam = sim.clients.lambda_
    version = lam.get_alias(FunctionName="report-builder", Name="live")["FunctionVersion"]
    served = lam.get_function_configuration(FunctionName="report-builder", Qualifier=version)["MemorySize"]
    return version, served, lam.get_function_configuration(FunctionName="report-builder")["MemorySize"]


def test_an_update_in_progress_is_waited_out_and_the_change_made_once(world: Callable[[Path], Simulation]) -> None:
    sim = world(CPU)
    plan = approved(sim)
    moto_ext.inject_fault("UpdateFunctionConfiguration", "ResourceConflictException", 409, times=2,
                          message="An update is in progress for resource: report-builder")  # fmt: skip

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    assert final(sim, plan).status == "APPLIED"
    assert served.count("UpdateFunctionConfiguration") == 3
    assert served.count("UpdateFunctionConfiguration", succeeded=True) == 1
    assert served.count("GetFunction") >= 2  # Lambda's update waiter, between the attempts
    assert (served.count("PublishVersion"), served.count("UpdateAlias")) == (1, 1)
    assert memory_of(sim) == ("2", 512, 512)


def test_an_update_that_stays_in_progress_fails_cleanly(world: Callable[[Path], Simulation]) -> None:
    sim = world(CPU)
    plan = approved(sim)
    moto_ext.inject_fault("UpdateFunctionConfiguration", "ResourceConflictException", 409, times=1000)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    assert final(sim, plan).status == "FAILED"  # nothing was changed
    assert served.count("UpdateFunctionConfiguration") == CONFLICT_ATTEMPTS  # bounded; never a loop
    assert served.count("UpdateFunctionConfiguration", succeeded=True) == 0
    assert (served.count("PublishVersion"), served.count("UpdateAlias")) == (0, 0)
    [(_, failed)] = [(kind, data) for kind, data in log(sim, plan) if kind == "action_failed"]
    assert f"still in progress after {CONFLICT_ATTEMPTS} attempts" in failed["error"]
    assert memory_of(sim) == ("1", 256, 256)


# --- d) provisioned concurrency FAILED after the change -------------------------------------------


def test_pc_failed_after_apply_is_rolled_back_and_its_reason_logged(world: Callable[[Path], Simulation]) -> None:
    sim = world(FLOOR)
    plan = approved(sim)
    moto_ext.inject_provisioned_concurrency_failure("checkout", "live", "FUNCTION_ERROR_INIT_FAILURE")

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    assert final(sim, plan).status == "ROLLED_BACK"
    assert kinds(sim, plan)[-3:] == ["aws_call", "action_failed", "rollback"]
    events = log(sim, plan)
    [failed] = [data for kind, data in events if kind == "action_failed"]
    assert "provisioned concurrency FAILED: FUNCTION_ERROR_INIT_FAILURE" in failed["error"]
    [rolled] = [data for kind, data in events if kind == "rollback"]
    assert rolled["restored"] == {"provisioned_concurrency": 20}
    assert served.count(PUT_PC, succeeded=True) == 2  # the change, then the rollback: nothing more
    assert pc(sim) == (20, "READY")


# --- e) a failure between two steps ---------------------------------------------------------------


def test_a_failure_between_two_steps_rolls_the_first_back(world: Callable[[Path], Simulation]) -> None:
    sim = world(DB)
    plan = approved(sim)
    assert [a.kind for a in plan.changes] == ["set_event_source_max_concurrency", "set_reserved_concurrency"]
    [mapping] = sim.clients.lambda_.list_event_source_mappings(FunctionName="orders-worker")["EventSourceMappings"]
    moto_ext.inject_fault("PutFunctionConcurrency", "ServiceException", 500, times=1000)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    assert final(sim, plan).status == "ROLLED_BACK"
    steps = [(kind, data.get("target")) for kind, data in log(sim, plan)
             if kind in ("aws_call", "change_effective", "action_failed", "rollback")]  # fmt: skip
    esm = f"orders-worker esm {mapping['UUID']}"
    assert steps == [("aws_call", esm), ("change_effective", esm), ("action_failed", "orders-api"), ("rollback", esm)]
    assert served.count("UpdateEventSourceMapping", succeeded=True) == 2  # applied once, rolled back once
    assert served.count("PutFunctionConcurrency") == attempts_allowed()
    assert served.count("PutFunctionConcurrency", succeeded=True) == 0
    restored = sim.clients.lambda_.get_event_source_mapping(UUID=mapping["UUID"])
    assert "MaximumConcurrency" not in (restored.get("ScalingConfig") or {})
    assert "ReservedConcurrentExecutions" not in sim.clients.lambda_.get_function_concurrency(FunctionName="orders-api")


# --- f) a crash mid-apply, then the queue redelivers ----------------------------------------------


def crash_once(after: Callable[[], bool]) -> Callable[..., Any]:
    """A stand-in for a step of the executor that dies (the Lambda times out) once `after()` holds."""
    crashed: list[bool] = []

    def wrap(step: Callable[..., Any]) -> Callable[..., Any]:
        def step_or_crash(*args: Any, **kwargs: Any) -> Any:
            if after() and not crashed:
                crashed.append(True)
                raise TimeoutError("Task timed out: the executor died mid-apply")
            return step(*args, **kwargs)

        return step_or_crash

    return wrap


@pytest.mark.parametrize("where", ["before the change is recorded", "while waiting for READY"])
def test_a_crash_mid_apply_then_a_redelivery_applies_once(
    world: Callable[[Path], Simulation], monkeypatch: pytest.MonkeyPatch, where: str,
    after_visibility_timeout: Callable[[Simulation], None],
) -> None:  # fmt: skip
    sim = world(FLOOR)
    plan = approved(sim)
    assert sim.runtime is not None
    record = executor_record(sim)
    with moto_ext.count_requests() as served:
        changed = lambda: served.count(PUT_PC, succeeded=True) == 1  # noqa: E731
        if where == "before the change is recorded":
            monkeypatch.setattr(sim.runtime.ledger, "save", crash_once(changed)(sim.runtime.ledger.save))
        else:
            impl = get_action("set_provisioned_concurrency")
            monkeypatch.setattr(impl, "wait", crash_once(changed)(impl.wait))

        first = sim.handlers["executor"](sqs_event(record), None)
        assert first == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}  # SQS will redeliver it
        assert final(sim, plan).status == "APPLYING"
        after_visibility_timeout(sim)  # the dead executor's lease has expired: the redelivery takes the plan over
        again = sim.handlers["executor"](sqs_event(record), None)

    assert again == {"batchItemFailures": []}
    assert final(sim, plan).status == "APPLIED"
    assert served.count(PUT_PC) == 1, "the redelivery saw the change already made and did not call again"
    assert pc(sim) == (78, "READY")


def test_a_crash_while_waiting_does_not_hide_a_failed_allocation(
    world: Callable[[Path], Simulation], monkeypatch: pytest.MonkeyPatch,
    after_visibility_timeout: Callable[[Simulation], None],
) -> None:  # fmt: skip
    sim = world(FLOOR)
    plan = approved(sim)
    record = executor_record(sim)
    moto_ext.inject_provisioned_concurrency_failure("checkout", "live", "FUNCTION_ERROR_INIT_FAILURE")
    impl = get_action("set_provisioned_concurrency")
    monkeypatch.setattr(impl, "wait", crash_once(lambda: True)(impl.wait))

    sim.handlers["executor"](sqs_event(record), None)
    after_visibility_timeout(sim)
    sim.handlers["executor"](sqs_event(record), None)

    assert final(sim, plan).status == "ROLLED_BACK"  # today: APPLIED, with the PC FAILED underneath


# --- g) duplicate deliveries and double clicks ----------------------------------------------------


def test_duplicate_events_and_a_double_click_make_one_change(world: Callable[[Path], Simulation]) -> None:
    from medic_tools.simulate import APPROVER
    from medic_tools.simulation_steps import signed_click

    sim = world(FLOOR)
    assert sim.runtime is not None
    events = sim.alarm_events()
    with moto_ext.count_requests() as served:
        [plan] = sim.triage(events)
        [same] = sim.triage(events)  # EventBridge delivers at least once
        assert same.id == plan.id
        click = signed_click(plan, "approve", sim.console, sim.runtime, APPROVER)
        again = signed_click(plan, "approve", sim.console, sim.runtime, APPROVER)  # the button clicked twice
        assert again["body"] != click["body"]
        first = sim.handlers["interactions"](click, None)
        replayed = sim.handlers["interactions"](click, None)  # the very same signed request again: refused
        second = sim.handlers["interactions"](again, None)
        assert (first["statusCode"], replayed["statusCode"], second["statusCode"]) == (200, 200, 200)
        assert "replayed request" in replayed["body"]
        [refused] = [e.data for e in sim.runtime.ledger.events(plan.id) if e.kind == "approval_refused"]
        assert refused["status"] == 409
        assert "Already APPROVED" in second["body"]
        sim.drain_executor()
        sim.drain_executor()

    assert final(sim, plan).status == "APPLIED"
    assert len(sim.runtime.ledger.all_plans()) == 1
    assert served.count("SendMessage", service="sqs") == 1  # one message to the executor queue
    assert (served.count(PUT_PC), served.count(PUT_PC, succeeded=True)) == (1, 1)
