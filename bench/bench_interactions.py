"""3. Interactions ack: a fresh process answers a signed Slack `block_actions` click, against Slack's 3 s budget.

The state: scenarios/throttles-reserved-limit.yaml triaged in the bench process (a PROPOSED plan, its card posted).
The event: the simulator's signed Approve click on that card, as a Function URL event, its response_url on the fake
Slack. Measured: spawn of a fresh emulated Lambda environment (lambda_env) → the handler's HTTP answer (the ack),
with the decision written, the plan enqueued and the card replaced on the way, as in production; the precompiled
package and the one without bytecode, interleaved with the floor: the same kind of process importing boto3 and
creating one client (and with the same clients the function made). Warm: a second click, on a new plan, in the
same (precompiled) environment.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench_cold_start import FLOOR_CLIENTS, run_floor
from lambda_env import Answer, Environment, Package, spawn_to_exit
from report import Stat, Target, mode_note, ratio, save, say, size, table
from worlds import World, medic_env, medic_package, retimed, scenario, signed_click, wipe_log, world

from medic.plan import Plan
from medic_tools.simulate import Simulation

SECTION = "interactions_ack"
SCENARIO = "throttles-reserved-limit"
SLACK_BUDGET_S = 3.0
MAX_RATIO = 1.5
FAR_INSIDE_S = SLACK_BUDGET_S / 2  # "far inside 3 s": the slowest cold ack within half the budget


@dataclass
class Ack:
    answer: Answer
    calls: int
    operations: list[str]
    sessions: list[list[str]]


@dataclass
class Samples:
    cold: dict[bool, list[Ack]] = field(default_factory=lambda: {True: [], False: []})
    warm: list[Ack] = field(default_factory=list)
    floors: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    slack_calls: list[str] = field(default_factory=list)


class Clicks:
    """Fresh PROPOSED plans with their cards, one per click: the log wiped, a new transition of the alarm triaged
    in the bench process (the simulator's runtime, its console as Slack)."""

    def __init__(self, w: World, sim: Simulation) -> None:
        self.w, self.sim = w, sim
        self.alarm = sim.alarm_events()[0]
        self.count = 0

    def next(self) -> tuple[Plan, dict[str, Any]]:
        wipe_log(self.sim)
        self.count += 1
        plan = self.sim.triage([retimed(self.alarm, self.count)])[0]
        if plan.status != "PROPOSED":
            raise RuntimeError(f"triage made a {plan.status} plan, not PROPOSED: {plan.reason}")
        return plan, signed_click(self.w, self.sim, plan, "approve")


def click(w: World, env: Environment, clicks: Clicks) -> Ack:
    plan, event = clicks.next()
    with w.counter.window() as window:
        answer = env.invoke(event)
    result = answer.result
    assert clicks.sim.runtime is not None
    after = clicks.sim.runtime.ledger.get(plan.id)
    if not isinstance(result, dict) or result.get("statusCode") != 200 or after is None or after.status != "APPROVED":
        status = after.status if after else None
        raise RuntimeError(f"interactions answered {result}; plan {status}, expected APPROVED; log: {env.tail()}")
    by_key: dict[str, list[str]] = defaultdict(list)
    for key, service in window.clients():
        by_key[key].append(service)
    return Ack(answer, window.count, [call.name for call in window.calls], list(by_key.values()))


def run(w: World, clicks: Clicks, packages: dict[bool, Package], samples: Samples, *, measure: bool) -> None:
    for precompiled in (True, False):
        with Environment(
            init="import app", handler="app.handler", env=medic_env(w, clicks.sim, packages[precompiled])
        ) as env:
            cold = click(w, env, clicks)
            warm = click(w, env, clicks) if precompiled else None
        if measure:
            samples.cold[precompiled].append(cold)
            if warm is not None:
                samples.warm.append(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=size(10, 2), help="fresh environments per variant")
    args = parser.parse_args()
    packages = {p: medic_package("interactions", precompiled=p) for p in (True, False)}
    samples = Samples()
    try:
        with world() as w:
            sim = scenario(w, SCENARIO)
            clicks = Clicks(w, sim)
            say("3. interactions ack: warming the embedded AWS up (discarded)")
            run(w, clicks, packages, samples, measure=False)
            slack_before = len(w.slack.calls)
            for index in range(args.runs):  # interleaved with the floors: load hits them alike
                say(f"3. interactions ack: run {index + 1}/{args.runs}")
                run(w, clicks, packages, samples, measure=True)
                samples.floors["python -c pass"].append(spawn_to_exit("pass"))
                one = {"sessions": [["dynamodb"]]}
                samples.floors["import boto3 + 1 client"].append(run_floor(w, FLOOR_CLIENTS, "_clients", one).wall_s)
                same = {"sessions": samples.cold[True][0].sessions}
                samples.floors["same clients"].append(run_floor(w, FLOOR_CLIENTS, "_clients", same).wall_s)
            samples.slack_calls = w.slack.calls[slack_before:]
    finally:
        for package in packages.values():
            package.remove()
    report(samples, args)


def report(samples: Samples, args: argparse.Namespace) -> None:
    floor = Stat.of(samples.floors["import boto3 + 1 client"])
    same = Stat.of(samples.floors["same clients"])
    bare = Stat.of(samples.floors["python -c pass"])
    rows = []
    ratios: dict[bool, float] = {}
    for precompiled, label in ((True, "precompiled"), (False, "no bytecode")):
        acks = samples.cold[precompiled]
        wall = Stat.of([a.answer.wall_s for a in acks])
        ratios[precompiled] = wall.median / floor.median
        rows.append(
            [
                f"**cold, {label}**",
                wall.ms(),
                f"**{ratio(wall.median, floor.median)}**",
                ratio(wall.median, same.median),
                f"{(SLACK_BUDGET_S - wall.median) * 1000:.0f} ms "
                f"({(SLACK_BUDGET_S - wall.high) * 1000:.0f} for the slowest)",
                f"{statistics.median(a.answer.init_s for a in acks) * 1000:.0f} ms",
                f"{statistics.median(a.answer.handle_s for a in acks) * 1000:.0f} ms",
                f"{round(statistics.median(a.calls for a in acks))}",
                f"{statistics.median(a.answer.maxrss_kb for a in acks) / 1024:.0f} MB",
            ]
        )
    warm = Stat.of([a.answer.handle_s for a in samples.warm])
    rows.append(
        [
            "warm (handler)",
            warm.ms(1),
            "",
            "",
            f"{(SLACK_BUDGET_S - warm.median) * 1000:.0f} ms",
            "",
            warm.ms(1),
            f"{round(statistics.median(a.calls for a in samples.warm))}",
            "",
        ]
    )
    cold = samples.cold[True]
    sessions = " + ".join(",".join(s) for s in cold[0].sessions)
    slack = sorted(set(samples.slack_calls))
    per_ack = len(samples.slack_calls) / max(1, len(cold) + len(samples.cold[False]) + len(samples.warm))
    body = mode_note() + "\n".join(
        [
            f"Scenario `scenarios/{SCENARIO}.yaml`: a PROPOSED plan and its card, a signed Approve click on it. "
            f"{args.runs} fresh environments per variant, interleaved with the floors (each environment then gets a "
            "second click, on a new plan: warm). Ack = spawn → the Function URL's HTTP answer, with the decision "
            "written, the plan enqueued and the card replaced through the response_url on the way (what Slack waits "
            "for).",
            "",
            table(
                ["floor (fresh process)", "spawn → answer"],
                [
                    ["python -c pass", bare.ms()],
                    ["**import boto3 + 1 client** (the target's floor)", floor.ms()],
                    [f"import boto3 + the same clients ({sessions})", same.ms()],
                ],
            ),
            "",
            table(
                [
                    "interactions",
                    "ack",
                    "÷ boto3 + 1 client",
                    "÷ the same clients",
                    "margin to Slack's 3 s",
                    "init (imports)",
                    "handler",
                    "AWS calls",
                    "peak RSS",
                ],
                rows,
            ),
            "",
            f"AWS calls of a cold ack: {', '.join(cold[0].operations)}. Slack calls per ack: {per_ack:.1f} "
            f"({', '.join(slack) or 'none'}; `response_url` = the card replaced in place).",
        ]
    )
    slowest = max(a.answer.wall_s for a in samples.cold[True] + samples.cold[False])
    targets = [
        Target(
            "interactions cold ack ÷ the import boto3 + one client floor (precompiled)",
            f"≤ {MAX_RATIO}×",
            f"{ratios[True]:.2f}×",
            ratios[True] <= MAX_RATIO,
        ),
        Target(
            "interactions cold ack ÷ the import boto3 + one client floor (no bytecode)",
            f"≤ {MAX_RATIO}×",
            f"{ratios[False]:.2f}×",
            ratios[False] <= MAX_RATIO,
        ),
        Target(
            "interactions cold ack far inside Slack's 3 s (slowest of every cold ack)",
            f"≤ {FAR_INSIDE_S:.1f} s (half the budget)",
            f"{slowest * 1000:.0f} ms ({(SLACK_BUDGET_S - slowest) * 1000:.0f} ms to spare)",
            slowest <= FAR_INSIDE_S,
        ),
    ]
    save(SECTION, body, targets)
    say(body)


if __name__ == "__main__":
    main()
