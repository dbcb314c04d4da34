"""2. Alarm to plan, per signal: the triage function, alarm event in, plan in the log (and card in Slack) out.

One representative scenario per signal (SCENARIOS). For each, in an emulated Lambda environment (a fresh
process, precompiled package, as in section 1):

- cold: spawn → the handler's answer for the scenario's alarm event, next to the floor of the same kind of
  process that imports boto3 and creates the same clients (and makes no call);
- warm: the same environment given further transitions of the same alarm (the log wiped between them, so each
  is a first delivery of a transition it never saw); the handler's own time.

Every request reaching the embedded AWS in those windows is counted (aws_counter): calls by operation,
GetMetricData requests and the metric queries they carry, and read requests repeated identically within one
triage (polling Logs Insights for a query's result excepted, shown apart).
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from aws_counter import Call, Window
from bench_cold_start import FLOOR_CLIENTS, run_floor
from lambda_env import Answer, Environment, Package
from report import Stat, Target, mode_note, save, say, size, table
from worlds import World, medic_env, medic_package, retimed, scenario, wipe_log, world

SECTION = "alarm_to_plan"
#: signal → the representative scenario (scenarios/<name>.yaml).
SCENARIOS = {
    "throttles": "throttles-reserved-limit",
    "spillover": "spillover-fixed-floor",
    "p99_latency": "p99-cold-starts",
    "db_connections": "db-connection-blowup",
}
MAX_CALLS = 8
MAX_OVERHEAD_S = 0.150


def category(call: Call) -> str:
    """What a call is for: reading the world (facts), the remediation log, or the rest."""
    if call.service == "dynamodb":
        return "log"
    if call.service == "secretsmanager":
        return "secret"
    if call.operation == "GetMetricWidgetImage":
        return "graph"
    if call.service == "sqs":
        return "queue"
    return "facts"


@dataclass
class Sample:
    answer: Answer
    window: Window

    @property
    def calls(self) -> int:
        return self.window.count

    @property
    def metric_requests(self) -> int:
        return sum(1 for call in self.window.calls if call.operation == "GetMetricData")

    def by_category(self) -> Counter[str]:
        return Counter(category(call) for call in self.window.calls)


@dataclass
class Signal:
    name: str
    scenario: str
    cold: list[Sample] = field(default_factory=list)
    warm: list[Sample] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    outcome: str = ""


def expected_outcome(sim: Any) -> tuple[str | None, set[str]]:
    expect = sim.scenario.expect
    return (expect.diagnosis if expect else None), {"PROPOSED", "APPROVED"}


def check(result: Any, sim: Any, env: Environment) -> str:
    diagnosis, statuses = expected_outcome(sim)
    if (
        not isinstance(result, dict)
        or result.get("status") not in statuses
        or (diagnosis and result.get("diagnosis") != diagnosis)
    ):
        raise RuntimeError(f"triage returned {result}, expected {diagnosis} in {statuses}; log: {env.tail()}")
    return f"{result['diagnosis']} → {result['status']}"


def run_signal(w: World, signal: Signal, package: Package, warm: int, *, measure: bool) -> None:
    sim = scenario(w, signal.scenario)
    event = sim.alarm_events()[0]
    with Environment(init="import app", handler="app.handler", env=medic_env(w, sim, package)) as env:
        with w.counter.window() as window:
            answer = env.invoke(event)
        signal.outcome = check(answer.result, sim, env)
        if measure:
            signal.cold.append(Sample(answer, window))
        for k in range(warm):
            wipe_log(sim)
            with w.counter.window() as window:
                answer = env.invoke(retimed(event, k + 1))
            check(answer.result, sim, env)
            if measure:
                signal.warm.append(Sample(answer, window))


def sessions(sample: Sample) -> list[list[str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    for key, service in sample.window.clients():
        by_key[key].append(service)
    return list(by_key.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=size(5, 1), help="cold environments per signal")
    parser.add_argument("--warm", type=int, default=size(3, 2), help="warm invocations per cold environment")
    args = parser.parse_args()
    package = medic_package("triage", precompiled=True)
    signals = {name: Signal(name, scenario_name) for name, scenario_name in SCENARIOS.items()}
    try:
        with world() as w:
            say("2. alarm to plan: warming the embedded AWS up (discarded)")
            for signal in signals.values():
                run_signal(w, signal, package, 1, measure=False)
            for run in range(args.runs):  # round-robin: load on the machine hits every signal alike
                say(f"2. alarm to plan: run {run + 1}/{args.runs}")
                for signal in signals.values():
                    run_signal(w, signal, package, args.warm, measure=True)
                    floor = run_floor(w, FLOOR_CLIENTS, "_clients", {"sessions": sessions(signal.cold[0])})
                    signal.floor.append(floor.wall_s)
    finally:
        package.remove()
    report(list(signals.values()), args)


def _median_int(values: list[int]) -> int:
    return round(statistics.median(values))


def _operations(samples: list[Sample]) -> str:
    counts = samples[0].window.by_operation()
    return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in sorted(counts.items()))


def _repeated(samples: list[Sample]) -> Counter[str]:
    """The most redundant calls seen in any one triage: operation → extra identical calls."""
    worst: Counter[str] = Counter()
    for sample in samples:
        for name, extra in sample.window.repeated_reads().items():
            worst[name] = max(worst[name], extra)
    return worst


def _describe(counter: Counter[str]) -> str:
    return ", ".join(f"{name} +{n}" for name, n in sorted(counter.items())) or "none"


def report(signals: list[Signal], args: argparse.Namespace) -> None:
    time_rows, call_rows, op_lines = [], [], []
    overheads: dict[str, float] = {}
    worst_calls: dict[str, tuple[int, int]] = {}
    metric_requests: dict[str, int] = {}
    repeated: dict[str, Counter[str]] = {}
    for s in signals:
        cold, warm, floor = (
            Stat.of([x.answer.wall_s for x in s.cold]),
            Stat.of([x.answer.handle_s for x in s.warm]),
            Stat.of(s.floor),
        )
        overhead = cold.median - floor.median
        overheads[s.name] = overhead
        time_rows.append(
            [
                f"**{s.name}**",
                f"`{s.scenario}`",
                s.outcome,
                cold.ms(),
                floor.ms(),
                f"**+{overhead * 1000:.0f} ms** ({cold.median / floor.median:.2f}×)",
                f"{statistics.median(x.answer.handle_s for x in s.cold) * 1000:.0f} ms",
                warm.ms(),
            ]
        )
        cold_calls = _median_int([x.calls for x in s.cold])
        warm_calls = _median_int([x.calls for x in s.warm])
        worst_calls[s.name] = (max(x.calls for x in s.cold), max(x.calls for x in s.warm))
        split = s.warm[0].by_category()
        requests = max(x.metric_requests for x in s.cold + s.warm)
        metric_requests[s.name] = requests
        queries = _median_int([x.window.metric_queries for x in s.warm])
        repeated[s.name] = _repeated(s.cold + s.warm)
        polls = _median_int([x.window.polls() for x in s.warm])
        call_rows.append(
            [
                f"**{s.name}**",
                f"{cold_calls} / {warm_calls}",
                " · ".join(
                    f"{name} {split[name]}" for name in ("facts", "log", "graph", "secret", "queue") if split[name]
                ),
                requests,
                queries,
                _describe(repeated[s.name]),
                polls,
                f"{statistics.median(x.window.server_s for x in s.warm) * 1000:.0f} ms",
            ]
        )
        op_lines += [f"- **{s.name}**, warm: {_operations(s.warm)}.", ""]
    worst_signal = max(worst_calls, key=lambda name: worst_calls[name][0])
    worst_overhead = max(overheads, key=overheads.__getitem__)
    several = {name: n for name, n in metric_requests.items() if n != 1}
    redundant = {name: r for name, r in repeated.items() if r}
    body = mode_note() + "\n".join(
        [
            f"{args.runs} fresh environments per signal (precompiled triage package), interleaved, each followed by "
            f"{args.warm} warm invocations with a new transition of the same alarm (the log wiped in between). Cold = "
            "spawn → the handler's answer; floor = the same kind of process importing boto3 and creating the same "
            "clients, no call; warm = the handler's own time. Outcome = the plan triage made (the scenario's "
            "expected diagnosis, checked at every invocation).",
            "",
            table(
                [
                    "signal",
                    "scenario",
                    "outcome",
                    "cold (spawn → plan)",
                    "floor: boto3 + the same clients",
                    "overhead over the floor",
                    "first event (in the child)",
                    "warm (handler)",
                ],
                time_rows,
            ),
            "",
            "AWS API calls per triage, counted at the endpoint (cold / warm medians; the cold one adds the bot token "
            "read once per environment). Facts = reads of the world; log = the remediation log in DynamoDB (plans, "
            "claims, hash-chained events, safety controls); graph = GetMetricWidgetImage for the card's graph (the "
            "embedded AWS does not render it: one refused call). Repeated identical reads = read requests sent more "
            "than once with the very same parameters within one triage (extra calls, the worst triage).",
            "",
            table(
                [
                    "signal",
                    "AWS calls cold / warm",
                    "warm, by purpose",
                    "GetMetricData requests",
                    "metrics requested (MetricDataQueries)",
                    "repeated identical reads",
                    "Logs Insights polls",
                    "their server time (warm)",
                ],
                call_rows,
            ),
            "",
            "Calls by operation:",
            "",
            *op_lines,
        ]
    )
    cold_worst, warm_worst = worst_calls[worst_signal]
    targets = [
        Target(
            f"triage cold overhead over the boto3 floor, every signal (worst: {worst_overhead})",
            "≤ 150 ms",
            f"+{overheads[worst_overhead] * 1000:.0f} ms; "
            + ", ".join(f"{name} +{value * 1000:.0f}" for name, value in overheads.items()),
            max(overheads.values()) <= MAX_OVERHEAD_S,
        ),
        Target(
            f"AWS API calls per triage, any signal (worst: {worst_signal})",
            f"≤ {MAX_CALLS}",
            f"{cold_worst} cold, {warm_worst} warm; "
            + ", ".join(f"{name} {cold}/{warm_n}" for name, (cold, warm_n) in worst_calls.items()),
            max(cold for cold, _ in worst_calls.values()) <= MAX_CALLS,
        ),
        Target(
            "GetMetricData requests per triage (all metric reads batched)",
            "1 per triage",
            ", ".join(f"{name} {n}" for name, n in metric_requests.items()),
            not several,
        ),
        Target(
            "repeated identical read calls in one triage",
            "none",
            "; ".join(f"{name}: {_describe(r)}" for name, r in redundant.items()) or "none",
            not redundant,
        ),
    ]
    save(SECTION, body, targets)
    say(body)


if __name__ == "__main__":
    main()
