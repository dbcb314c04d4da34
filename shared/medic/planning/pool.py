"""AWS's arithmetic of an account's concurrency pool: one place for the guardrails and the embedded world.

Lambda shares a Region's concurrency limit between the functions with a reservation (each takes its reserved
concurrency) and the *unreserved pool* every other function draws from. What AWS documents, and this module
encodes:

* "You can reserve concurrency for as many functions as you like, as long as you leave at least 100 simultaneous
  executions unreserved for functions that aren't configured with a per-function limit" (Lambda API reference,
  PutFunctionConcurrency). An account whose limit is below 100 (new accounts start at 10) keeps its whole limit:
  AWS's error then reads "below its minimum value of [10]" (or [50] at a limit of 50), i.e. ``min(100, limit)``.
* ``AccountLimit.UnreservedConcurrentExecutions`` (GetAccountSettings) is "the maximum number of simultaneous
  function executions, minus the capacity that's reserved for individual functions with PutFunctionConcurrency":
  provisioned concurrency (PC) is *not* subtracted there.
* "Provisioned concurrency counts towards a function's reserved concurrency and Regional quotas ... You can't
  allocate more provisioned concurrency than reserved concurrency for a function" (Lambda developer guide,
  "Managing Lambda provisioned concurrency"): PC on a function with a reservation comes out of that reservation
  (the sum over all its versions and aliases); PC on a function without one comes out of the unreserved pool, and
  AWS refuses a PC or a reservation that would leave that pool below its minimum with "Specified
  ConcurrentExecutions (or ReservedConcurrentExecutions) for function decreases account's
  UnreservedConcurrentExecution below its minimum value of [100]." A change that leaves *more* than before is
  accepted even below the minimum (it lowers usage).

So the pool a change is measured against is ``UnreservedConcurrentExecutions − PC of the functions without a
reservation`` (:attr:`UnreservedPool.left`), and a change is judged by the pool before and after it
(:func:`unreserved_refusal`): never by a difference computed on its own, which is how a function's existing PC gets
counted twice (or not at all).

>>> pool = UnreservedPool(unreserved=1000, provisioned=850, minimum=minimum_unreserved(1000))
>>> pool.left, pool.headroom
(150, 50)
>>> unreserved_refusal(pool, pool.with_provisioned(850, 900), "ConcurrentExecutions") is None
True
>>> largest_provisioned(pool, current=850, wanted=2000)
900
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

#: AWS keeps at least this many concurrent executions unreserved (all of the limit when the limit is lower).
MINIMUM_UNRESERVED: Final = 100

#: AWS's error texts (InvalidParameterValueException), as AWS returns them where known.
PC_ABOVE_RESERVED: Final = (
    "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
)
_BELOW_MINIMUM: Final = (
    "Specified {parameter} for function decreases account's UnreservedConcurrentExecution below its minimum value "
    "of [{minimum}]."
)
# AWS does not document this message; it paraphrases "You can't set reserved concurrency below the provisioned
# concurrency that is requested for this function".
_RESERVED_BELOW_PC: Final = (
    "Specified ReservedConcurrentExecutions for function [{reserved}] is below the provisioned concurrency requested "
    "for it [{provisioned}]; reserved concurrency can't be set below it."
)


def minimum_unreserved(account_limit: int | None) -> int:
    """The unreserved executions AWS keeps in an account: 100, or the whole limit when it is lower.

    An unknown limit gives 100, the most AWS ever keeps (never a guess that less is kept).

    >>> minimum_unreserved(1000), minimum_unreserved(10), minimum_unreserved(None)
    (100, 10, 100)
    """
    if account_limit is None:
        return MINIMUM_UNRESERVED
    return max(0, min(MINIMUM_UNRESERVED, account_limit))


def pool_is_all_floor(account_limit: int | None) -> bool:
    """Whether the account's whole limit is the unreserved minimum (a limit of 100 or less, e.g. a new account's
    10): no reservation and no PC on a function without one can ever be taken from such a pool.

    >>> pool_is_all_floor(10), pool_is_all_floor(1000), pool_is_all_floor(None)
    (True, False, False)
    """
    return account_limit is not None and account_limit <= MINIMUM_UNRESERVED


@dataclass(frozen=True)
class UnreservedPool:
    """The account's unreserved pool as AWS judges a change against it.

    ``unreserved`` is GetAccountSettings' ``UnreservedConcurrentExecutions`` (the limit minus every reservation),
    ``provisioned`` the PC on all qualifiers of the functions without a reservation, ``minimum`` what AWS keeps
    (:func:`minimum_unreserved`).
    """

    unreserved: int
    provisioned: int
    minimum: int

    @property
    def left(self) -> int:
        """What the functions without a reservation have left once their own PC is taken."""
        return self.unreserved - self.provisioned

    @property
    def headroom(self) -> int:
        """What a change may still take from the pool (0 when it is at or below its minimum)."""
        return max(0, self.left - self.minimum)

    def with_reservation(self, before: int | None, after: int | None, function_pc: int = 0) -> UnreservedPool:
        """The pool once a function's reservation goes from `before` to `after` (None: no reservation).

        `function_pc` is the function's PC on all its qualifiers: it comes out of the unreserved pool while the
        function has no reservation, and out of the reservation once it has one.

        >>> UnreservedPool(1000, 20, 100).with_reservation(None, 50, function_pc=20)
        UnreservedPool(unreserved=950, provisioned=0, minimum=100)
        """
        provisioned = self.provisioned
        if before is None and after is not None:
            provisioned -= function_pc
        elif before is not None and after is None:
            provisioned += function_pc
        return replace(self, unreserved=self.unreserved + (before or 0) - (after or 0), provisioned=provisioned)

    def with_provisioned(self, before: int, after: int) -> UnreservedPool:
        """The pool once the PC of one qualifier of a function *without* a reservation goes from `before` to
        `after` (a function with a reservation draws its PC from that reservation: the pool does not change)."""
        return replace(self, provisioned=self.provisioned - before + after)


def unreserved_refusal(before: UnreservedPool, after: UnreservedPool, parameter: str) -> str | None:
    """AWS's error for a change that takes the pool from `before` to `after`, or None when AWS accepts it.

    `parameter` names what was put: ``"ConcurrentExecutions"`` (PutProvisionedConcurrencyConfig) or
    ``"ReservedConcurrentExecutions"`` (PutFunctionConcurrency). A change that leaves the pool at or above its
    minimum is accepted, and so is one that leaves more than before (it lowers usage).

    >>> unreserved_refusal(UnreservedPool(150, 0, 100), UnreservedPool(90, 0, 100), "ReservedConcurrentExecutions")
    "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below \
its minimum value of [100]."
    """
    if after.left < before.left and after.left < after.minimum:
        return _BELOW_MINIMUM.format(parameter=parameter, minimum=after.minimum)
    return None


def pc_above_reserved_refusal(reserved: int | None, provisioned_elsewhere: int, requested: int) -> str | None:
    """AWS's error for `requested` PC on one qualifier of a function with `reserved` concurrency and
    `provisioned_elsewhere` on its other qualifiers (None: accepted; a function without a reservation has no such
    limit)."""
    if reserved is not None and provisioned_elsewhere + requested > reserved:
        return PC_ABOVE_RESERVED
    return None


def reserved_below_pc_refusal(reserved: int, provisioned: int) -> str | None:
    """AWS's error for a reservation below the function's PC on all its qualifiers (None: accepted)."""
    if reserved < provisioned:
        return _RESERVED_BELOW_PC.format(reserved=reserved, provisioned=provisioned)
    return None


def largest_provisioned(pool: UnreservedPool, current: int, wanted: int) -> int:
    """The most PC, up to `wanted`, AWS accepts on a qualifier holding `current` of a function without a
    reservation: a decrease as it is, an increase only as far as the pool's headroom goes (never below `current`).

    >>> largest_provisioned(UnreservedPool(150, 20, 100), current=20, wanted=200)
    50
    >>> largest_provisioned(UnreservedPool(90, 0, 100), current=0, wanted=10)
    0
    """
    if wanted <= current:
        return wanted
    return max(current, min(wanted, current + pool.headroom))


def largest_within_reservation(reserved: int, provisioned_elsewhere: int, current: int, wanted: int) -> int:
    """The most PC, up to `wanted`, a qualifier holding `current` may have within the function's reservation
    (the PC on its other qualifiers counts too); never below what it has (or what is wanted, when less).

    >>> largest_within_reservation(100, 50, current=10, wanted=240)
    50
    """
    room = max(0, reserved - provisioned_elsewhere)
    return wanted if wanted <= room else max(room, min(current, wanted))


def largest_reservation(pool: UnreservedPool, before: int | None, wanted: int, function_pc: int, keep: int) -> int:
    """The largest reservation, up to `wanted`, for a function reserved at `before` (None: none) that leaves at
    least `keep` executions in the pool (`keep` is at least the pool's minimum: AWS then accepts it).

    A decrease is returned as it is. An increase never goes below `before` (0 when there was no reservation:
    the caller then reserves nothing rather than 0). `function_pc` is the function's PC on all its qualifiers, which
    moves out of the pool when a function without a reservation gets one.

    >>> largest_reservation(UnreservedPool(700, 20, 100), None, wanted=1000, function_pc=20, keep=100)
    600
    """
    current = before or 0
    if wanted <= current:
        return wanted
    released = function_pc if before is None else 0
    most = pool.left + current + released - max(keep, pool.minimum)
    return max(current, min(wanted, most))
