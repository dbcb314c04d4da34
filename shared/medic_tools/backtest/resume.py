"""`--resume FILE`: the transitions a backtest finished, one JSON line each, appended as each one finishes; a rerun
with the same file skips them (and reports them as they were). A line is only reused by a run with the same runbooks
and settings (`fingerprint`): one written under another runbook is ignored. A line that cannot be read (a run
stopped mid-write) is ignored and counted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from medic.errors import InputError
from medic_tools.backtest.model import TransitionRow
from medic_tools.backtest.period import SOURCE


def fingerprint(runbook_files: Sequence[str | Path], settings: Any) -> str:
    """What a finished row depends on besides the transition: the runbooks' files (their content) and the settings
    the plans are made with."""
    digest = hashlib.sha256()
    for path in runbook_files:
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            digest.update(b"(unreadable)")
    digest.update(json.dumps(settings, sort_keys=True, default=_plain).encode())
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A setting JSON cannot hold: a set in a stable order (a frozenset's order changes with each process's hash seed),
    anything else as its text."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


class ResumeFile:
    """The rows already finished (`done`: plan id → row) and the file new ones are appended to."""

    def __init__(self, path: str | Path, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self.done: dict[str, TransitionRow] = {}
        self.ignored = 0  # lines of another run's runbooks or settings
        self.unreadable = 0
        self._handle: IO[str] | None = None
        try:
            text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(field="--resume", source=str(path), problem=f"cannot read: {exc}") from None
        self._newline_first = bool(text) and not text.endswith("\n")  # a line cut short: the next starts afresh
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                row = TransitionRow.model_validate(entry["row"])
            except (ValueError, KeyError, TypeError, ValidationError):
                self.unreadable += 1
                continue
            if entry.get("key") != key:
                self.ignored += 1
                continue
            self.done[row.plan_id] = row

    def append(self, row: TransitionRow) -> None:
        """Record a finished row (flushed at once: a run stopped after this line keeps it)."""
        if self._handle is None:
            try:
                self._handle = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise InputError(field="--resume", source=SOURCE, problem=f"cannot write {self.path}: {exc}") from None
            if self._newline_first:
                self._handle.write("\n")
        self._handle.write(json.dumps({"key": self.key, "row": row.model_dump(mode="json")}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
