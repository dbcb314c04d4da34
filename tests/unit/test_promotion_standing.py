"""Where a promotion stands is read from its hash chain alone (`medic.promotions.scope.standing`): what an approval
must be to count, what breaks the chain, what demotes; and the runbook override a proposal carries."""

from __future__ import annotations

from typing import Any

import pytest

from medic.config import DEFAULT_RUNBOOK, Settings
from medic.ledger.chain import GENESIS, Head, LogEvent, event_hash
from medic.planning.runbook import decide, layer, load_runbook
from medic.promotions import promotion_key
from medic.promotions.override import override_yaml
from medic.promotions.scope import find_row, proposal_hash, row_fingerprint, standing

KEY = promotion_key("floor-too-low", "checkout:live")
SETTINGS = Settings(plans_table="p", events_table="e", approvers=frozenset({"U1", "U2", "U3"}))


def chain(*records: tuple[str, dict[str, Any]]) -> tuple[list[LogEvent], Head]:
    events, previous = [], GENESIS
    for seq, (kind, data) in enumerate(records, start=1):
        at = f"2026-12-03T10:{seq:02d}:00Z"
        digest = event_hash(KEY, seq, at, kind, data, previous)
        events.append(LogEvent(plan_id=KEY, seq=seq, at=at, kind=kind, data=data, prev_hash=previous, hash=digest))
        previous = digest
    return events, Head(len(events), previous)


def proposal(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": KEY, "row": "floor-too-low", "target": "checkout:live", "row_fingerprint": "f",
                            "evidence": [{"plan_id": "p-1"}, {"plan_id": "p-2"}], **changes}  # fmt: skip
    body["proposal_hash"] = proposal_hash(body)
    return body


def approval(user: str, proposed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "promotion_approval", {"user": user, "proposal_hash": proposed["proposal_hash"]}


def promoted(proposed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "promotion_approved", {"proposal_hash": proposed["proposal_hash"], "approvals": ["U1", "U2"]}


def test_two_distinct_approvers_of_the_proposal_then_the_promotion_make_it_active() -> None:
    p = proposal()
    events, head = chain(("promotion_proposed", p), approval("U1", p), approval("U2", p), promoted(p))

    found = standing(KEY, events, head, SETTINGS)

    assert (found.state, found.approvers, found.problem) == ("ACTIVE", ["U1", "U2"], "")


@pytest.mark.parametrize(
    "second",
    [
        ("U1", None),  # the same person twice
        ("U9", None),  # not an approver
        ("U2", "another proposal"),  # an approval of something else
    ],
)
def test_a_promotion_without_two_valid_approvals_of_that_proposal_is_refused(second: tuple[str, Any]) -> None:
    p = proposal()
    user, other = second
    approved = approval(user, proposal(row="other") if other else p)
    events, head = chain(("promotion_proposed", p), approval("U1", p), approved, promoted(p))

    found = standing(KEY, events, head, SETTINGS)

    assert found.state != "ACTIVE" and "approvals" in found.problem


def test_a_record_edited_after_the_fact_breaks_the_chain() -> None:
    p = proposal()
    events, head = chain(("promotion_proposed", p), approval("U1", p), approval("U2", p), promoted(p))
    events[1] = events[1].model_copy(update={"data": {**events[1].data, "user": "U3"}})

    found = standing(KEY, events, head, SETTINGS)

    assert found.state == "NONE" and "not intact" in found.problem


def test_a_proposal_whose_content_does_not_hash_to_its_hash_is_refused() -> None:
    p = {**proposal(), "target": "orders:live"}
    events, head = chain(("promotion_proposed", p), approval("U1", p), approval("U2", p), promoted(p))

    assert standing(KEY, events, head, SETTINGS).state == "NONE"


def test_a_demotion_after_the_promotion_ends_it_and_a_new_proposal_needs_new_approvals() -> None:
    p = proposal()
    demoted = ("promotion_demoted", {"plan_id": "p-3", "outcome": "FAILED", "was": "ACTIVE"})
    events, head = chain(("promotion_proposed", p), approval("U1", p), approval("U2", p), promoted(p), demoted)
    assert standing(KEY, events, head, SETTINGS).state == "DEMOTED"

    again = proposal(evidence=[{"plan_id": "p-4"}, {"plan_id": "p-5"}])
    events, head = chain(("promotion_proposed", p), approval("U1", p), approval("U2", p), promoted(p), demoted,
                         ("promotion_proposed", again), approval("U1", again))  # fmt: skip
    found = standing(KEY, events, head, SETTINGS)
    assert found.state == "PROPOSED" and found.proposal == again


def test_the_override_runs_the_row_in_auto_on_that_alias_only_and_keeps_the_table_order() -> None:
    base = load_runbook(DEFAULT_RUNBOOK)
    text = override_yaml(base, "spillover", "floor-too-low", "checkout", "live", None)

    layered = layer(base, text, "promoted.yaml")

    ids = [row.id for row in layered.tables["spillover"].rows]
    base_ids = [row.id for row in base.tables["spillover"].rows]
    assert ids == [*base_ids[:3], "floor-too-low-auto-checkout-live", *base_ids[3:]]
    facts = {"function_name": "checkout", "qualifier": "live", "has_autoscaling": False, "pc_status": "READY",
             "spillover_invocations": 50, "peak_concurrency": 60, "pc_allocated": 20,
             "demand_concurrency_peak": 55}  # fmt: skip
    assert decide(layered, "spillover", facts).mode == "auto"
    assert decide(layered, "spillover", {**facts, "qualifier": "blue"}).mode == "approve"
    assert decide(layered, "spillover", {**facts, "function_name": "orders"}).mode == "approve"
    assert decide(base, "spillover", facts).mode == "approve"


def test_the_fingerprint_changes_with_what_the_row_does() -> None:
    base = load_runbook(DEFAULT_RUNBOOK)
    row = find_row(base, "spillover", "floor-too-low")
    assert row is not None
    changed = layer(base, override_yaml(base, "spillover", "floor-too-low", "checkout", "live", None), "o.yaml")
    copy = find_row(changed, "spillover", "floor-too-low")
    assert copy is not None and row_fingerprint("spillover", copy) == row_fingerprint("spillover", row)
    promoted_row = find_row(changed, "spillover", "floor-too-low-auto-checkout-live")
    assert promoted_row is not None and row_fingerprint("spillover", promoted_row) != row_fingerprint("spillover", row)
