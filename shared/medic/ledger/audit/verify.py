"""`medic log verify`: every chain of the log recomputed (or one), and the broken ones named with their first broken
record. The digests in locked storage are checked on top of this by `medic_tools.digest_check`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from medic.errors import InputError
from medic.ledger.audit.listing import CLI
from medic.ledger.audit.story import chain_status
from medic.ledger.keys import CONTROL_KEYS

if TYPE_CHECKING:
    from medic.ledger.store import ChainReport, Ledger


def verify_chains(ledger: Ledger, chain_id: str | None = None) -> list[ChainReport]:
    """Recompute one chain, or every chain in the log: the plans' (from their items), every chain with a head
    anchor (rejected inputs, control flags) and the control flags' (`control#…`)."""
    if chain_id is not None:
        report = ledger.verify_report(chain_id)
        if report.ok and not report.events and ledger.get(chain_id) is None:
            raise InputError(field="--plan", source=CLI, problem=f"no plan or log chain {chain_id!r}")
        return [report]
    plans, unreadable = ledger.scan_plans()
    ids = {*ledger.chain_ids(), *(plan.id for plan in plans), *(item.key for item in unreadable)}
    ids |= {key for key in CONTROL_KEYS if key not in ids and ledger.events(key)}  # a flag whose head anchor is gone
    return [ledger.verify_report(one) for one in sorted(ids)]


def verify_text(reports: Sequence[ChainReport], *, one: bool = False) -> str:
    """Each broken chain with its first broken record, then a count (for one chain: its status)."""
    broken = [report for report in reports if not report.ok]
    lines = [
        f"{r.plan_id}: BROKEN at record #{r.first_bad_seq} (of {r.events}): {r.problem}"
        if r.first_bad_seq is not None
        else f"{r.plan_id}: BROKEN: {r.problem}"
        for r in broken
    ]
    lines += [f"    also: {more}" for r in broken for more in r.problems[1:]]
    if one:
        return lines[0] if lines else f"{reports[0].plan_id}: {chain_status(reports[0])}"
    lines.append(
        f"{len(reports)} chain{'s' if len(reports) != 1 else ''} checked: {len(reports) - len(broken)} "
        f"intact, {len(broken)} broken"
    )
    return "\n".join(lines)
