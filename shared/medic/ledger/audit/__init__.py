"""The remediation log for operators: which plans there were (`listing`), the whole story of one (`story`, its
records in words by `describe`), whether the chains hold (`verify`), and an export of every record (`export`).
`medic log list|show|verify|export` prints what these modules return; the names are all importable from here.

Everything reads through `Ledger`'s public methods; nothing here writes.
"""

from medic.ledger.audit.describe import describe_event
from medic.ledger.audit.export import EXPORT_FIELDS, EXPORT_FORMATS, export_events, export_record, write_export
from medic.ledger.audit.listing import (
    functions_of,
    list_plans,
    list_plans_and_problems,
    parse_since,
    plan_row,
    plans_table,
    table,
    unreadable_lines,
    who_decided,
)
from medic.ledger.audit.story import PlanStory, chain_status, load_story
from medic.ledger.audit.templates import Waiting, waiting_for_template, waiting_text
from medic.ledger.audit.verify import verify_chains, verify_text

__all__ = [
    "EXPORT_FIELDS",
    "EXPORT_FORMATS",
    "PlanStory",
    "Waiting",
    "chain_status",
    "describe_event",
    "export_events",
    "export_record",
    "functions_of",
    "list_plans",
    "list_plans_and_problems",
    "load_story",
    "parse_since",
    "plan_row",
    "plans_table",
    "table",
    "unreadable_lines",
    "verify_chains",
    "verify_text",
    "waiting_for_template",
    "waiting_text",
    "who_decided",
    "write_export",
]
