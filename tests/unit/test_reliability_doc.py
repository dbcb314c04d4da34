"""docs/reliability.md cannot rot: every row of its promises names a test, and every test it names exists (the file
exists and defines the function)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
CITATION = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
#: The promises the issue lists; each must have its row (matched on these words in the "Fault or input" column).
REQUIRED = [
    "Duplicate EventBridge delivery", "new event id", "OK before its ALARM", "asynchronous retries of triage",
    "executor times out mid-apply", "SQS redelivers", "conditional-check races", "AWS 429", "AWS 5xx",
    "ResourceConflictException", "`FAILED`", "Slack 429 with `Retry-After`", "Slack 5xx", "Slack hanging",
    "card deleted mid-flow", "expired `response_url`", "Clock skew", "runbook replaced while plans are open",
    "kill switch flipped between approval and apply",
]  # fmt: skip


def promise_rows() -> list[list[str]]:
    """The rows of the "Promises" table, as cells."""
    section = DOC.read_text(encoding="utf-8").split("## Promises", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


@cache
def defined(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def test_every_row_of_the_promises_names_a_test() -> None:
    rows = promise_rows()
    assert len(rows) >= len(REQUIRED)
    for row in rows:
        assert len(row) == 4, f"a row has {len(row)} cells, expected 4: {row}"
        assert CITATION.search(row[3]), f"row {row[0]} names no test: {row[3]!r}"


@pytest.mark.parametrize("words", REQUIRED)
def test_each_promise_of_the_issue_has_its_row(words: str) -> None:
    assert any(words in row[1] for row in promise_rows()), f"no row for {words!r}"


def test_every_test_the_page_names_exists() -> None:
    cited = CITATION.findall(DOC.read_text(encoding="utf-8"))
    assert cited
    missing = []
    for path, name in cited:
        if not (ROOT / path).is_file():
            missing.append(f"{path} (no such file)")
        elif name not in defined(path) or not name.startswith("test_"):
            missing.append(f"{path}::{name}")
    assert missing == []
