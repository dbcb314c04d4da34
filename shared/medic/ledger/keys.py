"""The keys of the remediation log, defined once: the plans table's items that are not plans, and the chains of the
events table that are not a plan's. Whoever reads or writes one imports its key or prefix from here.

A chain's id is the key of the item it is about (a plan's id, a control flag's key) or, for the chains with no item
(`refused#…`), a key of its own; its head anchor is `HEAD_PREFIX` + that id in the plans table.
This module imports nothing: the interactions function reads it on its cold start.
"""

OPEN_PREFIX = "open#"
"""The plans-table item `open#<target>` names the plan holding the target's one open incident (storms attach)."""
HEAD_PREFIX = "head#"
"""The plans-table item `head#<plan id>` anchors the last seq and hash of a plan's chain: deleting the last event
from the (append-only) events table is then detected too. It lives in the other table, which IAM separates."""
CONTROL_PREFIX = "control#"
"""Control flags (kill switch, circuit breaker): an item of the plans table each, and a chain of their own."""
KILL_SWITCH_KEY = CONTROL_PREFIX + "kill-switch"
BREAKER_KEY = CONTROL_PREFIX + "circuit-breaker"
CONTROL_KEYS = (KILL_SWITCH_KEY, BREAKER_KEY)
REFUSED_PREFIX = "refused#"
"""The chain `refused#YYYY-MM-DD` keeps the day's refused requests that name no plan (interactions)."""
REJECTED_PREFIX = "rejected-"
"""The plan `rejected-<input hash>` keeps an input triage rejected (NOOP, its raw input logged for `medic replay`)."""
PROMOTION_PREFIX = "promotion#"
"""The plans-table item `promotion#<row>#<target>` holds where a proposal to run one runbook row in mode auto on one
target stands (`medic.promotions`); the chain of the same id is its record: the proposal with its evidence, each
approval, the promotion, a demotion. Only the chain is trusted: the item is what is read first."""
