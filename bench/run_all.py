"""`make bench`: run every bench/bench_*.py, in the order of report.SECTIONS, then print the targets.

    bench/.venv/bin/python bench/run_all.py                  # every benchmark found
    bench/.venv/bin/python bench/run_all.py storm decisions  # some sections (keys or file names)
    BENCH_QUICK=1 bench/.venv/bin/python bench/run_all.py    # a smoke run

A benchmark's section is the key it saves under (`SECTION = "<key>"` or `save("<key>", ...)` in its source), else
its file name (bench_<key>.py). A section without a file is skipped (its part of results.md says "not measured
yet"); a file without a known section runs last. Each benchmark runs in a process of its own; one that fails
leaves its section saying so (a MISSED verdict) and the others run on; the exit status is then non-zero.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from report import RESULTS, SECTIONS, Target, quick, render, save

BENCH = Path(__file__).resolve().parent
_KEY = (
    re.compile(r"^SECTION\s*(?::[^=]+)?=\s*[\"'](\w+)[\"']", re.MULTILINE),
    re.compile(r"\bsave\(\s*[\"'](\w+)[\"']"),
)
TAIL_LINES = 30


def section_of(path: Path) -> str | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for pattern in _KEY:
        match = pattern.search(text)
        if match and match.group(1) in SECTIONS:
            return match.group(1)
    stem = path.stem.removeprefix("bench_")
    return next((key for key in SECTIONS if key == stem or key.startswith(stem + "_")), None)


def discover() -> list[tuple[str | None, Path]]:
    found = [(section_of(path), path) for path in sorted(BENCH.glob("bench_*.py"))]
    order = list(SECTIONS)
    return sorted(found, key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[1].name))


def run(path: Path) -> tuple[int, list[str]]:
    """Run one benchmark, its output shown as it comes; (exit status, the last lines)."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    process = subprocess.Popen(
        [sys.executable, str(path)],
        cwd=BENCH.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.append(line.rstrip("\n"))
    return process.wait(), list(tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("only", nargs="*", help="section keys or file names to run (default: all)")
    args = parser.parse_args()
    benchmarks = discover()
    wanted = {name.removesuffix(".py").removeprefix("bench_") for name in args.only}
    if wanted:
        benchmarks = [
            (key, path) for key, path in benchmarks if key in wanted or path.stem.removeprefix("bench_") in wanted
        ]
        if not benchmarks:
            sys.exit(f"no benchmark matches {' '.join(args.only)}; sections: {', '.join(SECTIONS)}")
    present = {key for key, _ in discover()}
    missing = [key for key in SECTIONS if key not in present]
    print(
        f"make bench{' (BENCH_QUICK=1: a smoke run)' if quick() else ''}: "
        f"{', '.join(path.name for _, path in benchmarks)}"
        + (f"; no benchmark yet for {', '.join(missing)} (skipped)" if missing and not wanted else ""),
        flush=True,
    )
    summary: list[tuple[str, str, float, int]] = []
    started = time.perf_counter()
    for key, path in benchmarks:
        print(f"\n=== {SECTIONS.get(key or '', path.name)} ({path.name}) ===", flush=True)
        began = time.perf_counter()
        status, tail = run(path)
        elapsed = time.perf_counter() - began
        summary.append((key or "?", path.name, elapsed, status))
        if status != 0 and key is not None:
            text = "\n".join(tail)
            save(
                key,
                f"_The last run of `bench/{path.name}` failed (exit status {status}); its output ended with:_"
                f"\n\n```\n{text}\n```",
                [Target(f"{path.name} runs to the end", "exit status 0", f"exit status {status}", False)],
            )
    render()
    total = time.perf_counter() - started
    print("\n=== Summary ===")
    for key, name, elapsed, status in summary:
        print(f"{name:28} {key:18} {elapsed:7.1f} s  {'ok' if status == 0 else f'FAILED (exit {status})'}")
    print(f"{'total':47} {total:7.1f} s\n")
    text = RESULTS.read_text()
    start = text.find("## Targets")
    end = text.find("\n## ", start + 1)
    print(text[start:end].strip() + f"\n\nWritten: {RESULTS.relative_to(BENCH.parent)}")
    if any(status != 0 for *_, status in summary):
        sys.exit(1)


if __name__ == "__main__":
    main()
