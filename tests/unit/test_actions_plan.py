"""The concurrency, memory, buffer and pre-warm actions: what they plan from facts (no AWS), and their guardrails.

Each plan is built the way triage builds it: the registered action plans from facts, then `check_plan` clamps
it in place and returns the refusals.
"""

from __future__ import annotations

from typing import Any

import pytest

from medic.actions import PlannedAction, get_action, registry
from medic.actions.budget import consumer_shares, split_budget
from medic.actions.buffer import buffer_queue_names, event_rules, sns_topics
from medic.actions.prewarm import daily_cron
from medic.alarms.signals import Target
from medic.config import Settings
from medic.errors import GuardrailRefused
from medic.facts import ConsumerFacts, EventSourceFacts, Facts
from medic.plan import Refusal
from medic.planning.guardrails import check_plan

ORDERS_DB = Target.db_instance("orders-db")
CHECKOUT = Target.function("checkout")
CHECKOUT_LIVE = Target.function("checkout", "live")
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:{}"


def settings(**overrides: Any) -> Settings:
    return Settings(plans_table="p", events_table="e", **overrides)


def sqs(uuid: str, queue: str, maximum: int | None = None) -> EventSourceFacts:
    return EventSourceFacts(uuid=uuid, source_arn=QUEUE_ARN.format(queue), kind="sqs", maximum_concurrency=maximum)


def consumer(name: str, peak: float | None, *, reserved: int | None = None, queues: int = 0, managed: bool = True,
             maximum: int | None = None) -> ConsumerFacts:  # fmt: skip
    sources = [sqs(f"{name}-{i}", f"{name}-q{i}", maximum) for i in range(queues)]
    return ConsumerFacts(function_name=name, managed=managed, reserved_concurrency=reserved, peak_concurrency=peak,
                         event_sources=sources)  # fmt: skip


def function_facts(**changes: Any) -> Facts:
    """`checkout:live`, opted in, 1024 MB on version 7, no reserved concurrency, 20 PC, a roomy account."""
    world: dict[str, Any] = {
        "function_name": "checkout", "qualifier": "live", "tags": {"medic:managed": "true"}, "managed": True,
        "memory_mb": 1024, "timeout_s": 10, "alias_version": "7", "has_reserved_concurrency": False,
        "reserved_concurrency": None, "account_limit": 10_000, "unreserved_concurrency": 9_000, "pc_requested": 20,
        "has_autoscaling": False, "event_sources": [], "async_sources": "", "unreserved_concurrency_peak": 40.0,
    }  # fmt: skip
    world.update(changes)
    return Facts(**world)


def db_facts(consumers: list[ConsumerFacts] | None, **changes: Any) -> Facts:
    world: dict[str, Any] = {"db_instance": "orders-db", "db_max_connections": 400, "consumers": consumers,
                             "unreserved_concurrency": 9_000, "unreserved_concurrency_peak": 40.0}  # fmt: skip
    world.update(changes)
    return Facts(**world)


def plan(kind: str, target: Target, world: Facts, **params: Any) -> list[PlannedAction]:
    return get_action(kind).plan(target, params, world)


def refused(kind: str, target: Target, world: Facts, **params: Any) -> GuardrailRefused:
    with pytest.raises(GuardrailRefused) as raised:
        plan(kind, target, world, **params)
    return raised.value


def shape(actions: list[PlannedAction]) -> list[tuple[str, Any, Any]]:
    return [(a.target, a.before.get(a.primary), a.after.get(a.primary)) for a in actions]


# --- every action is registered, documented and declares what it needs ---------------------------


@pytest.mark.parametrize(
    ("kind", "params", "mode"),
    [
        ("set_reserved_concurrency", ("concurrency",), "auto"),
        ("set_event_source_max_concurrency", ("concurrency",), "auto"),
        ("set_memory", ("memory_mb",), "approve"),
        ("enable_sqs_buffer", ("maximum_concurrency",), "approve"),
        ("schedule_prewarm", ("concurrency", "start_minute_of_day", "duration_min"), "auto"),
    ],
)
def test_the_action_is_registered_with_its_params_mode_permissions_and_runbook_example(
    kind: str, params: tuple[str, ...], mode: str
) -> None:
    action = registry()[kind]

    assert action.params == params
    assert action.max_mode == mode
    assert action.permissions and all(":" in permission for permission in action.permissions)
    assert f"kind: {kind}" in (type(action).__doc__ or "")


# --- consumer_shares ------------------------------------------------------------------------------


def test_shares_are_proportional_to_peak_concurrency_and_rounded_down() -> None:
    shares = consumer_shares(280, [consumer("api", 300), consumer("worker", 100, queues=1)])

    assert shares == {"api": 210, "worker": 70}


def test_shares_split_equally_when_any_peak_is_unknown() -> None:
    shares = consumer_shares(100, [consumer("api", 300), consumer("report", None), consumer("worker", 1, queues=1)])

    assert shares == {"api": 33, "report": 33, "worker": 33}


def test_a_tiny_consumer_gets_its_minimum_and_the_rest_is_split_within_the_budget() -> None:
    shares = consumer_shares(100, [consumer("a", 1), consumer("b", 1, queues=1), consumer("c", 1000)])

    assert shares == {"a": 1, "b": 2, "c": 97}
    assert sum(shares.values()) <= 100


def test_a_queue_consumer_gets_at_least_two_per_sqs_mapping() -> None:
    shares = consumer_shares(50, [consumer("big", 1000), consumer("worker", 1, queues=3)])

    assert shares == {"big": 44, "worker": 6}


def test_a_share_never_raises_an_existing_reserved_cap() -> None:
    shares = consumer_shares(300, [consumer("api", 100, reserved=20), consumer("report", 100, reserved=500)])

    assert shares == {"api": 20, "report": 150}


def test_a_budget_below_the_minimums_gives_every_consumer_its_minimum() -> None:
    shares = consumer_shares(2, [consumer("a", 5), consumer("b", 5), consumer("w", 5, queues=1)])

    assert shares == {"a": 1, "b": 1, "w": 2}


def test_no_consumers_no_shares() -> None:
    assert consumer_shares(100, []) == {}


# --- set_reserved_concurrency ---------------------------------------------------------------------


def test_reserved_concurrency_on_a_function_is_rounded_up() -> None:
    [action] = plan(
        "set_reserved_concurrency", CHECKOUT_LIVE, function_facts(reserved_concurrency=100), concurrency=149.2
    )

    assert (action.target, action.function_name, action.qualifier) == ("checkout", "checkout", None)
    assert action.before == {"reserved_concurrency": 100}
    assert action.after == {"reserved_concurrency": 150}
    assert action.text == "Reserved concurrency on checkout: 100 → 150"


def test_an_unreserved_function_shows_before_as_none() -> None:
    [action] = plan("set_reserved_concurrency", CHECKOUT, function_facts(), concurrency=80)

    assert action.before == {"reserved_concurrency": None}
    assert action.text == "Reserved concurrency on checkout: unreserved → 80"


def test_reserved_concurrency_zero_is_never_planned() -> None:
    error = refused("set_reserved_concurrency", CHECKOUT, function_facts(), concurrency=0)

    assert (error.guard, error.observed) == ("reserved_zero", 0)


def test_toward_a_database_only_the_consumers_without_a_queue_get_reserved_concurrency() -> None:
    world = db_facts([consumer("api", 300), consumer("worker", 100, queues=1), consumer("report", 100, reserved=40)])

    actions = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=280)

    assert shape(actions) == [("api", None, 168)], "report's share (56) would raise its cap of 40: nothing to do"
    assert "its share of 280 concurrent executions toward orders-db (peak 300)" in actions[0].text


def test_a_consumer_stopped_at_zero_is_left_alone() -> None:
    world = db_facts([consumer("api", 300), consumer("halted", 100, reserved=0)])

    assert shape(plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=200)) == [("api", None, 150)]


def test_toward_a_database_already_capped_everything_is_kept_for_the_no_change_refusal() -> None:
    world = db_facts([consumer("api", 100, reserved=10), consumer("report", 100, reserved=10)])

    actions = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=280)

    assert shape(actions) == [("api", 10, 10), ("report", 10, 10)]
    assert [r.guard for r in check_plan(actions, world, settings())] == ["no_effective_change"] * 2


@pytest.mark.parametrize("kind", ["set_reserved_concurrency", "set_event_source_max_concurrency"])
def test_unknown_consumers_never_mean_all(kind: str) -> None:
    world = db_facts(None, missing={"consumers": "tag:GetResources failed: AccessDenied"})

    error = refused(kind, ORDERS_DB, world, concurrency=100)

    assert (error.guard, error.observed) == ("target", "unknown")
    assert "AccessDenied" in error.message
    assert (refused(kind, ORDERS_DB, db_facts([]), concurrency=100).guard,
            refused(kind, ORDERS_DB, db_facts([]), concurrency=100).observed) == ("target", 0)  # fmt: skip


@pytest.mark.parametrize("kind", ["set_reserved_concurrency", "set_event_source_max_concurrency"])
def test_no_target_is_refused(kind: str) -> None:
    assert refused(kind, Target.none(), function_facts(), concurrency=10).guard == "target"


# --- set_event_source_max_concurrency -------------------------------------------------------------


def test_every_sqs_mapping_of_a_function_is_capped() -> None:
    kinesis = EventSourceFacts(uuid="k1", source_arn="arn:aws:kinesis:us-east-1:123456789012:stream/s", kind="kinesis")
    world = function_facts(event_sources=[sqs("u1", "orders", 50), kinesis, sqs("u2", "refunds")])

    actions = plan("set_event_source_max_concurrency", CHECKOUT, world, concurrency=20)

    assert shape(actions) == [("checkout esm u1", 50, 20), ("checkout esm u2", None, 20)]
    assert actions[0].resource == {"uuid": "u1", "event_source_arn": QUEUE_ARN.format("orders")}
    assert actions[1].text == "MaximumConcurrency of checkout's mapping from refunds: not set → 20"


@pytest.mark.parametrize(("wanted", "value"), [(1, 2), (0, 2), (5000, 1000)])
def test_maximum_concurrency_is_clamped_to_awss_range_and_the_clamp_is_recorded(wanted: int, value: int) -> None:
    [action] = plan("set_event_source_max_concurrency", CHECKOUT, function_facts(event_sources=[sqs("u1", "q")]),
                    concurrency=wanted)  # fmt: skip

    assert action.after == {"maximum_concurrency": value}
    assert action.clamps == [f"maximum_concurrency {wanted} → {value}: AWS's range is 2–1000"]


def test_a_function_without_an_sqs_mapping_is_refused() -> None:
    stream = EventSourceFacts(uuid="k1", source_arn="arn:aws:kinesis:us-east-1:123456789012:stream/s", kind="kinesis")

    error = refused("set_event_source_max_concurrency", CHECKOUT, function_facts(event_sources=[stream]), concurrency=9)

    assert (error.guard, error.observed) == ("event_source", "kinesis")
    assert refused("set_event_source_max_concurrency", CHECKOUT, function_facts(event_sources=None),
                   concurrency=9).observed == "unknown"  # fmt: skip


def test_toward_a_database_a_queue_consumers_share_is_split_over_its_mappings_and_never_raises_a_cap() -> None:
    world = db_facts([
        consumer("api", 200),
        consumer("worker", 100, queues=2),
        consumer("capped", 100, queues=1, maximum=5),
    ])  # fmt: skip

    actions = plan("set_event_source_max_concurrency", ORDERS_DB, world, concurrency=280)

    assert shape(actions) == [("worker esm worker-0", None, 35), ("worker esm worker-1", None, 35)]
    assert "(70 over 2 mapping(s))" in actions[0].text


def test_both_actions_together_stay_within_the_budget_toward_the_database() -> None:
    world = db_facts([consumer("api", 250), consumer("report", 50), consumer("worker", 100, queues=2)])

    reserved = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=280)
    mappings = plan("set_event_source_max_concurrency", ORDERS_DB, world, concurrency=280)

    total = sum(int(a.after[a.primary] or 0) for a in reserved + mappings)
    assert shape(reserved) == [("api", None, 175), ("report", None, 35)]
    assert shape(mappings) == [("worker esm worker-0", None, 35), ("worker esm worker-1", None, 35)]
    assert total == 280


# --- set_memory -----------------------------------------------------------------------------------


def test_memory_plans_the_alias_memory_and_keeps_the_version_as_context() -> None:
    [action] = plan("set_memory", CHECKOUT_LIVE, function_facts(pc_requested=0), memory_mb=2048)

    assert (action.target, action.qualifier, action.primary) == ("checkout:live", "live", "memory_mb")
    assert action.before == {"memory_mb": 1024, "version": "7"}
    assert action.after == {"memory_mb": 2048}
    assert action.text == (
        "Memory of checkout:live: 1024 MB → 2048 MB (0.58 → 1.16 vCPU): $LATEST gets 2048 MB, is published as a new "
        "version (same code as version 7), and live moves to it"
    )


def test_memory_on_an_alias_with_pc_says_the_pc_is_provisioned_again() -> None:
    [action] = plan("set_memory", CHECKOUT_LIVE, function_facts(pc_requested=20), memory_mb=2048)

    assert "re-provisions its 20 provisioned executions on the new version" in action.text
    assert action.resource == {"provisioned_concurrency": 20}


@pytest.mark.parametrize(
    ("wanted", "value", "clamps"),
    [
        (1536.4, 1536, []),
        (64, 128, ["memory_mb 64 → 128: Lambda's range is 128–10240 MB"]),
        (20_000, 10_240, ["memory_mb 20000 → 10240: Lambda's range is 128–10240 MB"]),
    ],
)
def test_memory_is_a_whole_number_of_mb_within_lambdas_range(wanted: float, value: int, clamps: list[str]) -> None:
    [action] = plan("set_memory", CHECKOUT_LIVE, function_facts(), memory_mb=wanted)

    assert action.after == {"memory_mb": value}
    assert action.clamps == clamps


@pytest.mark.parametrize("kind", ["set_memory", "schedule_prewarm"])
@pytest.mark.parametrize(
    ("target", "observed"),
    [
        (CHECKOUT, "(unqualified)"),
        (Target.function("checkout", "$LATEST"), "$LATEST"),
        (Target.function("checkout", "7"), "7"),
        (ORDERS_DB, "db orders-db"),
    ],
    ids=["unqualified", "latest", "version", "db-instance"],
)
def test_memory_and_prewarm_need_an_alias(kind: str, target: Target, observed: str) -> None:
    params = {"memory_mb": 2048} if kind == "set_memory" else {"concurrency": 50, "start_minute_of_day": 480,
                                                               "duration_min": 60}  # fmt: skip

    error = refused(kind, target, function_facts(), **params)

    assert (error.guard, error.observed) == ("target", observed)


def test_memory_with_unknown_version_is_refused() -> None:
    error = refused("set_memory", CHECKOUT_LIVE, function_facts(alias_version=None), memory_mb=2048)

    assert (error.guard, error.observed) == ("facts", "unknown: alias_version")


def test_the_same_memory_is_refused_as_no_change() -> None:
    world = function_facts()
    actions = plan("set_memory", CHECKOUT_LIVE, world, memory_mb=1024)

    assert [r.guard for r in check_plan(actions, world, settings())] == ["no_effective_change"]


# --- enable_sqs_buffer ----------------------------------------------------------------------------

READY = {"medic:managed": "true", "medic:sqs-buffer": "ready"}
UPLOADS = "arn:aws:sns:us-east-1:123456789012:uploads"
PRODUCERS = f"events:rule/nightly-export, sns:{UPLOADS}, events:rule/hourly"


def test_the_buffer_plans_queues_rules_and_the_capped_mapping() -> None:
    world = function_facts(tags=READY, async_sources=PRODUCERS, timeout_s=30)

    [action] = plan("enable_sqs_buffer", CHECKOUT_LIVE, world, maximum_concurrency=40.2)

    assert (action.target, action.qualifier, action.primary) == ("checkout:live", "live", "buffered")
    assert action.before == {"buffered": False, "maximum_concurrency": None}
    assert action.after == {"buffered": True, "maximum_concurrency": 41}
    assert action.resource == {
        "rules": "nightly-export,hourly", "topics": UPLOADS, "queue": "medic-buffer-checkout",
        "dlq": "medic-buffer-checkout-dlq", "visibility_timeout_s": 180,
    }  # fmt: skip
    assert action.text.startswith(
        f"Buffer checkout:live: EventBridge rule(s) nightly-export, hourly and SNS topic(s) {UPLOADS} → SQS "
        "medic-buffer-checkout (DLQ medic-buffer-checkout-dlq after 5 receives) → checkout:live at most 41 at a time."
    )
    assert "the handler then finds the SNS envelope as JSON in each SQS record's body" in action.text
    assert "deletes the queues and mapping only once empty (buffered messages drain first)" in action.text
    assert "Not rewired" not in action.text


def test_a_function_fed_by_sns_alone_is_buffered_and_s3_is_left_to_a_human() -> None:
    world = function_facts(tags=READY, async_sources=f"s3:photos, sns:{UPLOADS}, sns:*", timeout_s=30)

    [action] = plan("enable_sqs_buffer", CHECKOUT_LIVE, world, maximum_concurrency=10)

    assert (action.resource["rules"], action.resource["topics"]) == ("", UPLOADS)
    assert action.text.startswith(f"Buffer checkout:live: SNS topic(s) {UPLOADS} → SQS medic-buffer-checkout")
    assert action.text.endswith(
        "Not rewired (a human's call): s3:photos, sns:* (an S3 notification is part of the bucket's whole "
        "notification configuration: rewiring it is a human's call)."
    )


def test_an_existing_buffer_mapping_is_the_before_state() -> None:
    world = function_facts(tags=READY, async_sources="events:rule/nightly",
                           event_sources=[sqs("u9", "medic-buffer-checkout", 12)])  # fmt: skip

    [action] = plan("enable_sqs_buffer", CHECKOUT, world, maximum_concurrency=30)

    assert action.before == {"buffered": False, "maximum_concurrency": 12}
    assert (action.target, action.qualifier) == ("checkout", None)


@pytest.mark.parametrize(
    ("tags", "observed"),
    [({"medic:managed": "true"}, None), ({"medic:sqs-buffer": "soon"}, "soon"), (None, "unknown (tags not read)")],
)
def test_the_buffer_is_refused_unless_the_handler_is_ready_for_sqs_batches(
    tags: dict[str, str] | None, observed: str | None
) -> None:
    error = refused("enable_sqs_buffer", CHECKOUT_LIVE, function_facts(tags=tags, async_sources=PRODUCERS),
                    maximum_concurrency=40)  # fmt: skip

    assert (error.guard, error.limit, error.observed) == ("sqs_ready", "medic:sqs-buffer=ready", observed)


@pytest.mark.parametrize(
    ("sources", "why"),
    [
        ("s3:photos", "s3:photos need(s) a human (an S3 notification is part of the bucket's whole notification "
                      "configuration: rewiring it is a human's call)"),
        ("events:*, sns:*", "events:*, sns:* need(s) a human"),
        ("", "no producer need(s) a human"),
    ],
)  # fmt: skip
def test_the_buffer_is_refused_without_an_eventbridge_rule_or_sns_topic(sources: str, why: str) -> None:
    error = refused("enable_sqs_buffer", CHECKOUT_LIVE, function_facts(tags=READY, async_sources=sources),
                    maximum_concurrency=40)  # fmt: skip

    assert (error.guard, error.limit) == ("async_sources", "an EventBridge rule or SNS topic")
    assert error.message == f"Medic rewires EventBridge rules and SNS topics only; {why}"


def test_the_rules_are_parsed_from_the_async_sources_fact() -> None:
    assert event_rules(PRODUCERS + ", events:rule/hourly, events:*, s3:b") == ["nightly-export", "hourly"]
    assert event_rules(None) == []
    assert sns_topics(PRODUCERS + f", sns:*, sns:{UPLOADS}, s3:b, events:rule/x") == [UPLOADS]
    assert sns_topics(None) == []


def test_queue_names_fit_sqss_80_characters() -> None:
    name = "f" * 64
    queue, dlq = buffer_queue_names(name)

    assert len(dlq) == 80 and dlq == f"{queue}-dlq"
    assert queue.startswith("medic-buffer-fff") and queue != buffer_queue_names("f" * 63 + "g")[0]


def test_the_buffer_mapping_is_clamped_to_the_functions_reserved_concurrency() -> None:
    world = function_facts(tags=READY, async_sources=PRODUCERS, has_reserved_concurrency=True, reserved_concurrency=25)
    actions = plan("enable_sqs_buffer", CHECKOUT_LIVE, world, maximum_concurrency=40)

    assert check_plan(actions, world, settings()) == []
    assert actions[0].after == {"buffered": True, "maximum_concurrency": 25}
    assert actions[0].clamps == [
        "maximum_concurrency 40 → 25: above the function's reserved concurrency (25) the queue's pollers would only "
        "be throttled"
    ]


# --- schedule_prewarm -----------------------------------------------------------------------------


def test_daily_cron_is_utc_minute_and_hour() -> None:
    assert daily_cron(0) == "cron(0 0 * * ? *)"
    assert daily_cron(1439) == "cron(59 23 * * ? *)"
    assert daily_cron(1440 + 61) == "cron(1 1 * * ? *)"


def test_a_prewarm_without_a_scalable_target_registers_one() -> None:
    [action] = plan("schedule_prewarm", CHECKOUT_LIVE, function_facts(), concurrency=239.5, start_minute_of_day=525,
                    duration_min=60)  # fmt: skip

    assert action.before == {"prewarm_concurrency": None, "min_capacity": None, "max_capacity": None}
    assert action.after == {"prewarm_concurrency": 240, "schedule": "cron(45 8 * * ? *)",
                            "schedule_end": "cron(45 9 * * ? *)"}  # fmt: skip
    assert action.resource == {
        "resource_id": "function:checkout:live", "up_action": "medic-prewarm-checkout-live-up",
        "down_action": "medic-prewarm-checkout-live-down", "target_existed": False, "restore_min": 20,
        "restore_max": None,
    }  # fmt: skip
    assert action.text == (
        "Pre-warm checkout:live daily: provisioned concurrency ≥ 240 from 08:45 to 09:45 UTC (60 min), then back to "
        "min 20 (registers a scalable target 20–240, removed by rollback)"
    )


def test_a_prewarm_before_midnight_wraps_around_the_day() -> None:
    world = function_facts(has_autoscaling=True, autoscaling_min=10, autoscaling_max=50)

    [action] = plan("schedule_prewarm", CHECKOUT_LIVE, world, concurrency=80, start_minute_of_day=-15, duration_min=60)

    assert action.after["schedule"] == "cron(45 23 * * ? *)"
    assert action.after["schedule_end"] == "cron(45 0 * * ? *)"
    assert action.before == {"prewarm_concurrency": None, "min_capacity": 10, "max_capacity": 50}
    assert (action.resource["restore_min"], action.resource["restore_max"]) == (10, 50)


@pytest.mark.parametrize("duration", [0, 1440, float("nan")])
def test_a_prewarm_window_is_between_a_minute_and_a_day(duration: float) -> None:
    error = refused("schedule_prewarm", CHECKOUT_LIVE, function_facts(), concurrency=80, start_minute_of_day=0,
                    duration_min=duration)  # fmt: skip

    assert error.guard == "valid_value"


def test_a_prewarm_is_clamped_like_any_pc_and_refused_when_not_above_the_floor() -> None:
    world = function_facts(unreserved_concurrency=150)  # 30 executions of headroom above the 20 of PC
    actions = plan("schedule_prewarm", CHECKOUT_LIVE, world, concurrency=240, start_minute_of_day=0, duration_min=60)

    assert check_plan(actions, world, settings()) == []
    assert actions[0].after["prewarm_concurrency"] == 50
    assert actions[0].clamps == [
        "prewarm_concurrency 240 → 50: leaves ≥ 100 unreserved executions in the account (unreserved now 150, 20 of "
        "it provisioned on checkout)"
    ]

    capped = function_facts(has_reserved_concurrency=True, reserved_concurrency=20)
    actions = plan("schedule_prewarm", CHECKOUT_LIVE, capped, concurrency=240, start_minute_of_day=0, duration_min=60)
    assert check_plan(actions, capped, settings()) == [
        Refusal(guard="no_effective_change", limit=20, observed=20,
                message="after the guardrails' clamps the pre-warm of checkout:live is not above its provisioned "
                        "concurrency floor (20)")
    ]  # fmt: skip


# --- guardrails: opt-in per function acted on -----------------------------------------------------


def test_toward_a_database_only_the_opted_in_consumers_are_capped_and_the_others_are_advised() -> None:
    """legacy is not opted in: its peak (100) is counted as spent, api gets the rest of the budget, legacy an advice
    line with its share of the whole budget; the opt-in guard has nothing to refuse."""
    world = db_facts([consumer("api", 300), consumer("legacy", 100, managed=False)])
    actions = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=200)

    refusals = check_plan(actions, world, settings())

    assert refusals == []
    assert shape([a for a in actions if a.kind != "advise"]) == [("api", None, 100)]
    [advice] = [a for a in actions if a.kind == "advise"]
    assert (advice.target, advice.function_name, advice.resource) == ("legacy", None, {"suggested_cap": 50,
                                                                                       "counted": 100})  # fmt: skip
    assert advice.text.startswith(
        "legacy is not opted in to changes by tag: Medic leaves it as it is and counts the 100 concurrent executions "
        "it can run now against the budget of 200 toward orders-db. Cap it at 50 (reserved concurrency)"
    )


@pytest.mark.parametrize(
    ("legacy", "spent"),
    [
        (consumer("legacy", 100.2, reserved=80, managed=False), 80),
        (consumer("legacy", 100, queues=2, maximum=10, managed=False), 20),
        (consumer("legacy", None, reserved=30, managed=False), 30),
        (consumer("legacy", 500, queues=1, managed=False), 500),  # a mapping without MaximumConcurrency caps nothing
    ],
    ids=["reserved-lower", "sqs-caps-lower", "peak-unknown", "uncapped-queue"],
)
def test_an_unmanaged_consumer_spends_its_peak_or_its_cap_when_lower(legacy: ConsumerFacts, spent: int) -> None:
    split = split_budget(600, [consumer("api", 300), legacy])

    assert split.spent == {"legacy": spent}
    assert split.shares == {"api": max(1, 600 - spent)}


def test_an_unmanaged_consumer_of_unknown_concurrency_is_refused_never_guessed() -> None:
    error = refused("set_reserved_concurrency", ORDERS_DB, db_facts([consumer("api", 300),
                                                                     consumer("legacy", None, managed=False)]),
                    concurrency=200)  # fmt: skip

    assert (error.guard, error.observed) == ("facts", "unknown: legacy")


def test_a_queue_consumer_not_opted_in_is_advised_by_the_event_source_action_only() -> None:
    world = db_facts([consumer("api", 100), consumer("worker", 100, queues=1, managed=False)])

    reserved = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=200)
    mappings = plan("set_event_source_max_concurrency", ORDERS_DB, world, concurrency=200)

    assert [(a.kind, a.target) for a in reserved] == [("set_reserved_concurrency", "api")]
    assert [(a.kind, a.target) for a in mappings] == [("advise", "worker")]
    assert "MaximumConcurrency of its SQS mappings" in mappings[0].text
    assert check_plan(reserved + mappings, world, settings()) == []


def test_a_change_slipped_onto_an_unmanaged_consumer_is_still_refused() -> None:
    world = db_facts([consumer("api", 300), consumer("legacy", 100, managed=False)])
    stray = get_action("set_reserved_concurrency").plan(Target.function("legacy"), {"concurrency": 10},
                                                        function_facts(function_name="legacy"))  # fmt: skip

    refusals = check_plan(stray, world, settings())

    assert refusals == [
        Refusal(guard="opt_in_tag", limit="medic:managed=true", observed="not opted in",
                message="legacy is not opted in to changes by tag")
    ]  # fmt: skip


def test_a_database_plan_of_opted_in_consumers_passes_although_the_database_has_no_tag() -> None:
    world = db_facts([consumer("api", 300), consumer("worker", 100, queues=1)])
    actions = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=200)
    actions += plan("set_event_source_max_concurrency", ORDERS_DB, world, concurrency=200)

    assert check_plan(actions, world, settings()) == []
    assert shape(actions) == [("api", None, 150), ("worker esm worker-0", None, 50)]


def test_a_function_that_is_not_a_consumer_of_the_target_is_refused() -> None:
    world = db_facts([consumer("api", 300)])
    stranger = get_action("set_reserved_concurrency").plan(CHECKOUT, {"concurrency": 10}, function_facts())

    refusals = check_plan(stranger, world, settings())

    assert [(r.guard, r.observed) for r in refusals] == [("opt_in_tag", "not a known consumer of the target")]


def test_the_alarms_own_function_still_needs_its_tag() -> None:
    world = function_facts(tags={}, managed=False, reserved_concurrency=100, has_reserved_concurrency=True)

    refusals = check_plan(plan("set_reserved_concurrency", CHECKOUT, world, concurrency=150), world, settings())

    assert [r.guard for r in refusals] == ["opt_in_tag"]


# --- guardrails: reserved concurrency -------------------------------------------------------------


def test_a_reserved_increase_that_leaves_exactly_100_unreserved_executions_is_not_clamped() -> None:
    world = function_facts(reserved_concurrency=100, has_reserved_concurrency=True, unreserved_concurrency=150)
    actions = plan("set_reserved_concurrency", CHECKOUT, world, concurrency=150)

    assert check_plan(actions, world, settings()) == []
    assert actions[0].after == {"reserved_concurrency": 150}
    assert actions[0].clamps == []


def test_a_reserved_increase_is_clamped_to_the_unreserved_headroom() -> None:
    world = function_facts(reserved_concurrency=100, has_reserved_concurrency=True, unreserved_concurrency=130)
    actions = plan("set_reserved_concurrency", CHECKOUT, world, concurrency=150)

    assert check_plan(actions, world, settings()) == []
    assert actions[0].after == {"reserved_concurrency": 130}
    assert actions[0].clamps == [
        "reserved_concurrency 150 → 130: leaves ≥ 100 unreserved executions in the account (unreserved now 130)"
    ]


def test_new_reservations_of_several_consumers_share_the_headroom() -> None:
    world = db_facts([consumer("api", 100), consumer("report", 100)], unreserved_concurrency=250)
    actions = plan("set_reserved_concurrency", ORDERS_DB, world, concurrency=200)

    assert check_plan(actions, world, settings()) == []
    assert shape(actions) == [("api", None, 100), ("report", None, 50)]
    assert actions[1].clamps == [
        "reserved_concurrency 100 → 50: leaves ≥ 100 unreserved executions in the account (unreserved now 250, "
        "100 taken by this plan's other reservations)"
    ]


def test_a_reservation_with_no_headroom_at_all_changes_nothing_rather_than_reserving_zero() -> None:
    world = function_facts(unreserved_concurrency=100)
    actions = plan("set_reserved_concurrency", CHECKOUT, world, concurrency=50)

    refusals = check_plan(actions, world, settings())

    assert actions[0].after == {"reserved_concurrency": None}
    assert [r.guard for r in refusals] == ["no_effective_change"]


def test_a_reserved_decrease_is_not_clamped_by_the_pool() -> None:
    world = function_facts(reserved_concurrency=300, has_reserved_concurrency=True, unreserved_concurrency=100,
                           pc_requested=0)  # fmt: skip
    actions = plan("set_reserved_concurrency", CHECKOUT, world, concurrency=200)

    assert check_plan(actions, world, settings()) == []
    assert actions[0].after == {"reserved_concurrency": 200}


def test_reserved_concurrency_never_goes_below_the_functions_provisioned_concurrency() -> None:
    world = function_facts(reserved_concurrency=300, has_reserved_concurrency=True, pc_requested=120,
                           pc_on_other_qualifiers=30)  # fmt: skip
    actions = plan("set_reserved_concurrency", CHECKOUT, world, concurrency=140)

    assert check_plan(actions, world, settings()) == [
        Refusal(guard="reserved_below_pc", limit=150, observed=140,
                message="reserved concurrency 140 on checkout would be below its provisioned concurrency (150)")
    ]  # fmt: skip


def test_the_same_reserved_concurrency_is_refused_as_no_change() -> None:
    world = function_facts(reserved_concurrency=150, has_reserved_concurrency=True)

    refusals = check_plan(plan("set_reserved_concurrency", CHECKOUT, world, concurrency=150), world, settings())

    assert refusals == [
        Refusal(guard="no_effective_change", limit=150, observed=150,
                message="after the guardrails' clamps nothing would change on checkout")
    ]  # fmt: skip


def test_a_reserved_zero_slipped_into_a_plan_is_refused_by_the_guardrails() -> None:
    world = function_facts(reserved_concurrency=10, has_reserved_concurrency=True, pc_requested=0)
    [action] = plan("set_reserved_concurrency", CHECKOUT, world, concurrency=5)
    action.after["reserved_concurrency"] = 0

    assert [r.guard for r in check_plan([action], world, settings())] == ["reserved_zero"]


def test_the_same_event_source_cap_is_refused_as_no_change() -> None:
    world = function_facts(event_sources=[sqs("u1", "orders", 20)])

    refusals = check_plan(plan("set_event_source_max_concurrency", CHECKOUT, world, concurrency=20), world, settings())

    assert [r.guard for r in refusals] == ["no_effective_change"]
