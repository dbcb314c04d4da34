"""Bounded memory of a warm execution environment (docs/reliability.md): the ledger's per-plan caches (each plan's
context, its chain's last record, the chains it just created) keep at most `CACHED_PLANS` plans, and a plan forgotten
is read back, never mis-chained."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medic.clock import ManualClock, iso
from medic.ledger import store as ledger_module
from medic.ledger.store import Ledger
from medic.plan import Plan, plan_id

ALARM = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:fn{index}-live-spillover"


def plan(index: int, clock: ManualClock) -> Plan:
    now = iso(clock.now())
    arn = ALARM.format(index=index)
    return Plan(
        id=plan_id(arn, now), status="PROPOSED", alarm_arn=arn, alarm_name=arn.rsplit(":", 1)[-1], state_timestamp=now,
        account="123456789012", region="us-east-1", signal="spillover", target=f"fn{index}:live",
        slack={"channel": "C0OPS", "ts": f"1795410060.{index:06d}"}, created_at=now, updated_at=now,
    )  # fmt: skip


def test_a_warm_ledger_keeps_a_bounded_number_of_plans_cached_and_still_chains_correctly(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "CACHED_PLANS", 8)
    clock = ManualClock(datetime(2026, 11, 22, 5, 0, tzinfo=UTC))
    plans = []
    for index in range(40):  # a storm's worth of plans through one execution environment
        clock.advance(1)
        made = plan(index, clock)
        assert ledger.create(made, [("alarm_received", {"index": index})], clock.now())
        ledger.append(made.id, "plan_created", {"index": index}, clock.now())
        plans.append(made)

    assert len(ledger._context) <= 8 and len(ledger._last) <= 8 and len(ledger._empty) <= 8

    first = plans[0]  # long forgotten by the caches: its chain's end is read back from the table
    assert ledger.get(first.id) is not None
    event = ledger.append(first.id, "approval", {"user": "U0ONCALL"}, clock.now())
    assert event.seq == 3
    assert event.context == {"alarm_arn": first.alarm_arn, "state_timestamp": first.state_timestamp,
                             "slack_ts": first.slack.ts}  # fmt: skip
    assert all(ledger.verify_chain(p.id) is None for p in plans)


def test_the_cache_keeps_the_most_recently_used_plans() -> None:
    recent: dict[str, int] = ledger_module._Recent()
    for index in range(ledger_module.CACHED_PLANS + 10):
        recent[f"p{index}"] = index
        recent["p0"] = 0  # used all the time: never the one forgotten

    assert len(recent) == ledger_module.CACHED_PLANS
    assert "p0" in recent and "p1" not in recent and f"p{ledger_module.CACHED_PLANS + 9}" in recent
