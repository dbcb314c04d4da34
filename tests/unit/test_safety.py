"""The stateful controls read from the remediation log: kill switch, freeze windows, circuit breaker, rate limit and
cooldown. Each test builds the log state the control reads and checks the refusal (limit and observed value)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from medic.actions import get_action
from medic.alarms.signals import Target
from medic.clock import iso
from medic.config import Settings
from medic.errors import ConfigError
from medic.facts import Facts
from medic.ledger.store import Ledger
from medic.plan import Plan, approval_hash, plan_id
from medic.safety import BREAKER_KEY, KILL_SWITCH_KEY, SafetyControls, describe, parse_freeze_windows

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # a Wednesday


def plan(n: int, *, status: str = "APPROVED", target: str = "checkout", kind: str = "set_reserved_concurrency",
         applied_at: datetime | None = None) -> Plan:  # fmt: skip
    facts = Facts(function_name=target, reserved_concurrency=10, has_reserved_concurrency=True)
    params = {"concurrency": 20}
    if kind == "set_provisioned_concurrency":
        facts = Facts(function_name=target, qualifier="live", pc_requested=5)
    [action] = get_action(kind).plan(Target.function(target, "live" if kind != "set_reserved_concurrency" else None),
                                     params, facts)  # fmt: skip
    when = iso(applied_at or NOW)
    made = Plan(
        id=plan_id(f"arn:alarm:{n}", when), status=status, alarm_arn=f"arn:alarm:{n}", alarm_name=f"a{n}",
        state_timestamp=when, account="123456789012", region="us-east-1", signal="throttles", target=target,
        function_name=target, mode="approve", actions=[action], created_at=when, updated_at=when,
        applied_at=iso(applied_at) if applied_at else None,
    )  # fmt: skip
    made.approval_hash = approval_hash(made)
    return made


def stored(ledger: Ledger, made: Plan) -> Plan:
    """Put a plan in the log in its state (as if it had moved there through the state machine)."""
    item = Ledger._item(made)
    ledger.dynamodb.put_item(TableName=ledger.plans_table, Item=item)
    return made


def controls(ledger: Ledger, **settings: Any) -> SafetyControls:
    return SafetyControls(ledger, Settings(plans_table=ledger.plans_table, events_table=ledger.events_table,
                                           **settings))  # fmt: skip


def guards(refusals: list[Any]) -> list[str]:
    return [refusal.guard for refusal in refusals]


def test_an_empty_log_refuses_nothing(ledger: Ledger) -> None:
    assert controls(ledger).refusals(plan(1), NOW) == []


def test_advice_is_never_refused(ledger: Ledger) -> None:
    safety = controls(ledger, kill_switch=True)
    advice = plan(1).model_copy(update={"actions": []})

    assert safety.refusals(advice, NOW) == []


# --- kill switch ------------------------------------------------------------------------------------


def test_the_kill_switch_flag_refuses_every_change_and_says_who_flipped_it(ledger: Ledger) -> None:
    safety = controls(ledger)
    safety.set_control(KILL_SWITCH_KEY, True, "U0ONCALL", "bad deploy in progress", NOW)

    [refusal] = safety.refusals(plan(1), NOW)

    assert refusal.guard == "kill_switch"
    assert refusal.observed == f"on (by U0ONCALL at {iso(NOW)})"
    assert refusal.message == "the kill switch is on: bad deploy in progress"
    assert [e.kind for e in ledger.events(KILL_SWITCH_KEY)] == ["control_set"]
    safety.set_control(KILL_SWITCH_KEY, False, "U0ONCALL", "done", NOW)
    assert safety.refusals(plan(1), NOW) == []


def test_the_static_kill_switch(ledger: Ledger) -> None:
    assert guards(controls(ledger, kill_switch=True).refusals(plan(1), NOW)) == ["kill_switch"]


def test_control_flags_are_not_plans(ledger: Ledger) -> None:
    controls(ledger).set_control(KILL_SWITCH_KEY, True, "U1", "", NOW)

    assert ledger.all_plans() == []


# --- freeze windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "inside"),
    [
        ("Wed 13:00-Wed 15:00", True),
        ("Wed 14:01-Wed 15:00", False),
        ("Fri 18:00-Mon 08:00", False),  # wraps over the weekend; Wednesday is outside
        ("Tue 18:00-Thu 08:00", True),
        ("Sun 22:00-Mon 02:00; Wed 10:00-Wed 14:00", False),  # the end is exclusive
        ("2026-11-25T00:00Z/2026-11-26T00:00Z", True),
        ("2026-12-24T00:00Z/2026-12-27T00:00Z", False),
    ],
)
def test_freeze_windows(ledger: Ledger, window: str, inside: bool) -> None:
    refusals = controls(ledger, freeze_windows=window).refusals(plan(1), NOW)

    assert guards(refusals) == (["freeze_window"] if inside else [])


def test_a_weekend_window_contains_saturday() -> None:
    [window] = parse_freeze_windows("Fri 18:00-Mon 08:00")

    assert window.contains(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    assert not window.contains(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))


@pytest.mark.parametrize("bad", ["Funday 10:00-Mon 08:00", "Fri 25:00-Mon 08:00", "2026-12-27/2026-12-24",
                                 "2026-12-24T00:00/2026-12-27T00:00", "whenever"])  # fmt: skip
def test_a_bad_freeze_window_is_a_config_error_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_freeze_windows(bad)

    assert str(raised.value).startswith(f"environment: MEDIC_FREEZE_WINDOWS: {bad!r}")


# --- circuit breaker --------------------------------------------------------------------------------


def test_the_circuit_breaker_opens_after_n_failures_and_a_reset_closes_it(ledger: Ledger) -> None:
    safety = controls(ledger, circuit_breaker_failures=2, cooldown_s=0)
    stored(ledger, plan(1, status="FAILED", target="a", applied_at=NOW - timedelta(days=3)))
    assert safety.refusals(plan(9), NOW) == []
    stored(ledger, plan(2, status="ROLLED_BACK", target="b", applied_at=NOW - timedelta(days=2)))

    [refusal] = safety.refusals(plan(9), NOW)

    assert (refusal.guard, refusal.limit, refusal.observed) == ("circuit_breaker", 2, 2)
    assert "Medic only notifies until a human resets it" in refusal.message
    assert describe(safety, NOW)["circuit_breaker"]["open"] is True

    safety.set_control(BREAKER_KEY, False, "U0ONCALL", "fixed the IAM role", NOW - timedelta(hours=1))
    assert safety.refusals(plan(9), NOW) == []
    assert describe(safety, NOW)["circuit_breaker"]["failures_since_reset"] == 0


# --- rate limit and cooldown ------------------------------------------------------------------------


def test_the_global_rate_limit_counts_plans_applied_in_the_last_hour(ledger: Ledger) -> None:
    safety = controls(ledger, max_changes_per_hour=2, cooldown_s=0)
    stored(ledger, plan(1, status="VERIFIED", target="a", applied_at=NOW - timedelta(minutes=50)))
    stored(ledger, plan(2, status="APPLIED", target="b", applied_at=NOW - timedelta(minutes=70)))  # too old
    assert safety.refusals(plan(9), NOW) == []
    stored(ledger, plan(3, status="APPLIED", target="c", applied_at=NOW - timedelta(minutes=5)))

    [refusal] = safety.refusals(plan(9), NOW)

    assert (refusal.guard, refusal.limit, refusal.observed) == ("rate_limit", "2/hour", 2)


def test_a_cooldown_per_target_and_action(ledger: Ledger) -> None:
    safety = controls(ledger, cooldown_s=1800)
    stored(ledger, plan(1, status="VERIFIED", applied_at=NOW - timedelta(minutes=20)))

    [refusal] = safety.refusals(plan(9), NOW)
    other_target = safety.refusals(plan(9, target="search"), NOW)
    other_kind = safety.refusals(plan(9, kind="set_provisioned_concurrency"), NOW)
    later = safety.refusals(plan(9), NOW + timedelta(minutes=11))

    assert refusal.guard == "cooldown"
    assert refusal.message.endswith(f"cooling down until {iso(NOW + timedelta(minutes=10))}")
    assert (other_target, other_kind, later) == ([], [], [])


def test_the_plan_being_applied_does_not_count_against_itself(ledger: Ledger) -> None:
    safety = controls(ledger, max_changes_per_hour=1)
    applying = stored(ledger, plan(1, status="APPLYING", applied_at=NOW - timedelta(minutes=1)))

    assert safety.refusals(applying, NOW) == []


# --- PC budget --------------------------------------------------------------------------------------


def pc_plan(n: int, before: int, after: int, *, status: str = "APPROVED") -> Plan:
    facts = Facts(function_name=f"f{n}", qualifier="live", pc_requested=before)
    [action] = get_action("set_provisioned_concurrency").plan(Target.function(f"f{n}", "live"), {"concurrency": after},
                                                              facts)  # fmt: skip
    made = plan(n).model_copy(update={"actions": [action], "status": status, "target": f"f{n}:live"})
    made.approval_hash = approval_hash(made)
    return made


def test_the_pc_budget_counts_what_medics_changes_keep_in_force(ledger: Ledger) -> None:
    safety = controls(ledger, pc_budget=100, cooldown_s=0)
    stored(ledger, pc_plan(1, 10, 50, status="VERIFIED"))  # +40 in force
    stored(ledger, pc_plan(2, 0, 30, status="APPLIED"))  # +30 in force
    stored(ledger, pc_plan(3, 0, 90, status="ROLLED_BACK"))  # undone: not in force

    assert safety.refusals(pc_plan(9, 20, 50), NOW) == []  # 70 + 30 = 100: at the budget
    [refusal] = safety.refusals(pc_plan(9, 20, 51), NOW)
    assert (refusal.guard, refusal.limit, refusal.observed) == ("pc_budget", 100, 101)
    assert safety.refusals(pc_plan(9, 50, 10), NOW) == []  # a cut adds nothing
