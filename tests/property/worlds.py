"""Hypothesis strategies for the decision engine: settings, facts about a target, and the plan made from them.

Facts are drawn the way the collector produces them: a true state of the account and the target (within what AWS
allows: PC on a function's qualifiers never exceeds its reserved concurrency), then each group of facts that one API
call reads is lost (None, "unknown") now and then, as when that call fails. Values cover the realistic ranges and
their edges (0, 1, 99/100/101, the caps, far above them).

`make_plan` runs what triage runs between the facts and the remediation log — `runbook.decide`, then
`medic.planning.make.plan_actions` (each action's `plan`, the guardrails, the costs, the budget), the same code — and
nothing stateful (the kill switch, cooldowns and rate limits read the log; they only ever refuse more).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hypothesis import strategies as st

from medic.actions import get_action, registry
from medic.actions.base import PlannedAction
from medic.actions.buffer import READY_TAG
from medic.alarms.signals import Target
from medic.config import Settings
from medic.facts import DATABASE_TAG, INVOCATION_TAG, VCPU_MB, ConsumerFacts, EventSourceFacts, Facts
from medic.plan import Refusal
from medic.planning.guardrails import MIN_UNRESERVED
from medic.planning.make import plan_actions
from medic.planning.runbook import Runbook, decide
from medic.planning.verdict import ActionCall, Decision

OPT_IN = ("medic:managed", "true")
FUNCTION_SIGNALS = ("throttles", "spillover", "p99_latency")
SIGNALS = (*FUNCTION_SIGNALS, "db_connections")
#: The fields of each action that hold provisioned concurrency (what the PC guards are about).
PC_FIELDS: dict[str, tuple[str, ...]] = {
    "set_provisioned_concurrency": ("provisioned_concurrency",),
    "set_autoscaling_bounds": ("min_capacity", "max_capacity"),
    "schedule_prewarm": ("prewarm_concurrency",),
}
#: kind → (field, the Settings attribute of its cap).
CAPS = {
    "set_reserved_concurrency": ("reserved_concurrency", "max_reserved_concurrency"),
    "set_memory": ("memory_mb", "max_memory_mb"),
    "request_quota_increase": ("account_concurrency_limit", "max_quota_request"),
}

# -- numbers ---------------------------------------------------------------------------------------

EDGE_COUNTS = (0, 1, 2, 99, 100, 101, 999, 1000, 1001, 3000, 5000, 10_000)


@cache
def pick(*values: Any) -> st.SearchStrategy[Any]:
    """`st.sampled_from`, built once per set of values (building strategies in every draw is what costs)."""
    return st.sampled_from(values)


@cache
def counts(high: int = 12_000) -> st.SearchStrategy[int]:
    """Whole counts: mostly small, with the edges around 100 and the default caps."""
    return st.one_of(st.integers(0, 300), st.integers(0, high), pick(*(c for c in EDGE_COUNTS if c <= high)))


@cache
def amounts(high: float = 20_000.0) -> st.SearchStrategy[float]:
    """Non-negative metric values (CloudWatch datapoints are finite)."""
    return st.one_of(
        st.floats(0, 300, allow_nan=False),
        st.floats(0, high, allow_nan=False),
        pick(0.0, 0.5, 1.0, 99.0, 100.0, 100.5, 1000.0),
    )


ratios = st.one_of(st.floats(0, 2, allow_nan=False), pick(0.0, 0.05, 0.3, 0.8, 0.9, 1.0))

#: Any number a runbook parameter could evaluate to, the absurd included (the planners must refuse those).
any_param = st.one_of(
    st.integers(1, 3000).map(float),
    st.integers(1, 300).map(float),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 12_000).map(float),
    pick(0.0, 0.4, 1.0, 2.0, 99.0, 100.0, 101.0, 1000.0, 1001.0, 1e9, 1e300, -1.0),
)


@cache
def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A fact that may be unknown (None) — about one time in five."""
    return st.one_of(st.none(), strategy, strategy, strategy, strategy)


def collected(draw: Any, lost_one_in: int = 10) -> bool:
    """Whether one API call's facts were read (most of the time) or lost (the call failed)."""
    return bool(draw(st.integers(1, lost_one_in)) > 1)


reserved_counts = st.one_of(st.none(), st.none(), counts(5000))
memory_sizes = st.one_of(st.integers(128, 10240), pick(128, 512, 1024, 1769, 3008, 10240))
async_source_lists = pick("", "events:rule/orders", "sns:arn:aws:sns:us-east-1:123456789012:orders",
                          "s3:arn:aws:s3:::uploads", "events:rule/a, events:rule/b")  # fmt: skip


# -- settings --------------------------------------------------------------------------------------


_caps = st.fixed_dictionaries({
    "max_provisioned_concurrency": st.one_of(st.integers(1, 3000), pick(1, 100, 1000)),
    "max_reserved_concurrency": st.one_of(st.integers(1, 3000), pick(1, 100, 1000)),
    "max_memory_mb": st.one_of(st.integers(128, 10240), pick(128, 1769, 3008, 10240)),
    "max_quota_request": st.one_of(st.integers(1, 50_000), pick(1000, 5000)),
    "monthly_cost_budget_usd": st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)),
})  # fmt: skip


@st.composite
def settings_(draw: Any) -> Settings:
    """Settings with caps from tiny to far above anything planned (and the defaults, often)."""
    caps: dict[str, Any] = {}
    if draw(st.booleans()):
        caps = draw(_caps)
    return Settings(plans_table="medic-plans", events_table="medic-events", opt_in_tag=OPT_IN, **caps)


# -- facts -----------------------------------------------------------------------------------------

function_names = pick("checkout", "orders-api", "orders-worker", "report")
qualifiers = pick("live", "live", "live", "live", "prod", "7", "$LATEST", None)
account_limits = st.one_of(st.integers(100, 3000), pick(1000, 3000, 10_000))


@st.composite
def tags_(draw: Any) -> dict[str, str]:
    key, value = OPT_IN
    tags = {key: draw(pick(*[value] * 12, "false", "True", ""))} if draw(st.integers(0, 9)) else {}
    optional = {
        READY_TAG[0]: pick(READY_TAG[1], "no"),
        DATABASE_TAG: pick("orders-db", "reports-db"),
        INVOCATION_TAG: pick("sync", "async", "sqs", "stream", "bogus"),
        "team": st.just("payments"),
    }
    return tags | draw(st.fixed_dictionaries({}, optional=optional))


@st.composite
def event_sources_(draw: Any, name: str) -> list[EventSourceFacts]:
    sources = []
    for index in range(draw(st.integers(0, 3))):
        kind = draw(pick("sqs", "sqs", "kinesis", "dynamodb", "kafka"))
        queue = draw(pick("orders", f"{name}-medic-buffer", "reports"))
        sources.append(
            EventSourceFacts(
                uuid=f"{name}-esm-{index}",
                source_arn=f"arn:aws:{kind}:us-east-1:123456789012:{queue}",
                kind=kind,
                state="Enabled",
                maximum_concurrency=draw(maybe(st.integers(2, 1000))) if kind == "sqs" else None,
            )
        )
    return sources


@st.composite
def function_facts(draw: Any, signal: str) -> tuple[Target, Facts]:
    """A function target and what the collector would know about it for `signal`."""
    if draw(st.integers(0, 19)) == 0:  # the alarm named no function: the collector reads nothing
        return Target.none(), Facts(missing={"target": "no function target ((none))"})
    name, qualifier = draw(function_names), draw(qualifiers)
    key, value = OPT_IN
    facts: dict[str, Any] = {"function_name": name, "qualifier": qualifier}
    if signal in ("p99_latency", "throttles") and qualifier is None:
        facts["traffic_qualifier"] = draw(pick("live", "$LATEST"))
    else:
        facts["traffic_qualifier"] = qualifier

    # The true state, within AWS's rules: PC on all qualifiers within the reservation; autoscaling min ≤ max.
    account_limit = draw(account_limits)
    unreserved = draw(
        (st.integers(0, account_limit), st.integers(90, max(90, min(account_limit, 500))),
         pick(0, 99, 100, 101, account_limit))[draw(st.integers(0, 2))]
    )  # fmt: skip
    reserved = draw(reserved_counts)
    pc_cap = reserved if reserved is not None else 3000
    aliased = qualifier not in (None, "$LATEST")
    autoscaling = aliased and draw(st.booleans())
    low = draw(st.integers(0, pc_cap)) if autoscaling else 0
    high = draw(st.integers(low, max(low, pc_cap))) if autoscaling else 0
    if autoscaling:
        pc = high if draw(st.booleans()) else draw(st.integers(low, high))  # pinned at its max, often
    else:
        pc = draw(st.integers(0, min(pc_cap, 300) if draw(st.booleans()) else pc_cap)) if aliased else 0
    others = draw(st.integers(0, pc_cap - pc))

    if collected(draw, 20):  # lambda:GetFunction
        tags = draw(tags_())
        memory = draw(memory_sizes)
        facts.update(
            tags=tags, managed=tags.get(key) == value, has_reserved_concurrency=reserved is not None,
            reserved_concurrency=reserved, memory_mb=memory, timeout_s=draw(st.integers(1, 900)),
            runtime="python3.13", architecture=draw(pick("x86_64", "arm64")),
            vcpus=round(memory / VCPU_MB, 3), downstream_database=tags.get(DATABASE_TAG),
            is_db_consumer=DATABASE_TAG in tags,
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        )  # fmt: skip
    if collected(draw, 5):  # lambda:GetAccountSettings
        facts.update(account_limit=account_limit, unreserved_concurrency=unreserved)
    if qualifier == "$LATEST":
        facts.update(pc_requested=0, pc_allocated=0, pc_available=0, pc_status="NONE", has_autoscaling=False)
    elif qualifier is not None:
        if collected(draw):  # lambda:GetAlias
            facts["alias_version"] = qualifier if qualifier.isdigit() else draw(pick("3", "12"))
        if collected(draw):  # lambda:GetProvisionedConcurrencyConfig
            status = "NONE" if pc == 0 else draw(pick("READY", "READY", "READY", "IN_PROGRESS", "FAILED"))
            allocated = pc if status == "READY" else draw(st.integers(0, pc))
            facts.update(pc_requested=pc, pc_allocated=allocated, pc_available=allocated, pc_status=status,
                         pc_status_reason="FUNCTION_ERROR_INIT_FAILURE" if status == "FAILED" else None)  # fmt: skip
        if collected(draw):  # application-autoscaling:DescribeScalableTargets
            if autoscaling:
                facts.update(has_autoscaling=True, autoscaling_min=low, autoscaling_max=high, target_utilization=0.7)
            else:
                facts["has_autoscaling"] = False
    # cloudwatch:GetMetricData: each metric may have no datapoints; the alarm's own metric is mostly above 0.
    for metric in ("spillover_invocations", "spillover_peak", "peak_concurrency", "invocations", "throttles",
                   "account_concurrency_peak", "function_peak_concurrency", "concurrency_ramp_per_min"):  # fmt: skip
        facts[metric] = draw(maybe(amounts()))
    alarming = {"throttles": "throttles", "spillover": "spillover_invocations"}.get(signal)
    if alarming and draw(st.integers(0, 4)):
        facts[alarming] = draw(st.floats(1, 5000, allow_nan=False))
    facts["pc_utilization_max"] = draw(maybe(ratios))
    facts["ramp_start_minute_of_day"] = draw(maybe(st.floats(0, 1439, allow_nan=False)))
    facts["account_utilization"] = draw(maybe(ratios))
    facts["reserved_utilization"] = draw(maybe(ratios)) if reserved is not None else None
    if signal in ("throttles", "p99_latency"):
        if collected(draw):  # lambda:ListEventSourceMappings
            sources = draw(event_sources_(name))
            sqs = [s for s in sources if s.kind == "sqs"]
            caps = [s.maximum_concurrency for s in sqs if s.maximum_concurrency is not None]
            facts.update(
                event_sources=sources, has_sqs_source=bool(sqs), sqs_max_concurrency=min(caps) if caps else None
            )
        if collected(draw):  # lambda:GetPolicy
            facts["async_sources"] = draw(async_source_lists)
        facts["invocation_type"] = draw(maybe(pick("sync", "async", "sqs", "stream")))
        facts["downstream_db_connection_ratio"] = draw(maybe(ratios))
    if signal == "p99_latency":
        if collected(draw):  # logs:StartQuery (REPORT lines)
            lines = draw(counts(10_000))
            cold = draw(st.integers(0, lines))
            facts.update(report_lines=lines, cold_starts=cold, cold_start_ratio=cold / lines if lines else None,
                         init_duration_avg_ms=draw(amounts(10_000)), duration_p99_ms=draw(amounts(30_000)),
                         warm_duration_avg_ms=draw(amounts(30_000)), warm_duration_p99_ms=draw(amounts(30_000)),
                         max_memory_used_mb=draw(amounts(10_240)), memory_used_ratio=draw(ratios))  # fmt: skip
        if collected(draw):  # lambda:ListProvisionedConcurrencyConfigs
            facts.update(pc_on_other_qualifiers=others, pc_qualifiers=f"other:{others}(READY)" if others else "none")
    facts["alarm_value"] = draw(maybe(amounts(30_000)))
    facts["alarm_threshold"] = draw(maybe(amounts(30_000)))
    return Target.function(name, qualifier), Facts(**facts)


@st.composite
def database_facts(draw: Any) -> tuple[Target, Facts]:
    """A database target (db_connections) and its consumer functions, each opted in or not."""
    instance = draw(pick("orders-db", "reports-db"))
    facts: dict[str, Any] = {"db_instance": instance}
    if collected(draw):  # rds:DescribeDBInstances
        facts.update(db_engine="postgres", db_instance_class="db.t3.medium", db_max_connections=draw(counts(5000)))
    facts["db_connections"] = draw(maybe(amounts(5000)))
    if facts["db_connections"] is not None and facts.get("db_max_connections"):
        facts["db_connection_ratio"] = facts["db_connections"] / facts["db_max_connections"]
    else:
        facts["db_connection_ratio"] = draw(maybe(ratios))
    if collected(draw):  # lambda:GetAccountSettings
        limit = draw(st.integers(100, 20_000))
        facts.update(account_limit=limit, unreserved_concurrency=draw(st.integers(0, limit)))
    if collected(draw):  # tag:GetResources + lambda:GetFunction of each consumer
        names = draw(st.lists(function_names, max_size=4, unique=True))
        consumers = [
            ConsumerFacts(
                function_name=name,
                managed=draw(st.booleans()),
                reserved_concurrency=draw(maybe(counts(3000))),
                peak_concurrency=draw(maybe(amounts(3000))),
                event_sources=draw(event_sources_(name)),
            )
            for name in names
        ]
        peaks = [c.peak_concurrency for c in consumers]
        facts.update(
            consumers=consumers, consumer_count=len(consumers),
            queue_consumer_count=sum(1 for c in consumers if c.sqs_sources),
            managed_consumer_count=sum(1 for c in consumers if c.managed),
            consumers_peak_concurrency=sum(p for p in peaks if p is not None) if None not in peaks else None,
        )  # fmt: skip
    facts["alarm_value"] = draw(maybe(amounts(5000)))
    return Target.db_instance(instance), Facts(**facts)


@st.composite
def situations(draw: Any, signals: tuple[str, ...] = SIGNALS) -> tuple[str, Target, Facts]:
    """(signal, target, facts): an alarm's signal and what the collector knows about its target."""
    signal = draw(pick(*signals))
    target, facts = draw(database_facts() if signal == "db_connections" else function_facts(signal))
    return signal, target, facts


#: The actions that take concurrency: from the account's unreserved pool, or from the function's reservation.
CAPACITY_KINDS = (*PC_FIELDS, "set_reserved_concurrency")


@st.composite
def action_calls(draw: Any, kinds: tuple[str, ...] = tuple(sorted(registry()))) -> list[ActionCall]:
    """What any runbook row could ask for: one to three actions of any of `kinds`, with any parameter values."""
    chosen = draw(st.lists(pick(*kinds), min_size=1, max_size=3))
    return [ActionCall(kind=kind, params={p: draw(any_param) for p in get_action(kind).params}) for kind in chosen]


# -- the plan --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """A plan as triage leaves it before the stateful controls: its actions (clamped) and its refusals."""

    decision: Decision | None
    actions: list[PlannedAction] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def changes(self) -> list[PlannedAction]:
        return [action for action in self.actions if action.kind != "advise"]

    @property
    def actionable(self) -> bool:
        """A plan that can be applied: it changes something and no guard refused it (else it is BLOCKED)."""
        return bool(self.changes) and not self.refusals

    def dump(self) -> str:
        """Everything the plan says, as canonical JSON (what determinism compares)."""
        return json.dumps(
            {
                "decision": self.decision.model_dump(mode="json") if self.decision else None,
                "actions": [action.model_dump(mode="json") for action in self.actions],
                "refusals": [refusal.model_dump(mode="json") for refusal in self.refusals],
            },
            sort_keys=True,
            default=repr,
        )


def make_plan(runbook: Runbook, signal: str, target: Target, facts: Facts, settings: Settings) -> Outcome:
    """decide → `medic.planning.make.plan_actions` (each action, guardrails, costs, budget), as triage's `make_plan`."""
    decision = decide(runbook, signal, facts.values(), facts.tags)
    if not decision.matched:
        return Outcome(decision)
    return plan_calls(decision.actions, target, facts, settings, decision)


def plan_calls(calls: list[ActionCall], target: Target, facts: Facts, settings: Settings,
               decision: Decision | None = None) -> Outcome:  # fmt: skip
    """The planning step itself (`plan_actions`, the code triage runs), in us-east-1."""
    actions, refusals = plan_actions(calls, target, facts, settings, "us-east-1")
    return Outcome(decision, actions=actions, refusals=refusals)


# -- the invariants --------------------------------------------------------------------------------


def _number(value: Any) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), f"not a number: {value!r}"
    return float(value)


def assert_safe(outcome: Outcome, target: Target, facts: Facts, settings: Settings) -> None:
    """The safety invariants (docs/ARCHITECTURE.md §5) on a plan that may be applied (a BLOCKED one applies nothing)."""
    if not outcome.actionable:
        return
    changes = outcome.changes
    described = "; ".join(f"{a.kind} {a.target} {a.before} → {a.after} {a.clamps}" for a in changes)

    # An empty or unknown target means no action, never "all".
    assert target.kind != "none", f"a plan without a target changes something: {described}"

    # Only opted-in functions are changed: the target by its tag, a database's other consumers by theirs.
    key, value = settings.opt_in_tag
    for action in changes:
        if action.function_name is None or action.function_name == facts.function_name:
            assert facts.tags is not None and facts.tags.get(key) == value, (
                f"{action.kind} on {action.target}, which is not tagged {key}={value} (tags {facts.tags})"
            )
        else:
            consumer = next((c for c in facts.consumers or [] if c.function_name == action.function_name), None)
            assert consumer is not None and consumer.managed, f"{action.kind} on {action.target}, not opted in"

    # Never exceed a cap (a cap never turns an increase into a cut either: a value already above stays).
    for action in changes:
        for name in PC_FIELDS.get(action.kind, ()):
            after = _number(action.after[name])
            before = action.before.get(name)
            # An autoscaling maximum may stay at the PC the qualifier holds: below it, the PC would be cut.
            held = float(facts.pc_requested or 0) if name == "max_capacity" else 0.0
            kept = max(held, _number(before) if before is not None else 0.0)
            assert after <= settings.max_provisioned_concurrency or after <= kept, (
                f"{name} {after} above max_provisioned_concurrency={settings.max_provisioned_concurrency}: {described}"
            )
        if action.kind in CAPS:
            name, setting = CAPS[action.kind]
            cap = getattr(settings, setting)
            after = _number(action.after[name])
            before = action.before.get(name)
            assert after <= cap or (before is not None and after <= _number(before)), (
                f"{name} {after} above {setting}={cap}: {described}"
            )
        if action.kind in ("set_event_source_max_concurrency", "enable_sqs_buffer"):
            assert 2 <= _number(action.after["maximum_concurrency"]) <= 1000, described

    # Never set reserved concurrency to 0.
    for action in changes:
        if action.kind == "set_reserved_concurrency":
            assert action.after["reserved_concurrency"] != 0, f"reserved concurrency set to 0: {described}"

    # PC never above reserved concurrency: the target's PC on all its qualifiers within its reservation.
    on_target = [a for a in changes if a.function_name in (None, facts.function_name)]
    new_reserved = [_number(a.after["reserved_concurrency"]) for a in on_target if a.kind == "set_reserved_concurrency"]
    reserved = new_reserved[-1] if new_reserved else facts.reserved_concurrency
    pc_values = [_number(a.after[name]) for a in on_target for name in PC_FIELDS.get(a.kind, ())]
    pc_after = max(pc_values, default=float(facts.pc_requested or 0))
    if reserved is not None and (pc_values or new_reserved):
        others = facts.pc_on_other_qualifiers or 0
        assert pc_after + others <= reserved, (
            f"PC {pc_after} (+{others} on other qualifiers) above reserved concurrency {reserved}: {described}"
        )

    # Never leave fewer unreserved executions than AWS keeps (min(100, limit)), counted as AWS counts them:
    # UnreservedConcurrentExecutions (the limit less every reservation) less the PC on functions without a
    # reservation, the target's own PC counted once. A plan that takes from that pool leaves at least the minimum; one
    # that raises a reservation (and takes no PC after it) leaves what those functions use at peak, never a guess.
    unreserved = facts.unreserved_concurrency
    minimum = facts.minimum_unreserved
    if minimum is None:
        minimum = MIN_UNRESERVED if facts.account_limit is None else min(MIN_UNRESERVED, facts.account_limit)
    own_pc = float(facts.pc_requested or 0) + float(facts.pc_on_other_qualifiers or 0)
    reserved_taken = sum(
        _number(a.after["reserved_concurrency"]) - float(a.before["reserved_concurrency"] or 0)
        for a in changes
        if a.kind == "set_reserved_concurrency"
    )
    pc_taken = pc_after - float(facts.pc_requested or 0) if pc_values else 0.0
    left_before = (unreserved or 0) - (own_pc if facts.reserved_concurrency is None else 0.0)
    own_after = own_pc + pc_taken if reserved is None else 0.0
    left_after = (unreserved or 0) - reserved_taken - own_after
    if left_after < left_before:
        assert unreserved is not None, f"takes from an unreserved pool of unknown size: {described}"
        assert left_after >= minimum, (
            f"leaves {left_after} of the unreserved pool ({unreserved} unreserved, {own_pc} provisioned on the "
            f"function), fewer than AWS's minimum {minimum}: {described}"
        )
        raised = any(
            _number(a.after["reserved_concurrency"]) > float(a.before["reserved_concurrency"] or 0)
            for a in changes
            if a.kind == "set_reserved_concurrency"
        )
        if raised and pc_taken <= 0:
            usage = facts.unreserved_concurrency_peak
            usage = facts.account_concurrency_peak if usage is None else usage
            assert usage is not None, f"a reservation raised while the pool's use is unknown: {described}"
            assert left_after >= usage, f"leaves {left_after}, below what the pool uses ({usage}): {described}"
