"""The qualifier an unqualified alarm's traffic hits: the alias with most invocations (its `Resource` series, else
its `ExecutedVersion` series), else $LATEST on evidence, else the versions in the function's log stream names. The
same `GetMetricData` reads every candidate's own series too, so such a triage reads all its metrics in one request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from medic.aws import AwsClients, error_code
from medic.facts import metrics
from medic.facts.model import Facts
from medic.facts.reports import default_log_group
from medic.facts.series import Points, SeriesSpec, in_window, read_series, window, window_start

#: An unqualified alarm's candidates (aliases + $LATEST) whose metrics are read with the traffic split in one request
#: (a few dozen series each, under GetMetricData's 500 queries); a function with more aliases reads them afterwards.
PREFETCH_ALIASES: Final = 12


def traffic_qualifier(
    clients: AwsClients, facts: Facts, name: str, now: datetime, kind: str, read: dict[SeriesSpec, Points]
) -> tuple[str | None, list[Any] | None]:
    """Which qualifier an unqualified alarm's traffic hits: the alias with most invocations, else $LATEST.

    An alias's invocations: its `Resource` series, else its `ExecutedVersion` series (the versions it routes to);
    when an account has neither, the versions in the function's log stream names. $LATEST only on evidence (no
    alias, or streams of $LATEST only), never because the aliases' series are missing. The same GetMetricData
    reads every candidate's own series too, so the triage reads all its metrics in one request (into `read`).

    Returns the qualifier, and the aliases as listed when the listing was whole (one page): what
    `function.provisioned_elsewhere` would list again."""
    listed: list[Any] | None = None
    try:
        response = clients.lambda_.list_aliases(FunctionName=name)
        aliases = response.get("Aliases", [])
        listed = None if response.get("NextMarker") else list(aliases)
        total = SeriesSpec.lambda_("Invocations", "Sum", FunctionName=name)
        by_alias: dict[str, list[SeriesSpec]] = {}
        versions: dict[str, str] = {}
        for alias in aliases:
            resource = f"{name}:{alias['Name']}"
            routed = [
                str(alias["FunctionVersion"]),
                *((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}),
            ]
            versions.update({version: alias["Name"] for version in routed[:1]})
            by_alias[alias["Name"]] = [
                SeriesSpec.lambda_("Invocations", "Sum", FunctionName=name, Resource=resource),
                *(
                    SeriesSpec.lambda_(
                        "Invocations", "Sum", FunctionName=name, Resource=resource, ExecutedVersion=version
                    )
                    for version in routed
                ),
            ]
        specs = [total, *(spec for specs in by_alias.values() for spec in specs)]
        if len(aliases) <= PREFETCH_ALIASES:
            for candidate in [*by_alias, "$LATEST"]:
                specs += metrics.series_of(kind, name, candidate)
        read.update(read_series(clients, specs, now, metrics.lookback(kind)))
    except Exception as exc:  # noqa: BLE001 - any failure leaves the fact unknown, with the reason
        failed = f"lambda:ListAliases/cloudwatch:GetMetricData failed: {error_code(exc)}"
        facts.missing["traffic_qualifier"] = failed
        return None, listed

    def invoked(spec: SeriesSpec) -> float:
        return sum(v for _, v in in_window(read.get(spec, []), now))

    counts = {alias: invoked(specs[0]) or sum(invoked(spec) for spec in specs[1:]) for alias, specs in by_alias.items()}
    everything = invoked(total)
    facts.sources["traffic_qualifier"] = (
        "lambda:ListAliases + cloudwatch:GetMetricData Invocations by Resource (else by ExecutedVersion)"
    )
    busiest = max(counts, key=counts.__getitem__, default=None)
    if busiest is not None and counts[busiest] > 0 and counts[busiest] >= everything / 2:
        facts.traffic_qualifier = busiest
    elif everything > 0 and not by_alias:
        facts.traffic_qualifier = "$LATEST"  # invoked unqualified: $LATEST, where PC cannot be configured
    elif everything > 0:
        qualifier_from_streams(clients, facts, name, versions, now)
    else:
        facts.missing["traffic_qualifier"] = (
            f"no datapoints in the last {window()} for {total.describe()} nor its aliases' Resource series"
        )
    return facts.traffic_qualifier, listed


def qualifier_from_streams(
    clients: AwsClients, facts: Facts, name: str, aliases: dict[str, str], now: datetime
) -> None:
    """The qualifier from the versions in the log stream names the function wrote to in the window (Lambda names
    them `…/[<version>]…`, `…/<name>[<version>]…` in a custom group): only $LATEST, or versions one alias serves."""
    try:
        logging = clients.lambda_.get_function(FunctionName=name)["Configuration"].get("LoggingConfig") or {}
        group = str(logging.get("LogGroup") or default_log_group(name))
        streams = (
            clients.client("logs")
            .describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=50)
            .get("logStreams", [])
        )
    except Exception as exc:  # noqa: BLE001 - any failure leaves the fact unknown, with the reason
        facts.missing["traffic_qualifier"] = (
            f"no Invocations by alias, and lambda:GetFunction/logs:DescribeLogStreams failed: {error_code(exc)}"
        )
        return
    since = int(window_start(now).timestamp() * 1000)
    shared = group != default_log_group(name)
    seen = set()
    for stream in streams:
        stream_name = str(stream.get("logStreamName", ""))
        if int(stream.get("lastEventTimestamp") or 0) < since or (shared and f"/{name}[" not in stream_name):
            continue
        version = stream_name.partition("[")[2].partition("]")[0]
        if version:
            seen.add(version)
    served = {aliases.get(version, "?" if version != "$LATEST" else "$LATEST") for version in seen}
    source = f"logs:DescribeLogStreams {group}: the versions the function logged from ({', '.join(sorted(seen))})"
    if len(served) == 1 and "?" not in served:
        facts.traffic_qualifier = served.pop()
        facts.sources["traffic_qualifier"] = source
    else:
        facts.missing["traffic_qualifier"] = (
            "no Invocations by alias (Resource or ExecutedVersion) in the last "
            f"{window()}, and the log streams do not name one qualifier ({', '.join(sorted(seen)) or 'none'})"
        )
