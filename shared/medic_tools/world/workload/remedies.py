"""The fix that clears a modelled incident: candidates sized from the demand (a replay with every limit lifted),
each verified by a what-if replay; the first that clears the alarm is the fix, later kinds are alternatives.

Sizing: N = the peak concurrency the target would have used with no limit in the alarm's evaluation window.
Candidates, smallest first (docs/WORKLOAD.md, "Ground truth"):

* reserved_limit: reserved ≥ N. account_limit: quota ≥ 1.1 × the account's unconstrained peak (alternative:
  reserved ≥ N for the function). burst_limit: a pre-warm of PC ≥ N on the traffic's alias a few minutes before the
  first refusal (alternative: PC ≥ N). async_burst: an SQS buffer whose MaximumConcurrency stays within the
  function's concurrency (alternative: reserved ≥ N).
* pc_floor_too_low: PC ≥ N (or autoscaling min ≥ N). autoscaling_max_too_low: max ≥ N, then min = max = N.
  pc_not_ready: the PC READY, then READY and ≥ N.
* cold_starts / spillover_cold_starts / pc_misconfigured: PC ≥ N on the qualifier the traffic hits.
  cpu_starved: the smallest memory size that clears. memory_pressure: memory ≥ used / 0.8, then larger.
  dependency, cpu_bound: no Lambda setting clears them (the truth says so).
* connection_blowup: cap the consumers' concurrency (reserved, or the SQS mapping's MaximumConcurrency) so that
  their environments' connections stay under the alarm's threshold.
"""

from __future__ import annotations

import math
from dataclasses import replace

from medic_tools.world.workload.config import LATEST, AccountConfig
from medic_tools.world.workload.fixes import NEW_ALIAS, Change, apply, replay, with_requirements
from medic_tools.world.workload.physics import VCPU_MB
from medic_tools.world.workload.trace import GaugeKey, Trace
from medic_tools.world.workload.truth import Fix, GroundTruth, Incident, outcome

MEMORY_SIZES = (1024, 1536, 1769, 2048, 3008, 3538, 4096, 5307, 6144, 8192, 10240)
PREWARM_LEAD_S = 120

Candidates = list[list[Change]]


def verify(incident: Incident, changes: list[Change]) -> Fix:
    """Replay the incident's workload with the changes (and what AWS requires with them) from the window's start."""
    full = with_requirements(incident.config, changes)
    config = apply(incident.config, full)
    model = replay(config, incident.end_minute * 60)
    after = outcome(incident, model.trace, config)
    return Fix(tuple(full), after, not after.breaching)


def steady(config: AccountConfig) -> AccountConfig:
    """The configuration with no init phase and no lazy first run: what the traffic needs once warm (PC sizes)."""
    functions = []
    for function in config.functions:
        workload = function.workload
        if workload is None:
            functions.append(function)
            continue
        duration = workload.duration.model_copy(update={"init_ms": 0.0, "first_run_ms": 0.0})
        functions.append(replace(function, workload=workload.model_copy(update={"duration": duration})))
    return replace(config, functions=tuple(functions))


def with_fix(incident: Incident, truth: GroundTruth, *, alternatives: bool = True) -> GroundTruth:
    until = incident.end_minute * 60
    demand = replay(incident.config, until, limitless=True).trace
    warm = replay(steady(incident.config), until, limitless=True).trace if _sized_warm(truth) else demand
    primary, others, note = _candidates(incident, truth, demand, warm)
    fix: Fix | None = None
    for changes in primary:
        fix = verify(incident, changes)
        if fix.clears:
            break
    found = tuple(f for f in (verify(incident, c) for c in others) if f.clears) if alternatives and others else ()
    return replace(truth, fix=fix, alternatives=found, note=note)


def peak(trace: Trace, incident: Incident, dimensions: tuple[tuple[str, str], ...]) -> int:
    first, last = incident.window
    key = GaugeKey("AWS/Lambda", "ConcurrentExecutions", dimensions)
    found = [g.maximum for m in range(first, last) if (g := trace.gauges.get(m, {}).get(key)) is not None]
    return max(1, math.ceil(max(found, default=1.0)))


def _sized_warm(truth: GroundTruth) -> bool:
    """Provisioned environments are initialized ahead: size them on the warm demand, not on cold starts' time."""
    return truth.diagnosis in (
        "pc_not_ready",
        "pc_floor_too_low",
        "autoscaling_max_too_low",
        "spillover_cold_starts",
        "cold_starts",
        "pc_misconfigured",
        "burst_limit",
    )


def _candidates(
    incident: Incident, truth: GroundTruth, demand: Trace, warm: Trace
) -> tuple[Candidates, Candidates, str]:
    diagnosis = truth.diagnosis
    if truth.signal == "throttles" and diagnosis != "unknown":
        return _throttles(incident, truth, demand, warm)
    if truth.signal == "db_connections":
        return _connections(incident), [], ""
    if diagnosis in ("pc_not_ready", "pc_floor_too_low", "autoscaling_max_too_low", "spillover_cold_starts"):
        return _provisioned(incident, truth, warm) + _provisioned(incident, truth, demand), [], ""
    if diagnosis in ("cold_starts", "pc_misconfigured"):
        return _cold(incident, truth, warm) + _cold(incident, truth, demand), [], ""
    if diagnosis in ("cpu_starved", "memory_pressure"):
        return _memory(incident, truth), [], ""
    notes = {
        "dependency": "the downstream dependency slowed down: no Lambda setting clears it",
        "cpu_bound": "the CPU work is slow at every vCPU the code can use: no memory size clears it",
    }
    return [], [], notes.get(diagnosis, "nothing in the model explains the alarm")


def _function_of(incident: Incident, truth: GroundTruth) -> str:
    name = incident.function_name or truth.evidence.get("function")
    if name is None:
        name = truth.target.split(":", 1)[0]
    return str(name)


def _traffic_alias(config: AccountConfig, name: str) -> str:
    workload = config.function(name).workload
    qualifier = workload.invoke.qualifier if workload else LATEST
    if qualifier != LATEST and not qualifier.isdigit():
        return qualifier
    with_pc = [alias.name for alias in config.function(name).aliases if alias.pc is not None]
    return with_pc[0] if with_pc else NEW_ALIAS


def _throttles(
    incident: Incident, truth: GroundTruth, demand: Trace, warm: Trace
) -> tuple[Candidates, Candidates, str]:
    name = _function_of(incident, truth)
    function = incident.config.function(name)
    need = peak(demand, incident, (("FunctionName", name),))
    # A reservation also caps the request rate at 10 a second per unit (Lambda: "Understanding concurrency and
    # requests per second"): short functions need it sized on their rate, not their concurrency.
    arrivals = function.workload.arrivals if function.workload is not None else None
    rate = max(arrivals.base_rps, arrivals.peak_rps or 0.0) if arrivals is not None else 0.0
    need = max(need, math.ceil(rate / 10 * 1.1))
    reserve = [
        [Change("set_reserved_concurrency", name, need)],
        [Change("set_reserved_concurrency", name, math.ceil(need * 1.25))],
    ]
    alias = f"{name}:{_traffic_alias(incident.config, name)}"
    if truth.diagnosis == "reserved_limit":
        return reserve, [], ""
    if truth.diagnosis == "account_limit":
        account = peak(demand, incident, ())
        quota = max(incident.config.limit + 1, math.ceil(account * 1.1))
        quotas = [[Change("request_quota_increase", "account", value)] for value in (quota, math.ceil(quota * 1.5))]
        return quotas, reserve[:1], ""
    if truth.diagnosis == "burst_limit":
        bursts = [
            m
            for m in sorted(incident.trace.cells)
            if any(key[0] == name and cell.walls.get("burst_limit") for key, cell in incident.trace.cells[m].items())
        ]
        first = bursts[0] if bursts else incident.window[0]
        at = max(0.0, (first * 60 - incident.config.model.pc_allocation_s - PREWARM_LEAD_S) / 60)
        sizes = sorted({peak(warm, incident, (("FunctionName", name),)), need})
        prewarm = [[Change("schedule_prewarm", alias, size, at_min=round(at, 1))] for size in sizes]
        return prewarm, [[Change("set_provisioned_concurrency", alias, sizes[0])]], ""
    cap = function.reserved if function.reserved is not None else min(1000, need)
    buffer = [[Change("enable_sqs_buffer", name, max(2, min(1000, cap)))]]
    return buffer, reserve[:1], ""


def _provisioned(incident: Incident, truth: GroundTruth, demand: Trace) -> Candidates:
    name = _function_of(incident, truth)
    alias_name = _traffic_alias(incident.config, name)
    target = f"{name}:{alias_name}"
    need = peak(demand, incident, (("FunctionName", name), ("Resource", target)))
    alias = incident.config.function(name).alias(alias_name)
    bounds = alias.pc.autoscaling if alias and alias.pc else None
    if truth.diagnosis == "pc_not_ready":
        if alias is None or alias.pc is None:
            return [[Change("set_provisioned_concurrency", target, need)]]
        return [
            [Change("pc_ready", target)],
            [Change("pc_ready", target), Change("set_provisioned_concurrency", target, need)],
        ]
    if bounds is not None:
        raise_max = Change("set_autoscaling_bounds", target, max(need, bounds.max), minimum=bounds.min)
        pinned = Change("set_autoscaling_bounds", target, max(need, bounds.max), minimum=need)
        return [[raise_max], [pinned]] if truth.diagnosis == "autoscaling_max_too_low" else [[pinned]]
    return [[Change("set_provisioned_concurrency", target, need)]]


def _cold(incident: Incident, truth: GroundTruth, demand: Trace) -> Candidates:
    name = _function_of(incident, truth)
    target = f"{name}:{_traffic_alias(incident.config, name)}"
    resource = incident.alarm.dimension_map.get("Resource")
    dims = (("FunctionName", name), ("Resource", resource)) if resource else (("FunctionName", name),)
    need = peak(demand, incident, dims)
    return [
        [Change("set_provisioned_concurrency", target, need)],
        [Change("set_provisioned_concurrency", target, math.ceil(need * 1.5))],
    ]


def _memory(incident: Incident, truth: GroundTruth) -> Candidates:
    name = _function_of(incident, truth)
    function = incident.config.function(name)
    workload = function.workload
    current = function.memory_mb
    if truth.diagnosis == "memory_pressure":
        used = (workload.duration.memory_used_mb if workload else None) or current // 2
        floor = min(10240, math.ceil(used / 0.8 / 64) * 64)
        sizes = sorted({floor, min(10240, math.ceil(floor * 1.5 / 64) * 64), min(10240, floor * 2)})
    else:
        parallelism = workload.duration.parallelism if workload else 1.0
        sizes = sorted({m for m in MEMORY_SIZES if m > current} | {min(10240, math.ceil(VCPU_MB * parallelism))})
    return [[Change("set_memory", name, size)] for size in sizes if size > current][:6]


def _connections(incident: Incident) -> Candidates:
    database = incident.alarm.dimension_map.get("DBInstanceIdentifier")
    config = incident.config
    found = next((d for d in config.databases if d.id == database), None)
    if found is None:
        return []
    first, last = incident.window
    consumers = [config.function(n) for n in found.consumers if config.function(n).workload is not None]
    usage = {
        f.name: max(
            1.0,
            max(
                (
                    g.maximum
                    for m in range(first, last)
                    if (
                        g := incident.trace.gauges.get(m, {}).get(
                            GaugeKey("AWS/Lambda", "ConcurrentExecutions", (("FunctionName", f.name),))
                        )
                    )
                    is not None
                ),
                default=1.0,
            ),
        )
        for f in consumers
    }
    total = sum(usage.values()) or 1.0
    budget = incident.alarm.threshold - 1 if "Greater" in incident.alarm.comparison else incident.alarm.threshold
    candidates = []
    for scale in (1.0, 0.75, 0.5):
        changes = []
        for function in consumers:
            per_env = function.workload.connections_per_env if function.workload else 0
            if not per_env:
                continue
            cap = math.floor(budget * scale * usage[function.name] / total / per_env) - function.pc_allocated
            if function.invoke_path == "sqs" and function.event_sources:
                queue = function.event_sources[0].queue
                changes.append(Change("set_event_source_max_concurrency", f"{function.name}:{queue}", max(2, cap)))
            else:
                changes.append(Change("set_reserved_concurrency", function.name, max(1, cap)))
        if changes:
            candidates.append(changes)
    return candidates
