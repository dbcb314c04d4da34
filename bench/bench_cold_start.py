"""1. Cold start per function: a fresh process imports functions/<name>/app.py and handles one real event
against moto's server, with and without precompiled bytecode, next to the floors.

Each function gets the event it gets in production, on the state it would find
(scenarios/throttles-reserved-limit.yaml, approve mode): triage the alarm event; interactions a signed
Approve click on the proposed plan's card; executor the approved plan's SQS record; verifier its
schedule tick once the applied plan's window has passed and the alarm is back to OK. The state is built
in the bench process by Medic's simulator before each run; only the measured step runs in the child.

Floors, in the same kind of process: `python -c pass` (spawn to exit); `import boto3`; `import boto3` +
the same clients the function made (the same services, one boto3 session per credential set: the
executor's assumed-role session has its own). Medic's overhead = its cold start − that last floor; the
AWS calls themselves are in it (the floor creates the clients, it makes no call), so their server time is
shown next to it.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from lambda_env import Answer, Environment, Package, spawn_to_exit
from report import Stat, Target, mode_note, save, say, size, table
from worlds import World, executor_event, medic_env, medic_environment, medic_package, scenario, signed_click, world

from medic_tools.simulation_steps import after_fix  # the simulator's own step, reused to build the state

FUNCTIONS = ("triage", "interactions", "executor", "verifier")
SCENARIO = "throttles-reserved-limit"


@dataclass
class Run:
    answer: Answer
    calls: int
    server_s: float
    sessions: list[list[str]]  # services per credential set, in first-use order


def prepare(w: World, function: str) -> tuple[Any, dict[str, Any], str]:
    """The world as `function` finds it, the event it gets, and the result it must produce."""
    # The verifier's verification window must be in the past.
    sim = scenario(w, SCENARIO, realtime=function != "verifier")
    events = sim.alarm_events()
    if function == "triage":
        return sim, events[0], "PROPOSED"
    plan = sim.triage(events)[0]
    assert sim.runtime is not None
    if function == "interactions":
        return sim, signed_click(w, sim, plan, "approve"), "APPROVED"
    sim.click(plan, "approve")
    if function == "executor":
        return sim, executor_event(sim), "APPLIED"
    sim.drain_executor()
    from medic_tools.world import alarms

    after_fix(sim.scenario, sim.clients, sim.clock, sim.region, alarms, sim.handlers["triage"], sim.story)
    return sim, {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, "VERIFIED"


def check(function: str, result: dict[str, Any], sim: Any, wanted: str, env: Environment) -> None:
    assert sim.runtime is not None
    plans = sim.runtime.ledger.all_plans()
    statuses = {p.status for p in plans}
    if wanted not in statuses:
        raise RuntimeError(f"{function} returned {result}, plans {statuses}, expected {wanted}; log: {env.tail()}")


def run_medic(w: World, function: str, package: Package) -> Run:
    sim, event, wanted = prepare(w, function)
    with medic_environment(medic_env(w, sim, package)) as env, w.counter.window() as window:
        answer = env.invoke(event)
        check(function, answer.result, sim, wanted, env)
    sessions: dict[str, list[str]] = defaultdict(list)
    for key, service in window.clients():
        sessions[key].append(service)
    return Run(answer, window.count, window.server_s, list(sessions.values()))


FLOOR_CLIENTS = """
import boto3

def _clients(event, context):
    for services in event["sessions"]:
        session = boto3.Session()
        for service in services:
            session.client(service)
"""


def run_floor(w: World, init: str, handler: str, event: dict[str, Any]) -> Answer:
    env = {"AWS_ENDPOINT_URL": w.aws.endpoint_url}
    with Environment(init=init, handler=handler, env=env) as child:
        return child.invoke(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=size(5, 1), help="cold starts per function and variant")
    args = parser.parse_args()
    packages = {(f, p): medic_package(f, precompiled=p) for f in FUNCTIONS for p in (True, False)}
    runs: dict[tuple[str, bool], list[Run]] = defaultdict(list)
    floors: dict[str, list[float]] = defaultdict(list)
    try:
        with world() as w:
            say("1. cold start: warming the embedded AWS up (discarded)")
            for function in FUNCTIONS:
                run_medic(w, function, packages[function, True])
            for run in range(args.runs):  # round-robin, so that load on the machine hits every variant alike
                say(f"1. cold start: run {run + 1}/{args.runs}")
                for function in FUNCTIONS:
                    for precompiled in (True, False):
                        runs[function, precompiled].append(run_medic(w, function, packages[function, precompiled]))
                floors["python -c pass"].append(spawn_to_exit("pass"))
                floors["import boto3"].append(run_floor(w, "import boto3", "(lambda event, context: None)", {}).wall_s)
                for function in FUNCTIONS:
                    sessions = runs[function, True][0].sessions
                    answer = run_floor(w, FLOOR_CLIENTS, "_clients", {"sessions": sessions})
                    floors[function].append(answer.wall_s)
                one = {"sessions": [["dynamodb"]]}
                floors["import boto3 + 1 client"].append(run_floor(w, FLOOR_CLIENTS, "_clients", one).wall_s)
    finally:
        for package in packages.values():
            package.remove()
    report(runs, floors, args)


def report(runs: dict[tuple[str, bool], list[Run]], floors: dict[str, list[float]], args: argparse.Namespace) -> None:
    floor_rows = [
        [name, Stat.of(floors[name]).ms()] for name in ("python -c pass", "import boto3", "import boto3 + 1 client")
    ]
    rows = []
    targets = []
    for function in FUNCTIONS:
        warm_runs, cold_runs = runs[function, True], runs[function, False]
        cold = Stat.of([r.answer.wall_s for r in warm_runs])
        source = Stat.of([r.answer.wall_s for r in cold_runs])
        floor = Stat.of(floors[function])
        init = Stat.of([r.answer.init_s for r in warm_runs])
        handle = Stat.of([r.answer.handle_s for r in warm_runs])
        server = statistics.median(r.server_s for r in warm_runs)
        calls = int(statistics.median(r.calls for r in warm_runs))
        sessions = warm_runs[0].sessions
        clients = " + ".join(",".join(s) for s in sessions)
        overhead = cold.median - floor.median
        rss = statistics.median(r.answer.maxrss_kb for r in warm_runs) / 1024
        rows.append(
            [
                f"**{function}**",
                cold.ms(),
                source.ms(),
                f"+{(source.median - cold.median) * 1000:.0f} ms",
                f"{floor.ms()} ({sum(map(len, sessions))} clients: {clients})",
                f"**+{overhead * 1000:.0f} ms** ({cold.median / floor.median:.2f}×)",
                f"{init.median * 1000:.0f} ms",
                f"{handle.median * 1000:.0f} ms",
                f"{calls} / {server * 1000:.0f} ms",
                f"{rss:.0f} MB",
            ]
        )
        if function == "triage":
            targets.append(
                Target(
                    "triage cold-start overhead over the boto3 floor (same clients)",
                    "≤ 150 ms",
                    f"+{overhead * 1000:.0f} ms ({cold.median / floor.median:.2f}× the floor)",
                    overhead <= 0.150,
                )
            )
    body = mode_note() + "\n".join(
        [
            f"Scenario `scenarios/{SCENARIO}.yaml`; {args.runs} fresh processes per function and variant, interleaved. "
            "Cold = spawn → the handler's answer (interpreter start, imports, first event with its AWS calls). "
            "Precompiled = the task root and the layer compiled with `compileall`; no bytecode = a fresh copy without "
            "`__pycache__`, run with PYTHONDONTWRITEBYTECODE=1 (what `sam build` ships).",
            "",
            table(["floor", "cold"], floor_rows),
            "",
            table(
                [
                    "function",
                    "cold, precompiled",
                    "cold, no bytecode",
                    "bytecode saves",
                    "floor: boto3 + the same clients",
                    "Medic's overhead over that floor",
                    "init (imports)",
                    "first event",
                    "AWS calls / their server time",
                    "peak RSS",
                ],
                rows,
            ),
            "",
            "Init = the child's own measure of `import app` (Medic's modules; boto3 is imported lazily, on the first "
            "client); first event = the handler call, including boto3's import, the clients, the secrets, the AWS and "
            "Slack calls. The overhead includes the AWS calls' time on moto's server (a real endpoint is slower).",
        ]
    )
    save("cold_start", body, targets)
    say(body)


if __name__ == "__main__":
    main()
