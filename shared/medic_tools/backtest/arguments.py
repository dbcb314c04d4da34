"""`medic backtest`'s arguments (imported when the CLI builds its parser: nothing heavy here)."""

from __future__ import annotations

import argparse
from typing import Final

#: Calls a second by default: modest beside the APIs' own rates (GetMetricData serves 50 a second by default; the
#: Lambda control plane's reads 15 to 100), so a backtest leaves room for everything else reading the account.
DEFAULT_RATE: Final = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        default="7d",
        metavar="30d|12h|2w|ISO",
        help="the period's start: a duration back from now or an ISO date/time (default: 7d)",
    )
    parser.add_argument("--until", metavar="ISO|DURATION", help="the period's end (default: now)")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME",
        help="only this opted-in function's alarms (repeatable)",
    )
    parser.add_argument(
        "--runbook",
        metavar="FILE",
        help="decide with this runbook, or this override on the deployed one (default: MEDIC_RUNBOOK "
        "and MEDIC_RUNBOOK_OVERRIDES, as triage)",
    )
    parser.add_argument("--override", action="append", default=[], metavar="FILE", help="runbook override layer")
    parser.add_argument(
        "--against",
        metavar="FILE",
        help="decide under this runbook (or override) too, and list the decisions it alters",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="CALLS/S",
        help=f"AWS calls a second at most (default: {DEFAULT_RATE:g})",
    )
    parser.add_argument("--resume", metavar="FILE", help="JSON lines of finished transitions: skipped when rerun")
    parser.add_argument("--json", action="store_true", help="print the document (docs/BACKTEST.md) instead of a table")
    parser.add_argument("--report", metavar="FILE.md|FILE.html", help="also write a report with a chart per function")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--stack", metavar="NAME", help="the deployed Medic's stack: its outputs name the log's tables")
