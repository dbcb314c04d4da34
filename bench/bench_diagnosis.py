"""9. Diagnosis accuracy: ≥ 2,000 incidents generated from the workload model, judged against its ground truth.

Each incident is drawn by `medic_tools.world.workload.generate(wall, variant, seed)`: a workload and a configuration
whose
metrics, REPORT lines and ground truth (which wall, which fix clears it) follow from the model's physics, never from
Medic's runbook (docs/WORKLOAD.md). The walls cover every diagnosis of the vocabulary the model produces; the
variants the shapes real accounts have (JSON logs, a shared custom log group, a series missing at the alias, a noisy
neighbour, a new account of 10, traffic on $LATEST, PC FAILED, PC on another alias, SQS consumers).

Per incident (`medic_tools.world.workload.evaluate`): a fresh embedded world, the alarm through the real triage handler,
the plan's diagnosis against the truth; a plan asking for approval is approved (two people where the two-person rule
says so) and executed by the real executor, then the world is read back for the safety invariants (AWS's unreserved
minimum, PC within reservations, Medic's caps): a *violation* is a change that broke one; a *refusal* an approved
change AWS refused. Every tenth incident also continues the model from the world's live configuration and runs the
real verifier: did the fix clear the alarm?

Targets (issue 17): ≥ 99 % correct; 0 guardrail violations; 0 approved plans the world refuses; ≤ 1 % `unexplained`
where the truth is a known wall. Two worker processes (one embedded world each).
"""

from __future__ import annotations

import argparse
import collections
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from report import Stat, Target, mode_note, save, say, size, table

from medic_tools.world.workload.generator import VARIANTS

SECTION = "diagnosis"
VERIFY_EVERY = 10
_AWS: Any = None


def _start_world() -> None:
    global _AWS  # one embedded world per worker process, for all its incidents  # noqa: PLW0603
    from medic_tools.world.server import EmbeddedAWS

    _AWS = EmbeddedAWS()
    _AWS.__enter__()


def _judge(job: tuple[str, str, int, bool]) -> dict[str, Any]:
    from medic_tools.world.workload.evaluate import Judged, evaluate
    from medic_tools.world.workload.generator import GenerationError, generate

    wall, variant, seed, verify = job
    try:
        incident = generate(wall, variant, seed)
    except GenerationError as exc:
        return Judged(wall, variant, seed, wall, error=f"generation: {exc}").as_row()
    return evaluate(incident, _AWS, verify=verify).as_row()


def jobs(count: int) -> list[tuple[str, str, int, bool]]:
    pairs = [(wall, variant) for wall, variants in VARIANTS.items() for variant in variants]
    return [(*pairs[i % len(pairs)], i // len(pairs), i % VERIFY_EVERY == 0) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=size(2100, 164))
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_start_world) as pool:
        for index, row in enumerate(pool.map(_judge, jobs(args.count), chunksize=4), start=1):
            rows.append(row)
            if index % 50 == 0 or not row["correct"]:
                mark = "ok" if row["correct"] else f"MISS → {row['diagnosis']} ({row['rule']}) {row['error']}"
                say(f"[{index}/{args.count}] {row['wall']}/{row['variant']}/{row['seed']}: {mark}")
    report(rows, time.monotonic() - started, args.workers)


def report(rows: list[dict[str, Any]], wall_s: float, workers: int) -> None:
    judged = [r for r in rows if not r["error"].startswith("generation")]
    correct = [r for r in judged if r["correct"]]
    unexplained = [r for r in judged if r["diagnosis"] == "unexplained"]
    errors = [r for r in judged if r["error"]]
    executed = [r for r in judged if r["outcome"] is not None]
    refused = [r for r in executed if r["refused"]]
    violations = [r for r in executed if r["violations"]]
    blocked = [r for r in judged if r["status"] == "BLOCKED"]
    guards = ", ".join(f"{g} ×{n}" for g, n in collections.Counter(g for r in blocked for g in r["blocked_by"]).items())
    accuracy = len(correct) / len(judged) if judged else 0.0
    walls = list(VARIANTS)
    found = {r["diagnosis"] or "(none)" for r in judged}
    seen = [wall for wall in walls if wall in found] + sorted(found - set(walls))
    confusion = collections.Counter((r["truth"], r["diagnosis"] or "(none)") for r in judged)
    totals = {wall: sum(confusion[(wall, d)] for d in seen) for wall in walls}
    matrix = table(
        ["truth \\ Medic", *seen, "n", "correct"],
        [[wall, *(confusion.get((wall, d)) or "·" for d in seen), totals[wall],
          f"{confusion[(wall, wall)] / totals[wall]:.1%}" if totals[wall] else "–"] for wall in walls],
    )  # fmt: skip
    by_variant = collections.defaultdict(list)
    for r in judged:
        by_variant[r["variant"]].append(r["correct"])
    variants = table(
        ["variant", "incidents", "correct"],
        [[v, len(ok), f"{sum(ok) / len(ok):.1%}"] for v, ok in sorted(by_variant.items())],
    )
    misses = [r for r in judged if not r["correct"]][:25]
    miss_table = table(
        ["wall / variant / seed", "Medic", "row", "error"],
        [[f"{r['wall']} / {r['variant']} / {r['seed']}", r["diagnosis"], r["rule"], r["error"][:80]] for r in misses],
    )
    fixes = [r for r in judged if r["outcome"] in ("VERIFIED", "FAILED", "ROLLED_BACK")]
    verified_ok = [r for r in fixes if r["outcome"] == "VERIFIED"]
    by_wall = collections.defaultdict(list)
    for r in fixes:
        by_wall[r["truth"]].append(r["outcome"] == "VERIFIED")
    verification = table(
        ["truth", "fixes verified", "of"], [[w, sum(ok), len(ok)] for w, ok in sorted(by_wall.items())]
    )
    seconds = Stat.of([r["seconds"] for r in judged]) if judged else Stat(0, 0, 0, 0)
    known = [r for r in judged if r["truth"] != "unexplained"]
    body = mode_note() + (
        f"{len(judged)} generated incidents over {len(walls)} walls and their variants "
        f"({sum(len(v) for v in VARIANTS.values())} wall × variant pairs), {len(rows) - len(judged)} draws that did "
        f"not hit their wall; {workers} worker processes, {wall_s / 60:.1f} min in all, "
        f"{seconds.num(2, ' s')} per incident (world build, triage, approval, executor).\n\n"
        f"**{accuracy:.2%} correct diagnoses** ({len(correct)}/{len(judged)}); unexplained {len(unexplained)} "
        f"({len(unexplained) / max(1, len(known)):.2%}); errors {len(errors)}. Of {len(executed)} plans approved and "
        f"executed: **{len(violations)} guardrail violations**, **{len(refused)} refused by the world**. "
        f"{len(blocked)} plans BLOCKED by a guardrail at triage ({guards or 'none'}). "
        f"Fix verified on the model's continuation (every {VERIFY_EVERY}th incident): {len(verified_ok)}/{len(fixes)} "
        f"VERIFIED.\n\n### Confusion matrix\n\n{matrix}\n\n### By variant\n\n{variants}\n\n"
        f"### Fixes verified on the model's continuation, by wall\n\n{verification}\n\n"
        + (f"### Misses (first {len(misses)})\n\n{miss_table}\n" if misses else "No miss.\n")
        + ("\n### Refusals and violations\n\n"
           + "\n".join(f"- {r['wall']}/{r['variant']}/{r['seed']}: {r['refused'] or '; '.join(r['violations'])}"
                       for r in (refused + violations)[:20])
           if refused or violations else "")
    )  # fmt: skip
    targets = [
        Target("diagnosis accuracy", "≥ 99 %", f"{accuracy:.2%} of {len(judged)}", accuracy >= 0.99),
        Target("guardrail violations", "0", str(len(violations)), not violations),
        Target("approved plans the world refuses", "0", str(len(refused)), not refused),
        Target("unexplained where the truth is a known wall", "≤ 1 %",
               f"{len(unexplained) / max(1, len(known)):.2%}", len(unexplained) <= 0.01 * len(known)),
    ]  # fmt: skip
    save(SECTION, body, targets)
    say(body)


if __name__ == "__main__":
    main()
