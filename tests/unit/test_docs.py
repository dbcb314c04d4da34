"""The documents the code cites are in the repository, and say what the code does: no citation of a design document
kept elsewhere, and the vocabulary of docs/ARCHITECTURE.md §3 (a public contract) is the code's, word for word."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import get_args

from medic.alarms.signals import SignalKind
from medic.vocabulary import ACTION_KINDS, DIAGNOSES, MODE_ORDER, PLAN_STATES

ROOT = Path(__file__).resolve().parents[2]
#: A citation of the design document that lives outside the repository (its name, or its "§n" shorthand).
OUTSIDE_DESIGN = re.compile(r"\bDESIGN(?:\.md\b|\s*§)")
#: Files another branch is editing; their citation is replaced there. Each reason says where.
SKIPPED_DIRECTORIES = {".git", ".venv", "node_modules", ".aws-sam", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                       ".hypothesis", "__pycache__", "build", "dist"}  # fmt: skip


def repository_files() -> list[str]:
    """Every file of the repository: tracked or new (git, ignoring what .gitignore ignores), else every file below the
    root but caches and virtual environments."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True, text=True,
        ).stdout  # fmt: skip
        return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):  # a source tree without git
        return [
            str(path.relative_to(ROOT)) for path in ROOT.rglob("*")
            if path.is_file() and not SKIPPED_DIRECTORIES & set(path.relative_to(ROOT).parts[:-1])
            and not path.relative_to(ROOT).parts[0].endswith(".egg-info") and "bench/.venv" not in str(path)
        ]  # fmt: skip


def test_no_file_cites_a_design_document_that_is_not_in_the_repository() -> None:
    files = repository_files()
    assert "docs/ARCHITECTURE.md" in files and "shared/medic_tools/cli.py" in files

    citing = {}
    for name in files:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        lines = [number for number, line in enumerate(text.splitlines(), 1) if OUTSIDE_DESIGN.search(line)]
        if lines:
            citing[name] = lines
    assert citing == {}, "cite the in-repo document instead: docs/ARCHITECTURE.md (§n), docs/SCENARIOS.md, …"


def _section(number: int) -> str:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {number}. ")
    return text[start : text.index("\n## ", start + 1)]


def _named(line: str) -> list[str]:
    return re.findall(r"`(\w+)`", line)


def test_the_vocabulary_of_architecture_md_is_the_codes() -> None:
    section = _section(3)
    items = dict(re.findall(r"^- \*\*([\w ]+)\*\*[^:]*:(.*(?:\n  .*)*)", section, flags=re.MULTILINE))

    assert _named(items["Signals"]) == list(get_args(SignalKind))
    diagnoses = dict(re.findall(r"^  - (\w+): (.*(?:\n    .*)*)", items["Diagnoses"], flags=re.MULTILINE))
    assert {signal: set(_named(names)) for signal, names in diagnoses.items()} == {
        signal: set(names) for signal, names in DIAGNOSES.items()
    }
    assert _named(items["Action kinds"]) == list(ACTION_KINDS)
    assert set(_named(items["Modes"])) == set(MODE_ORDER)
    assert _named(items["Plan states"]) == list(PLAN_STATES)
