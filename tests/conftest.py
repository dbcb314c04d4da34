"""What every test folder shares: one botocore data loader and the shipped runbook compiled once per test process,
and a garbage collector tuned for a test process's heap.

Every `boto3.Session` gets a new botocore loader, which reads and parses botocore's JSON (endpoints.json, each
service's model, its endpoint rules) again: Medic's code builds a session per simulation and per assumed role, and
the tests build thousands, so a third of the suite's time went to `json.loads` of the same files. botocore already
shares one loader between every client of a session; here every session of the process shares it too (one per
AWS_DATA_PATH). What a client does is unchanged: the same files, parsed once, are what each session would read.

Every `Runtime` loads the shipped runbook (`DEFAULT_RUNBOOK`, runbooks/lambda-latency.yaml) when it first decides,
and a test builds a runtime for each simulation: compiling the same file again was an eighth of a simulated triage.
`parse_runbook` is a function of the text and its source name, and a `Runbook` is frozen (layering and failing closed
make new ones), so the shipped runbook, compiled, is kept per text and handed out again. Any other text (the runbook
tests' and fuzzers') is compiled every time, as is any text while tracemalloc traces (the memory tests count what
Medic's own code allocates and holds).

The garbage collector took a fifth of an integration test's CPU (a test process holds botocore's models, moto, the
runbook, hypothesis: full collections walked all of it every few hundred thousand allocations, for cycles it never
found there). Here it runs less often (`GC_THRESHOLD`), and what is alive once the tests are collected (modules,
classes, what they import) is moved out of its reach (`gc.freeze`): it lives until the process ends anyway. Cycles
made by the tests are collected as before, only in bigger batches.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from functools import lru_cache
from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader, create_loader

import medic.planning.runbook.loading as runbook_loading
from medic.config import DEFAULT_RUNBOOK

_LOADERS: dict[str | None, Loader] = {}
_LOCK = threading.Lock()


class _SearchPaths(list[str]):
    """A loader's search paths that ignore a path they have: each `boto3.Session` appends boto3's data folder to
    its loader's paths, once per session (a shared loader's list would grow by one per session)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared_loader(data_path: str | None) -> Loader:
    with _LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = create_loader(data_path)
            loader._search_paths = _SearchPaths(loader.search_paths)
            _LOADERS[data_path] = loader
        return loader


def _register_data_loader(self: Any) -> None:
    """botocore's `Session._register_data_loader`, with the process's loader for the session's data path."""
    self._components.lazy_register_component(
        "data_loader", lambda: _shared_loader(self.get_config_variable("data_path"))
    )


botocore.session.Session._register_data_loader = _register_data_loader  # type: ignore[method-assign]


_parse_runbook = runbook_loading.parse_runbook
_compiled = lru_cache(maxsize=4)(_parse_runbook)


def _parse_runbook_once(text: str, source: str = "runbook") -> runbook_loading.Runbook:
    """`parse_runbook`; the shipped runbook compiled once per text (see the module's docstring)."""
    if source != str(DEFAULT_RUNBOOK) or tracemalloc.is_tracing():
        return _parse_runbook(text, source)
    return _compiled(text, source)


runbook_loading.parse_runbook = _parse_runbook_once


#: The youngest generation is collected every 10,000 net allocations, the next every 20 of those, the oldest every 20
#: of these (CPython's defaults: 700, 10, 10).
GC_THRESHOLD = (10_000, 20, 20)
gc.set_threshold(*GC_THRESHOLD)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything the collected tests imported is there for the whole run: out of the collector's walks."""
    gc.collect()
    gc.freeze()


@pytest.fixture
def no_slack_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk's retries of a failed connection happen at once (its exponential backoff is not slept): for tests
    whose Slack is down or unreachable by design and that time nothing. A 429's Retry-After is still honoured."""
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

    monkeypatch.setattr(BackoffRetryIntervalCalculator, "calculate_sleep_duration", lambda self, current_attempt: 0.0)
