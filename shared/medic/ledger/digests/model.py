"""The digest format: one JSON object per digest, canonical (sorted keys, no spaces), hashed with SHA-256.

    {"chains": {"p-2b9c…": {"hash": "9f2c…", "seq": 12}}, "chains_in_log": 40, "previous": {"key":
     "digests/000000000041.json", "sequence": 41, "sha256": "77a0…"}, "problems": {}, "sequence": 42,
     "version": 1, "written_at": "2026-11-22T06:00:00.000Z"}

`chains` holds the chains whose head moved since the previous digest (every chain in the first digest): a chain is
*covered* by the digests that list it. `problems` names the chains whose head no longer extends the head the
previous digest recorded: the writer keeps that head in `chains` instead of adopting the new one.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1
DIGEST_PREFIX = "digests/"
_KEY = re.compile(r"^(?P<prefix>.*?)(?P<sequence>\d{12})\.json$")


class DigestedHead(BaseModel):
    """A chain's head as a digest recorded it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    hash: str


class DigestLink(BaseModel):
    """Where the previous digest is and the SHA-256 of its bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int = Field(ge=1)
    key: str
    sha256: str


class Digest(BaseModel):
    """One digest: its place in the sequence, when the writer read the heads, and what it read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = FORMAT_VERSION
    sequence: int = Field(ge=1)
    written_at: str = Field(description="when the writer read the head anchors (ISO, UTC)")
    previous: DigestLink | None = None
    chains: dict[str, DigestedHead] = Field(default_factory=dict)
    chains_in_log: int = Field(default=0, ge=0, description="how many chains the log held (covered or not)")
    problems: dict[str, str] = Field(default_factory=dict)


def digest_key(sequence: int, prefix: str = DIGEST_PREFIX) -> str:
    """The object key of a digest: its sequence number, zero-padded so that keys sort in sequence.

    >>> digest_key(42)
    'digests/000000000042.json'
    """
    return f"{prefix}{sequence:012d}.json"


def sequence_of(key: str, prefix: str = DIGEST_PREFIX) -> int | None:
    """The sequence number a digest key names (None: not a digest key under `prefix`).

    >>> sequence_of("digests/000000000042.json"), sequence_of("digests/notes.txt")
    (42, None)
    """
    found = _KEY.match(key)
    if found is None or found.group("prefix") != prefix:
        return None
    return int(found.group("sequence"))


def encode(digest: Digest) -> bytes:
    """The digest's canonical bytes (what is stored, and hashed by the next digest)."""
    return json.dumps(digest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
