"""The ground truth of a modelled incident: which wall was hit (from the model and AWS's rules, never from Medic's
runbook) and the fix that clears it, verified by a what-if replay (`medic_tools.world.workload.remedies`).

The diagnoses are the vocabulary's (docs/ARCHITECTURE.md §3; the table is docs/WORKLOAD.md "Ground truth"):

* throttles — the constraint that refused most throttled requests in the alarm's evaluation window:
  `account_limit` (the account limit or the unreserved pool), `reserved_limit`, `burst_limit` (the scaling rate);
  an asynchronous function throttled by its reserved cap or the scaling rate: `async_burst`.
* spillover — why the demand exceeded the pool: `pc_not_ready` (IN_PROGRESS or FAILED in the window),
  `autoscaling_max_too_low` (allocated at the autoscaling max), else `pc_floor_too_low` (a fixed PC, or autoscaling
  below its max: too slow for the step).
* p99_latency — what the invocations above the threshold are made of: cold first runs (`cold_starts`;
  `spillover_cold_starts` when they spilled from a READY pool on the qualifier, `pc_not_ready` when that pool is
  still allocating, `pc_misconfigured` when it FAILED or the PC sits on another qualifier), warm invocations whose
  biggest part is CPU with
  more vCPU to gain from memory (`cpu_starved`), the garbage-collection slowdown (`memory_pressure`), or the wait
  downstream (`dependency`). `cpu_bound` (CPU, but memory would not add usable vCPU) is ours.
* db_connections — `connection_blowup`: the consumers' environments hold the connections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from medic_tools.world.workload.alarm import AlarmView
from medic_tools.world.workload.config import LATEST, AccountConfig, FunctionConfig
from medic_tools.world.workload.emit import series
from medic_tools.world.workload.fixes import Change
from medic_tools.world.workload.physics import MAX_VCPUS, fraction_above, vcpu_share
from medic_tools.world.workload.trace import WALLS, CellKey, GaugeKey, ProvisionedMinute, Trace, WorkKey

SIGNALS = {
    "Throttles": "throttles",
    "ProvisionedConcurrencySpilloverInvocations": "spillover",
    "Duration": "p99_latency",
    "DatabaseConnections": "db_connections",
}
_WALL_ORDER = {wall: index for index, wall in enumerate(("reserved_limit", "account_limit", "burst_limit"))}


@dataclass(frozen=True)
class Outcome:
    """The alarm's worst period in its evaluation window, and the quantities around it."""

    alarm_value: float | None
    breaching: bool
    throttles: int
    spillover: int
    p99_ms: float | None
    connections: float | None


@dataclass(frozen=True)
class Fix:
    changes: tuple[Change, ...]
    after: Outcome
    clears: bool

    @property
    def kind(self) -> str:
        return self.changes[0].kind

    def describe(self) -> str:
        return " + ".join(change.describe() for change in self.changes)


@dataclass(frozen=True)
class GroundTruth:
    signal: str
    diagnosis: str
    target: str
    window: tuple[int, int]
    before: Outcome
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: Fix | None = None
    alternatives: tuple[Fix, ...] = ()
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["window"] = {"first_minute": self.window[0], "last_minute": self.window[1]}
        for fix, data in [
            (self.fix, document.get("fix")),
            *zip(self.alternatives, document["alternatives"], strict=True),
        ]:
            if fix is not None and data is not None:
                data["describe"] = fix.describe()
        return document


@dataclass(frozen=True)
class Incident:
    """What the truth is computed from: the configuration, its modelled trace, the alarm and the window's end."""

    config: AccountConfig
    trace: Trace
    alarm: AlarmView
    end_minute: int

    @property
    def window(self) -> tuple[int, int]:
        return self.alarm.window(self.end_minute)

    @property
    def function_name(self) -> str | None:
        return self.alarm.dimension_map.get("FunctionName")


def outcome(incident: Incident, trace: Trace | None = None, config: AccountConfig | None = None) -> Outcome:
    """The alarm's view of the evaluation window of `trace` (default: the incident's own)."""
    trace = trace or incident.trace
    config = config or incident.config
    first, last = incident.window
    data = series(trace, config, first, last)
    values = incident.alarm.values(data, first, last)
    breaching = sum(1 for v in values if incident.alarm.breaching(v)) >= incident.alarm.datapoints_needed
    function = incident.function_name
    cells = [
        cell
        for minute in range(first, last)
        for key, cell in trace.cells.get(minute, {}).items()
        if function is None or key[0] == function
    ]
    duration = AlarmView(
        "AWS/Lambda",
        "Duration",
        (("FunctionName", function),) if function else (),
        "p99",
        60,
        0,
        "GreaterThanThreshold",
    )
    database = incident.alarm.dimension_map.get("DBInstanceIdentifier")
    connections = None
    if database is not None:
        connections = AlarmView(
            "AWS/RDS",
            "DatabaseConnections",
            (("DBInstanceIdentifier", database),),
            "Maximum",
            60,
            0,
            "GreaterThanThreshold",
        ).worst(data, first, last)
    return Outcome(
        alarm_value=incident.alarm.worst(data, first, last),
        breaching=breaching,
        throttles=sum(cell.throttles for cell in cells),
        spillover=sum(cell.spillover for cell in cells),
        p99_ms=duration.worst(data, first, last),
        connections=connections,
    )


def ground_truth(incident: Incident) -> GroundTruth:
    """The truth of the incident (and its verified fix)."""
    from medic_tools.world.workload import remedies

    signal = SIGNALS.get(incident.alarm.metric, "unknown")
    before = outcome(incident)
    target = _target(incident)
    if signal == "throttles":
        diagnosis, evidence = throttle_wall(incident)
    elif signal == "spillover":
        diagnosis, evidence = spillover_cause(incident)
    elif signal == "p99_latency":
        diagnosis, evidence = slow_tail(incident)
    elif signal == "db_connections":
        diagnosis, evidence = "connection_blowup", {"connections": before.connections}
    else:
        diagnosis, evidence = "unknown", {}
    truth = GroundTruth(signal, diagnosis, target, incident.window, before, evidence)
    return remedies.with_fix(incident, truth)


def _target(incident: Incident) -> str:
    dims = incident.alarm.dimension_map
    return dims.get("Resource") or dims.get("FunctionName") or dims.get("DBInstanceIdentifier") or "account"


def _cells(incident: Incident) -> list[tuple[CellKey, Any]]:
    first, last = incident.window
    dims = incident.alarm.dimension_map
    found = []
    for minute in range(first, last):
        for key, cell in incident.trace.cells.get(minute, {}).items():
            function, resource, version = key
            if "FunctionName" in dims and dims["FunctionName"] != function:
                continue
            if "Resource" in dims and dims["Resource"] != resource:
                continue
            if "ExecutedVersion" in dims and dims["ExecutedVersion"] != version:
                continue
            found.append((key, cell))
    return found


def throttle_wall(incident: Incident) -> tuple[str, dict[str, Any]]:
    walls = dict.fromkeys(WALLS, 0)
    by_function: dict[str, int] = {}
    for key, cell in _cells(incident):
        for wall, count in cell.walls.items():
            walls[wall] += count
        by_function[key[0]] = by_function.get(key[0], 0) + cell.throttles
    if not sum(walls.values()):
        return "unknown", {"throttled": walls}
    wall = max(walls, key=lambda w: (walls[w], -_WALL_ORDER[w]))
    function = incident.function_name or max(by_function, key=lambda name: by_function[name])
    evidence: dict[str, Any] = {"throttled": walls, "function": function}
    if incident.config.function(function).invoke_path == "async" and wall in ("reserved_limit", "burst_limit"):
        return "async_burst", evidence
    return wall, evidence


def pool_states(incident: Incident, function: str, alias: str) -> tuple[list[ProvisionedMinute], float]:
    """The alias' PC at the end of each minute of the window, and the peak concurrency on the alias."""
    first, last = incident.window
    states = [
        state
        for minute in range(first, last)
        if (state := incident.trace.provisioned.get(minute, {}).get((function, alias))) is not None
    ]
    dims = (("FunctionName", function), ("Resource", f"{function}:{alias}"))
    key = GaugeKey("AWS/Lambda", "ConcurrentExecutions", dims)
    demand = max((g.maximum for m in range(first, last) if (g := incident.trace.gauges.get(m, {}).get(key))), default=0)
    return states, demand


def not_ready(states: list[ProvisionedMinute], demand: float) -> bool:
    """The pool is why invocations spill when it FAILED, or when it is still allocating what would cover them
    (an autoscaling step toward a max below the demand is not that: the max is)."""
    if not states or any(state.status == "FAILED" for state in states):
        return True
    allocating = any(state.status == "IN_PROGRESS" and state.allocated < state.requested for state in states)
    return allocating and states[-1].requested >= demand


def spillover_cause(incident: Incident) -> tuple[str, dict[str, Any]]:
    """Why the demand exceeded the pool: not READY, an autoscaling target at its max, else the floor."""
    function, _, alias = incident.alarm.dimension_map.get("Resource", "").partition(":")
    states, demand = pool_states(incident, function, alias)
    evidence: dict[str, Any] = {"pc": [asdict(state) for state in states[-1:]], "peak_concurrency": demand}
    if not_ready(states, demand):
        return "pc_not_ready", evidence
    final = states[-1]
    if final.bounds is not None and final.requested >= final.bounds[1]:
        return "autoscaling_max_too_low", evidence
    return "pc_floor_too_low", evidence


def slow_tail(incident: Incident) -> tuple[str, dict[str, Any]]:
    """What the invocations above the alarm's threshold are made of."""
    threshold = incident.alarm.threshold
    tail: dict[str, float] = {}
    for key, cell in _cells(incident):
        function = incident.config.function(key[0])
        sigma = function.workload.duration.noise if function.workload else 0.0
        for work, count in cell.durations.items():
            median = work[1] + work[2] + work[3] + work[4]
            above = 0.0 if function.timeout_s * 1000.0 <= threshold else fraction_above(median, sigma, threshold)
            if above * count > 0:
                label = tail_label(incident, function, key, work)
                tail[label] = tail.get(label, 0.0) + above * count
    total = sum(tail.values())
    if not total:
        return "unknown", {"tail": {}}
    shares = {label: round(count / total, 4) for label, count in sorted(tail.items(), key=lambda kv: -kv[1])}
    return max(tail, key=lambda label: tail[label]), {"tail": shares, "tail_invocations": round(total)}


def tail_label(incident: Incident, function: FunctionConfig, key: CellKey, work: WorkKey) -> str:
    kind, cpu, io, pressure, _ = work
    if kind in ("cold", "pc_first"):
        alias = key[1].split(":", 1)[1] if key[1] and not key[1].split(":", 1)[1].isdigit() else None
        states, demand = pool_states(incident, function.name, alias) if alias else ([], 0.0)
        if kind == "cold" and states:
            if any(state.status == "FAILED" for state in states):
                return "pc_misconfigured"  # the vocabulary's p99 name for a FAILED pool (README: which wall)
            return "pc_not_ready" if not_ready(states, demand) else "spillover_cold_starts"
        others = [a for a in function.aliases if a.pc is not None and a.name != alias]
        if kind == "cold" and others:
            return "pc_misconfigured"
        return "cold_starts"
    parts = {"cpu": cpu, "io": io, "pressure": pressure}
    biggest = max(parts, key=lambda part: parts[part])
    if biggest == "pressure":
        return "memory_pressure"
    if biggest == "io":
        return "dependency"
    workload = function.workload
    parallelism = workload.duration.parallelism if workload else 1.0
    memory = function.memory_of(key[2] if key[2] != LATEST else "")
    return "cpu_starved" if vcpu_share(memory) < min(parallelism, MAX_VCPUS) - 1e-9 else "cpu_bound"
