"""The templates the generator draws from: one per wall, sized so that the wall is what binds, plus variants that
change how the account looks without changing the physics (log format and group, omitted series, a neighbour).

Sizes come from Little's law (concurrency = rate × duration): each template draws the concurrency it wants and
divides by the duration. Events happen late in the window so that the alarm's last period sees them.
"""

from __future__ import annotations

import random
from typing import Any

MAIN = "orders-api"
VCPU_MB = 1769


def draw(wall: str, variant: str, rng: random.Random, window: int) -> dict[str, Any]:
    """A scenario document (world + alarm) meant to hit `wall`."""
    function, alarm, world = TEMPLATES[wall](rng, variant, window)
    function.setdefault("tags", {"medic:managed": "true"})
    world = {"window_min": window, **world, "functions": [function, *world.get("functions", [])]}
    document: dict[str, Any] = {"description": f"generated: {wall} ({variant})", "world": world, "alarm": alarm}
    _decorate(document, wall, variant, rng)
    return document


def _duration(
    rng: random.Random, memory: int, low_io: float = 80, high_io: float = 600
) -> tuple[dict[str, Any], float]:
    cpu = round(rng.uniform(5, 40), 1)
    io = round(rng.uniform(low_io, high_io), 1)
    return {"cpu_ms": cpu, "io_ms": io, "init_ms": round(rng.uniform(150, 1200)), "noise": 0.1}, (
        cpu * VCPU_MB / min(memory, VCPU_MB) + io
    ) / 1000


def _rps(concurrency: float, seconds: float) -> float:
    return round(max(concurrency / seconds, 0.05), 2)


def _step(rng: random.Random, base: float, peak: float, earliest: float, latest: float) -> dict[str, Any]:
    shape = rng.choice(("step", "ramp"))
    at_min = round(rng.uniform(earliest, latest), 2)
    arrivals: dict[str, Any] = {
        "shape": shape,
        "base_rps": base,
        "peak_rps": peak,
        "at_min": at_min,
        "seed": rng.randrange(10_000),
    }
    if shape == "ramp":
        arrivals["rise_s"] = rng.randint(20, 60)
    return arrivals


def _throttle_alarm(function: str) -> dict[str, Any]:
    return {
        "name": f"{function}-throttles",
        "namespace": "AWS/Lambda",
        "metric": "Throttles",
        "dimensions": {"FunctionName": function},
        "stat": "Sum",
        "threshold": 0,
    }


def _qualified(function: dict[str, Any], variant: str) -> str:
    if variant == "unqualified":
        return "$LATEST"
    function.setdefault("aliases", []).append({"name": "live"})
    return "live"


def _reserved(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    memory = rng.choice((512, 1024, 2048))
    duration, seconds = _duration(rng, memory)
    reserved = rng.randint(5, 80)
    function: dict[str, Any] = {"name": MAIN, "memory_mb": memory, "reserved_concurrency": reserved}
    qualifier = _qualified(function, variant)
    arrivals = _step(
        rng,
        _rps(reserved * rng.uniform(0.2, 0.6), seconds),
        _rps(reserved * rng.uniform(1.5, 3), seconds),
        window - 8,
        window - 2,
    )
    function["workload"] = {"invoke": {"qualifier": qualifier}, "arrivals": arrivals, "duration": duration}
    return function, _throttle_alarm(MAIN), {}


def _account(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    limit = 10 if variant == "new_account" else rng.choice((100, 200, 300, 500, 1000))
    memory = rng.choice((512, 1024))
    duration, seconds = _duration(rng, memory, 800, 2500)
    function: dict[str, Any] = {"name": MAIN, "memory_mb": memory}
    qualifier = _qualified(function, variant)
    neighbour = rng.uniform(0.3, 0.5) if variant == "noisy_neighbour" else 0.0
    peak = limit * (rng.uniform(0.8, 1.5) if neighbour else rng.uniform(1.3, 2.5))
    arrivals = _step(rng, _rps(limit * rng.uniform(0.1, 0.4), seconds), _rps(peak, seconds), window - 8, window - 2)
    function["workload"] = {"invoke": {"qualifier": qualifier}, "arrivals": arrivals, "duration": duration}
    world: dict[str, Any] = {"account_concurrency_limit": limit}
    if neighbour:
        world["functions"] = [_neighbour(rng, limit * neighbour)]
    return function, _throttle_alarm(MAIN), world


def _burst(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    limit = rng.choice((5000, 10000, 20000))
    seconds = rng.uniform(1.5, 4.0)
    duration = {"cpu_ms": 0, "io_ms": round(seconds * 1000), "init_ms": round(rng.uniform(150, 800)), "noise": 0.1}
    function: dict[str, Any] = {"name": MAIN, "memory_mb": 1024, "aliases": [{"name": "live"}]}
    arrivals = {
        "shape": "spike",
        "base_rps": _rps(rng.uniform(20, 200), seconds),
        "peak_rps": _rps(rng.uniform(2500, min(0.8 * limit, 6000)), seconds),
        "at_min": round(rng.uniform(window - 0.95, window - 0.5), 2),
        "rise_s": rng.randint(1, 5),
        "seed": rng.randrange(10_000),
    }
    function["workload"] = {
        "invoke": {"qualifier": "live"},
        "arrivals": arrivals,
        "duration": duration,
        "report_lines": 200,
    }
    return function, _throttle_alarm(MAIN), {"account_concurrency_limit": limit}


def _async(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    function, alarm, world = _reserved(rng, variant, window)
    function["workload"]["invoke"]["path"] = "async"
    function["invoked_by"] = [{"eventbridge_rule": f"{MAIN}-events"}]  # an asynchronous producer
    return function, alarm, world


def _pc_function(rng: random.Random, pc: int, **alias: Any) -> tuple[dict[str, Any], dict[str, Any], float]:
    memory = rng.choice((512, 1024, 2048))
    duration, seconds = _duration(rng, memory, 200, 800)
    function = {
        "name": MAIN,
        "memory_mb": memory,
        "aliases": [{"name": "live", "provisioned_concurrency": pc, **alias}],
    }
    return function, duration, seconds


def _spill_alarm() -> dict[str, Any]:
    return {
        "name": f"{MAIN}-live-spillover",
        "namespace": "AWS/Lambda",
        "metric": "ProvisionedConcurrencySpilloverInvocations",
        "stat": "Sum",
        "threshold": 0,
        "dimensions": {"FunctionName": MAIN, "Resource": f"{MAIN}:live"},
    }


def _floor(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    pc = rng.randint(5, 60)
    function, duration, seconds = _pc_function(rng, pc)
    arrivals = _step(
        rng,
        _rps(pc * rng.uniform(0.3, 0.6), seconds),
        _rps(pc * rng.uniform(1.3, 2.5), seconds),
        window - 8,
        window - 2,
    )
    function["workload"] = {"invoke": {"qualifier": "live"}, "arrivals": arrivals, "duration": duration}
    return function, _spill_alarm(), {}


def _autoscaling(
    rng: random.Random, variant: str, window: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    pc = rng.randint(5, 30)
    high = max(pc + 1, round(pc * rng.uniform(1.2, 1.6)))
    scaling = {"min": pc, "max": high, "target_utilization": 0.7}
    function, duration, seconds = _pc_function(rng, pc, autoscaling=scaling)
    arrivals = _step(rng, _rps(pc * 0.4, seconds), _rps(high * rng.uniform(1.8, 2.5), seconds), 1, 5)
    function["workload"] = {"invoke": {"qualifier": "live"}, "arrivals": arrivals, "duration": duration}
    return function, _spill_alarm(), {}


def _not_ready(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    requested = rng.randint(20, 100)
    allocated = 0 if variant == "pc_failed" else round(requested * rng.uniform(0, 0.5))
    status = (
        {"pc_status": "FAILED"} if variant == "pc_failed" else {"pc_status": "IN_PROGRESS", "pc_allocated": allocated}
    )
    function, duration, seconds = _pc_function(rng, requested, **status)
    demand = rng.uniform(allocated + 3, requested * 0.9)
    arrivals = {"base_rps": _rps(demand, seconds), "seed": rng.randrange(10_000)}
    function["workload"] = {"invoke": {"qualifier": "live"}, "arrivals": arrivals, "duration": duration}
    return function, _spill_alarm(), {}


def _cold_duration(rng: random.Random) -> tuple[dict[str, Any], float, float]:
    io = rng.uniform(30, 150)
    first = rng.uniform(800, 3000)
    duration = {
        "cpu_ms": 0,
        "io_ms": round(io, 1),
        "first_run_ms": round(first),
        "noise": 0.1,
        "init_ms": round(rng.uniform(200, 1500)),
    }
    threshold = round(io + first * rng.uniform(0.3, 0.6))
    return duration, io / 1000, threshold


def _p99_alarm(threshold: float, **dimensions: str) -> dict[str, Any]:
    return {
        "name": f"{MAIN}-p99",
        "namespace": "AWS/Lambda",
        "metric": "Duration",
        "stat": "p99",
        "threshold": threshold,
        "dimensions": dimensions,
    }


def _spike(rng: random.Random, seconds: float, concurrency: float, window: int) -> dict[str, Any]:
    return {
        "shape": "spike",
        "base_rps": round(rng.uniform(0.3, 2), 2),
        "peak_rps": _rps(concurrency, seconds),
        "at_min": round(rng.uniform(window - 1, window - 0.75), 2),
        "rise_s": rng.randint(1, 5),
        "seed": rng.randrange(10_000),
    }


def _cold(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    duration, seconds, threshold = _cold_duration(rng)
    function: dict[str, Any] = {"name": MAIN, "memory_mb": rng.choice((512, 1024))}
    qualifier = _qualified(function, variant)
    function["workload"] = {
        "invoke": {"qualifier": qualifier},
        "duration": duration,
        "arrivals": _spike(rng, seconds, rng.uniform(10, 120), window),
    }
    dims = {"FunctionName": MAIN} if qualifier == "$LATEST" else {"FunctionName": MAIN, "Resource": f"{MAIN}:live"}
    return function, _p99_alarm(threshold, **dims), {}


def _spill_cold(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    duration, seconds, threshold = _cold_duration(rng)
    pc = rng.randint(3, 30)
    function = {"name": MAIN, "memory_mb": 1024, "aliases": [{"name": "live", "provisioned_concurrency": pc}]}
    function["workload"] = {
        "invoke": {"qualifier": "live"},
        "duration": duration,
        "arrivals": _spike(rng, seconds, pc * rng.uniform(3, 6), window),
    }
    return function, _p99_alarm(threshold, FunctionName=MAIN, Resource=f"{MAIN}:live"), {}


def _misconfigured(
    rng: random.Random, variant: str, window: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    duration, seconds, threshold = _cold_duration(rng)
    aliases = [{"name": "live", "provisioned_concurrency": rng.randint(10, 60)}]
    qualifier = "$LATEST"
    if variant == "other_alias":
        aliases.append({"name": "canary"})
        qualifier = "canary"
    function = {"name": MAIN, "memory_mb": 1024, "aliases": aliases}
    function["workload"] = {
        "invoke": {"qualifier": qualifier},
        "duration": duration,
        "arrivals": _spike(rng, seconds, rng.uniform(10, 120), window),
    }
    dims = {"FunctionName": MAIN} if qualifier == "$LATEST" else {"FunctionName": MAIN, "Resource": f"{MAIN}:canary"}
    return function, _p99_alarm(threshold, **dims), {}


def _latency_function(
    rng: random.Random, variant: str, memory: int, duration: dict[str, Any], **extra: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    function: dict[str, Any] = {"name": MAIN, "memory_mb": memory, "timeout_s": 30, **extra}
    qualifier = _qualified(function, variant)
    arrivals = {"base_rps": round(rng.uniform(2, 30), 1), "seed": rng.randrange(10_000)}
    function["workload"] = {"invoke": {"qualifier": qualifier}, "duration": duration, "arrivals": arrivals}
    dims = {"FunctionName": MAIN} if qualifier == "$LATEST" else {"FunctionName": MAIN, "Resource": f"{MAIN}:live"}
    return function, dims


def _cpu(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    memory = rng.choice((128, 192, 256, 384, 512))
    cpu, io = rng.uniform(60, 250), rng.uniform(5, 40)
    duration = {
        "cpu_ms": round(cpu, 1),
        "io_ms": round(io, 1),
        "noise": 0.1,
        "memory_used_mb": round(memory * rng.uniform(0.3, 0.6)),
    }
    total = cpu * VCPU_MB / memory + io
    function, dims = _latency_function(rng, variant, memory, duration)
    return function, _p99_alarm(round(total * rng.uniform(0.6, 0.9)), **dims), {}


def _pressure(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    memory = rng.choice((256, 512, 1024, 2048))
    cpu, io = rng.uniform(20, 80), rng.uniform(50, 300)
    ratio = rng.uniform(0.95, 0.99)
    duration = {"cpu_ms": round(cpu, 1), "io_ms": round(io, 1), "noise": 0.1, "memory_used_mb": round(memory * ratio)}
    factor = 1 + 2 * ((ratio - 0.8) / 0.2) ** 2
    total = (cpu * VCPU_MB / min(memory, VCPU_MB) + io) * factor
    function, dims = _latency_function(rng, variant, memory, duration)
    return function, _p99_alarm(round(total * rng.uniform(0.7, 0.9)), **dims), {}


def _dependency(rng: random.Random, variant: str, window: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    io, slow = rng.uniform(20, 100), rng.uniform(800, 4000)
    duration = {"cpu_ms": round(rng.uniform(5, 30), 1), "io_ms": round(io, 1), "noise": 0.1}
    dependency = {"slow_from_min": round(rng.uniform(window - 10, window - 2), 1), "io_ms": round(slow)}
    function, dims = _latency_function(rng, variant, rng.choice((1024, 1769)), duration)
    function["workload"]["dependency"] = dependency
    return function, _p99_alarm(round(rng.uniform(max(3 * io, 200), 0.7 * slow)), **dims), {}


def _connections(
    rng: random.Random, variant: str, window: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    maximum = rng.randint(50, 500)
    per_env = rng.choice((1, 1, 2))
    memory = rng.choice((512, 1024))
    duration, seconds = _duration(rng, memory, 400, 1500)
    function: dict[str, Any] = {"name": MAIN, "memory_mb": memory}
    environments = maximum / per_env * rng.uniform(1.3, 2.5)
    if variant == "sqs":
        function["event_sources"] = [{"queue": "orders", "batch_size": 1}]
        invoke: dict[str, Any] = {"path": "sqs"}
        arrivals = _step(rng, _rps(environments * 0.2, seconds), _rps(environments * 1.5, seconds), 5, 9)
    else:
        invoke = {"qualifier": _qualified(function, variant)}
        arrivals = _step(rng, _rps(environments * 0.2, seconds), _rps(environments, seconds), window - 8, window - 2)
    function["workload"] = {
        "invoke": invoke,
        "arrivals": arrivals,
        "duration": duration,
        "connections_per_env": per_env,
    }
    alarm = {
        "name": "orders-db-connections",
        "namespace": "AWS/RDS",
        "metric": "DatabaseConnections",
        "stat": "Maximum",
        "threshold": round(maximum * 0.9),
        "dimensions": {"DBInstanceIdentifier": "orders-db"},
    }
    world = {"databases": [{"id": "orders-db", "max_connections": maximum, "consumers": [MAIN]}]}
    return function, alarm, world


def _neighbour(rng: random.Random, concurrency: float) -> dict[str, Any]:
    seconds = rng.uniform(0.2, 1.0)
    return {
        "name": "batch-export",
        "workload": {
            "arrivals": {"base_rps": _rps(concurrency, seconds), "seed": rng.randrange(10_000)},
            "duration": {"cpu_ms": 0, "io_ms": round(seconds * 1000)},
            "report_lines": 20,
        },
    }


def _decorate(document: dict[str, Any], wall: str, variant: str, rng: random.Random) -> None:
    world = document["world"]
    main = world["functions"][0]
    if variant == "json_logs":
        main["logging"] = {"format": "JSON"}
    elif variant == "shared_log_group":
        main["logging"] = {"format": rng.choice(("JSON", "Text")), "log_group": "/apps/shared"}
        world["functions"].append(
            {
                "name": "audit-trail",
                "logging": {"log_group": "/apps/shared"},
                "workload": {"arrivals": {"base_rps": 1}, "report_lines": 20},
            }
        )
    elif variant == "no_resource_series":
        world["omit_series"] = [
            rng.choice(
                [
                    {"metric": "ConcurrentExecutions", "dimensions": ["FunctionName", "Resource"]},
                    {"metric": "ConcurrentExecutions", "dimensions": ["FunctionName"]},
                    {"metric": "UnreservedConcurrentExecutions"},
                    {"metric": "ClaimedAccountConcurrency"},
                ]
            )
        ]
    elif variant == "noisy_neighbour" and wall != "account_limit":
        limit = world.get("account_concurrency_limit", 1000)
        world["functions"].append(_neighbour(rng, limit * rng.uniform(0.02, 0.08)))


TEMPLATES = {
    "account_limit": _account,
    "reserved_limit": _reserved,
    "burst_limit": _burst,
    "async_burst": _async,
    "pc_floor_too_low": _floor,
    "autoscaling_max_too_low": _autoscaling,
    "pc_not_ready": _not_ready,
    "cold_starts": _cold,
    "spillover_cold_starts": _spill_cold,
    "pc_misconfigured": _misconfigured,
    "cpu_starved": _cpu,
    "memory_pressure": _pressure,
    "dependency": _dependency,
    "connection_blowup": _connections,
}
