"""Verification of the log against its digests (`medic log verify`).

The digests themselves: every version of every key is listed, so a digest that got a second version or a delete
marker is named (its first version is the one checked); the sequence must run from #1 without a gap; each digest
must carry the SHA-256 of the one before it. Then every chain against every digest that covers it: its committed
end must not be before a digested head, and the record at a digested head must still have the digested hash. A
chain a digest covers but the log no longer holds is named too, and so are records older than a digest (by more
than `DIGEST_GRACE`) that no digest covers: a head anchor held back so that the writer would skip them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medic.clock import iso, parse_iso
from medic.ledger.digests.model import DigestedHead, digest_key, sequence_of
from medic.ledger.digests.store import DigestStore, StoredDigest
from medic.ledger.digests.writer import DIGEST_GRACE

if TYPE_CHECKING:
    from medic.ledger.chain import ChainReport
    from medic.ledger.store import Ledger


@dataclass
class DigestCheck:
    """What the digests say: the digests read, problems of their own sequence, and problems per chain."""

    digests: list[StoredDigest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    chains: dict[str, list[tuple[int | None, str]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(self.chains.values())

    def summary(self) -> str:
        """One line: how many digests, their range and the latest one's time, and how many problems."""
        readable = [stored.digest for stored in self.digests if stored.digest]
        if not readable:
            return f"digests: none in the bucket{'' if self.ok else f' ({len(self.problems)} problem(s))'}"
        latest = max(readable, key=lambda digest: digest.sequence)
        chains = sum(1 for found in self.chains.values() if found)
        return (
            f"digests: {len(self.digests)} checked (#{min(d.sequence for d in readable)}..#{latest.sequence}, "
            f"the latest written {latest.written_at}): {len(self.problems)} problem(s) in the digests, "
            f"{chains} chain(s) that no longer match them"
        )


def check_digests(
    store: DigestStore, ledger: Ledger, chain_ids: Iterable[str], *, only: str | None = None
) -> DigestCheck:
    """Check the digest sequence, then `chain_ids` and every chain a digest covers against it (only the chain `only`,
    when given: the sequence is checked whole in any case)."""
    check = DigestCheck()
    _read_sequence(store, check)
    covered: dict[str, list[tuple[int, DigestedHead]]] = {}
    for stored in check.digests:
        if stored.digest is None:
            continue
        for chain_id, head in stored.digest.chains.items():
            covered.setdefault(chain_id, []).append((stored.digest.sequence, head))
        for chain_id, problem in stored.digest.problems.items():
            _add(check, chain_id, None, f"digest #{stored.digest.sequence} found: {problem}")
    readable = [stored.digest for stored in check.digests if stored.digest]
    latest = max(readable, key=lambda digest: digest.sequence) if readable else None
    for chain_id in sorted({*chain_ids, *covered} if only is None else {only}):
        _check_chain(
            check,
            ledger,
            chain_id,
            covered.get(chain_id, []),
            iso(parse_iso(latest.written_at) - DIGEST_GRACE) if latest else None,
        )
    return check


def _read_sequence(store: DigestStore, check: DigestCheck) -> None:
    by_sequence: dict[int, StoredDigest] = {}
    for entry in store.versions():
        sequence = sequence_of(entry.key, store.prefix)
        if sequence is None:
            check.problems.append(f"{entry.key} is not a digest (unexpected object under {store.prefix})")
            continue
        if entry.delete_markers:
            check.problems.append(f"digest #{sequence} is hidden by a delete marker (its locked version is checked)")
        if len(entry.versions) > 1:
            check.problems.append(
                f"digest #{sequence} was written {len(entry.versions)} times: its first version is "
                "checked, the later ones are not Medic's"
            )
        if not entry.versions:
            check.problems.append(f"digest #{sequence} has no version left")
            continue
        stored = store.read(entry.key, str(entry.versions[0]["VersionId"]))
        check.digests.append(stored)
        if stored.digest is None:
            check.problems.append(f"digest #{sequence} is unreadable: {stored.problem}")
        elif stored.digest.sequence != sequence:
            check.problems.append(f"digest #{sequence} says it is #{stored.digest.sequence}")
        else:
            by_sequence[sequence] = stored
    if not by_sequence:
        return
    last = max(by_sequence)
    missing = [
        n
        for n in range(1, last + 1)
        if n not in by_sequence and digest_key(n, store.prefix) not in {stored.key for stored in check.digests}
    ]
    for run in _runs(missing):
        check.problems.append(
            f"digest #{run[0]} is missing from the sequence"
            if len(run) == 1
            else f"digests #{run[0]}..#{run[-1]} are missing from the sequence"
        )
    for sequence, stored in sorted(by_sequence.items()):
        digest, before = stored.digest, by_sequence.get(sequence - 1)
        assert digest is not None
        if sequence == 1:
            if digest.previous is not None:
                check.problems.append("digest #1 names a previous digest: the sequence does not start there")
            continue
        if before is None:
            continue  # named missing above
        link = before.link
        if digest.previous is None or (digest.previous.key, digest.previous.sha256) != (link.key, link.sha256):
            named = digest.previous.sha256[:16] if digest.previous else "nothing"
            check.problems.append(
                f"digest #{sequence}'s previous-digest hash does not match digest #{sequence - 1} (it names "
                f"{named}…, digest #{sequence - 1} hashes to {link.sha256[:16]}…)"
            )


def _check_chain(
    check: DigestCheck, ledger: Ledger, chain_id: str, covered: list[tuple[int, DigestedHead]], cutoff: str | None
) -> None:
    events, unreadable = ledger.records(chain_id)
    head = ledger.head(chain_id)
    by_seq = {event.seq: event for event in events}
    end = head.seq if head else max(by_seq, default=0)
    if covered and not events and not unreadable and head is None:
        sequence, recorded = covered[-1]
        _add(
            check,
            chain_id,
            None,
            f"digest #{sequence} recorded the chain up to #{recorded.seq}; the log holds no record of it now",
        )
        return
    seen: set[tuple[int, str]] = set()
    for sequence, recorded in reversed(covered):  # the latest digest covering the chain first
        if (recorded.seq, recorded.hash) in seen:
            continue
        seen.add((recorded.seq, recorded.hash))
        if end < recorded.seq:
            _add(
                check,
                chain_id,
                end + 1,
                f"the chain ends at #{end}, before #{recorded.seq} that digest #{sequence} "
                "recorded: records were removed",
            )
        elif recorded.seq not in by_seq:
            _add(check, chain_id, recorded.seq, f"record #{recorded.seq}, digested in digest #{sequence}, is missing")
        elif by_seq[recorded.seq].hash != recorded.hash:
            rewritten = (
                f"record #{recorded.seq} no longer has the hash digest #{sequence} recorded "
                f"({recorded.hash[:16]}…): the chain was rewritten"
            )
            _add(check, chain_id, recorded.seq, rewritten)
    digested = max((recorded.seq for _, recorded in covered), default=0)
    stale = [e.seq for e in events if e.seq > digested and cutoff is not None and e.at < cutoff]
    if stale:
        span = f"record #{stale[0]} was" if len(stale) == 1 else f"records #{stale[0]}..#{stale[-1]} were"
        _add(
            check,
            chain_id,
            stale[0],
            f"{span} written before the latest digest but no digest covers {'it' if len(stale) == 1 else 'them'}",
        )


def _add(check: DigestCheck, chain_id: str, seq: int | None, problem: str) -> None:
    check.chains.setdefault(chain_id, []).append((seq, problem))


def _runs(numbers: Sequence[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return runs


def with_digest_problems(reports: list[ChainReport], check: DigestCheck) -> list[ChainReport]:
    """The chain reports with what the digests say added (a chain only the digests know gets a report of its
    own): a chain that no longer matches a digest is broken, whatever its own links say."""
    from medic.ledger.chain import ChainReport

    out = []
    by_id = {report.plan_id: report for report in reports}
    for chain_id in sorted({*by_id, *(c for c, found in check.chains.items() if found)}):
        report = by_id.get(chain_id) or ChainReport(plan_id=chain_id, events=0, ok=True)
        found = check.chains.get(chain_id, [])
        if found:
            ordered = sorted(found, key=lambda item: (item[0] is None, item[0] or 0))
            first_seq, first_problem = ordered[0] if report.ok else (report.first_bad_seq, report.problem)
            report = report.model_copy(
                update={
                    "ok": False,
                    "first_bad_seq": first_seq,
                    "problem": first_problem,
                    "problems": [
                        *(report.problems or ([report.problem] if report.problem else [])),
                        *(problem for _, problem in ordered),
                    ],
                }
            )
        out.append(report)
    return out
