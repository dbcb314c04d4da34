"""`medic log export`: every record of the log, as JSON lines or CSV, with every field of its hash so that an export
can be re-verified; what cannot be read is named, never exported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from medic.errors import InputError
from medic.ledger.audit.listing import CLI
from medic.ledger.keys import CONTROL_KEYS

if TYPE_CHECKING:
    from medic.ledger.store import Ledger, LogEvent, UnreadableItem, UnreadableRecord

EXPORT_FORMATS = ("jsonl", "csv")
#: The columns of `medic log export`: every field of a record's hash (`context`, `prev_seq`, `plan_state`,
#: `plan_content` included), so an export can be re-verified.
EXPORT_FIELDS = (
    "plan_id",
    "seq",
    "at",
    "kind",
    "data",
    "context",
    "prev_hash",
    "hash",
    "prev_seq",
    "plan_state",
    "plan_content",
)


def export_events(
    ledger: Ledger, *, since: str | None = None, unreadable: list[UnreadableItem | UnreadableRecord] | None = None
) -> Iterator[LogEvent]:
    """Every record of the plans touched at or after `since` (all of each such plan's chain), oldest plan first,
    then the records of the other chains (control flags, plans whose item cannot be read) written at or after
    `since`. What cannot be read is left out and added to `unreadable` when given."""
    plans, bad_items = ledger.scan_plans()
    if unreadable is not None:
        unreadable.extend(bad_items)

    def readable(chain_id: str) -> list[LogEvent]:
        events, bad = ledger.records(chain_id)
        if unreadable is not None:
            unreadable.extend(bad)
        return events

    for plan in plans:
        if since is None or plan.updated_at >= since:
            yield from readable(plan.id)
    known = {plan.id for plan in plans}
    for other in sorted({*ledger.chain_ids(), *CONTROL_KEYS} - known):
        yield from (event for event in readable(other) if since is None or event.at >= since)


def export_record(event: LogEvent, *, text: bool) -> dict[str, Any]:
    """One record's export fields; `text` renders `data` and `context` as JSON text (CSV), else as objects."""

    def encode(value: dict[str, Any]) -> Any:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if text else value

    return {
        "plan_id": event.plan_id,
        "seq": event.seq,
        "at": event.at,
        "kind": event.kind,
        "data": encode(event.data),
        "context": encode(event.context),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "prev_seq": ("" if event.prev_seq is None else event.prev_seq) if text else event.prev_seq,
        "plan_state": event.plan_state,
        "plan_content": event.plan_content,
    }


def write_export(events: Iterable[LogEvent], fmt: str, stream: IO[str]) -> int:
    """Write `events` as JSON lines or CSV (with a header); returns how many records were written."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(field="--format", source=CLI, problem=f"unknown format {fmt!r}; one of jsonl, csv")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for count, event in enumerate(events, start=1):  # noqa: B007 - the count is the result
            writer.writerow(export_record(event, text=True))
        return count
    for count, event in enumerate(events, start=1):  # noqa: B007 - the count is the result
        stream.write(json.dumps(export_record(event, text=False), ensure_ascii=False) + "\n")
    return count
