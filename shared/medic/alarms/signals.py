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
- The target (:mod:`medic.alarms.targets`) comes from the metrics' dimensions, and is none when they name no single
  function or DB instance, or name one in another account or Region than the alarm's: an empty target never means
  "all", and Medic never changes a same-named resource where it acts.

Some alarms name a signal and a target and still must change nothing: :attr:`Signal.noop_reason` says why.

- The state is not ``ALARM``: ``OK`` (recovered, or within its threshold) or ``INSUFFICIENT_DATA`` (no data to
  judge).
- The value fell where only a rise is the problem (:mod:`medic.alarms.breach` reads the direction from the event): a
  lower band or ``LessThan…`` breach of ``Duration`` (latency dropped), ``Throttles``, ``ConcurrentExecutions``,
  spillover or ``DatabaseConnections``; or Medic cannot tell which way it breached. ``ProvisionedConcurrency-
  Utilization`` is the exception: too high (the pool is exhausted) and too low (paid for and idle, the cost row
  ``pc_overprovisioned``) are both what the spillover table handles, so its direction holds nothing back. A
  metric-math alarm whose expression fell says Medic cannot tell the metric rose; a metric Medic has no meaning
  for, classified by its ``medic:signal`` tag, is taken at its tag whichever way it breached.

Example::

    >>> signal = classify(parse_alarm_event(open("events/spillover-alarm.json").read()))  # doctest: +SKIP
    >>> signal.kind, signal.target.display  # doctest: +SKIP
    ('spillover', 'checkout:live')
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from medic.alarms.breach import BreachDirection, breach_of
from medic.alarms.events import AlarmConfiguration, AlarmStateChangeEvent, MetricStat
from medic.alarms.targets import Target, metric_in_another_account, resolve_target
from medic.vocabulary import SIGNAL_KINDS, SignalKind

__all__ = ["SIGNAL_KINDS", "SIGNAL_TAG", "TAIL_PERCENTILE", "Signal", "SignalKind", "Target", "classify"]

SIGNAL_TAG = "medic:signal"
"""Alarm tag whose value, when it is one of :data:`SIGNAL_KINDS`, overrides the classification."""

TAIL_PERCENTILE = 90.0
"""Lowest percentile of a ``Duration`` alarm that counts as ``p99_latency``."""

_FUNCTION_SIGNALS: frozenset[SignalKind] = frozenset({"throttles", "spillover", "p99_latency"})
#: Metrics whose breach in either direction is what a runbook table handles (see the module doc).
_EITHER_DIRECTION = frozenset({("AWS/Lambda", "ProvisionedConcurrencyUtilization")})
#: What a falling value of a metric (where only a rise is a problem) means, for the reason.
_FALLING = {
    ("AWS/Lambda", "Duration"): "latency dropped",
    ("AWS/Lambda", "Throttles"): "throttling fell",
    ("AWS/Lambda", "ConcurrentExecutions"): "concurrency fell",
    ("AWS/Lambda", "UnreservedConcurrentExecutions"): "concurrency fell",
    ("AWS/Lambda", "ProvisionedConcurrencySpilloverInvocations"): "spillover fell",
    ("AWS/RDS", "DatabaseConnections"): "connections fell",
}
_FIX: dict[SignalKind, str] = {
    "throttles": "capacity fix",
    "spillover": "capacity fix",
    "p99_latency": "latency fix",
    "db_connections": "concurrency cap",
    "unknown": "change",
}


class Signal(BaseModel):
    """The symptom an alarm reports, what it is about, the metric that said so, and why (one line).

    ``direction``: which way an ``ALARM`` breached (:mod:`medic.alarms.breach`), ``None`` when not read (another
    state, a
    re-proposal). ``noop_reason``: why this alarm must lead to no change although its signal and target may be
    known (see the module doc); ``None`` when nothing holds it back.
    """

    model_config = ConfigDict(frozen=True)

    kind: SignalKind
    target: Target
    metric: MetricStat | None
    reason: str
    direction: BreachDirection | None = None
    noop_reason: str | None = None

    @property
    def actionable(self) -> bool:
        """A known signal on a named target, with nothing holding it back; anything else can only be reported."""
        return self.kind != "unknown" and self.target.kind != "none" and self.noop_reason is None

    def undecided_reason(self, tables: Collection[str]) -> str | None:
        """Why triage records this alarm as a NOOP without collecting facts or deciding, given the runbook's
        ``tables`` (one per signal); ``None`` when it decides. ``medic explain`` prints the same."""
        if self.noop_reason is not None:
            return self.noop_reason
        if self.kind == "unknown":
            return self.reason
        if self.kind not in tables:
            return f"runbook has no table for signal {self.kind}"
        if self.target.kind == "none":
            return f"no actionable target: {self.reason}"
        return None


def classify(event: AlarmStateChangeEvent) -> Signal:
    """Classify an alarm state change event into a :class:`Signal` (never raises for a parsed event).

    Example::

        >>> signal = classify(parse_alarm_event(open("events/anomaly-lower-band-alarm.json").read()))  # doctest: +SKIP
        >>> signal.kind, signal.target.display, signal.direction  # doctest: +SKIP
        ('p99_latency', 'checkout:live', 'below')
        >>> signal.noop_reason  # doctest: +SKIP
        'AWS/Lambda Duration {FunctionName=checkout, Resource=checkout:live} p99/60s fell below its band (…)'
    """
    signal = _classify(event)
    state = event.detail.state
    if state.value != "ALARM":
        return signal.model_copy(update={"noop_reason": _state_noop_reason(event)})
    if event.detail.configuration.kind == "composite":
        return signal  # its state follows its rule over child alarms: no threshold, no direction
    breach = breach_of(state)
    noop_reason = None
    if signal.kind != "unknown" and signal.metric is not None:
        noop_reason = _direction_noop_reason(signal.kind, signal.metric, event.detail.configuration, *breach)
    return signal.model_copy(update={"direction": breach.direction, "noop_reason": noop_reason})


def _state_noop_reason(event: AlarmStateChangeEvent) -> str:
    """Why an ``OK`` or ``INSUFFICIENT_DATA`` state needs nothing (with CloudWatch's reason for the second: it tells
    "Unchecked: Initial alarm creation" from datapoints that stopped)."""
    state, previous = event.detail.state, event.detail.previous_state
    if state.value == "OK":
        if previous is not None and previous.value == "ALARM":
            return "state OK: the alarm recovered; nothing to remediate"
        return "state OK: the alarm is within its threshold; nothing to remediate"
    said = f" (CloudWatch: {_one_line(state.reason)})" if state.reason.strip() else ""
    return (
        f"state {state.value}: the alarm has no data to judge — check the metric is still emitted "
        f"(a function that is not invoked emits no datapoints); nothing to remediate{said}"
    )


def _direction_noop_reason(
    kind: SignalKind, stat: MetricStat, config: AlarmConfiguration, direction: BreachDirection, evidence: str
) -> str | None:
    """Why a breach in this direction must change nothing, or None when it is the direction the table fixes."""
    metric = stat.metric
    falling = _FALLING.get((metric.namespace, metric.name))
    if direction == "above" or (metric.namespace, metric.name) in _EITHER_DIRECTION or falling is None:
        return None  # a metric Medic has no meaning for was classified by its tag: the tag says what the alarm means
    if direction == "unknown":
        return (
            f"cannot tell whether {stat.describe()} breached above or below ({evidence}): Medic proposes no "
            f"{_FIX[kind]} on a direction it cannot read"
        )
    if config.kind == "metric_math":
        return (
            f"the alarm's expression fell below its threshold ({evidence}): Medic cannot tell that {metric.name} "
            f"rose; no {_FIX[kind]} is proposed"
        )
    bound = "band" if config.kind == "anomaly_detection" else "threshold"
    return (
        f"{stat.describe()} fell below its {bound} ({evidence}): {falling}; Medic proposes no {_FIX[kind]} for a fall"
    )


def _classify(event: AlarmStateChangeEvent) -> Signal:
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
    target, problem = resolve_target(evidence, event.account, event.region, function=kind in _FUNCTION_SIGNALS)
    elsewhere = metric_in_another_account(config, event.account)
    if elsewhere:
        target, problem = Target.none(), elsewhere
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
