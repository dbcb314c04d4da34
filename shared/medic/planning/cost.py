"""What a planned change adds to (or takes off) the monthly bill, from a dated price table kept as data.

The prices live in ``prices.json`` (shipped with the package): per region and architecture, Lambda's on-demand
duration, provisioned-concurrency and PC-duration prices per GB-second and its request price, and SQS's standard
request price, with the date they were known (``as_of``) and where they come from. A region the table does not list
is priced as us-east-1, and the basis says so. An estimate that needs a fact Medic does not know is ``None`` with a
basis ``"unknown: <fact>"``: never a guess.

Example::

    >>> from medic.actions.base import PlannedAction
    >>> from medic.facts import Facts
    >>> action = PlannedAction(kind="set_provisioned_concurrency", target="checkout:live",
    ...                        primary="provisioned_concurrency", before={"provisioned_concurrency": 20},
    ...                        after={"provisioned_concurrency": 30})
    >>> usd, basis = estimate(action, Facts(memory_mb=1024), "us-east-1")
    >>> format_usd(usd)
    '+$109.50/month'
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator

from medic.errors import ConfigError
from medic.facts import METRIC_WINDOW, Facts

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction, Scalar

PRICES_FILE: Final = "prices.json"
#: Where a region missing from the table is priced (the table must list it, with every architecture).
FALLBACK_REGION: Final = "us-east-1"
ARCHITECTURES: Final = ("x86_64", "arm64")
SECONDS_PER_HOUR: Final = 3600
#: `Facts.invocations` is a sum over METRIC_WINDOW: this many windows make an hour.
WINDOWS_PER_HOUR: Final = timedelta(hours=1) / METRIC_WINDOW
#: A daily pre-warm is priced over this many days a month.
PREWARM_DAYS_PER_MONTH: Final = 30
#: SQS requests per buffered message: SendMessage, ReceiveMessage, DeleteMessage (batching lowers it).
SQS_REQUESTS_PER_MESSAGE: Final = 3
MB_PER_GB: Final = 1024
UNKNOWN: Final = "unknown: "

Estimate = tuple[float | None, str]


class LambdaPrices(BaseModel):
    """Lambda list prices of one region and architecture (USD)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_gb_s: PositiveFloat = Field(description="on-demand duration, per GB-second")
    provisioned_gb_s: PositiveFloat = Field(description="provisioned concurrency configured, per GB-second")
    provisioned_duration_gb_s: PositiveFloat = Field(description="duration served on provisioned concurrency")
    requests_per_million: PositiveFloat


class RegionPrices(BaseModel):
    """One region's prices; an architecture left out is one whose prices are not known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x86_64: LambdaPrices | None = None
    arm64: LambdaPrices | None = None
    sqs_standard_requests_per_million: PositiveFloat


class PriceTable(BaseModel):
    """``prices.json``: dated list prices per region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: str = Field(pattern=r"^\d{4}(-\d{2}){0,2}$", description="when these were the list prices: YYYY[-MM[-DD]]")
    source: str = Field(min_length=1)
    currency: Literal["USD"]
    hours_per_month: PositiveFloat
    note: str = ""
    units: dict[str, str] = Field(default_factory=dict)
    regions: dict[str, RegionPrices]

    @field_validator("regions")
    @classmethod
    def _has_fallback(cls, regions: dict[str, RegionPrices]) -> dict[str, RegionPrices]:
        fallback = regions.get(FALLBACK_REGION)
        if fallback is None or any(getattr(fallback, arch) is None for arch in ARCHITECTURES):
            raise ValueError(
                f"must list {FALLBACK_REGION} with {' and '.join(ARCHITECTURES)} prices (regions not listed use it)"
            )
        return regions


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The price table at `path`; without one, the table shipped with Medic (read once, then cached).

    A table that is not JSON or does not match :class:`PriceTable` raises :class:`ConfigError` naming the file and
    the first failing field (e.g. ``regions.eu-west-1.x86_64.provisioned_gb_s``).
    """
    if path is None:
        return _shipped_prices()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(field="(root)", source=source, problem=f"cannot read the price table: {exc}") from exc
    return _parse(text, source)


@functools.cache
def _shipped_prices() -> PriceTable:
    resource = importlib.resources.files("medic").joinpath(PRICES_FILE)
    return _parse(resource.read_text(encoding="utf-8"), str(resource))


def _parse(text: str, source: str) -> PriceTable:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(field="(root)", source=source, problem=f"not JSON: {exc}") from exc
    try:
        return PriceTable.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(field=field, source=source, problem=first["msg"] + more) from exc


class Rates(BaseModel):
    """The prices one estimate uses, and how to say where they came from."""

    model_config = ConfigDict(frozen=True)

    table: PriceTable
    lambda_: LambdaPrices
    sqs_per_million: float
    label: str

    @property
    def month_s(self) -> float:
        return self.table.hours_per_month * SECONDS_PER_HOUR


def rates_for(table: PriceTable, region: str, architecture: str) -> Rates | str:
    """The region's prices for the architecture, or why there are none (a string)."""
    if architecture not in ARCHITECTURES:
        return f"{UNKNOWN}architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}"
    priced = region if region in table.regions else FALLBACK_REGION
    prices = table.regions[priced]
    lambda_prices: LambdaPrices | None = getattr(prices, architecture)
    if lambda_prices is None:
        return f"{UNKNOWN}no {architecture} prices for {priced} in {PRICES_FILE} (as of {table.as_of})"
    label = f"{priced} {architecture} list prices as of {table.as_of}"
    if priced != region:
        label += f"; {region or 'the region'} is not in {PRICES_FILE}, so {FALLBACK_REGION} prices are used"
    return Rates(
        table=table, lambda_=lambda_prices, sqs_per_million=prices.sqs_standard_requests_per_million, label=label
    )


# -- formatting ---------------------------------------------------------------------------------------


def format_usd(value: float | None) -> str:
    """A monthly cost delta for people.

    >>> format_usd(1234.561), format_usd(-12), format_usd(0.0), format_usd(None)
    ('+$1,234.56/month', '−$12.00/month', '$0/month', 'unknown')
    """
    if value is None:
        return "unknown"
    if value == 0:
        return "$0/month"
    sign = "+" if value > 0 else "−"
    if abs(value) < 0.005:
        return f"{sign}<$0.01/month"
    return f"{sign}${abs(value):,.2f}/month"


def price_text(value: float) -> str:
    """A per-GB-second price as the price list writes it: $0.0000166667."""
    return "$" + f"{value:.10f}".rstrip("0")


def gb_text(memory_mb: float) -> str:
    gb = memory_mb / MB_PER_GB
    return f"{gb:.4f}".rstrip("0").rstrip(".") + " GB"


def signed_gb_text(delta_mb: float) -> str:
    return ("+" if delta_mb >= 0 else "−") + gb_text(abs(delta_mb))


def count_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def signed_text(value: float) -> str:
    return ("+" if value >= 0 else "−") + count_text(abs(value))


# -- reading the action and the facts -------------------------------------------------------------------


def field_number(values: dict[str, Scalar], key: str) -> float | None:
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def missing(facts: Facts, *names: str) -> str:
    """``unknown: memory_mb (why it is unknown, when the collector said)``."""
    parts = [f"{name} ({facts.missing[name]})" if name in facts.missing else name for name in names]
    return UNKNOWN + ", ".join(parts)


def unknown_field(action: PlannedAction, side: str, key: str) -> str:
    return f"{UNKNOWN}the action's {side}.{key} (needed to price {action.kind})"


def daily_minute(cron: Scalar) -> int | None:
    """The UTC minute of the day of a daily ``cron(M H * * ? *)`` schedule."""
    if not isinstance(cron, str) or not cron.startswith("cron(") or not cron.endswith(")"):
        return None
    fields = cron[len("cron(") : -1].split()
    if len(fields) < 2 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    return int(fields[1]) * 60 + int(fields[0])


def monthly_invocations(facts: Facts, table: PriceTable) -> float | None:
    if facts.invocations is None:
        return None
    return facts.invocations * WINDOWS_PER_HOUR * table.hours_per_month


def invocations_text(facts: Facts, monthly: float, table: PriceTable) -> str:
    minutes = int(METRIC_WINDOW.total_seconds() // 60)
    return (
        f"{count_text(monthly)} invocations/month ({count_text(facts.invocations or 0)} in the last {minutes} min "
        f"× {WINDOWS_PER_HOUR:g} × {count_text(table.hours_per_month)} h)"
    )


def estimate(
    action: PlannedAction,
    facts: Facts,
    region: str,
    architecture: str = "x86_64",
    *,
    prices: PriceTable | None = None,
) -> Estimate:
    """(USD per month, the basis with the numbers used) of one planned change; (None, "unknown: …") when a fact
    or price it needs is not known. `prices` defaults to the shipped table."""
    from medic.actions import registry

    impl = registry().get(action.kind)
    if impl is None:
        return None, f"{UNKNOWN}no cost model for action kind {action.kind!r}"
    if impl.free is not None:
        return 0.0, impl.free
    rates = rates_for(prices or load_prices(), region, architecture)
    if isinstance(rates, str):
        return None, rates
    return impl.estimate(action, facts, rates)


def annotate_costs(
    actions: list[PlannedAction],
    facts: Facts,
    region: str,
    architecture: str = "x86_64",
    *,
    prices: PriceTable | None = None,
) -> None:
    """Fill `cost_monthly_usd` and `cost_basis` of each action (x86_64 prices unless told: the facts do not
    carry the function's architecture)."""
    for action in actions:
        action.cost_monthly_usd, action.cost_basis = estimate(action, facts, region, architecture, prices=prices)
