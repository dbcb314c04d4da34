"""The workload model's physics: Little's law, the caps AWS documents, the scaling rate, provisioned concurrency,
durations from the memory share, cold starts, queues and database connections."""

from __future__ import annotations

import math
from typing import Any

import pytest

from medic_tools.scenario import WorldSpec
from medic_tools.world.workload.config import AccountConfig, account_config
from medic_tools.world.workload.model import AccountModel
from medic_tools.world.workload.physics import handler_work, pressure_factor, vcpu_share
from medic_tools.world.workload.trace import GaugeKey, Trace

STEADY = {"poisson": False}
NO_NOISE = {"noise": 0}


def world(*functions: dict[str, Any], **account: Any) -> AccountConfig:
    return account_config(WorldSpec.model_validate({"window_min": 5, **account, "functions": list(functions)}))


def fn(name: str, rps: float, duration: dict[str, Any], **extra: Any) -> dict[str, Any]:
    arrivals = {"base_rps": rps, **STEADY, **extra.pop("arrivals", {})}
    workload = {"arrivals": arrivals, "duration": {**NO_NOISE, "init_ms": 0, **duration}, **extra.pop("workload", {})}
    return {"name": name, "workload": workload, **extra}


def run(config: AccountConfig, seconds: int | None = None) -> Trace:
    return AccountModel(config).run(seconds if seconds is not None else config.window_minutes * 60)


def gauge(trace: Trace, metric: str, dims: tuple[tuple[str, str], ...], minute: int, stat: str = "maximum") -> float:
    found = trace.gauges[minute][GaugeKey("AWS/Lambda" if metric != "DatabaseConnections" else "AWS/RDS", metric,
                                          dims)]  # fmt: skip
    return float(getattr(found, stat))


def total(trace: Trace, name: str, what: str, minutes: range) -> int:
    return sum(getattr(c, what) for m in minutes for k, c in trace.cells.get(m, {}).items() if k[0] == name)


def walls(trace: Trace, name: str, minutes: range) -> dict[str, int]:
    found: dict[str, int] = {}
    for m in minutes:
        for key, cell in trace.cells.get(m, {}).items():
            if key[0] == name:
                for wall, count in cell.walls.items():
                    found[wall] = found.get(wall, 0) + count
    return found


API = (("FunctionName", "api"),)


@pytest.mark.parametrize(("rps", "duration_ms"), [(100, 200), (40, 2500), (1000, 50), (7, 1000)])
def test_littles_law_concurrency_is_rate_times_duration(rps: float, duration_ms: float) -> None:
    trace = run(world(fn("api", rps, {"cpu_ms": 0, "io_ms": duration_ms})))
    assert gauge(trace, "ConcurrentExecutions", API, 3) == math.ceil(rps * duration_ms / 1000)
    assert total(trace, "api", "invocations", range(3, 4)) == rps * 60
    assert total(trace, "api", "throttles", range(5)) == 0


def test_reserved_concurrency_caps_the_function_and_refuses_the_rest() -> None:
    trace = run(world(fn("api", 500, {"cpu_ms": 0, "io_ms": 200}, reserved_concurrency=40)))
    assert gauge(trace, "ConcurrentExecutions", API, 3) == 40
    served = total(trace, "api", "invocations", range(3, 4))
    assert served == 40 / 0.2 * 60
    assert walls(trace, "api", range(3, 4)) == {"reserved_limit": 500 * 60 - served}


def test_functions_without_reservation_share_the_unreserved_pool() -> None:
    config = world(
        fn("hog", 1000, {"cpu_ms": 0, "io_ms": 500}),
        fn("reserved", 10, {"cpu_ms": 0, "io_ms": 500}, reserved_concurrency=150),
        fn("warm", 0, {"cpu_ms": 0, "io_ms": 100}, aliases=[{"name": "live", "provisioned_concurrency": 30}]),
        account_concurrency_limit=400,
    )
    trace = run(config)
    pool = 400 - 150 - 30
    assert gauge(trace, "ConcurrentExecutions", (("FunctionName", "hog"),), 3) == pool
    assert gauge(trace, "UnreservedConcurrentExecutions", (), 3) == pool
    assert gauge(trace, "ClaimedAccountConcurrency", (), 3) == pool + 150 + 30
    assert set(walls(trace, "hog", range(3, 4))) == {"account_limit"}
    assert total(trace, "reserved", "throttles", range(5)) == 0  # its reservation is its own
    assert config.minimum_unreserved == 100 and world(account_concurrency_limit=10).minimum_unreserved == 10


def test_a_new_account_of_ten_throttles_at_ten() -> None:
    trace = run(world(fn("api", 100, {"cpu_ms": 0, "io_ms": 300}), account_concurrency_limit=10))
    assert gauge(trace, "ConcurrentExecutions", (), 3) == 10
    assert set(walls(trace, "api", range(3, 4))) == {"account_limit"}


def test_scaling_rate_is_a_thousand_environments_per_ten_seconds() -> None:
    jump = {"shape": "step", "peak_rps": 3000, "at_min": 2}
    config = world(fn("api", 0, {"cpu_ms": 0, "io_ms": 1000}, arrivals=jump), account_concurrency_limit=10000)
    model = AccountModel(config)
    model.run(120)
    concurrency = []
    for second in range(120, 150):
        model.run(second + 1)
        concurrency.append(sum(math.ceil(pool.busy - 1e-9) for pool in model.functions[0].pools.values()))
    assert concurrency[0] == 1000  # the bucket's 1,000, then 100 a second
    assert concurrency[1] == 1100 and concurrency[10] == 2000
    assert concurrency[-1] == 3000  # caught up after 20 s
    assert set(walls(model.trace, "api", range(2, 3))) == {"burst_limit"}


def test_provisioned_concurrency_serves_first_and_the_rest_spills_over() -> None:
    live = [{"name": "live", "provisioned_concurrency": 20}]
    on_live = {"invoke": {"qualifier": "live"}}
    config = world(fn("api", 300, {"cpu_ms": 0, "io_ms": 200}, aliases=live, workload=on_live))
    trace = run(config)
    minute = range(3, 4)
    assert total(trace, "api", "pc_invocations", minute) == 20 / 0.2 * 60
    assert total(trace, "api", "spillover", minute) == (300 - 100) * 60
    live = (("FunctionName", "api"), ("Resource", "api:live"))
    assert gauge(trace, "ProvisionedConcurrencyUtilization", live, 3) == 1.0
    assert gauge(trace, "ProvisionedConcurrentExecutions", live, 3) == 20
    assert gauge(trace, "ConcurrentExecutions", live, 3) == 60


def test_pc_on_another_qualifier_serves_nothing() -> None:
    trace = run(world(fn("api", 100, {"cpu_ms": 0, "io_ms": 200},
                         aliases=[{"name": "live", "provisioned_concurrency": 50}])))  # fmt: skip
    assert total(trace, "api", "pc_invocations", range(5)) == 0
    assert total(trace, "api", "spillover", range(5)) == 0  # the $LATEST invocations never met that PC


def test_duration_excludes_init_and_cold_starts_pay_the_first_run() -> None:
    config = world(fn("api", 0, {"cpu_ms": 0, "io_ms": 100, "init_ms": 2000, "first_run_ms": 300},
                      arrivals={"shape": "step", "peak_rps": 50, "at_min": 3}))  # fmt: skip
    trace = run(config)
    kinds = {work: count for cell in trace.cells[3].values() for work, count in cell.durations.items()}
    cold = [work for work in kinds if work[0] == "cold"]
    assert cold and all(work[4] == 300 and work[1] + work[2] + work[3] == 100 for work in cold)
    # the init phase keeps each new environment busy 2.4 s: the step to 50 rps opens 100 to 120 of them
    assert 100 <= sum(kinds[w] for w in cold) <= 120


def test_memory_is_cpu_up_to_the_code_parallelism() -> None:
    assert vcpu_share(1769) == 1 and vcpu_share(10240) == pytest.approx(5.79, abs=0.01)
    single = [handler_work(1000, 0, 1, 64, round(m)).total for m in (1769 / 4, 1769 / 2, 1769, 3538)]
    assert single[0] == pytest.approx(2 * single[1], rel=1e-3) and single[1] == pytest.approx(2 * single[2], rel=1e-3)
    assert single[3] == single[2]  # one thread gains nothing past one vCPU
    assert handler_work(1000, 0, 2, 64, 3538).total == pytest.approx(500)


def test_memory_pressure_slows_the_work_and_past_the_memory_every_invocation_fails() -> None:
    assert pressure_factor(400, 512) == 1
    assert 1 < pressure_factor(460, 512) < pressure_factor(500, 512) <= 3
    trace = run(world(fn("api", 10, {"cpu_ms": 50, "memory_used_mb": 600}, memory_mb=512)))
    assert total(trace, "api", "errors", range(3, 4)) == total(trace, "api", "invocations", range(3, 4)) == 600


def test_timeouts_cap_duration_and_are_errors() -> None:
    trace = run(world(fn("api", 10, {"cpu_ms": 0, "io_ms": 3000, "noise": 0.3}, timeout_s=3)))
    invocations = total(trace, "api", "invocations", range(3, 4))
    timeouts = total(trace, "api", "timeouts", range(3, 4))
    assert timeouts == total(trace, "api", "errors", range(3, 4))
    assert invocations * 0.4 < timeouts < invocations * 0.6  # the median sits on the timeout


def test_each_environment_holds_its_connections() -> None:
    config = world(fn("api", 100, {"cpu_ms": 0, "io_ms": 400}, workload={"connections_per_env": 2}),
                   databases=[{"id": "db", "max_connections": 1000, "consumers": ["api"]}])  # fmt: skip
    trace = run(config)
    assert gauge(trace, "DatabaseConnections", (("DBInstanceIdentifier", "db"),), 3) == 2 * 40
    capped = run(world(fn("api", 100, {"cpu_ms": 0, "io_ms": 400}, workload={"connections_per_env": 2}),
                       databases=[{"id": "db", "max_connections": 50, "consumers": ["api"]}]))  # fmt: skip
    assert gauge(capped, "DatabaseConnections", (("DBInstanceIdentifier", "db"),), 3) == 50
    errors, invocations = total(capped, "api", "errors", range(3, 4)), total(capped, "api", "invocations", range(3, 4))
    assert errors == pytest.approx(invocations * 30 / 80, rel=0.05)  # connects past max_connections fail


def test_async_throttles_are_retried_with_backoff_and_counted_each_time() -> None:
    config = world(fn("worker", 50, {"cpu_ms": 0, "io_ms": 1000}, reserved_concurrency=30,
                      workload={"invoke": {"path": "async"}}))  # fmt: skip
    trace = run(config)
    minute = range(3, 4)
    received = sum(trace.counters[3][k] for k in trace.counters[3] if k.metric == "AsyncEventsReceived")
    assert received == 50 * 60
    assert total(trace, "worker", "invocations", minute) == 30 * 60
    assert total(trace, "worker", "throttles", minute) > received - 30 * 60  # retries are throttled again
    age = trace.gauges[3][GaugeKey("AWS/Lambda", "AsyncEventAge", (("FunctionName", "worker"),))]
    assert age.maximum > 60_000  # milliseconds


def test_async_events_older_than_the_maximum_age_are_dropped() -> None:
    config = world(fn("worker", 50, {"cpu_ms": 0, "io_ms": 1000}, reserved_concurrency=30,
                      workload={"invoke": {"path": "async", "max_event_age_s": 60}}))  # fmt: skip
    trace = run(config)
    dropped = sum(v for k, v in trace.counters[3].items() if k.metric == "AsyncEventsDropped")
    assert dropped > 0


def test_sqs_pollers_scale_by_five_a_second_up_to_maximum_concurrency() -> None:
    config = world(fn("consumer", 0, {"cpu_ms": 0, "io_ms": 1000}, event_sources=[{"queue": "jobs",
                      "maximum_concurrency": 40, "batch_size": 1}], arrivals={"shape": "step", "peak_rps": 200,
                      "at_min": 2}, workload={"invoke": {"path": "sqs"}}))  # fmt: skip
    model = AccountModel(config)
    model.run(121)
    pollers = []
    for second in range(121, 135):
        model.run(second + 1)
        pollers.append(model.functions[0].sqs.pollers if model.functions[0].sqs else 0)
    assert pollers[:3] == [15, 20, 25] and max(pollers) == 40  # 5 while idle, +5 a second with messages
    trace = model.run(300)
    assert gauge(trace, "ConcurrentExecutions", (("FunctionName", "consumer"),), 4) == 40
    assert total(trace, "consumer", "throttles", range(5)) == 0
    visible = trace.gauges[4][GaugeKey("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "jobs"),))]
    assert visible.maximum > 10_000  # 200 in, 40 out a second


def test_autoscaling_scales_out_after_three_minutes_and_takes_time_to_allocate() -> None:
    live = [{"name": "live", "provisioned_concurrency": 20, "autoscaling": {"min": 20, "max": 200}}]
    jump = {"shape": "step", "peak_rps": 300, "at_min": 1}
    config = world(fn("api", 50, {"cpu_ms": 0, "io_ms": 200}, aliases=live, arrivals=jump,
                      workload={"invoke": {"qualifier": "live"}}), window_min=8)  # fmt: skip
    trace = run(config)
    states = [trace.provisioned[m][("api", "live")] for m in range(8)]
    assert [s.requested for s in states[:4]] == [20, 20, 20, 20]  # minutes 1, 2, 3 above the target
    assert (states[4].requested, states[4].allocated, states[4].status) == (29, 20, "IN_PROGRESS")  # 20 / 0.7
    assert states[5].allocated == 29
    assert states[-1].requested == 42  # utilization is at most 1: a step of at most 1/0.7 each time


def test_a_scheduled_prewarm_raises_the_floor_at_its_time() -> None:
    config = world(fn("api", 5, {"cpu_ms": 0, "io_ms": 200}, aliases=[{"name": "live", "provisioned_concurrency": 1,
                      "autoscaling": {"min": 1, "max": 100, "scheduled": [{"at_min": 2, "min": 50}]}}],
                      workload={"invoke": {"qualifier": "live"}}))  # fmt: skip
    trace = run(config)
    assert trace.provisioned[1][("api", "live")].allocated <= 2
    assert trace.provisioned[3][("api", "live")].allocated == 50  # 60 s to allocate


def test_the_same_spec_and_seed_give_the_same_trace() -> None:
    spec = fn("api", 80, {"cpu_ms": 20, "io_ms": 50, "noise": 0.2}, arrivals={"poisson": True, "seed": 4})
    first, again = run(world(spec)), run(world(spec))
    assert first.cells == again.cells and first.gauges == again.gauges
    other = run(world(fn("api", 80, {"cpu_ms": 20, "io_ms": 50}, arrivals={"poisson": True, "seed": 5})))
    assert other.cells != first.cells
