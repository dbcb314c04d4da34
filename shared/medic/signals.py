"""Alarm → :class:`Signal`: which of the runbook's symptoms an alarm reports, and on what.

Classification reads the alarm's configuration, never its name:

=====================================================  ==================  ==========================
metric (``AWS/Lambda`` unless said otherwise)           signal              target
=====================================================  ==================  ==========================
``Throttles``                                           ``throttles``       function (alias)
``ConcurrentExecutions`` / ``UnreservedConcurrent…``    ``throttles``       function, or none when
                                                                            account-level (no
                                                                            ``FunctionName``)
``ProvisionedConcurrencySpilloverInvocations``          ``spillover``       function (alias)
``ProvisionedConcurrencyUtilization`` (high or low)     ``spillover``       function (alias)
``Duration`` with a tail percentile (p90 and above)     ``p99_latency``     function (alias)
``AWS/RDS DatabaseConnections``                         ``db_connections``  ``DBInstanceIdentifier``
anything else, composite alarms                         ``unknown``         none
=====================================================  ==================  ==========================

- ``Duration`` with ``Average``/``Maximum``/p50 is ``unknown``: the runbook's latency table is about tail
  latency (cold starts, CPU starvation), which an average hides and a maximum exaggerates.
- Metric math: every ``metricStat`` query is considered (the one feeding the returned expression first).
  Queries that name different signals, or different targets, give no target: Medic never guesses.
- An alarm tag ``medic:signal`` (propagated alarm tags) overrides the kind when it is a valid signal.
- The target comes from the dimensions: ``FunctionName`` (an ARN is reduced to the name), ``Resource``
  (``fn:alias`` or ``fn:version``) or ``ExecutedVersion`` for the qualifier. A ``Resource`` naming another
  function than ``FunctionName``, an invalid name, or no name at all gives ``Target(kind="none")``, and
  the reason says why: an empty target never means "all".

Example::

    >>> signal = classify(parse_alarm_event(open("events/spillover-alarm.json").read()))  # doctest: +SKIP
    >>> signal.kind, signal.target.display  # doctest: +SKIP
    ('spillover', 'checkout:live')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, model_validator

from medic.events import AlarmStateChangeEvent, MetricStat

SignalKind = Literal["throttles", "spillover", "p99_latency", "db_connections", "unknown"]
SIGNAL_KINDS: tuple[SignalKind, ...] = get_args(SignalKind)
SIGNAL_TAG = "medic:signal"
"""Alarm tag whose value, when it is one of :data:`SIGNAL_KINDS`, overrides the classification."""

TAIL_PERCENTILE = 90.0
"""Lowest percentile of a ``Duration`` alarm that counts as ``p99_latency``."""

_FUNCTION_SIGNALS: frozenset[SignalKind] = frozenset({"throttles", "spillover", "p99_latency"})
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUALIFIER = re.compile(r"^(?:\$LATEST|[A-Za-z0-9_-]{1,128})$")
_FUNCTION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:(?P<rest>.+)$")
_DB_INSTANCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")


class Target(BaseModel):
    """What a remediation would act on: a function (and alias/version), a DB instance, or nothing.

    ``kind="none"`` carries no names; a ``function`` target always has a valid function name. There is
    no wildcard: a target names exactly one resource or none.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["function", "db_instance", "none"]
    function_name: str | None = None
    qualifier: str | None = None
    db_instance_id: str | None = None

    @model_validator(mode="after")
    def _names_match_kind(self) -> Target:
        if self.kind == "function":
            if not self.function_name or not _FUNCTION_NAME.match(self.function_name):
                raise ValueError(f"a function target needs a valid function name, got {self.function_name!r}")
            if self.qualifier is not None and not _QUALIFIER.match(self.qualifier):
                raise ValueError(f"invalid function qualifier {self.qualifier!r}")
            if self.db_instance_id is not None:
                raise ValueError("a function target has no db_instance_id")
        elif self.kind == "db_instance":
            if not self.db_instance_id or not _DB_INSTANCE_ID.match(self.db_instance_id):
                raise ValueError(f"a db_instance target needs a valid instance id, got {self.db_instance_id!r}")
            if self.function_name is not None or self.qualifier is not None:
                raise ValueError("a db_instance target has no function name or qualifier")
        elif (self.function_name, self.qualifier, self.db_instance_id) != (None, None, None):
            raise ValueError("a 'none' target names nothing")
        return self

    @classmethod
    def none(cls) -> Target:
        return cls(kind="none")

    @classmethod
    def function(cls, name: str, qualifier: str | None = None) -> Target:
        return cls(kind="function", function_name=name, qualifier=qualifier)

    @classmethod
    def db_instance(cls, instance_id: str) -> Target:
        return cls(kind="db_instance", db_instance_id=instance_id)

    @property
    def display(self) -> str:
        """``checkout:live``, ``checkout``, ``db orders-db`` or ``(none)``."""
        if self.kind == "function":
            return f"{self.function_name}:{self.qualifier}" if self.qualifier else f"{self.function_name}"
        if self.kind == "db_instance":
            return f"db {self.db_instance_id}"
        return "(none)"


class Signal(BaseModel):
    """The symptom an alarm reports, what it is about, the metric that said so, and why (one line)."""

    model_config = ConfigDict(frozen=True)

    kind: SignalKind
    target: Target
    metric: MetricStat | None
    reason: str

    @property
    def actionable(self) -> bool:
        """A known signal on a named target; anything else can only be reported."""
        return self.kind != "unknown" and self.target.kind != "none"


def classify(event: AlarmStateChangeEvent) -> Signal:
    """Classify an alarm state change event into a :class:`Signal` (never raises for a parsed event)."""
    config = event.detail.configuration
    tag_kind, tag_note = _tag_override(event.detail.alarm_tags)
    if config.kind == "composite":
        ignored = f"; {SIGNAL_TAG} tag ignored" if tag_kind else ""
        return _unknown(
            None, f"composite alarm ({_one_line(config.alarm_rule or '')}): classify its child alarms instead{ignored}"
        )

    primary = config.primary_metric
    if config.kind == "metric_math":
        candidates = _unique([primary, *config.metric_stats])
    else:
        candidates = [primary] if primary else []
    if not candidates:
        return _unknown(None, f"{config.kind.replace('_', ' ')} alarm with no metricStat query: nothing to classify")

    kind: SignalKind
    if tag_kind is not None:
        kind, evidence = tag_kind, candidates
        why = f"{SIGNAL_TAG}={tag_kind} tag on the alarm ({candidates[0].describe()})"
    else:
        decided = _decide_from_metrics(candidates)
        if isinstance(decided, str):
            return _unknown(primary, decided + tag_note)
        kind, evidence = decided
        why = evidence[0].describe()

    if kind == "unknown":
        return _unknown(primary, f"{why} → unknown")
    target, problem = _resolve_target(kind, evidence)
    if target.kind == "none":
        reason = f"{why} → {kind}, but no target: {problem}; an empty target never means all{tag_note}"
    else:
        reason = f"{why} → {kind} on {target.display}{tag_note}"
    return Signal(kind=kind, target=target, metric=evidence[0], reason=reason)


def _decide_from_metrics(candidates: list[MetricStat]) -> tuple[SignalKind, list[MetricStat]] | str:
    """The one signal the queries agree on and the queries that show it, or why there is none."""
    matches = [(stat, kind) for stat in candidates if (kind := _kind_of(stat)) is not None]
    kinds = list(dict.fromkeys(kind for _, kind in matches))
    if not kinds:
        return _why_not(candidates[0])
    if len(kinds) > 1:
        return f"metric math mixes signals ({', '.join(kinds)}): never guess → unknown"
    return kinds[0], [stat for stat, _ in matches]


def _unknown(metric: MetricStat | None, reason: str) -> Signal:
    return Signal(kind="unknown", target=Target.none(), metric=metric, reason=reason)


def _kind_of(stat: MetricStat) -> SignalKind | None:
    namespace, name = stat.metric.namespace, stat.metric.name
    if namespace == "AWS/Lambda":
        if name in ("Throttles", "ConcurrentExecutions", "UnreservedConcurrentExecutions"):
            return "throttles"
        if name in ("ProvisionedConcurrencySpilloverInvocations", "ProvisionedConcurrencyUtilization"):
            return "spillover"  # the provisioned pool's table: spillover, and its utilization either way
        if name == "Duration":
            percentile = stat.percentile
            return "p99_latency" if percentile is not None and percentile >= TAIL_PERCENTILE else None
    if namespace == "AWS/RDS" and name == "DatabaseConnections":
        return "db_connections"
    return None


def _why_not(stat: MetricStat) -> str:
    if stat.metric.namespace == "AWS/Lambda" and stat.metric.name == "Duration":
        return (
            f"{stat.describe()}: only tail-percentile Duration alarms (p{TAIL_PERCENTILE:g} and above) "
            f"are p99_latency, not {stat.stat} → unknown"
        )
    return f"{stat.describe()} is not a signal Medic knows → unknown"


def _tag_override(tags: Mapping[str, str]) -> tuple[SignalKind | None, str]:
    """The kind named by the ``medic:signal`` tag, or None and a note saying why it was ignored."""
    value = tags.get(SIGNAL_TAG)
    if value is None:
        return None, ""
    for kind in SIGNAL_KINDS:
        if value.strip() == kind:
            return kind, ""
    return None, f"; ignored {SIGNAL_TAG}={value!r} (valid: {', '.join(SIGNAL_KINDS)})"


def _resolve_target(kind: SignalKind, stats: Iterable[MetricStat]) -> tuple[Target, str]:
    """One target agreed on by every query that names one; else ``Target.none()`` and the reason."""
    resolve = _function_target if kind in _FUNCTION_SIGNALS else _db_target
    targets: list[Target] = []
    missing = ""
    for stat in stats:
        target, problem, named = resolve(stat.metric.dimensions)
        if target is not None:
            targets.append(target)
        elif named:
            return Target.none(), problem
        else:
            missing = missing or problem
    distinct = list(dict.fromkeys(targets))
    if len(distinct) == 1:
        return distinct[0], ""
    if len(distinct) > 1:
        return Target.none(), f"queries name different targets ({', '.join(t.display for t in distinct)})"
    return Target.none(), missing


def _function_target(dimensions: Mapping[str, str]) -> tuple[Target | None, str, bool]:
    """(target, problem, whether the dimensions tried to name a function)."""
    function_dim = dimensions.get("FunctionName", "").strip()
    resource_dim = dimensions.get("Resource", "").strip()
    version_dim = dimensions.get("ExecutedVersion", "").strip()
    if not function_dim and not resource_dim:
        return None, "no FunctionName dimension (account-level metric, no single function)", False

    name, qualifier = _split_function(function_dim) if function_dim else (None, None)
    if resource_dim:
        resource_name, resource_qualifier = _split_function(resource_dim)
        if name is not None and resource_name != name:
            return None, f"Resource {resource_dim!r} names another function than FunctionName {function_dim!r}", True
        name = resource_name
        if qualifier is not None and resource_qualifier is not None and qualifier != resource_qualifier:
            return None, f"Resource {resource_dim!r} and FunctionName {function_dim!r} name different qualifiers", True
        qualifier = resource_qualifier or qualifier
    qualifier = qualifier or version_dim or None

    if name is None or not _FUNCTION_NAME.match(name):
        return None, f"{name or function_dim!r} is not a valid function name", True
    if qualifier is not None and not _QUALIFIER.match(qualifier):
        return None, f"{qualifier!r} is not a valid alias or version", True
    return Target.function(name, qualifier), "", True


def _split_function(value: str) -> tuple[str, str | None]:
    """``checkout`` → (checkout, None); ``checkout:live`` or a function ARN → (checkout, live)."""
    arn = _FUNCTION_ARN.match(value)
    if arn:
        value = arn.group("rest")
    name, _, qualifier = value.partition(":")
    return name, qualifier or None


def _db_target(dimensions: Mapping[str, str]) -> tuple[Target | None, str, bool]:
    instance_id = dimensions.get("DBInstanceIdentifier", "").strip()
    if not instance_id:
        scope = " (cluster-level metric)" if "DBClusterIdentifier" in dimensions else ""
        return None, f"no DBInstanceIdentifier dimension{scope}", False
    if not _DB_INSTANCE_ID.match(instance_id):
        return None, f"{instance_id!r} is not a valid DB instance identifier", True
    return Target.db_instance(instance_id), "", True


def _unique(stats: Iterable[MetricStat | None]) -> list[MetricStat]:
    # By identity: MetricStat holds a dict of dimensions, so it is not hashable.
    unique: list[MetricStat] = []
    for stat in stats:
        if stat is not None and all(stat is not seen for seen in unique):
            unique.append(stat)
    return unique


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
