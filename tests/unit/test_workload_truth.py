"""The ground truth: the wall each incident hit (from the model and AWS's rules) and the fix that clears it, checked
by a what-if replay — and a fix too small for the incident does not clear it."""

from __future__ import annotations

from typing import Any

import pytest

from medic_tools.scenario import WorldSpec
from medic_tools.world.workload.alarm import AlarmView
from medic_tools.world.workload.config import account_config
from medic_tools.world.workload.fixes import Change
from medic_tools.world.workload.model import AccountModel
from medic_tools.world.workload.remedies import verify
from medic_tools.world.workload.truth import GroundTruth, Incident, ground_truth

WINDOW = 6


def incident(alarm: AlarmView, *functions: dict[str, Any], **world: Any) -> Incident:
    config = account_config(WorldSpec.model_validate({"window_min": WINDOW, **world, "functions": list(functions)}))
    model = AccountModel(config)
    model.run(WINDOW * 60)
    return Incident(config, model.trace, alarm, WINDOW)


def throttles(function: str) -> AlarmView:
    return AlarmView("AWS/Lambda", "Throttles", (("FunctionName", function),), "Sum", 60, 0, "GreaterThanThreshold")


def spillover(function: str, alias: str) -> AlarmView:
    dims = (("FunctionName", function), ("Resource", f"{function}:{alias}"))
    return AlarmView("AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations", dims, "Sum", 60, 0,
                     "GreaterThanThreshold")  # fmt: skip


def p99(threshold: float, **dims: str) -> AlarmView:
    return AlarmView("AWS/Lambda", "Duration", tuple(dims.items()), "p99", 60, threshold, "GreaterThanThreshold")


def step(base: float, peak: float, at_min: float = WINDOW - 2, **extra: Any) -> dict[str, Any]:
    return {"shape": "step", "base_rps": base, "peak_rps": peak, "at_min": at_min, "seed": 11, **extra}


def truth_of(case: Incident) -> GroundTruth:
    truth = ground_truth(case)
    assert truth.before.breaching, "the incident's alarm must breach"
    return truth


def assert_cleared(truth: GroundTruth, diagnosis: str, kind: str) -> None:
    assert truth.diagnosis == diagnosis, (truth.diagnosis, truth.evidence)
    assert truth.fix is not None and truth.fix.clears and truth.fix.kind == kind, truth.fix
    assert not truth.fix.after.breaching


def value(truth: GroundTruth) -> int:
    assert truth.fix is not None and truth.fix.changes[0].value is not None
    return truth.fix.changes[0].value


def test_reserved_limit() -> None:
    case = incident(throttles("api"), {"name": "api", "reserved_concurrency": 30, "workload": {
        "arrivals": step(50, 400), "duration": {"cpu_ms": 0, "io_ms": 200}}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "reserved_limit", "set_reserved_concurrency")
    assert 80 <= value(truth) <= 95  # 400 rps × 0.2 s, Poisson peaks included
    assert not verify(case, [Change("set_reserved_concurrency", "api", 60)]).clears


def test_account_limit_of_a_new_account() -> None:
    case = incident(throttles("api"), {"name": "api", "workload": {"arrivals": step(5, 60),
                    "duration": {"cpu_ms": 0, "io_ms": 300}}}, account_concurrency_limit=10)  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "account_limit", "request_quota_increase")
    assert truth.evidence["throttled"]["account_limit"] > 0
    assert not verify(case, [Change("request_quota_increase", "account", 12)]).clears


def test_account_limit_when_other_functions_use_the_pool() -> None:
    case = incident(throttles("api"),
                    {"name": "api", "workload": {"arrivals": step(50, 300), "duration": {"cpu_ms": 0, "io_ms": 300}}},
                    {"name": "batch", "workload": {"arrivals": {"base_rps": 500}, "duration": {"cpu_ms": 0,
                     "io_ms": 250}}}, account_concurrency_limit=200)  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "account_limit", "request_quota_increase")
    assert [f.kind for f in truth.alternatives] == ["set_reserved_concurrency"]  # a reservation for api clears it too


def test_burst_limit_and_its_prewarm() -> None:
    case = incident(throttles("api"), {"name": "api", "aliases": [{"name": "live"}], "workload": {
        "invoke": {"qualifier": "live"}, "arrivals": step(100, 4000, at_min=WINDOW - 1),
        "duration": {"cpu_ms": 0, "io_ms": 1000}}}, account_concurrency_limit=20000)  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "burst_limit", "schedule_prewarm")
    change = truth.fix.changes[0] if truth.fix else None
    assert change is not None and change.target == "api:live" and change.at_min is not None
    assert change.at_min < WINDOW - 1  # before the ramp, with the time PC takes
    assert not verify(case, [Change("schedule_prewarm", "api:live", 1000, at_min=change.at_min)]).clears


def test_an_async_function_throttled_by_its_cap_gets_a_buffer() -> None:
    case = incident(throttles("worker"), {"name": "worker", "reserved_concurrency": 10, "workload": {
        "invoke": {"path": "async"}, "arrivals": step(5, 100), "duration": {"cpu_ms": 0, "io_ms": 500}}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "async_burst", "enable_sqs_buffer")
    assert value(truth) == 10  # the buffer's MaximumConcurrency stays within the reservation


def test_spillover_over_a_fixed_floor() -> None:
    case = incident(spillover("api", "live"), {"name": "api", "aliases": [{"name": "live",
                    "provisioned_concurrency": 10}], "workload": {"invoke": {"qualifier": "live"},
                    "arrivals": step(20, 150), "duration": {"cpu_ms": 0, "io_ms": 200}}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "pc_floor_too_low", "set_provisioned_concurrency")
    assert not verify(case, [Change("set_provisioned_concurrency", "api:live", value(truth) - 8)]).clears


def test_spillover_with_autoscaling_pinned_at_its_max() -> None:
    case = incident(spillover("api", "live"), {"name": "api", "aliases": [{"name": "live",
                    "provisioned_concurrency": 10, "autoscaling": {"min": 10, "max": 14}}], "workload": {
                    "invoke": {"qualifier": "live"}, "arrivals": step(20, 150, at_min=1),
                    "duration": {"cpu_ms": 0, "io_ms": 200}}})  # fmt: skip
    truth = truth_of(case)
    assert truth.diagnosis == "autoscaling_max_too_low"
    assert truth.fix is not None and truth.fix.clears and truth.fix.kind == "set_autoscaling_bounds"


def test_spillover_while_pc_is_not_ready() -> None:
    case = incident(spillover("api", "live"), {"name": "api", "aliases": [{"name": "live",
                    "provisioned_concurrency": 60, "pc_status": "IN_PROGRESS", "pc_allocated": 10}], "workload": {
                    "invoke": {"qualifier": "live"}, "arrivals": {"base_rps": 150},
                    "duration": {"cpu_ms": 0, "io_ms": 200}}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "pc_not_ready", "pc_ready")


COLD = {"cpu_ms": 0, "io_ms": 100, "first_run_ms": 1500, "init_ms": 400, "noise": 0.1}


def test_cold_starts_in_the_p99_and_pc_on_the_alias_clears_them() -> None:
    case = incident(p99(1000, FunctionName="api", Resource="api:live"), {"name": "api", "aliases": [{"name": "live"}],
                    "workload": {"invoke": {"qualifier": "live"}, "arrivals": step(2, 100, at_min=WINDOW - 1),
                                 "duration": COLD}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "cold_starts", "set_provisioned_concurrency")
    assert truth.evidence["tail"] == {"cold_starts": 1.0}
    assert not verify(case, [Change("set_provisioned_concurrency", "api:live", 2)]).clears


def test_cold_starts_without_init_in_duration_do_not_make_a_p99() -> None:
    quiet = incident(
        p99(1000, FunctionName="api"),
        {
            "name": "api",
            "workload": {
                "arrivals": step(2, 100, at_min=WINDOW - 1),
                "duration": {**COLD, "first_run_ms": 0, "init_ms": 5000},
            },
        },
    )
    assert not ground_truth(quiet).before.breaching  # Init Duration is not part of the Duration metric


def test_pc_on_another_qualifier_is_misconfigured() -> None:
    case = incident(p99(1000, FunctionName="api"), {"name": "api", "aliases": [{"name": "live",
                    "provisioned_concurrency": 20}], "workload": {"arrivals": step(2, 100, at_min=WINDOW - 1),
                    "duration": COLD}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "pc_misconfigured", "set_provisioned_concurrency")
    assert truth.fix is not None and truth.fix.changes[0].target == "api:live"  # the traffic moves to the PC


def test_spillover_cold_starts_in_the_p99() -> None:
    case = incident(p99(1000, FunctionName="api", Resource="api:live"), {"name": "api", "aliases": [{"name": "live",
                    "provisioned_concurrency": 5}], "workload": {"invoke": {"qualifier": "live"},
                    "arrivals": step(2, 100, at_min=WINDOW - 1), "duration": COLD}})  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "spillover_cold_starts", "set_provisioned_concurrency")


def test_cpu_starved_and_the_smallest_memory_that_clears_it() -> None:
    case = incident(
        p99(800, FunctionName="api"),
        {
            "name": "api",
            "memory_mb": 256,
            "workload": {"arrivals": {"base_rps": 10}, "duration": {"cpu_ms": 150, "io_ms": 20, "memory_used_mb": 100}},
        },
    )
    truth = truth_of(case)
    assert_cleared(truth, "cpu_starved", "set_memory")
    assert truth.evidence["tail"] == {"cpu_starved": 1.0}
    assert not verify(case, [Change("set_memory", "api", 320)]).clears


def test_memory_pressure() -> None:
    case = incident(
        p99(800, FunctionName="api"),
        {
            "name": "api",
            "memory_mb": 512,
            "workload": {
                "arrivals": {"base_rps": 10},
                "duration": {"cpu_ms": 100, "io_ms": 200, "memory_used_mb": 505},
            },
        },
    )
    truth = truth_of(case)
    assert_cleared(truth, "memory_pressure", "set_memory")
    assert value(truth) >= 505 / 0.8


def test_a_slow_dependency_has_no_lambda_fix() -> None:
    case = incident(p99(1000, FunctionName="api"), {"name": "api", "memory_mb": 1769, "workload": {
        "arrivals": {"base_rps": 10}, "duration": {"cpu_ms": 50, "io_ms": 50},
        "dependency": {"slow_from_min": 3, "io_ms": 1500}}})  # fmt: skip
    truth = truth_of(case)
    assert truth.diagnosis == "dependency" and truth.fix is None and "dependency" in truth.note


def test_connection_blowup_is_capped_below_the_threshold() -> None:
    alarm = AlarmView("AWS/RDS", "DatabaseConnections", (("DBInstanceIdentifier", "db"),), "Maximum", 60, 90,
                      "GreaterThanThreshold")  # fmt: skip
    case = incident(alarm, {"name": "api", "workload": {"arrivals": step(20, 300), "connections_per_env": 1,
                    "duration": {"cpu_ms": 0, "io_ms": 400}}},
                    databases=[{"id": "db", "max_connections": 100, "consumers": ["api"]}])  # fmt: skip
    truth = truth_of(case)
    assert_cleared(truth, "connection_blowup", "set_reserved_concurrency")
    assert truth.fix is not None and truth.fix.after.connections is not None and truth.fix.after.connections <= 90
    assert not verify(case, [Change("set_reserved_concurrency", "api", 99)]).clears


@pytest.mark.parametrize("seed", [1, 2])
def test_the_truth_is_deterministic(seed: int) -> None:
    def make() -> GroundTruth:
        return ground_truth(
            incident(
                throttles("api"),
                {
                    "name": "api",
                    "reserved_concurrency": 30,
                    "workload": {
                        "arrivals": step(50, 400, seed=seed),
                        "duration": {"cpu_ms": 0, "io_ms": 200, "noise": 0.3},
                    },
                },
            )
        )

    assert make().as_json() == make().as_json()


def test_a_fix_keeps_the_unreserved_floor_and_pc_within_reserved() -> None:
    from medic_tools.world.workload.config import AccountConfig, AliasConfig, FunctionConfig
    from medic_tools.world.workload.fixes import with_requirements

    config = AccountConfig(limit=1000, functions=(FunctionConfig("api", 512, 10, reserved=20,
                                                                 aliases=(AliasConfig("live", "1"),)),))  # fmt: skip
    assert with_requirements(config, [Change("set_reserved_concurrency", "api", 900)]) == [
        Change("set_reserved_concurrency", "api", 900)  # 100 left unreserved: the floor holds
    ]
    assert with_requirements(config, [Change("set_reserved_concurrency", "api", 950)])[1] == Change(
        "request_quota_increase", "account", 1050
    )
    needs = with_requirements(config, [Change("set_provisioned_concurrency", "api:live", 40)])
    assert needs[1] == Change("set_reserved_concurrency", "api", 40)  # PC never above the reservation
    tiny = AccountConfig(limit=10, functions=(FunctionConfig("api", 512, 10),))
    assert with_requirements(tiny, [Change("set_reserved_concurrency", "api", 1)])[1] == Change(
        "request_quota_increase", "account", 11
    )  # a new account's pool is all floor: any reservation needs a bigger quota
