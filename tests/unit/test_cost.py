"""The monthly cost of a planned change: each formula by hand, the price table as data, and the Slack card.

Planned actions come from the registered actions' own `plan` (so the keys the estimates read are the ones the
actions write); prices are the list prices in the shipped `prices.json`, written out here as literals.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from medic.actions import PlannedAction, get_action
from medic.alarms.signals import Target
from medic.chatops.blocks import blocks_json, plan_blocks
from medic.errors import ConfigError
from medic.facts import Facts
from medic.plan import Plan
from medic.planning.cost import (
    FALLBACK_REGION,
    PRICES_FILE,
    PriceTable,
    annotate_costs,
    estimate,
    format_usd,
    load_prices,
)

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_LIVE = Target.function("checkout", "live")
MONTH_S = 730 * 3600  # hours_per_month × seconds
# us-east-1 list prices (USD)
PC_X86, PC_DURATION_X86, DURATION_X86 = 0.0000041667, 0.0000097222, 0.0000166667
PC_ARM = 0.0000033334
PC_EU_CENTRAL = 0.0000050147
SQS = 0.40


def facts(**changes: Any) -> Facts:
    """`checkout:live`: 1 GB, 20 provisioned, 4,000 invocations in the last 15 minutes, 120 ms warm average."""
    base: dict[str, Any] = {
        "function_name": "checkout", "qualifier": "live", "memory_mb": 1024, "alias_version": "7",
        "pc_requested": 20, "has_autoscaling": False, "invocations": 4000.0, "warm_duration_avg_ms": 120.0,
        "tags": {"medic:managed": "true", "medic:sqs-buffer": "ready"}, "timeout_s": 30,
        "async_sources": "events:rule/nightly",
    }  # fmt: skip
    return Facts(**{**base, **changes})


def planned(kind: str, world: Facts, **params: Any) -> PlannedAction:
    [action] = get_action(kind).plan(CHECKOUT_LIVE, params, world)
    return action


def action(kind: str, before: dict[str, Any], after: dict[str, Any]) -> PlannedAction:
    return PlannedAction(kind=kind, target="checkout:live", primary=next(iter(after)), before=before, after=after)


# --- each formula, by hand --------------------------------------------------------------------------------------


def test_provisioned_concurrency_costs_the_idle_pool_it_adds() -> None:
    pc = planned("set_provisioned_concurrency", facts(), concurrency=72)

    usd, basis = estimate(pc, facts(), "us-east-1")

    assert usd == pytest.approx(52 * 1.0 * 730 * 3600 * PC_X86, rel=1e-12)  # 569.4045552
    assert format_usd(usd) == "+$569.40/month"
    assert basis == (
        "idle cost of the provisioned pool: +52 executions × 1 GB × 730 h × 3600 s × $0.0000041667/GB-s "
        "(us-east-1 x86_64 list prices as of 2025); invocations served on it are billed $0.0000097222/GB-s "
        "instead of $0.0000166667/GB-s on demand, which offsets part of it"
    )


def test_lowering_provisioned_concurrency_is_a_saving() -> None:
    pc = planned("set_provisioned_concurrency", facts(memory_mb=512), concurrency=10)

    usd, _ = estimate(pc, facts(memory_mb=512), "us-east-1")

    assert usd == pytest.approx(-10 * 0.5 * MONTH_S * PC_X86, rel=1e-12)  # −54.750438
    assert format_usd(usd) == "−$54.75/month"


def test_autoscaling_bounds_cost_the_new_floor_and_say_what_the_new_max_could_add() -> None:
    world = facts(memory_mb=512, has_autoscaling=True, autoscaling_min=10, autoscaling_max=50)
    bounds = planned("set_autoscaling_bounds", world, min=60, max=80)

    usd, basis = estimate(bounds, world, "us-east-1")

    per_execution = 0.5 * 730 * 3600 * PC_X86  # 5.4750438
    assert usd == pytest.approx(50 * per_execution, rel=1e-12)  # 273.75219
    assert format_usd(usd) == "+$273.75/month"
    assert basis.startswith("the floor you now always pay: min 10 → 60 (+50 executions) × 0.5 GB × 730 h × 3600 s")
    assert "; up to +$164.25/month more if it scales to the new max (max 50 → 80)" in basis  # 30 × 5.4750438
    assert basis.endswith("(us-east-1 x86_64 list prices as of 2025)")


def test_autoscaling_bounds_without_a_scalable_target_start_from_the_fixed_pc() -> None:
    world = facts(pc_requested=20, has_autoscaling=False)
    bounds = planned("set_autoscaling_bounds", world, min=30, max=30)

    usd, basis = estimate(bounds, world, "us-east-1")

    assert usd == pytest.approx(10 * 1.0 * MONTH_S * PC_X86, rel=1e-12)  # 109.500876
    assert "min 20 → 30 (+10 executions)" in basis
    assert "(max 20 → 30)" in basis


def test_a_prewarm_costs_the_extra_pool_for_its_window_every_day() -> None:
    world = facts(memory_mb=2048, pc_requested=20)
    prewarm = planned("schedule_prewarm", world, concurrency=60, start_minute_of_day=525, duration_min=60)

    usd, basis = estimate(prewarm, world, "us-east-1")

    assert usd == pytest.approx(40 * 2.0 * 1.0 * 30 * 3600 * PC_X86, rel=1e-12)  # 36.000288
    assert format_usd(usd) == "+$36.00/month"
    assert basis.startswith("pre-warmed pool: 60 − 20 provisioned today = +40 executions × 2 GB × 1 h (60 min) a day")


def test_a_prewarm_window_over_midnight_and_an_explicit_duration_are_both_read() -> None:
    world = facts(pc_requested=0)
    overnight = planned("schedule_prewarm", world, concurrency=10, start_minute_of_day=1410, duration_min=90)
    explicit = action(
        "schedule_prewarm", {"prewarm_concurrency": None}, {"prewarm_concurrency": 10, "duration_min": 45}
    )

    usd_overnight, _ = estimate(overnight, world, "us-east-1")
    usd_explicit, _ = estimate(explicit, world, "us-east-1")

    assert overnight.after["schedule"] == "cron(30 23 * * ? *)"
    assert usd_overnight == pytest.approx(10 * 1.0 * 1.5 * 30 * 3600 * PC_X86, rel=1e-12)  # 20.250162
    assert usd_explicit == pytest.approx(10 * 1.0 * 0.75 * 30 * 3600 * PC_X86, rel=1e-12)  # 10.125081


def test_a_prewarm_below_todays_pc_adds_nothing() -> None:
    world = facts(pc_requested=50)
    prewarm = planned("schedule_prewarm", world, concurrency=30, start_minute_of_day=0, duration_min=60)

    assert estimate(prewarm, world, "us-east-1")[0] == 0.0


def test_more_memory_costs_its_duration_before_any_speed_up() -> None:
    world = facts(pc_requested=0)
    memory = planned("set_memory", world, memory_mb=2048)

    usd, basis = estimate(memory, world, "us-east-1")

    monthly = 4000 * 4 * 730  # 11,680,000 invocations
    assert usd == pytest.approx(1.0 * 0.120 * monthly * DURATION_X86, rel=1e-12)  # 23.36004672
    assert format_usd(usd) == "+$23.36/month"
    assert basis.startswith(
        "+1,024 MB (+1 GB) × 0.12 s average warm duration × 11,680,000 invocations/month "
        "(4,000 in the last 15 min × 4 × 730 h) × $0.0000166667/GB-s on demand, before any speed-up"
    )
    assert "provisioned" not in basis


def test_more_memory_also_grows_the_provisioned_pool() -> None:
    world = facts(pc_requested=10)
    memory = planned("set_memory", world, memory_mb=2048)

    usd, basis = estimate(memory, world, "us-east-1")

    duration = 1.0 * 0.120 * (4000 * 4 * 730) * DURATION_X86  # 23.36004672
    pool = 1.0 * 10 * MONTH_S * PC_X86  # 109.500876
    assert usd == pytest.approx(duration + pool, rel=1e-12)  # 132.86092272
    assert "; plus its 10 provisioned executions at the new size: +1 GB × 10 × 730 h" in basis
    assert "= +$109.50/month" in basis


def test_an_sqs_buffer_costs_three_requests_per_message() -> None:
    world = facts(invocations=1000.0)
    buffer = planned("enable_sqs_buffer", world, maximum_concurrency=10)

    usd, basis = estimate(buffer, world, "us-east-1")

    assert usd == pytest.approx(1000 * 4 * 730 * 3 * SQS / 1_000_000, rel=1e-12)  # 3.504
    assert format_usd(usd) == "+$3.50/month"
    assert "× 3 SQS requests (send, receive, delete; batching lowers it) × $0.40 per million" in basis


@pytest.mark.parametrize(
    ("kind", "basis"),
    [
        ("set_reserved_concurrency", "no charge for reserved concurrency"),
        ("set_event_source_max_concurrency", "no charge for an event source mapping's maximum concurrency"),
        ("request_quota_increase", "no charge for a quota increase"),
        ("advise", "no charge for advice"),
    ],
)
def test_changes_aws_does_not_bill_cost_nothing(kind: str, basis: str) -> None:
    usd, text = estimate(action(kind, {"x": 1}, {"x": 2}), Facts(), "us-east-1")

    assert usd == 0.0
    assert text.startswith(basis)
    assert format_usd(usd) == "$0/month"


# --- unknowns are said, never guessed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "unknown", "expected"),
    [
        ("set_provisioned_concurrency", {"concurrency": 72}, {"memory_mb": None}, "unknown: memory_mb"),
        ("set_autoscaling_bounds", {"min": 30, "max": 40}, {"pc_requested": None},
         "unknown: autoscaling_min, pc_requested"),
        ("set_memory", {"memory_mb": 2048}, {"warm_duration_avg_ms": None},
         "unknown: warm_duration_avg_ms (no warm REPORT lines)"),
        ("set_memory", {"memory_mb": 2048}, {"invocations": None, "pc_requested": None},
         "unknown: invocations, pc_requested"),
        ("enable_sqs_buffer", {"maximum_concurrency": 10}, {"invocations": None}, "unknown: invocations"),
        ("schedule_prewarm", {"concurrency": 60, "start_minute_of_day": 0, "duration_min": 60},
         {"pc_requested": None}, "unknown: pc_requested"),
    ],
)  # fmt: skip
def test_a_missing_fact_makes_the_cost_unknown(
    kind: str, params: dict[str, Any], unknown: dict[str, Any], expected: str
) -> None:
    world = facts(missing={"warm_duration_avg_ms": "no warm REPORT lines"})
    planned_action = planned(kind, world, **params)

    assert estimate(planned_action, facts(**unknown, missing=world.missing), "us-east-1") == (None, expected)


def test_a_prewarm_without_its_window_is_unknown() -> None:
    prewarm = action("schedule_prewarm", {"prewarm_concurrency": None}, {"prewarm_concurrency": 60})

    usd, basis = estimate(prewarm, facts(), "us-east-1")

    assert usd is None
    assert basis.startswith("unknown: the pre-warm window (after.duration_min, or after.schedule and schedule_end)")


def test_an_action_without_the_value_it_changes_is_unknown() -> None:
    pc = action("set_provisioned_concurrency", {"provisioned_concurrency": 20}, {"provisioned_concurrency": "many"})

    assert estimate(pc, facts(), "us-east-1") == (
        None,
        "unknown: the action's after.provisioned_concurrency (needed to price set_provisioned_concurrency)",
    )


def test_an_action_kind_without_a_cost_model_is_unknown() -> None:
    assert estimate(action("paint_it_blue", {}, {"colour": "blue"}), facts(), "us-east-1") == (
        None,
        "unknown: no cost model for action kind 'paint_it_blue'",
    )


# --- regions and architectures -------------------------------------------------------------------------------------


def test_a_listed_region_uses_its_own_prices() -> None:
    pc = planned("set_provisioned_concurrency", facts(), concurrency=72)

    usd, basis = estimate(pc, facts(), "eu-central-1")

    assert usd == pytest.approx(52 * 1.0 * MONTH_S * PC_EU_CENTRAL, rel=1e-12)  # 685.28683
    assert "(eu-central-1 x86_64 list prices as of 2025)" in basis


def test_a_region_not_in_the_table_uses_us_east_1_prices_and_says_so() -> None:
    pc = planned("set_provisioned_concurrency", facts(), concurrency=72)

    usd, basis = estimate(pc, facts(), "ap-south-2")

    assert usd == pytest.approx(52 * 1.0 * MONTH_S * PC_X86, rel=1e-12)
    assert (
        "(us-east-1 x86_64 list prices as of 2025; ap-south-2 is not in prices.json, so us-east-1 prices are used)"
    ) in basis


def test_arm64_has_its_own_prices_and_an_unknown_one_is_not_guessed() -> None:
    pc = planned("set_provisioned_concurrency", facts(), concurrency=72)

    assert estimate(pc, facts(), "us-east-1", "arm64")[0] == pytest.approx(52 * MONTH_S * PC_ARM, rel=1e-12)
    assert estimate(pc, facts(), "eu-west-1", "arm64") == (
        None,
        "unknown: no arm64 prices for eu-west-1 in prices.json (as of 2025)",
    )
    assert estimate(pc, facts(), "us-east-1", "sparc") == (
        None,
        "unknown: architecture 'sparc' is not one of x86_64, arm64",
    )


def test_annotate_costs_fills_every_action() -> None:
    world = facts()
    actions = [
        planned("set_provisioned_concurrency", world, concurrency=72),
        planned("set_reserved_concurrency", world, concurrency=100),
        planned("set_memory", world.model_copy(update={"warm_duration_avg_ms": None}), memory_mb=2048),
    ]

    annotate_costs(actions, world.model_copy(update={"warm_duration_avg_ms": None}), "us-east-1")

    assert [a.cost_monthly_usd for a in actions] == [pytest.approx(569.4045552, rel=1e-12), 0.0, None]
    assert actions[0].cost_basis.startswith("idle cost of the provisioned pool")
    assert actions[1].cost_basis.startswith("no charge for reserved concurrency")
    assert actions[2].cost_basis == "unknown: warm_duration_avg_ms"


# --- the price table ---------------------------------------------------------------------------------------------


def test_the_shipped_table_is_dated_sourced_and_read_once() -> None:
    table = load_prices()

    assert table is load_prices()
    assert table.as_of == "2025"
    assert "list prices as known in 2025" in table.note.lower()
    assert table.source.startswith("https://aws.amazon.com/lambda/pricing/")
    assert (table.currency, table.hours_per_month) == ("USD", 730)
    us_east = table.regions[FALLBACK_REGION]
    assert us_east.x86_64 is not None and us_east.arm64 is not None
    assert (us_east.x86_64.duration_gb_s, us_east.x86_64.provisioned_gb_s) == (DURATION_X86, PC_X86)
    assert (us_east.x86_64.provisioned_duration_gb_s, us_east.x86_64.requests_per_million) == (PC_DURATION_X86, 0.20)
    assert (us_east.arm64.duration_gb_s, us_east.arm64.provisioned_gb_s) == (0.0000133334, PC_ARM)
    assert us_east.arm64.provisioned_duration_gb_s == 0.0000077778
    assert us_east.sqs_standard_requests_per_million == SQS
    assert {"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1"} <= set(table.regions)


def test_the_table_ships_with_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert PRICES_FILE in config["tool"]["setuptools"]["package-data"]["medic"]
    assert (ROOT / "shared" / "medic" / PRICES_FILE).is_file()


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "shared" / "medic" / PRICES_FILE).read_text(encoding="utf-8"))
    return data


def broken(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "prices.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_prices(path)
    assert raised.value.source == str(path)
    return raised.value


def test_a_negative_price_names_the_file_and_the_field(tmp_path: Path) -> None:
    data = shipped()
    data["regions"]["eu-west-1"]["x86_64"]["provisioned_gb_s"] = -0.000004

    error = broken(tmp_path, json.dumps(data))

    assert error.field == "regions.eu-west-1.x86_64.provisioned_gb_s"
    assert error.problem == "Input should be greater than 0"
    assert str(error) == f"{tmp_path / 'prices.json'}: regions.eu-west-1.x86_64.provisioned_gb_s: {error.problem}"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda d: d.pop("as_of"), "as_of", "Field required"),
        (lambda d: d.update(as_of="recently"), "as_of", "String should match pattern"),
        (lambda d: d.update(currency="EUR"), "currency", "Input should be 'USD'"),
        (lambda d: d["regions"].pop("us-east-1"), "regions", "Value error, must list us-east-1 with x86_64 and arm64"),
        (lambda d: d["regions"]["us-east-1"].pop("arm64"), "regions", "Value error, must list us-east-1"),
        (lambda d: d["regions"]["us-west-2"]["x86_64"].update(per_gb_s=d["regions"]["us-west-2"]["x86_64"].pop(
            "duration_gb_s")), "regions.us-west-2.x86_64.duration_gb_s", "Field required (and 1 more)"),
        (lambda d: d["regions"]["us-east-2"].pop("sqs_standard_requests_per_million"),
         "regions.us-east-2.sqs_standard_requests_per_million", "Field required"),
    ],
    ids=["no-as-of", "undated", "currency", "no-fallback-region", "no-fallback-arm64", "typo", "no-sqs"],
)  # fmt: skip
def test_a_broken_table_is_a_config_error_naming_the_field(
    tmp_path: Path, change: Any, field: str, problem: str
) -> None:
    data = shipped()
    change(data)

    error = broken(tmp_path, json.dumps(data))

    assert error.field.startswith(field)
    assert error.problem.startswith(problem)


def test_a_table_that_is_not_json_or_not_there_is_a_config_error(tmp_path: Path) -> None:
    assert broken(tmp_path, '{"as_of": ').field == "(root)"
    with pytest.raises(ConfigError, match="cannot read the price table"):
        load_prices(tmp_path / "missing.json")


def test_an_explicit_table_is_used_for_the_estimate(tmp_path: Path) -> None:
    data = shipped()
    data["regions"]["us-east-1"]["x86_64"]["provisioned_gb_s"] = 0.00001
    data["as_of"] = "2030-01-01"
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    pc = planned("set_provisioned_concurrency", facts(), concurrency=30)

    usd, basis = estimate(pc, facts(), "us-east-1", prices=load_prices(path))

    assert usd == pytest.approx(10 * MONTH_S * 0.00001, rel=1e-12)  # 262.8
    assert "$0.00001/GB-s (us-east-1 x86_64 list prices as of 2030-01-01)" in basis
    assert isinstance(load_prices(path), PriceTable)


# --- formatting ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1234.561, "+$1,234.56/month"),
        (-12, "−$12.00/month"),
        (0.0, "$0/month"),
        (None, "unknown"),
        (0.004, "+<$0.01/month"),
        (-0.001, "−<$0.01/month"),
        (1_000_000, "+$1,000,000.00/month"),
    ],
)
def test_format_usd(value: float | None, text: str) -> None:
    assert format_usd(value) == text


# --- the Slack card ------------------------------------------------------------------------------------------------


def card_plan(actions: list[PlannedAction]) -> Plan:
    return Plan(
        id="p-0123456789abcdef", status="PROPOSED", alarm_arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
        alarm_name="checkout-live-p99", state_timestamp="2026-11-22T05:00:00.000Z", account="123456789012",
        region="us-east-1", signal="p99_latency", target="checkout:live", diagnosis="cold_starts", rule="r",
        mode="approve", actions=actions, created_at="2026-11-22T05:01:00Z", updated_at="2026-11-22T05:01:00Z",
    )  # fmt: skip


def change_section(plan: Plan) -> str:
    texts = [b["text"]["text"] for b in blocks_json(plan_blocks(plan)) if b["type"] == "section"]
    [change] = [text for text in texts if text.startswith("*Change*")]
    return change


def test_the_card_shows_each_changes_cost_and_the_plans_total() -> None:
    world = facts(pc_requested=20)
    actions = [
        planned("set_provisioned_concurrency", world, concurrency=72),
        planned("set_reserved_concurrency", world, concurrency=100),
    ]
    annotate_costs(actions, world, "us-east-1")

    change = change_section(card_plan(actions))

    lines = change.splitlines()
    assert lines[1] == "• `checkout:live` provisioned_concurrency: 20 → *72*"
    assert lines[2].startswith("  Cost: +$569.40/month — idle cost of the provisioned pool: +52 executions × 1 GB")
    assert lines[4] == "  Cost: $0/month — no charge for reserved concurrency (a cap and a guarantee, not billed)"
    assert lines[-1] == "*Total cost*: +$569.40/month"


def test_the_total_counts_out_changes_of_unknown_cost() -> None:
    world = facts(pc_requested=20, warm_duration_avg_ms=None)
    actions = [
        planned("set_provisioned_concurrency", world, concurrency=72),
        planned("set_memory", world, memory_mb=2048),
    ]
    annotate_costs(actions, world, "us-east-1")

    change = change_section(card_plan(actions))

    assert "  Cost: unknown — unknown: warm_duration_avg_ms" in change
    assert change.splitlines()[-1] == "*Total cost*: +$569.40/month, not counting 1 change of unknown cost"


def test_a_single_change_has_no_total_and_an_unpriced_one_no_cost_line() -> None:
    world = facts()
    priced = planned("set_provisioned_concurrency", world, concurrency=72)
    annotate_costs([priced], world, "us-east-1")

    assert "Total cost" not in change_section(card_plan([priced]))
    assert "Cost:" not in change_section(card_plan([planned("set_provisioned_concurrency", world, concurrency=72)]))
