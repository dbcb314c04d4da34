"""Facts: what Medic knows about the alarm's target, each fact with its source and window.

- `model`: the `Facts` model (`None` is unknown, `missing` says why) and the fact types runbook expressions see;
- `series`: the CloudWatch series a triage reads, in one `GetMetricData`;
- `chains`: the fallback chain of each metric fact (the first source with datapoints wins, and is named);
- `reports`: the function's REPORT lines, Text or JSON, in its own or a custom log group;
- `database`: an RDS instance, its max_connections and its consumer functions (a db_connections alarm's facts);
- `function`: the function's configuration, alias, provisioned concurrency, autoscaling, and the account's settings;
- `invokers`: the function's event source mappings and resource-based policies, and its invocation type;
- `metrics`: the series a signal reads and the metric facts resolved from them;
- `qualifier`: the qualifier an unqualified alarm's traffic hits;
- `derived`: the facts derived from others without a call (and the alarm's own, from the event);
- `jobs`: readers run concurrently, a failed call leaving its facts unknown with the reason;
- `on_demand`: `OnDemandFacts`, whose groups of facts are read the first time one of their facts is read;
- `collector`: `FactCollector`: `collect` runs the phases in order, up front; `on_demand` (triage) defers them.
"""

from medic.facts.collector import FactCollector
from medic.facts.database import engine_default as _engine_default
from medic.facts.invokers import invocation_type
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
