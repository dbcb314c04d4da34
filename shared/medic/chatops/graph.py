"""The alarm's metric graph on the card: CloudWatch `GetMetricWidgetImage` around the breach, uploaded into the
card's thread with Slack's files API (`files_upload_v2`).

People would rather look than read, but a graph is a nicety: when no image can be had (the API refuses or is not
served, the answer is not a PNG, Slack refuses the upload) the card's text datapoints stand alone, and the log says
why (`metric_graph` with `posted: false`). Nothing here ever fails the card it decorates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic.clock import iso, parse_iso
from medic.log import get_logger

if TYPE_CHECKING:
    from medic.plan import Plan
    from medic.runtime import Runtime

#: The graph shows at least this long before the breach (or 30 periods, whichever is longer; at most a day) ...
BEFORE_S = 3600
PERIODS_BEFORE = 30
MAX_BEFORE_S = 86400
#: ... and this long after it (CloudWatch draws nothing past "now").
AFTER_S = 900
WIDTH, HEIGHT = 800, 400
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metric_widget(
    metric: Mapping[str, Any], breach_at: str, *, threshold: float | None, now: datetime
) -> dict[str, Any]:
    """The `MetricWidget` JSON of GetMetricWidgetImage: the alarm's metric around the breach, with the threshold as a
    horizontal annotation and the moment of the breach as a vertical one."""
    breach = parse_iso(breach_at)
    period = int(metric.get("period") or 60)
    before = min(max(BEFORE_S, PERIODS_BEFORE * period), MAX_BEFORE_S)
    start = breach - timedelta(seconds=before)
    end = max(breach + timedelta(seconds=AFTER_S), min(now, breach + timedelta(seconds=MAX_BEFORE_S)))
    dimensions = [part for key, value in sorted(dict(metric.get("dimensions") or {}).items()) for part in (key, value)]
    annotations: dict[str, Any] = {"vertical": [{"label": "ALARM", "value": iso(breach)}]}
    if threshold is not None:
        annotations["horizontal"] = [{"label": "threshold", "value": threshold}]
    return {
        "metrics": [[metric["namespace"], metric["name"], *dimensions, {"stat": metric.get("stat") or "Average"}]],
        "period": period,
        "start": iso(start),
        "end": iso(end),
        "timezone": "+0000",
        "view": "timeSeries",
        "stacked": False,
        "width": WIDTH,
        "height": HEIGHT,
        "title": f"{metric['name']} ({metric.get('stat')}, {period}s)",
        "annotations": annotations,
        "legend": {"position": "hidden"},
    }


def render_graph(cloudwatch: Any, widget: Mapping[str, Any]) -> tuple[bytes | None, str]:
    """(the PNG, "") or (None, why not). Any refusal or unsupported API means "unavailable", never an error."""
    from botocore.exceptions import BotoCoreError, ClientError

    from medic.aws import error_code

    try:
        response = cloudwatch.get_metric_widget_image(MetricWidget=json.dumps(widget), OutputFormat="png")
    except (ClientError, BotoCoreError, NotImplementedError) as exc:
        return None, f"GetMetricWidgetImage: {error_code(exc)}"
    image = response.get("MetricWidgetImage") if isinstance(response, Mapping) else None
    if not isinstance(image, bytes | bytearray) or not bytes(image).startswith(PNG_MAGIC):
        return None, "GetMetricWidgetImage returned no PNG"
    return bytes(image), ""


def attach_metric_graph(
    plan: Plan, rt: Runtime, channel: str, ts: str, now: datetime, cloudwatch: Any | None = None
) -> str | None:
    """Upload the alarm's graph into the thread of the card `ts`; the file id, or None when it was not posted (the
    card's text datapoints are the fallback). Logged either way as `metric_graph`."""
    from slack_sdk.errors import SlackClientError

    transport = rt.slack
    if transport is None or not plan.metric or not plan.state_timestamp:
        return None
    widget = metric_widget(plan.metric, plan.state_timestamp, threshold=plan.alarm_threshold, now=now)
    image, reason = render_graph(cloudwatch if cloudwatch is not None else _graph_client(rt), widget)
    file_id = ""
    if image is not None:
        metric = plan.metric
        title = f"{metric['name']} around the breach of {plan.alarm_name}"
        alt = (
            f"{metric['namespace']} {metric['name']} ({metric.get('stat')}, {metric.get('period')}s) from "
            f"{widget['start']} to {widget['end']}; threshold {plan.alarm_threshold}; "
            f"ALARM at {plan.state_timestamp}"
        )
        try:
            file_id = transport.upload(channel, ts, f"{plan.id}.png", image, title, alt[:1000]) or "uploaded"
        except SlackClientError as exc:
            reason = f"Slack refused the upload: {type(exc).__name__}: {str(exc)[:200]}"
    if file_id:
        rt.ledger.append(
            plan.id,
            "metric_graph",
            {"posted": True, "file_id": file_id, "bytes": len(image or b""), "widget": widget},
            now,
        )
        return file_id
    rt.ledger.append(plan.id, "metric_graph", {"posted": False, "reason": reason, "fallback": "text datapoints"}, now)
    get_logger(plan_id=plan.id).info("metric_graph_unavailable", reason=reason)
    return None


def _graph_client(rt: Runtime) -> Any:
    """CloudWatch with one attempt and short timeouts: a missing graph is better than a late card."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    return rt.clients.with_config(config).cloudwatch
