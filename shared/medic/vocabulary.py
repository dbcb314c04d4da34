"""Medic's vocabulary, in one place: the words a runbook, a plan, the log and `medic simulate --json` use.

It is a public contract (docs/ARCHITECTURE.md §3, which tests/unit/test_docs.py keeps equal to this module): words are
added, never renamed or removed silently. Every other module imports them from here. Pure data: importing it costs
nothing (the Slack endpoint does).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

#: What an alarm reports. `unknown`: Medic could not tell (a NOOP with the reason).
SignalKind = Literal["throttles", "spillover", "p99_latency", "db_connections", "unknown"]
SIGNAL_KINDS: Final[tuple[SignalKind, ...]] = get_args(SignalKind)

#: The signals a runbook has a decision table for (every kind but `unknown`).
SignalName = Literal["throttles", "spillover", "p99_latency", "db_connections"]
SIGNALS: Final[tuple[SignalName, ...]] = get_args(SignalName)

#: The diagnoses ("which wall did we hit?") per signal. Runbooks may not invent others.
DIAGNOSES: Final[dict[str, frozenset[str]]] = {
    "throttles": frozenset({"account_limit", "reserved_limit", "burst_limit", "async_burst", "unexplained"}),
    "spillover": frozenset(
        {"pc_floor_too_low", "autoscaling_max_too_low", "pc_not_ready", "pc_overprovisioned", "unexplained"}
    ),
    "p99_latency": frozenset(
        {
            "cold_starts",
            "cpu_starved",
            "memory_pressure",
            "spillover_cold_starts",
            "dependency",
            "pc_misconfigured",
            "pc_not_ready",
            "unexplained",
        }
    ),
    "db_connections": frozenset({"connection_blowup", "unexplained"}),
}

#: Every action kind (medic.actions registers one implementation per kind).
ACTION_KINDS: Final = (
    "set_provisioned_concurrency",
    "set_autoscaling_bounds",
    "schedule_prewarm",
    "set_reserved_concurrency",
    "set_event_source_max_concurrency",
    "enable_sqs_buffer",
    "set_memory",
    "request_quota_increase",
    "advise",
)

#: How a runbook row's plan is carried out: applied within guardrails, proposed for approval, or advice only.
Mode = Literal["auto", "approve", "notify"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)
#: Modes from the most cautious to the most autonomous.
MODE_ORDER: Final[dict[str, int]] = {"notify": 0, "approve": 1, "auto": 2}

#: A plan's states (medic.plan holds the transitions between them).
PlanState = Literal[
    "PROPOSED",
    "APPROVED",
    "REJECTED",
    "EXPIRED",
    "APPLYING",
    "APPLIED",
    "VERIFIED",
    "FAILED",
    "ROLLED_BACK",
    "BLOCKED",
    "DRIFTED",
    "SUPERSEDED",
    "NOOP",
]
PLAN_STATES: Final[tuple[str, ...]] = get_args(PlanState)
