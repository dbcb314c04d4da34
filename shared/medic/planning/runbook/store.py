"""`RunbookStore`: the runbook a running Medic decides with, reloaded when a file changes, the last good one kept."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from medic.errors import RunbookError
from medic.planning.runbook.loading import load_runbook
from medic.planning.runbook.model import Runbook, notify_only


class RunbookStore:
    """The runbook a running Medic decides with, reloaded when one of its files changes.

    - A refused change never replaces the last good layered runbook: Medic keeps deciding with it.
    - An override refused before any layered runbook was good (at a cold start, or while failing closed) fails
      closed: the base alone, every decision notify-only with the refusal in its rationale (`notify_only`), until
      the override is fixed. Falling back to the base as it is would apply what a restricting override blocks.
    - An invalid base with no runbook to keep raises: Medic cannot decide at all.

    Every refusal is reported to `on_refused` (the runtime logs it and counts it), after the store has settled on
    what it decides with: `notify_only` then says whether that is advice only.
    """

    def __init__(
        self,
        path: str | Path,
        overrides: Sequence[str | Path] = (),
        on_refused: Callable[[RunbookError], None] | None = None,
    ) -> None:
        self.path, self.overrides = Path(path), tuple(Path(o) for o in overrides)
        self.on_refused = on_refused or (lambda error: None)
        self._good: Runbook | None = None
        self._base: Runbook | None = None  # the base alone, while failing closed
        self._stamp: tuple[float, ...] | None = None

    @property
    def loaded(self) -> bool:
        """Whether there is a runbook to decide with (a good one, or the base failing closed)."""
        return self._good is not None

    @property
    def notify_only(self) -> bool:
        """Whether the runbook in use fails closed (an override refused): every decision is advice."""
        return self._good is not None and bool(self._good.refused)

    def _mtimes(self) -> tuple[float, ...]:
        stamps = []
        for path in (self.path, *self.overrides):
            try:
                stamps.append(os.stat(path).st_mtime)
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def current(self) -> Runbook:
        stamp = self._mtimes()
        if self._good is not None and stamp == self._stamp:
            return self._good
        self._stamp = stamp
        try:
            self._good = load_runbook(self.path, self.overrides)
        except RunbookError as error:
            try:
                if self._good is None or self._good.refused:
                    self._fail_closed(error)
            finally:
                self.on_refused(error)
        assert self._good is not None
        return self._good

    def _fail_closed(self, error: RunbookError) -> None:
        """No good layered runbook to keep: the base alone (as it is now, else the last good one), notify-only;
        raises when there is no base to fall back on."""
        if not self.overrides:
            if self._good is None:
                raise error
            return
        try:
            self._base = load_runbook(self.path)
        except RunbookError:
            if self._base is None:
                raise
        self._good = notify_only(self._base, error)
