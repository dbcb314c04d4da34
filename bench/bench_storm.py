"""5. A storm: 1,000 alarm events over 100 functions, duplicates and flapping included, through triage.

The world (built in code, with Medic's simulator): 100 opted-in functions in one account (limit 10,000), each
with its own alarm and the metrics that fire it: half throttled at their reserved concurrency (as
scenarios/throttles-reserved-limit.yaml), a quarter spilling over a fixed provisioned-concurrency floor
(spillover-fixed-floor), a quarter with cold starts on the p99 path (p99-cold-starts, REPORT lines in the logs).
The alarms are evaluated by the world, which gives each function's first "CloudWatch Alarm State Change" event.

The storm (seeded): per function 10 events: 1 to 4 ALARM transitions, an OK between two of them (flapping:
ALARM → OK → ALARM, each ALARM a new state timestamp), and redeliveries of events already sent (EventBridge
delivers at least once) filling the rest; the functions' sequences interleaved at random, each in its order.

The triage: one emulated Lambda environment (a child process, the real handler, precompiled package, the fake
Slack) answering the 1,000 events one after the other, the first one cold. Lambda would spread a storm over
several environments; one environment's throughput is the figure per environment. Every AWS request is counted
at the endpoint; plans are read from the log afterwards. Peak memory is the environment's own peak RSS (VmHWM),
not the bench process's (which holds moto's world).
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from lambda_env import Answer, Environment
from report import Stat, Target, mode_note, save, say, size, table
from worlds import World, medic_env, medic_package, retimed, simulation, world

from medic_tools.scenario import Scenario
from medic_tools.simulate import Simulation
from medic_tools.simulation_constants import ACCOUNT

SECTION = "storm"
SEED = 1000
EVENTS_PER_FUNCTION = 10
ACCOUNT_LIMIT = 10_000
#: Share of each kind of function, and what its alarm should lead to.
KINDS = (("throttles", 0.5), ("spillover", 0.25), ("p99", 0.25))
EXPECTED = {"throttles": "reserved_limit", "spillover": "pc_floor_too_low", "p99": "cold_starts"}


def function_spec(kind: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(function, its metrics, its alarm) for the scenario file's `world.functions`, `world.metrics` and `alarm`."""
    managed = {"medic:managed": "true", "team": "storm"}
    if kind == "throttles":
        function = {"name": name, "memory_mb": 1024, "reserved_concurrency": 50, "tags": managed}
        dims: dict[str, str] = {"FunctionName": name}
        metrics = [
            {
                "namespace": "AWS/Lambda",
                "name": "Throttles",
                "dimensions": dims,
                "stat": "Sum",
                "values": [0, 5, 30, 75],
            },
            {
                "namespace": "AWS/Lambda",
                "name": "ConcurrentExecutions",
                "dimensions": dims,
                "stat": "Maximum",
                "values": [35, 45, 50, 50],
            },
        ]
        alarm = {
            "name": f"{name}-throttles",
            "namespace": "AWS/Lambda",
            "metric": "Throttles",
            "dimensions": dims,
            "stat": "Sum",
            "threshold": 0,
        }
    elif kind == "spillover":
        function = {
            "name": name,
            "memory_mb": 1024,
            "tags": managed,
            "aliases": [{"name": "live", "provisioned_concurrency": 20}],
        }
        dims = {"FunctionName": name, "Resource": f"{name}:live"}
        metrics = [
            {
                "namespace": "AWS/Lambda",
                "name": "ProvisionedConcurrencySpilloverInvocations",
                "dimensions": dims,
                "stat": "Sum",
                "values": [0, 0, 35, 120, 180],
            },
            {
                "namespace": "AWS/Lambda",
                "name": "ConcurrentExecutions",
                "dimensions": dims,
                "stat": "Maximum",
                "values": [14, 18, 31, 47, 55],
            },
            {
                "namespace": "AWS/Lambda",
                "name": "Invocations",
                "dimensions": dims,
                "stat": "Sum",
                "values": [900, 1100, 1900, 2800, 3300],
            },
        ]
        alarm = {
            "name": f"{name}-spillover",
            "namespace": "AWS/Lambda",
            "metric": "ProvisionedConcurrencySpilloverInvocations",
            "dimensions": dims,
            "stat": "Sum",
            "threshold": 0,
        }
    else:
        function = {
            "name": name,
            "memory_mb": 1024,
            "tags": managed,
            "aliases": [{"name": "live"}],
            "invocations": {"count": 200, "cold": 60, "init_ms": 1800, "duration_ms": 350, "cold_duration_ms": 2300},
        }
        dims = {"FunctionName": name, "Resource": f"{name}:live"}
        metrics = [
            {
                "namespace": "AWS/Lambda",
                "name": "Duration",
                "dimensions": dims,
                "stat": "p99",
                "unit": "Milliseconds",
                "values": [400, 900, 2100, 2300],
            },
            {
                "namespace": "AWS/Lambda",
                "name": "ConcurrentExecutions",
                "dimensions": dims,
                "stat": "Maximum",
                "values": [5, 10, 20, 25],
            },
        ]
        alarm = {
            "name": f"{name}-p99",
            "namespace": "AWS/Lambda",
            "metric": "Duration",
            "dimensions": dims,
            "stat": "p99",
            "threshold": 1000,
        }
    return function, metrics, alarm


def storm_world(functions: int) -> tuple[Scenario, dict[str, str], list[dict[str, Any]]]:
    """The scenario (world of `functions` functions), each function's kind, and their alarms."""
    kinds: dict[str, str] = {}
    specs, metrics, alarms = [], [], []
    counts = {kind: round(functions * share) for kind, share in KINDS}
    counts["throttles"] += functions - sum(counts.values())
    for kind, count in counts.items():
        for index in range(count):
            name = f"storm-{kind}-{index:03d}"
            function, its_metrics, alarm = function_spec(kind, name)
            kinds[name] = kind
            specs.append(function)
            metrics += its_metrics
            alarms.append(alarm)
    metrics.append(
        {
            "namespace": "AWS/Lambda",
            "name": "ConcurrentExecutions",
            "dimensions": {},
            "stat": "Maximum",
            "values": [1500, 1800, 2000, 2000],
        }
    )
    doc = {
        "description": f"A storm over {functions} functions",
        "world": {"account_concurrency_limit": ACCOUNT_LIMIT, "functions": specs, "metrics": metrics},
        "alarm": alarms[0],
    }
    return Scenario.model_validate(doc), kinds, alarms


def fire(sim: Simulation, alarms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Create the alarms and let the world evaluate them: function name → its ALARM event."""
    from medic_tools.world import alarms as world_alarms

    cloudwatch = sim.clients.cloudwatch
    for spec in alarms:
        kwargs: dict[str, Any] = {
            "AlarmName": spec["name"],
            "Namespace": spec["namespace"],
            "MetricName": spec["metric"],
            "Dimensions": [{"Name": k, "Value": v} for k, v in spec["dimensions"].items()],
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": spec["threshold"],
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "missing",
        }
        if spec["stat"].startswith("p"):
            kwargs["ExtendedStatistic"] = spec["stat"]
        else:
            kwargs["Statistic"] = spec["stat"]
        cloudwatch.put_metric_alarm(**kwargs)
    names = [spec["name"] for spec in alarms]
    events = world_alarms.evaluate_alarms(sim.clock.now(), ACCOUNT, sim.region, names=names)
    fired = {
        e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["FunctionName"]: e
        for e in events
        if e["detail"]["state"]["value"] == "ALARM"
    }
    if len(fired) != len(alarms):
        raise RuntimeError(f"{len(fired)} of {len(alarms)} alarms fired")
    return fired


@dataclass(frozen=True)
class Delivery:
    function: str
    intent: str  # "first alarm" | "flap: ok" | "flap: alarm again" | "redelivery"
    event: dict[str, Any]
    transition: str  # the state timestamp of an ALARM transition ("" for OK)


def _ok(alarm: dict[str, Any], seconds: float) -> dict[str, Any]:
    event = retimed(alarm, seconds)
    state, previous = event["detail"]["state"], event["detail"]["previousState"]
    previous.update({"value": "ALARM", "timestamp": alarm["detail"]["state"]["timestamp"]})
    state.update({"value": "OK", "reason": "Threshold Crossed: the datapoint was not greater than the threshold."})
    return event


def _again(alarm: dict[str, Any], seconds: float) -> dict[str, Any]:
    event = retimed(alarm, seconds)
    event["detail"]["previousState"] = copy.deepcopy(event["detail"]["previousState"]) | {"value": "OK"}
    return event


def storm(fired: dict[str, dict[str, Any]], per_function: int, rng: random.Random) -> list[Delivery]:
    sequences: dict[str, list[Delivery]] = {}
    for name, first in fired.items():
        transitions = rng.choice([1, 2, 2, 3, 3, 4])
        base = [Delivery(name, "first alarm", first, first["detail"]["state"]["timestamp"])]
        for t in range(1, transitions):
            base.append(Delivery(name, "flap: ok", _ok(first, 120 * t - 60), ""))
            again = _again(first, 120 * t)
            base.append(Delivery(name, "flap: alarm again", again, again["detail"]["state"]["timestamp"]))
        sequence = list(base)
        while len(sequence) < per_function:
            index = rng.randrange(len(sequence))
            original = sequence[index]
            sequence.insert(
                rng.randint(index + 1, len(sequence)), Delivery(name, "redelivery", original.event, original.transition)
            )
        sequences[name] = sequence[:per_function]
    order = [name for name, sequence in sequences.items() for _ in sequence]
    rng.shuffle(order)
    cursors: dict[str, int] = defaultdict(int)
    deliveries = []
    for name in order:
        deliveries.append(sequences[name][cursors[name]])
        cursors[name] += 1
    return deliveries


@dataclass
class Result:
    delivery: Delivery
    answer: Answer
    calls: int
    outcome: str


@dataclass
class Storm:
    functions: int
    kinds: dict[str, str]
    deliveries: list[Delivery]
    results: list[Result] = field(default_factory=list)
    wall_s: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)
    metric_requests: int = 0
    plans: Counter[str] = field(default_factory=Counter)
    diagnoses: Counter[str] = field(default_factory=Counter)
    slack_calls: Counter[str] = field(default_factory=Counter)
    setup_s: float = 0.0


def outcome(result: Any) -> str:
    if not isinstance(result, dict):
        return f"error: {result!r}"
    if result.get("duplicate"):
        return "duplicate (no new plan)"
    if result.get("status") == "SUPERSEDED":
        return "attached to the open plan (SUPERSEDED)"
    if result.get("status") == "NOOP":
        return "recorded NOOP (OK state: recovered)"
    return f"new plan ({result.get('status')})"


def run(w: World, functions: int, per_function: int, seed: int) -> Storm:
    started = time.perf_counter()
    spec, kinds, alarms = storm_world(functions)
    sim = simulation(w, spec, f"storm of {functions} functions")
    fired = fire(sim, alarms)
    deliveries = storm(fired, per_function, random.Random(seed))
    result = Storm(functions, kinds, deliveries, setup_s=time.perf_counter() - started)
    say(f"5. storm: world of {functions} functions built in {result.setup_s:.0f} s; {len(deliveries)} events")
    package = medic_package("triage", precompiled=True)
    slack_before = len(w.slack.calls)
    try:
        environment = Environment(init="import app", handler="app.handler", env=medic_env(w, sim, package))
        with environment as env, w.counter.window() as everything:
            began = time.perf_counter()
            for index, delivery in enumerate(deliveries):
                with w.counter.window() as window:
                    answer = env.invoke(delivery.event)
                result.results.append(Result(delivery, answer, window.count, outcome(answer.result)))
                if (index + 1) % 100 == 0:
                    say(f"5. storm: {index + 1}/{len(deliveries)} events, {time.perf_counter() - began:.0f} s")
            result.wall_s = time.perf_counter() - began
    finally:
        package.remove()
    result.operations = everything.by_operation()
    result.metric_requests = everything.metric_requests
    result.slack_calls = Counter(w.slack.calls[slack_before:])
    assert sim.runtime is not None
    for plan in sim.runtime.ledger.all_plans():
        result.plans[plan.status] += 1
        if plan.status in ("PROPOSED", "APPROVED"):
            result.diagnoses[f"{kinds.get(plan.function_name or '', '?')} → {plan.diagnosis}"] += 1
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--functions", type=int, default=size(100, 20))
    parser.add_argument("--per-function", type=int, default=EVENTS_PER_FUNCTION, help="events per function")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    with world() as w:
        result = run(w, args.functions, args.per_function, args.seed)
    report(result, args)


def report(s: Storm, args: argparse.Namespace) -> None:
    n = len(s.results)
    intents = Counter(r.delivery.intent for r in s.results)
    transitions = {(r.delivery.function, r.delivery.transition) for r in s.results if r.delivery.transition}
    # An OK is recorded too, as a NOOP plan of its own (one per OK transition, whatever its redeliveries).
    recoveries = {
        (r.delivery.function, r.delivery.event["detail"]["state"]["timestamp"])
        for r in s.results
        if r.delivery.intent == "flap: ok"
    }
    by_outcome: dict[str, list[Result]] = defaultdict(list)
    for r in s.results:
        by_outcome[r.outcome].append(r)
    outcome_rows = []
    for name, results in sorted(by_outcome.items(), key=lambda item: -len(item[1])):
        handle = Stat.of([r.answer.handle_s for r in results])
        outcome_rows.append(
            [
                name,
                f"{len(results):,}",
                handle.ms(1),
                f"{statistics.median(r.calls for r in results):.0f}",
                f"{sum(r.calls for r in results):,}",
            ]
        )
    calls = sum(r.calls for r in s.results)
    first, last = s.results[0].answer, s.results[-1].answer
    warm_s = s.wall_s - first.wall_s
    errors = [r for r in s.results if r.outcome.startswith("error")]
    expected_new = {f for f, _ in transitions}
    proposed = s.plans.get("PROPOSED", 0) + s.plans.get("APPROVED", 0)
    logged = sum(s.plans.values())
    wrong_diagnosis = sum(
        count for label, count in s.diagnoses.items() if EXPECTED.get(label.split(" → ")[0]) != label.split(" → ")[1]
    )
    top_ops = ", ".join(f"{name} {count:,}" for name, count in s.operations.most_common())
    kinds = Counter(s.kinds.values())
    body = mode_note() + "\n".join(
        [
            f"{s.functions} functions ({', '.join(f'{count} {kind}' for kind, count in kinds.items())}), "
            f"{n:,} events (seed {args.seed}): "
            f"{', '.join(f'{count:,} {intent}' for intent, count in intents.items())}; "
            f"{len(transitions):,} distinct ALARM transitions. One emulated Lambda environment answers them in order "
            f"(the first cold); world built in {s.setup_s:.0f} s (not counted).",
            "",
            table(
                ["", "storm"],
                [
                    ["wall time, 1st event to last answer", f"{s.wall_s:.1f} s"],
                    [
                        "**throughput**",
                        f"**{n / s.wall_s:,.1f} events/s** ({(n - 1) / warm_s:,.1f}/s after the cold first "
                        f"event of {first.wall_s * 1000:.0f} ms)",
                    ],
                    [
                        "plans in the log",
                        f"{logged:,}: " + ", ".join(f"{count:,} {state}" for state, count in s.plans.most_common()),
                    ],
                    [
                        "diagnoses of the open plans",
                        ", ".join(f"{count} {label}" for label, count in s.diagnoses.most_common()),
                    ],
                    [
                        "AWS API calls",
                        f"{calls:,} ({calls / n:.1f} per event, {calls / max(1, len(transitions)):.1f} per "
                        f"alarm transition); {s.metric_requests:,} GetMetricData requests",
                    ],
                    [
                        "Slack calls",
                        ", ".join(f"{name} {count:,}" for name, count in s.slack_calls.most_common()) or "none",
                    ],
                    [
                        "peak RSS of the environment",
                        f"{last.maxrss_kb / 1024:.0f} MB (after the first event: {first.maxrss_kb / 1024:.0f} MB)",
                    ],
                ],
            ),
            "",
            "Per outcome (the handler's own time per event, and its AWS calls):",
            "",
            table(["outcome", "events", "handler time", "AWS calls (median)", "AWS calls (all)"], outcome_rows),
            "",
            f"AWS calls by operation over the storm: {top_ops}.",
        ]
    )
    targets = [
        Target(
            "storm: one plan per alarm transition, one open plan per function, no duplicate, no error",
            f"{len(transitions) + len(recoveries):,} plans ({len(recoveries)} NOOP on OK), {len(expected_new)} open",
            f"{logged:,} plans, {proposed} open, {len(errors)} errors, {wrong_diagnosis} unexpected diagnoses",
            logged == len(transitions) + len(recoveries)
            and proposed == len(expected_new)
            and not errors
            and not wrong_diagnosis,
        ),
    ]
    save(SECTION, body, targets)
    say(body)


if __name__ == "__main__":
    main()
