"""The digest writer: every hour, the heads of the chains that moved, chained to the previous digest.

It reads the head anchors (`Ledger.heads`, one consistent scan) and the latest digest, and writes the next digest
with `If-None-Match`. A chain is in the new digest when its head differs from the one the previous digest recorded,
or when the previous digest does not list it and its anchor moved since that digest was written (minus
`DIGEST_GRACE`: a record is stamped when it is built and may be written up to an executor's timeout later). The first
digest lists every chain.

Before adopting a moved head, the writer checks that the chain still runs through the head the previous digest
recorded (same seq, same hash, every link and record hash in between). When it does not (the chain was rewritten,
shortened or deleted), the digest keeps the recorded head and names the problem, and the run fails once so that the
writer's Errors alarm pages: a rewritten history is never blessed by a later digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic.clock import iso, parse_iso
from medic.errors import ConfigError, MedicError
from medic.ledger.chain import Head, recomputed_hash
from medic.ledger.digests.model import Digest, DigestedHead
from medic.ledger.digests.store import DigestStore

if TYPE_CHECKING:
    from medic.ledger.store import Ledger
    from medic.runtime import Runtime

#: How long after its `at` a record may still reach the table (the executor's deferred records: its 900 s timeout).
DIGEST_GRACE = timedelta(minutes=30)


class LogTampered(MedicError):
    """The digest writer found chains that no longer extend the head a digest recorded (the digest was written)."""

    def __init__(self, sequence: int, problems: dict[str, str]) -> None:
        super().__init__(sequence, problems)
        self.sequence = sequence
        self.problems = problems

    def __str__(self) -> str:
        found = "; ".join(f"{chain}: {problem}" for chain, problem in sorted(self.problems.items()))
        return f"digest #{self.sequence} kept the recorded heads of {len(self.problems)} chain(s): {found}"


def write_digest(rt: Runtime) -> dict[str, Any]:
    """The scheduled writer's use case: write the next digest to the bucket `MEDIC_DIGEST_BUCKET` names."""
    if not rt.settings.digest_bucket:
        raise ConfigError(field="MEDIC_DIGEST_BUCKET", source="environment", problem="no digest bucket configured")
    from medic.log import get_logger

    store = DigestStore(rt.clients.client("s3"), rt.settings.digest_bucket)
    previous = store.latest()
    digest = next_digest(rt.ledger, previous.digest if previous else None, rt.clock.now())
    if previous is not None:
        digest = digest.model_copy(update={"previous": previous.link})
    stored = store.put(digest)
    log = get_logger(use_case="digest", sequence=digest.sequence)
    log.info("digest_written", key=stored.key, chains=len(digest.chains), chains_in_log=digest.chains_in_log)
    earlier = previous.digest.problems if previous and previous.digest else {}
    new = {chain: problem for chain, problem in digest.problems.items() if earlier.get(chain) != problem}
    if new:
        log.error("log_tampered", problems=new)
        raise LogTampered(digest.sequence, new)
    return {
        "sequence": digest.sequence,
        "key": stored.key,
        "chains": len(digest.chains),
        "chains_in_log": digest.chains_in_log,
        "problems": digest.problems,
    }


def next_digest(ledger: Ledger, previous: Digest | None, now: datetime) -> Digest:
    """The digest that follows `previous` (None: the first), from the anchors as they are `now`."""
    heads = ledger.heads()
    recorded = dict(previous.chains) if previous else {}
    since = iso(parse_iso(previous.written_at) - DIGEST_GRACE) if previous else ""
    chains: dict[str, DigestedHead] = {}
    problems: dict[str, str] = {}
    for chain_id, (head, head_at) in sorted(heads.items()):
        last = recorded.get(chain_id)
        if last is not None:
            if (head.seq, head.hash) == (last.seq, last.hash):
                continue
            problem = _extends(ledger, chain_id, head, last, previous.sequence if previous else 0)
            if problem is not None:  # a problem already named keeps its words: it pages once
                chains[chain_id] = last
                problems[chain_id] = previous.problems.get(chain_id, problem) if previous else problem
                continue
        elif previous is not None and not (head_at and head_at >= since):
            continue
        chains[chain_id] = DigestedHead(seq=head.seq, hash=head.hash)
    for chain_id, last in recorded.items():
        if chain_id not in heads:
            chains[chain_id] = last
            problems[chain_id] = (
                f"its head anchor is gone (digest #{previous.sequence if previous else 0} recorded #{last.seq})"
            )
    return Digest(
        sequence=previous.sequence + 1 if previous else 1,
        written_at=iso(now),
        chains=chains,
        chains_in_log=len(heads),
        problems=problems,
    )


def _extends(ledger: Ledger, chain_id: str, head: Head, last: DigestedHead, sequence: int) -> str | None:
    """None when the chain runs from `head` back through `last` (digest #`sequence` recorded it) intact, else what
    breaks it."""
    if head.seq < last.seq:
        return f"the chain now ends at #{head.seq}, before #{last.seq} that digest #{sequence} recorded"
    events = {event.seq: event for event in ledger.events(chain_id)}
    recorded = events.get(last.seq)
    if recorded is None:
        return f"record #{last.seq}, recorded by digest #{sequence}, is missing"
    if recorded.hash != last.hash:
        return f"record #{last.seq} no longer has the hash digest #{sequence} recorded: the chain was rewritten"
    seq, expected = head.seq, head.hash
    while seq > last.seq:
        event = events.get(seq)
        if event is None:
            return f"record #{seq} is missing"
        if event.hash != expected or recomputed_hash(event) != event.hash:
            return f"record #{seq} does not hold (its hash or its link changed)"
        seq, expected = event.predecessor, event.prev_hash
    if seq != last.seq or expected != last.hash:
        return f"the chain no longer runs through record #{last.seq} as digest #{sequence} recorded it"
    return None
