"""S3 Object Lock in compliance mode, as AWS documents it, where moto 5.2.5 falls short.

moto already refuses what matters most: deleting a locked object version (`AccessDenied`), even with
`x-amz-bypass-governance-retention`; it keeps the locked version when a put adds a new one and lets a delete marker
be added on top, as S3 does. Two escapes remain open in moto that S3 closes (Amazon S3 User Guide, "Locking objects
with Object Lock" and "Object Lock considerations"):

* **Compliance retention cannot be weakened.** "When an object is locked in compliance mode, its retention mode
  can't be changed, and its retention period can't be shortened." moto's `PutObjectRetention` accepts both, after
  which the version can be deleted. Here, while a version's compliance retention runs, a new retention must keep
  COMPLIANCE and a retain-until date no earlier than the current one (extending it is allowed), else S3's
  `AccessDenied` (403, "Access Denied").
* **Versioning cannot be suspended.** "After you enable Object Lock on a bucket, you can't disable Object Lock or
  suspend versioning for that bucket." moto's `PutBucketVersioning` suspends it. Here, `Suspended` on a bucket with
  Object Lock is refused with S3's `InvalidBucketState` ("An Object Lock configuration is present on this bucket, so
  the versioning state cannot be changed."); `Enabled` stays a no-op. S3 answers it with HTTP 409; moto's server
  gives every S3 code its model does not list HTTP 400, and no caller of Medic's depends on the status.

Governance mode is left as moto serves it (Medic's digest bucket uses compliance mode only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.s3.exceptions import AccessDeniedByLock, S3ClientError
from moto.s3.models import S3Backend

COMPLIANCE = "COMPLIANCE"
_LOCK = threading.Lock()
_installed = False


class ObjectLockVersioningLocked(S3ClientError):
    """S3's refusal to suspend versioning on a bucket with Object Lock."""

    code = "InvalidBucketState"

    def __init__(self) -> None:
        super().__init__(
            "InvalidBucketState",
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
        )


def retain_until(text: str | None) -> datetime | None:
    """moto's retain-until date (`2026-11-22T05:00:00Z`, optionally with fractions of a second) as a UTC datetime.

    >>> retain_until("2026-11-22T05:00:00.250Z")
    datetime.datetime(2026, 11, 22, 5, 0, 0, 250000, tzinfo=datetime.timezone.utc)
    """
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _keeps_compliance(
    original: Callable[..., None],
) -> Callable[..., None]:
    def put_object_retention(
        self: S3Backend,
        bucket_name: str,
        key_name: str,
        version_id: str | None,
        retention: tuple[str | None, str | None],
    ) -> None:
        key = self.get_object(bucket_name, key_name, version_id=version_id)
        current = retain_until(getattr(key, "lock_until", None)) if key is not None else None
        if key is not None and key.lock_mode == COMPLIANCE and current is not None and current > datetime.now(UTC):
            mode, until = retention
            wanted = retain_until(until)
            if mode != COMPLIANCE or wanted is None or wanted < current:
                raise AccessDeniedByLock()
        original(self, bucket_name, key_name, version_id, retention)

    return put_object_retention


def _keeps_versioning(original: Callable[..., None]) -> Callable[..., None]:
    def put_bucket_versioning(self: S3Backend, bucket_name: str, status: str) -> None:
        if self.get_bucket(bucket_name).object_lock_enabled and status != "Enabled":
            raise ObjectLockVersioningLocked()
        original(self, bucket_name, status)

    return put_bucket_versioning


def install() -> None:
    """Patch moto's S3 backend in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with _LOCK:
        if _installed:
            return
        patched: dict[str, Any] = {
            "put_object_retention": _keeps_compliance(S3Backend.put_object_retention),
            "put_bucket_versioning": _keeps_versioning(S3Backend.put_bucket_versioning),
        }
        for name, method in patched.items():
            setattr(S3Backend, name, method)
        _installed = True
