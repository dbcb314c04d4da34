"""AWS's concurrency-pool arithmetic (`medic.planning.pool`): the rules the guardrails clamp with and the world
validates with.

Each rule is checked against the numbers AWS documents (PutFunctionConcurrency's 100 unreserved executions, the
[10] of a new account, PC within the reservation), and each clamp against the refusal it must avoid: a clamped value
is accepted, one more is refused.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.planning import pool
from medic.planning.pool import UnreservedPool


@pytest.mark.parametrize(("limit", "minimum"), [(1000, 100), (101, 100), (100, 100), (50, 50), (10, 10), (0, 0)])
def test_aws_keeps_100_unreserved_or_the_whole_limit_below_that(limit: int, minimum: int) -> None:
    assert pool.minimum_unreserved(limit) == minimum


def test_an_unknown_limit_keeps_the_most_aws_ever_keeps() -> None:
    assert pool.minimum_unreserved(None) == 100


@pytest.mark.parametrize(("limit", "all_floor"), [(10, True), (100, True), (101, False), (1000, False), (None, False)])
def test_a_limit_of_100_or_less_is_all_floor(limit: int | None, all_floor: bool) -> None:
    assert pool.pool_is_all_floor(limit) is all_floor


def test_pc_of_a_function_without_a_reservation_comes_out_of_the_pool() -> None:
    before = UnreservedPool(unreserved=1000, provisioned=850, minimum=100)

    assert before.left == 150
    assert before.headroom == 50
    assert pool.unreserved_refusal(before, before.with_provisioned(850, 900), "ConcurrentExecutions") is None
    assert pool.unreserved_refusal(before, before.with_provisioned(850, 901), "ConcurrentExecutions") == (
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its "
        "minimum value of [100]."
    )


def test_a_change_that_lowers_usage_is_accepted_even_below_the_minimum() -> None:
    below = UnreservedPool(unreserved=90, provisioned=20, minimum=100)

    assert pool.unreserved_refusal(below, below.with_provisioned(20, 10), "ConcurrentExecutions") is None
    assert pool.unreserved_refusal(below, below.with_provisioned(20, 21), "ConcurrentExecutions") is not None


def test_a_new_reservation_takes_the_functions_pc_out_of_the_pool_with_it() -> None:
    """The function's PC was drawn from the pool; once reserved, it is drawn from the reservation."""
    before = UnreservedPool(unreserved=700, provisioned=20, minimum=100)

    assert before.with_reservation(None, 600, function_pc=20) == UnreservedPool(100, 0, 100)
    assert before.with_reservation(None, 600, function_pc=20).left == 100
    assert before.with_reservation(50, 80) == UnreservedPool(670, 20, 100)
    assert before.with_reservation(50, None, function_pc=5) == UnreservedPool(750, 25, 100)


def test_the_error_names_the_parameter_and_the_accounts_minimum() -> None:
    before, after = UnreservedPool(10, 0, 10), UnreservedPool(9, 0, 10)

    assert pool.unreserved_refusal(before, after, "ReservedConcurrentExecutions") == (
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below "
        "its minimum value of [10]."
    )


def test_pc_within_the_reservation_counts_every_qualifier() -> None:
    assert pool.pc_above_reserved_refusal(100, 50, 50) is None
    assert pool.pc_above_reserved_refusal(100, 50, 51) == pool.PC_ABOVE_RESERVED
    assert pool.pc_above_reserved_refusal(None, 5000, 5000) is None
    assert pool.largest_within_reservation(100, 50, current=10, wanted=240) == 50
    assert pool.largest_within_reservation(100, 50, current=10, wanted=30) == 30


def test_a_reservation_below_the_functions_pc_is_refused() -> None:
    assert pool.reserved_below_pc_refusal(150, 150) is None
    assert pool.reserved_below_pc_refusal(140, 150) == (
        "Specified ReservedConcurrentExecutions for function [140] is below the provisioned concurrency requested "
        "for it [150]; reserved concurrency can't be set below it."
    )


def test_the_largest_reservation_keeps_what_is_asked_and_never_cuts() -> None:
    roomy = UnreservedPool(unreserved=1000, provisioned=0, minimum=100)

    assert pool.largest_reservation(roomy, None, wanted=500, function_pc=0, keep=100) == 500
    assert pool.largest_reservation(roomy, None, wanted=950, function_pc=0, keep=100) == 900
    assert pool.largest_reservation(roomy, None, wanted=950, function_pc=0, keep=600) == 400
    assert pool.largest_reservation(roomy, 300, wanted=200, function_pc=0, keep=10_000) == 200  # a decrease
    assert pool.largest_reservation(roomy, 300, wanted=900, function_pc=0, keep=10_000) == 300  # nothing to take
    assert pool.largest_reservation(roomy, None, wanted=950, function_pc=0, keep=5) == 900  # never below the minimum


pools = st.builds(
    UnreservedPool,
    unreserved=st.integers(0, 5000),
    provisioned=st.integers(0, 3000),
    minimum=st.sampled_from([100, 50, 10, 0]),
)


@given(start=pools, current=st.integers(0, 3000), wanted=st.integers(0, 6000))
def test_a_pc_clamp_is_accepted_and_tight(start: UnreservedPool, current: int, wanted: int) -> None:
    current = min(current, start.provisioned)  # the qualifier's PC is part of the pool's PC
    value = pool.largest_provisioned(start, current, wanted)

    assert min(current, wanted) <= value <= wanted
    assert pool.unreserved_refusal(start, start.with_provisioned(current, value), "ConcurrentExecutions") is None
    if value < wanted:
        assert pool.unreserved_refusal(start, start.with_provisioned(current, value + 1), "ConcurrentExecutions")


@given(
    start=pools,
    before=st.one_of(st.none(), st.integers(1, 3000)),
    wanted=st.integers(1, 6000),
    function_pc=st.integers(0, 300),
    keep=st.integers(0, 3000),
)
def test_a_reservation_clamp_is_accepted_keeps_what_is_asked_and_is_tight(
    start: UnreservedPool, before: int | None, wanted: int, function_pc: int, keep: int
) -> None:
    if before is None:
        function_pc = min(function_pc, start.provisioned)
    value = pool.largest_reservation(start, before, wanted, function_pc, keep)
    after = start.with_reservation(before, value if value else None, function_pc)

    assert value <= wanted
    assert value >= min(before or 0, wanted)
    assert pool.unreserved_refusal(start, after, "ReservedConcurrentExecutions") is None
    if value > (before or 0):
        assert after.left >= max(keep, start.minimum)
    if (before or 0) < value < wanted:
        assert start.with_reservation(before, value + 1, function_pc).left < max(keep, start.minimum)
