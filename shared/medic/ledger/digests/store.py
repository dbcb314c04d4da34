"""The digest bucket: find the latest digest, put the next one (never over an existing one), and read back every
version of every digest for verification.

The writer's calls are the ones its role allows (template.yaml, `DigestFunctionRole`): `ListBucket` on the digest
prefix, `GetObject` and `PutObject` under it. The put carries `If-None-Match: *`: S3 refuses it when the key exists
(Amazon S3 User Guide, "How to prevent object overwrites with conditional writes"), and the bucket policy refuses a
put without it, so a digest can never get a later version that hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from medic.ledger.digests.model import DIGEST_PREFIX, Digest, DigestLink, digest_key, encode, sequence_of, sha256


@dataclass(frozen=True)
class StoredDigest:
    """A digest as stored: its key, the version read, its bytes and, when they parse, the digest."""

    key: str
    version_id: str
    body: bytes
    digest: Digest | None
    problem: str = ""

    @property
    def link(self) -> DigestLink:
        """How the next digest points to this one."""
        sequence = self.digest.sequence if self.digest else sequence_of(self.key) or 0
        return DigestLink(sequence=sequence, key=self.key, sha256=sha256(self.body))


@dataclass
class KeyVersions:
    """Every version S3 keeps under one key, oldest first, and the delete markers put on it."""

    key: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    delete_markers: list[dict[str, Any]] = field(default_factory=list)


class DigestStore:
    """The digests under `prefix` in `bucket`. Inject the S3 client."""

    def __init__(self, s3: Any, bucket: str, prefix: str = DIGEST_PREFIX) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix

    def latest(self) -> StoredDigest | None:
        """The digest with the highest sequence number (its current version), or None before the first one."""
        keys = [
            obj["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for obj in page.get("Contents", [])
            if sequence_of(obj["Key"], self.prefix) is not None
        ]
        if not keys:
            return None
        key = max(keys, key=lambda k: sequence_of(k, self.prefix) or 0)
        response = self.s3.get_object(Bucket=self.bucket, Key=key)
        return self._stored(key, str(response.get("VersionId") or ""), response["Body"].read())

    def put(self, digest: Digest) -> StoredDigest:
        """Write `digest` under its key, only if no object has that key (`If-None-Match: *`)."""
        key, body = digest_key(digest.sequence, self.prefix), encode(digest)
        response = self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",  # Object Lock requires an integrity checksum on every put
        )
        return StoredDigest(key, str(response.get("VersionId") or ""), body, digest)

    def versions(self) -> list[KeyVersions]:
        """Every key under the prefix with all its versions (oldest first) and delete markers, in key order."""
        found: dict[str, KeyVersions] = {}
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for version in page.get("Versions", []):
                found.setdefault(version["Key"], KeyVersions(version["Key"])).versions.append(version)
            for marker in page.get("DeleteMarkers", []):
                found.setdefault(marker["Key"], KeyVersions(marker["Key"])).delete_markers.append(marker)
        for entry in found.values():
            entry.versions.reverse()  # S3 lists a key's versions newest first; LastModified has 1 s precision only
        return [found[key] for key in sorted(found)]

    def read(self, key: str, version_id: str) -> StoredDigest:
        """One version of one digest (the version first written, for verification)."""
        response = self.s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        return self._stored(key, version_id, response["Body"].read())

    @staticmethod
    def _stored(key: str, version_id: str, body: bytes) -> StoredDigest:
        try:
            return StoredDigest(key, version_id, body, Digest.model_validate_json(body))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(document)"
            return StoredDigest(key, version_id, body, None, f"{where}: {first['msg']}")
