"""`medic promotions`: the scopes (a runbook row on one target) proposed for, or promoted to, mode auto, as the log
holds them (`medic.promotions`): each item's state beside what its hash chain says, which is what triage acts on."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medic.runtime import Runtime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="promotions_command")
    listing = commands.add_parser("list", help="every proposed, promoted, demoted or rejected scope (the default)")
    show = commands.add_parser("show", help="one scope: its evidence, its approvals, its override, its chain")
    show.add_argument("key", metavar="KEY", help="promotion#<row>#<target>, as the list prints it")
    for sub in (parser, listing, show):
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")


def rows(runtime: Runtime) -> list[dict[str, Any]]:
    """One row per promotion item: its state, its chain's state (and problem), the approvers, the evidence."""
    from medic.promotions.scope import standing

    out = []
    for item in runtime.ledger.promotion_items():
        key = str(item["plan_id"])
        found = standing(key, runtime.ledger.events(key), runtime.ledger.head(key), runtime.settings)
        proposal = found.proposal or {}
        out.append(
            {
                "key": key,
                "state": item.get("promotion_state", ""),
                "chain_state": found.state,
                "problem": found.problem,
                "approvers": found.approvers or item.get("approvals", []),
                "evidence": [e["plan_id"] for e in proposal.get("evidence", [])],
                "updated_at": item.get("updated_at", ""),
            }
        )
    return out


def run(args: argparse.Namespace, runtime: Runtime) -> int:
    if getattr(args, "promotions_command", None) == "show":
        return _show(args.key, runtime, args.json)
    found = rows(runtime)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no promotion proposed yet")
        return 0
    for row in found:
        bound = "" if row["state"] == row["chain_state"] else f"  (its chain says {row['chain_state']}: "
        bound += f"{row['problem']})" if bound and row["problem"] else (")" if bound else "")
        print(
            f"{row['key']}  {row['state']}{bound}  evidence {', '.join(row['evidence']) or '-'}  "
            f"approvers {', '.join(row['approvers']) or '-'}  {row['updated_at']}"
        )
    return 0


def _show(key: str, runtime: Runtime, as_json: bool) -> int:
    from medic.promotions.scope import standing

    events = runtime.ledger.events(key)
    found = standing(key, events, runtime.ledger.head(key), runtime.settings)
    if as_json:
        print(
            json.dumps(
                {
                    "key": key,
                    "chain_state": found.state,
                    "problem": found.problem,
                    "approvers": found.approvers,
                    "proposal": found.proposal,
                    "records": [e.model_dump(mode="json") for e in events],
                },
                indent=2,
            )
        )
        return 0
    print(f"{key}: {found.state}" + (f" ({found.problem})" if found.problem else ""))
    for event in events:
        detail = {k: v for k, v in event.data.items() if k not in ("override", "evidence")}
        print(f"  #{event.seq} {event.at} {event.kind} {json.dumps(detail, sort_keys=True)[:200]}")
    if found.proposal:
        for e in found.proposal.get("evidence", []):
            print(
                f"  evidence {e['plan_id']} approved by {', '.join(e['approved_by'])}, {e['outcome']} "
                f"{e['verified_at']}"
            )
        print("\nRunbook override (commit it; check it with `medic runbook check --override FILE`):\n")
        print(found.proposal.get("override", ""))
    return 0
