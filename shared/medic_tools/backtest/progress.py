"""The progress bar on stderr: one line redrawn in place, only on a terminal (never in a pipe, a file or CI logs) and
never with `--quiet`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

WIDTH = 24


class Progress:
    """`start(phase, total)`, then `step()` per item done; `close()` clears the line. Silent unless `enabled`."""

    def __init__(
        self,
        stream: IO[str] | None,
        *,
        quiet: bool = False,
        calls: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.enabled = stream is not None and not quiet and stream.isatty()
        self.calls, self.clock = calls, clock
        self.phase, self.total, self.done = "", 0, 0
        self.started = clock()

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done = phase, total, 0
        self.started = self.clock()
        self._draw()

    def step(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def close(self) -> None:
        if self.enabled and self.stream is not None:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def line(self) -> str:
        """The bar as drawn, e.g. `replaying [######------------------] 3/12 · 41 AWS calls · 4.8/s`."""
        filled = WIDTH * self.done // self.total if self.total else WIDTH
        elapsed = max(self.clock() - self.started, 1e-9)
        calls = self.calls()
        return (
            f"{self.phase} [{'#' * filled}{'-' * (WIDTH - filled)}] {self.done}/{self.total} · {calls} AWS calls"
            f" · {self.done / elapsed:.1f}/s"
        )

    def _draw(self) -> None:
        if self.enabled and self.stream is not None:
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()
