"""Properties of the decision engine and the guardrails, over any facts and any runbook row.

For any facts about a target (unknown facts included) and any settings, a plan that may be applied — one that
changes something and that no guard refused — never exceeds a cap, never leaves fewer than 100 unreserved
executions in the account, never puts PC above reserved concurrency, never sets reserved concurrency to 0, never
changes a function that is not opted in by tag, and never changes anything without a target. The same facts always
make the same plan. See `worlds.assert_safe` for the invariants as code.

Three sources of rows: the shipped runbook as it decides, each of its rows forced (its conditions dropped, so its
actions meet facts its conditions would have kept away), and any action of the registry with any parameters.
"""

from __future__ import annotations

import dataclasses

import pytest
from fuzzing import examples
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from worlds import (
    CAPACITY_KINDS,
    FUNCTION_SIGNALS,
    OPT_IN,
    Outcome,
    action_calls,
    assert_safe,
    make_plan,
    plan_calls,
    settings_,
    situations,
)

from medic.alarms.signals import Target
from medic.config import DEFAULT_RUNBOOK, Settings
from medic.facts import ConsumerFacts, EventSourceFacts, Facts
from medic.planning.runbook import Runbook, Table, load_runbook
from medic.planning.verdict import ActionCall

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
#: Tags of a function that is not opted in (None: its tags could not be read).
UNTAGGED = [None, {}, {"medic:managed": "false"}, {"medic:managed": "True"}, {"team": "payments"}]
ROWS = [(signal, row) for signal, table in RUNBOOK.tables.items() for row in table.rows]


def forced(signal: str, row_index: int) -> Runbook:
    """A one-row runbook holding a shipped row without its conditions: it matches whenever its parameters compute."""
    row = dataclasses.replace(ROWS[row_index][1], conditions=())
    return Runbook(name="forced", version=1, source="forced", tables={signal: Table(signal, "first", (row,))})


def _record(outcome: Outcome) -> None:
    decision = outcome.decision
    event(f"row {decision.rule if decision and decision.matched else '(none)'}")
    event("actionable" if outcome.actionable else "blocked" if outcome.refusals else "nothing to apply")
    for refusal in outcome.refusals:
        event(f"refused by {refusal.guard}")
    note(outcome.dump())


@settings(max_examples=examples(1.5))
@given(situation=situations(), config=settings_())
def test_the_shipped_runbook_makes_only_safe_plans(situation: tuple[str, Target, Facts], config: Settings) -> None:
    signal, target, facts = situation
    before = facts.model_copy(deep=True)
    outcome = make_plan(RUNBOOK, signal, target, facts, config)
    _record(outcome)
    assert_safe(outcome, target, before, config)


@settings(max_examples=examples(1.5))
@given(data=st.data(), row_index=st.sampled_from(range(len(ROWS))), config=settings_())
def test_every_row_forced_on_any_facts_makes_only_safe_plans(
    data: st.DataObject, row_index: int, config: Settings
) -> None:
    signal = ROWS[row_index][0]
    _, target, facts = data.draw(situations((signal,)))
    before = facts.model_copy(deep=True)
    outcome = make_plan(forced(signal, row_index), signal, target, facts, config)
    _record(outcome)
    assert_safe(outcome, target, before, config)


@settings(max_examples=examples(1.5))
@given(situation=situations(), calls=action_calls(), config=settings_())
def test_any_actions_with_any_parameters_make_only_safe_plans(
    situation: tuple[str, Target, Facts], calls: list, config: Settings
) -> None:
    _, target, facts = situation
    before = facts.model_copy(deep=True)
    outcome = plan_calls(calls, target, facts, config)
    _record(outcome)
    assert_safe(outcome, target, before, config)


@settings(max_examples=examples(1.5))
@given(situation=situations(), calls=action_calls(CAPACITY_KINDS), config=settings_())
def test_capacity_changes_stay_within_the_caps_the_reservation_and_the_account_pool(
    situation: tuple[str, Target, Facts], calls: list, config: Settings
) -> None:
    """The same property, on the actions that take concurrency (PC floor, autoscaling, pre-warm, reservations)."""
    _, target, facts = situation
    before = facts.model_copy(deep=True)
    outcome = plan_calls(calls, target, facts, config)
    _record(outcome)
    assert_safe(outcome, target, before, config)


@settings(max_examples=examples(0.7))
@given(situation=situations(FUNCTION_SIGNALS), calls=action_calls(), config=settings_(), tags=st.sampled_from(UNTAGGED))
def test_a_function_that_is_not_opted_in_is_never_changed(
    situation: tuple[str, Target, Facts], calls: list, config: Settings, tags: dict[str, str] | None
) -> None:
    signal, target, facts = situation
    untagged = facts.model_copy(update={"tags": tags, "managed": None if tags is None else False})
    for outcome in (make_plan(RUNBOOK, signal, target, untagged, config), plan_calls(calls, target, untagged, config)):
        _record(outcome)
        assert not outcome.actionable, f"changes an untagged function: {outcome.dump()}"


@settings(max_examples=examples(0.5))
@given(
    calls=action_calls(), config=settings_(), facts=st.sampled_from([Facts(), Facts(managed=True, tags=dict([OPT_IN]))])
)
def test_without_a_target_nothing_is_changed(calls: list, config: Settings, facts: Facts) -> None:
    outcome = plan_calls(calls, Target.none(), facts, config)
    _record(outcome)
    assert not outcome.actionable, f"a plan without a target changes something: {outcome.dump()}"


@settings(max_examples=examples(0.7))
@given(situation=situations(), calls=action_calls(), config=settings_(), row_index=st.sampled_from(range(len(ROWS))))
def test_the_same_facts_make_the_same_plan(
    situation: tuple[str, Target, Facts], calls: list, config: Settings, row_index: int
) -> None:
    """Deterministic: no clock, no randomness, no state kept between plans, and the facts are not changed by it."""
    signal, target, facts = situation
    original = facts.model_dump_json()
    for make in (
        lambda f: make_plan(RUNBOOK, signal, target, f, config),
        lambda f: make_plan(forced(ROWS[row_index][0], row_index), ROWS[row_index][0], target, f, config),
        lambda f: plan_calls(calls, target, f, config),
    ):
        first, again, fresh = make(facts), make(facts), make(Facts.model_validate_json(original))
        assert first.dump() == again.dump() == fresh.dump()
        assert facts.model_dump_json() == original, "making a plan changed the facts"


# -- what hypothesis found (kept as plain examples, so they stay checked whatever the profile draws) ----------------

OPTED_IN = {"tags": dict([OPT_IN]), "managed": True}
CHECKOUT_LIVE = Target.function("checkout", "live")


def test_pc_counts_the_pc_on_the_functions_other_qualifiers_against_its_reservation() -> None:
    """Reserved 100 with 50 provisioned on another alias: the alias's PC may grow to 50, not 100."""
    facts = Facts(function_name="checkout", qualifier="live", has_reserved_concurrency=True, reserved_concurrency=100,
                  pc_requested=10, pc_on_other_qualifiers=50, unreserved_concurrency=900, **OPTED_IN)  # fmt: skip
    calls = [ActionCall(kind="set_provisioned_concurrency", params={"concurrency": 240})]
    outcome = plan_calls(calls, CHECKOUT_LIVE, facts, Settings(plans_table="p", events_table="e"))
    assert outcome.actionable and outcome.actions[0].after == {"provisioned_concurrency": 50}
    assert_safe(outcome, CHECKOUT_LIVE, facts, Settings(plans_table="p", events_table="e"))


@pytest.mark.parametrize(
    "call",
    [
        ActionCall(kind="set_provisioned_concurrency", params={"concurrency": 1}),
        ActionCall(kind="set_autoscaling_bounds", params={"min": 1, "max": 40}),
        ActionCall(kind="set_reserved_concurrency", params={"concurrency": 50}),
    ],
    ids=lambda call: call.kind,
)
def test_an_increase_from_an_unreserved_pool_of_unknown_size_is_refused(call: ActionCall) -> None:
    """GetAccountSettings failed: the pool's size is unknown, so no increase can promise that 100 stay unreserved."""
    facts = Facts(function_name="checkout", qualifier="live", has_reserved_concurrency=False, pc_requested=0,
                  has_autoscaling=True, autoscaling_min=0, autoscaling_max=0, **OPTED_IN)  # fmt: skip
    outcome = plan_calls([call], CHECKOUT_LIVE, facts, Settings(plans_table="p", events_table="e"))
    assert "unreserved_unknown" in [refusal.guard for refusal in outcome.refusals]


@pytest.mark.parametrize("kind", ["set_event_source_max_concurrency", "set_reserved_concurrency"])
def test_an_absurd_budget_toward_a_database_is_planned_within_the_caps(kind: str) -> None:
    """A budget of 9e307 executions once overflowed the split over the consumers (OverflowError)."""
    queue = EventSourceFacts(uuid="u1", source_arn="arn:aws:sqs:us-east-1:123456789012:orders", kind="sqs")
    facts = Facts(db_instance="orders-db", unreserved_concurrency=900, consumers=[
        ConsumerFacts(function_name="orders-worker", managed=True, peak_concurrency=3000.0, event_sources=[queue]),
        ConsumerFacts(function_name="orders-api", managed=True, peak_concurrency=10.0),
    ])  # fmt: skip
    calls = [ActionCall(kind=kind, params={"concurrency": 8.98846567431158e307})]
    config = Settings(plans_table="p", events_table="e")
    outcome = plan_calls(calls, Target.db_instance("orders-db"), facts, config)
    assert_safe(outcome, Target.db_instance("orders-db"), facts, config)


def test_a_plan_that_sets_pc_and_a_reservation_keeps_the_pc_within_it() -> None:
    """A row raising PC to 2 and reserving 1 on the same function: AWS would refuse one of the two changes."""
    facts = Facts(function_name="checkout", qualifier="live", has_reserved_concurrency=False, pc_requested=0,
                  unreserved_concurrency=500, unreserved_concurrency_peak=0.0, **OPTED_IN)  # fmt: skip
    calls = [ActionCall(kind="set_provisioned_concurrency", params={"concurrency": 2}),
             ActionCall(kind="set_reserved_concurrency", params={"concurrency": 1})]  # fmt: skip
    outcome = plan_calls(calls, CHECKOUT_LIVE, facts, Settings(plans_table="p", events_table="e"))
    assert [(r.guard, r.limit, r.observed) for r in outcome.refusals] == [("reserved_below_pc", 2, 1)]


def test_the_unreserved_pool_clamp_never_raises_a_value() -> None:
    """A small account (unreserved below 100, as with a limit of 10): bounds that take nothing new stay as asked."""
    facts = Facts(function_name="checkout", qualifier="live", has_reserved_concurrency=False,
                  unreserved_concurrency=10, pc_requested=1001, has_autoscaling=True, autoscaling_min=902,
                  autoscaling_max=1001, **OPTED_IN)  # fmt: skip
    calls = [ActionCall(kind="set_autoscaling_bounds", params={"min": 902, "max": 1001})]
    config = Settings(plans_table="p", events_table="e")
    outcome = plan_calls(calls, CHECKOUT_LIVE, facts, config)
    assert outcome.actions[0].after == {"min_capacity": 902, "max_capacity": 1001}
    assert [r.guard for r in outcome.refusals] == ["no_effective_change"]
