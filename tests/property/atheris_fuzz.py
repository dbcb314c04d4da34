"""Coverage-guided fuzzing of the edges with atheris (libFuzzer for Python): optional, never part of `make test`.

The same oracles as the hypothesis fuzzers of this folder (a parsed model or a typed refusal, no AWS call), driven by
coverage instead of strategies. atheris ships wheels for Linux x86_64 only; install it next to the dev extra:

    .venv/bin/pip install atheris
    .venv/bin/python tests/property/atheris_fuzz.py events  -max_total_time=600 [corpus_dir]
    .venv/bin/python tests/property/atheris_fuzz.py runbook -max_total_time=600
    .venv/bin/python tests/property/atheris_fuzz.py scenario -runs=100000

Any other argument is libFuzzer's (`-runs`, `-max_len`, `-dict`, a corpus folder…). A failure prints the input and
writes it to `crash-…` in the current folder; replay it with the same command and the file as the only argument.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the oracles live next to this file (run as a script)

with atheris.instrument_imports(include=["medic"]):  # imported first, so that medic's code reports its coverage
    import medic.alarms.events
    import medic.alarms.signals
    import medic.planning.runbook

from test_fuzz_events import SAMPLES, parsed_or_refused
from test_fuzz_runbook import TEXT, loaded_or_refused
from test_fuzz_scenarios import TEXTS
from test_fuzz_scenarios import loaded_or_refused as scenario_loaded_or_refused

FOLDER = Path(tempfile.mkdtemp(prefix="medic-atheris-"))


def events(data: bytes) -> None:
    parsed_or_refused(data)


def runbook(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    loaded_or_refused(lambda: medic.planning.runbook.parse_runbook(text, "fuzzed.yaml"))


def scenario(data: bytes) -> None:
    scenario_loaded_or_refused(FOLDER / "fuzzed.yaml", data)


TARGETS: dict[str, tuple[Callable[[bytes], None], list[str]]] = {
    "events": (events, list(SAMPLES.values())),
    "runbook": (runbook, [TEXT]),
    "scenario": (scenario, list(TEXTS.values())),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dir]")
    target, seeds = TARGETS[sys.argv[1]]
    flags = sys.argv[2:]
    if not any(not flag.startswith("-") for flag in flags):  # no corpus given: start from the real inputs
        corpus = FOLDER / "corpus"
        corpus.mkdir()
        for number, seed in enumerate(seeds):
            (corpus / f"seed-{number}").write_text(seed, encoding="utf-8")
        flags.append(str(corpus))
    atheris.Setup([sys.argv[0], *flags], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
