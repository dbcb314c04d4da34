"""6. Side by side with Cloud Custodian: the same world, the same change, event to change.

The world: scenarios/throttles-reserved-limit.yaml (thumbnailer throttled at its reserved concurrency of
100, the account at 400 of 1000) plus 49 more functions; thumbnailer and 9 others are tagged
team=payments and medic:managed=true. The change: raise thumbnailer's reserved concurrency to 150.

- c7n: a `cloudtrail`-mode policy (resource lambda; filters tag:team=payments, tag:medic:managed=true and
  reserved-concurrency = 100; action set-concurrency 150), packaged as c7n's PolicyLambda packages it
  (config.json + `custodian_policy.run` → `c7n.handler.dispatch_event`), given one synthetic CloudTrail
  event naming thumbnailer. Default execution options, as `custodian run` writes them: the account id is
  looked up with sts:GetCallerIdentity at cold start.
- Medic: the throttles alarm event → triage (facts, runbook with an override layer that makes the
  reserved-limit row `auto`, guardrails, safety controls, the log, the card) → the executor queue → the
  executor (its own role session, live re-read, apply, confirm, log, thread reply). Event to change is
  triage + executor: two functions, two cold starts when both are cold.

Both run in emulated Lambda environments (fresh `python -c` processes) against the same moto server,
with the same boto3/botocore; every request either makes is counted at the endpoint.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lambda_env import Answer, Environment, Package, closure
from report import Stat, Target, mode_note, ratio, save, say, size, table
from worlds import (
    RUNBOOK,
    RUNTIME_PACKAGES,
    World,
    executor_event,
    medic_env,
    medic_package,
    retimed,
    scenario,
    wipe_log,
    world,
)

from medic.planning.runbook import layer, load_runbook
from medic_tools.simulate import Simulation
from medic_tools.simulation_constants import ACCOUNT

FUNCTION = "thumbnailer"
BEFORE, AFTER = 100, 150
FILLERS, PAYMENTS = 49, 9

POLICY: dict[str, Any] = {
    "name": "raise-throttled-reserved-concurrency",
    "resource": "lambda",
    "description": "Raise the reserved concurrency of a payments function running at its cap",
    "mode": {
        "type": "cloudtrail",
        "events": [
            {
                "source": "lambda.amazonaws.com",
                "event": "PutFunctionConcurrency20171031",
                "ids": "requestParameters.functionName",
            }
        ],
    },
    "filters": [
        {"tag:team": "payments"},
        {"tag:medic:managed": "true"},
        {"type": "reserved-concurrency", "value": BEFORE},
    ],
    "actions": [{"type": "set-concurrency", "value": AFTER}],
}


def override_text() -> str:
    """A runbook layer: the shipped reserved-limit row, in mode auto (everything else as shipped)."""
    base = yaml.safe_load(RUNBOOK.read_text())
    row = next(r for r in base["tables"]["throttles"]["rows"] if r["id"] == "reserved-limit")
    doc = {
        "runbook": "bench-auto",
        "version": 1,
        "extends": base["runbook"],
        "tables": {"throttles": {"rows": [{**row, "mode": "auto"}]}},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def trail_event() -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail" event for thumbnailer (synthetic)."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": ACCOUNT,
        "time": "2026-11-22T05:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci"},
            "eventTime": "2026-11-22T05:00:00Z",
            "eventSource": "lambda.amazonaws.com",
            "eventName": "PutFunctionConcurrency20171031",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.10",
            "requestParameters": {"functionName": FUNCTION, "reservedConcurrentExecutions": BEFORE},
            "responseElements": {"reservedConcurrentExecutions": BEFORE},
            "eventType": "AwsApiCall",
        },
    }


def custodian_package(precompiled: bool) -> Package:
    package = Package.build(function=None, packages=closure("c7n"), extra={}, precompiled=False, skip=RUNTIME_PACKAGES)
    (package.task_root / "config.json").write_text(
        json.dumps({"execution-options": {}, "policies": [POLICY]}, indent=2)
    )
    (package.task_root / "custodian_policy.py").write_text(
        "from c7n import handler\n\n\ndef run(event, context):\n    return handler.dispatch_event(event, context)\n"
    )
    if precompiled:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(package.root)], check=True)
    return package


def custodian_environment(w: World, package: Package) -> Environment:
    env = {
        "AWS_ENDPOINT_URL": w.aws.endpoint_url,
        "PYTHONPATH": str(package.layer),
        "LAMBDA_TASK_ROOT": str(package.task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "custodian-" + POLICY["name"],
    }
    # The Lambda runtime's log handler on the root logger: c7n's log lines are written, as they would be.
    init = """
        import logging
        logging.basicConfig(stream=sys.stdout, format="[%(levelname)s]\\t%(asctime)s\\t%(name)s\\t%(message)s")
        import custodian_policy
    """
    return Environment(init=textwrap.dedent(init), handler="custodian_policy.run", env=env)


def build_world(w: World, *, runbook: Any) -> Simulation:
    sim = scenario(w, "throttles-reserved-limit", runbook=runbook)
    lam = sim.clients.lambda_
    arn = lam.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"team": "payments"})
    role = lam.get_function(FunctionName=FUNCTION)["Configuration"]["Role"]
    code = function_zip()
    for index in range(FILLERS):
        tags = {"team": "payments", "medic:managed": "true"} if index < PAYMENTS else {"team": f"team{index % 5}"}
        name = f"svc-{index:02d}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code},
            MemorySize=256,
            Tags=tags,
        )
        if index % 3 == 0:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=10)
    return sim


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def reserved(sim: Simulation) -> int:
    return int(sim.clients.lambda_.get_function_concurrency(FunctionName=FUNCTION)["ReservedConcurrentExecutions"])


def restore(sim: Simulation) -> None:
    sim.clients.lambda_.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=BEFORE)
    wipe_log(sim)


@dataclass
class Sample:
    wall_s: float
    calls: int
    by_service: dict[str, int]
    by_operation: dict[str, int]
    rss_mb: list[float]
    parts: list[float] = field(default_factory=list)  # per environment on the path (Medic: triage, executor)
    part_calls: list[int] = field(default_factory=list)


@dataclass
class Samples:
    cold: dict[bool, list[Sample]] = field(default_factory=lambda: {True: [], False: []})
    warm: list[Sample] = field(default_factory=list)


def _sample(answers: list[Answer], windows: list[Any], *, cold: bool) -> Sample:
    by_service: dict[str, int] = {}
    by_operation: dict[str, int] = {}
    for window in windows:
        for name, count in window.by_service().items():
            by_service[name] = by_service.get(name, 0) + count
        for name, count in window.by_operation().items():
            by_operation[name] = by_operation.get(name, 0) + count
    parts = [a.wall_s if cold else a.handle_s for a in answers]
    return Sample(
        wall_s=sum(parts),
        calls=sum(w.count for w in windows),
        by_service=by_service,
        by_operation=by_operation,
        rss_mb=[a.maxrss_kb / 1024 for a in answers],
        parts=parts,
        part_calls=[w.count for w in windows],
    )


def run_custodian(
    w: World, sim: Simulation, packages: dict[bool, Package], samples: Samples, warm: int, *, measure: bool
) -> None:
    for precompiled in (True, False):
        with custodian_environment(w, packages[precompiled]) as env:
            restore(sim)
            with w.counter.window() as window:
                answer = env.invoke(trail_event())
            if reserved(sim) != AFTER:
                raise RuntimeError(f"c7n did not make the change: {reserved(sim)}; log: {env.tail()}")
            if measure:
                samples.cold[precompiled].append(_sample([answer], [window], cold=True))
            if precompiled:
                for _ in range(warm):
                    restore(sim)
                    with w.counter.window() as window:
                        answer = env.invoke(trail_event())
                    assert reserved(sim) == AFTER
                    if measure:
                        samples.warm.append(_sample([answer], [window], cold=False))


def run_medic(
    w: World,
    sim: Simulation,
    alarm: dict[str, Any],
    packages: dict[str, dict[bool, Package]],
    override: Path,
    samples: Samples,
    warm: int,
    *,
    measure: bool,
) -> None:
    for precompiled in (True, False):
        envs = {
            name: Environment(
                init="import app",
                handler="app.handler",
                env=medic_env(w, sim, packages[name][precompiled], runbook_overrides=(override,)),
            )
            for name in ("triage", "executor")
        }
        try:
            for iteration in range(1 + (warm if precompiled else 0)):
                restore(sim)
                with w.counter.window() as triage_window:  # a transition this environment has not seen yet
                    triaged = envs["triage"].invoke(retimed(alarm, iteration) if iteration else alarm)
                if triaged.result.get("status") != "APPROVED":
                    raise RuntimeError(f"triage did not approve: {triaged.result}; log: {envs['triage'].tail()}")
                delivery = executor_event(sim)
                with w.counter.window() as executor_window:
                    executed = envs["executor"].invoke(delivery)
                if executed.result.get("batchItemFailures") or reserved(sim) != AFTER:
                    raise RuntimeError(f"the executor did not make the change; log: {envs['executor'].tail()}")
                if not measure:
                    continue
                if iteration == 0:
                    sample = _sample([triaged, executed], [triage_window, executor_window], cold=True)
                    samples.cold[precompiled].append(sample)
                else:
                    samples.warm.append(_sample([triaged, executed], [triage_window, executor_window], cold=False))
        finally:
            for env in envs.values():
                env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=size(5, 1), help="cold starts per tool and bytecode variant")
    parser.add_argument("--warm", type=int, default=size(10, 2), help="warm invocations per tool")
    args = parser.parse_args()
    override_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    override = override_dir / "medic-bench-auto-override.yaml"
    override.write_text(override_text())
    runbook = layer(load_runbook(RUNBOOK), override.read_text(), str(override))
    medic: Samples = Samples()
    c7n: Samples = Samples()
    c7n_packages = {p: custodian_package(p) for p in (True, False)}
    medic_packages = {
        name: {p: medic_package(name, precompiled=p) for p in (True, False)} for name in ("triage", "executor")
    }
    try:
        with world() as w:
            sim = build_world(w, runbook=runbook)
            alarm = sim.alarm_events()[0]
            say("6. side by side: warming the embedded AWS up (discarded)")
            run_custodian(w, sim, c7n_packages, c7n, 1, measure=False)
            run_medic(w, sim, alarm, medic_packages, override, medic, 1, measure=False)
            for run in range(args.runs):
                say(f"6. side by side: run {run + 1}/{args.runs}")
                run_custodian(w, sim, c7n_packages, c7n, args.warm if run == 0 else 0, measure=True)
                run_medic(w, sim, alarm, medic_packages, override, medic, args.warm if run == 0 else 0, measure=True)
    finally:
        for package in c7n_packages.values():
            package.remove()
        for by_variant in medic_packages.values():
            for package in by_variant.values():
                package.remove()
        override.unlink(missing_ok=True)
    report(medic, c7n, args)


def report(medic: Samples, c7n: Samples, args: argparse.Namespace) -> None:
    def wall(samples: list[Sample]) -> Stat:
        return Stat.of([s.wall_s for s in samples])

    def calls(samples: list[Sample]) -> int:
        return int(statistics.median(s.calls for s in samples))

    def rss(samples: list[Sample]) -> str:
        peaks = [max(s.rss_mb) for s in samples]
        return f"{statistics.median(peaks):.0f} MB"

    m_cold, c_cold = wall(medic.cold[True]), wall(c7n.cold[True])
    m_cold_src, c_cold_src = wall(medic.cold[False]), wall(c7n.cold[False])
    m_warm, c_warm = wall(medic.warm), wall(c7n.warm)
    m_calls_cold, c_calls_cold = calls(medic.cold[True]), calls(c7n.cold[True])
    m_calls_warm, c_calls_warm = calls(medic.warm), calls(c7n.warm)
    m_log_warm = int(statistics.median(s.by_service.get("dynamodb", 0) for s in medic.warm))
    m_log_cold = int(statistics.median(s.by_service.get("dynamodb", 0) for s in medic.cold[True]))
    triage_rss = statistics.median(s.rss_mb[0] for s in medic.cold[True])
    executor_rss = statistics.median(s.rss_mb[1] for s in medic.cold[True])
    c7n_rss = statistics.median(s.rss_mb[0] for s in c7n.cold[True])
    rows: list[list[object]] = [
        [
            "cold, precompiled (event → change, fresh processes)",
            c_cold.ms(),
            m_cold.ms(),
            ratio(m_cold.median, c_cold.median),
        ],
        ["cold, no bytecode", c_cold_src.ms(), m_cold_src.ms(), ratio(m_cold_src.median, c_cold_src.median)],
        ["warm (handler time)", c_warm.ms(1), m_warm.ms(1), ratio(m_warm.median, c_warm.median)],
        [
            "AWS API calls, cold",
            c_calls_cold,
            f"{m_calls_cold} ({m_log_cold} of them the remediation log)",
            ratio(m_calls_cold, c_calls_cold),
        ],
        [
            "AWS API calls, warm",
            c_calls_warm,
            f"{m_calls_warm} ({m_log_warm} of them the remediation log)",
            ratio(m_calls_warm, c_calls_warm),
        ],
        [
            "peak RSS per environment (cold)",
            f"{c7n_rss:.0f} MB",
            f"triage {triage_rss:.0f} MB, executor {executor_rss:.0f} MB",
            ratio(max(triage_rss, executor_rss), c7n_rss),
        ],
        ["processes (Lambda functions) on the path", 1, 2, ""],
    ]
    parts = [
        [
            f"Medic {name}",
            Stat.of([s.parts[i] for s in medic.cold[True]]).ms(),
            Stat.of([s.parts[i] for s in medic.warm]).ms(1),
            f"{statistics.median(s.part_calls[i] for s in medic.cold[True]):.0f} / "
            f"{statistics.median(s.part_calls[i] for s in medic.warm):.0f}",
        ]
        for i, name in enumerate(("triage", "executor"))
    ] + [["c7n", c_cold.ms(), c_warm.ms(1), f"{c_calls_cold} / {c_calls_warm}"]]

    def ops(samples: list[Sample]) -> str:
        merged: dict[str, int] = {}
        for name, count in samples[0].by_operation.items():
            merged[name] = count
        return ", ".join(f"{name} ×{count}" if count > 1 else name for name, count in sorted(merged.items()))

    non_log_warm = m_calls_warm - m_log_warm
    non_log_cold = m_calls_cold - m_log_cold
    body = mode_note() + "\n".join(
        [
            f"World: `scenarios/throttles-reserved-limit.yaml` + {FILLERS} functions ({PAYMENTS + 1} tagged "
            "team=payments and medic:managed=true, thumbnailer among them); the change: thumbnailer's reserved "
            f"concurrency {BEFORE} → {AFTER}. Cold: {args.runs} fresh environments per tool and bytecode variant "
            f"(Medic: triage + executor, both cold). Warm: {args.warm} invocations of the same environments, the world "
            "restored between them. c7n policy:",
            "",
            "```json",
            json.dumps(POLICY, indent=1),
            "```",
            "",
            table(["", "c7n (cloudtrail mode)", "Medic (triage + executor, auto)", "Medic / c7n"], rows),
            "",
            "Per environment on the path:",
            "",
            table(["", "cold (precompiled)", "warm", "AWS API calls cold / warm"], parts),
            "",
            f"c7n's calls (cold): {ops(c7n.cold[True])}.",
            "",
            f"c7n's calls (warm): {ops(c7n.warm)}.",
            "",
            f"Medic's calls (cold): {ops(medic.cold[True])}.",
            "",
            f"Medic's calls (warm): {ops(medic.warm)}.",
            "",
            "What the numbers include: c7n resolves the resource (GetFunction), re-reads it for the "
            "reserved-concurrency filter (GetFunction) and sets it; it looks at no metric, keeps no log beyond "
            "CloudWatch Logs and posts nowhere. Medic collects the facts (configuration, account, metrics, event "
            "sources, resource policy), decides with the runbook, checks guardrails and the safety controls in "
            "its log, writes the hash-chained log (plans table + events table), posts the card, hands the plan to "
            "the executor over SQS, which assumes its own role session, re-reads the live value, applies, "
            "confirms and replies in the thread.",
        ]
    )
    targets = [
        Target(
            "side by side: event to change, cold",
            "Medic ≤ 1.0× c7n",
            ratio(m_cold.median, c_cold.median),
            m_cold.median <= c_cold.median,
        ),
        Target(
            "side by side: event to change, warm",
            "Medic ≤ 1.0× c7n",
            ratio(m_warm.median, c_warm.median),
            m_warm.median <= c_warm.median,
        ),
        Target(
            "side by side: API calls (warm)",
            f"≤ c7n's ({c_calls_warm}) + the audit trail",
            f"{m_calls_warm}, of which {m_log_warm} the log: {non_log_warm} besides the log",
            non_log_warm <= c_calls_warm,
        ),
        Target(
            "side by side: API calls (cold)",
            f"≤ c7n's ({c_calls_cold}) + the audit trail",
            f"{m_calls_cold}, of which {m_log_cold} the log: {non_log_cold} besides the log",
            non_log_cold <= c_calls_cold,
        ),
    ]
    save("custodian", body, targets)
    say(body)


if __name__ == "__main__":
    main()
