"""The load test's core (bench/bench_load.py) in a tiny configuration, so that its invariants are checked by
`make test`: bursts of alarm events (duplicated, re-emitted under new ids, a storm of alarms per function) and of
signed Slack clicks (double clicks, a racing Reject, a replayed request), sent concurrently to the handlers by
several execution environments, then the executor queue and every batch redelivered. No duplicate effect, no lost
event, no error, bounded memory. The full figures are `make bench`'s (bench/results.md, section 8).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from medic.log import configure
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
configure("WARNING")  # Medic's own logs would be hundreds of lines here


def bench_load() -> ModuleType:
    """bench/bench_load.py, loaded from its file (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "bench_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def slack(httpserver: HTTPServer) -> str:
    """A fake Slack Web API (and response_url host): every call `ok`, with a fresh ts."""
    counter = iter(range(1, 10**9))

    def answer(request: Request) -> Response:
        return Response(json.dumps({"ok": True, "channel": "C0MEDICOPS", "ts": f"1795410060.{next(counter):06d}"}),
                        content_type="application/json")  # fmt: skip

    httpserver.expect_request(re.compile(r"/.*")).respond_with_handler(answer)
    return httpserver.url_for("/api/")


def test_bursts_of_alarms_and_clicks_make_no_duplicate_effect_lose_no_event_and_hold_bounded_memory(
    aws: EmbeddedAWS, slack: str
) -> None:
    load = bench_load()
    # A cache cap of 4 plans per environment (Medic's is 512): the plateau of its memory shows within 4 bursts.
    config = load.Config(functions=3, bursts=4, alarms=2, duplicates=1, new_ids=1, clicks=2, workers=2,
                         deadline_s=300, cache_plans=4)  # fmt: skip

    figures = load.run(aws, slack, config)

    assert load.violations(figures) == []
    assert not figures.stopped_early
    cards = 3 * 4
    assert figures.transitions == cards * 2 and figures.plans == figures.transitions
    assert figures.statuses["SUPERSEDED"] == cards, "the storm's second alarm of each function attached"
    assert figures.statuses["APPLIED"] + figures.statuses["REJECTED"] == cards
    assert figures.changes == figures.applied == figures.statuses["APPLIED"] > 0
    assert figures.answers["decided"] == cards and figures.answers["5xx"] == 0
    assert sum(b.deliveries for b in figures.bursts) == cards * 2 * 3
    growth = figures.growth_per_plan()
    assert growth is not None and growth <= load.PLATEAU_PER_PLAN
    assert (figures.ceiling() or 0) <= load.MEMORY_CEILING
