"""Facts: what Medic knows about the alarm's target, each fact with its source and window.

- `model`: the `Facts` model (`None` is unknown, `missing` says why) and the fact types runbook expressions see;
- `series`: the CloudWatch series a triage reads, in one `GetMetricData`;
- `chains`: the fallback chain of each metric fact (the first source with datapoints wins, and is named);
- `reports`: the function's REPORT lines, Text or JSON, in its own or a custom log group;
- `database`: an RDS instance, its max_connections and its consumer functions;
- `collector`: `FactCollector`, which runs the calls concurrently and derives the rest.
"""

from medic.facts.collector import FactCollector, invocation_type
from medic.facts.database import engine_default as _engine_default
from medic.facts.model import (
    BASELINE,
    DATABASE_TAG,
    FACT_TYPES,
    INVOCATION_TAG,
    METRIC_PERIOD_S,
    METRIC_WINDOW,
    VCPU_MB,
    ConsumerFacts,
    EventSourceFacts,
    Facts,
)
from medic.facts.reports import REPORT_QUERY, WARM_QUERY, ReportLine, parse_report_line, summarize_report_lines
from medic.facts.series import align_up

__all__ = [
    "BASELINE",
    "DATABASE_TAG",
    "FACT_TYPES",
    "INVOCATION_TAG",
    "METRIC_PERIOD_S",
    "METRIC_WINDOW",
    "REPORT_QUERY",
    "VCPU_MB",
    "WARM_QUERY",
    "ConsumerFacts",
    "EventSourceFacts",
    "FactCollector",
    "Facts",
    "ReportLine",
    "_engine_default",
    "align_up",
    "invocation_type",
    "parse_report_line",
    "summarize_report_lines",
]
