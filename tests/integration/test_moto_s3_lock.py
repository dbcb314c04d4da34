"""The embedded world's S3 Object Lock in compliance mode (`medic_tools.world.moto_s3_lock` on top of moto), over HTTP:
what the digest bucket relies on is refused as S3 refuses it, and what S3 allows stays allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medic_tools.world.server import EmbeddedAWS

BUCKET = "medic-digests-test"


@pytest.fixture
def s3(aws: EmbeddedAWS) -> Any:
    """A bucket as template.yaml declares DigestBucket: Object Lock, compliance mode, a default retention of a day."""
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(Bucket=BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
    })  # fmt: skip
    return client


def refused(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]["Code"], error.value.response["Error"]["Message"]


def locked_version(s3: Any) -> tuple[str, datetime]:
    version = s3.put_object(Bucket=BUCKET, Key="digests/000000000001.json", Body=b'{"sequence":1}')["VersionId"]
    head = s3.head_object(Bucket=BUCKET, Key="digests/000000000001.json", VersionId=version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    return version, head["ObjectLockRetainUntilDate"]


def test_a_compliance_retention_cannot_be_shortened_or_turned_to_governance(s3: Any) -> None:
    version, until = locked_version(s3)
    key = "digests/000000000001.json"

    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(minutes=1)}
    assert refused(lambda: s3.put_object_retention(Bucket=BUCKET, Key=key, VersionId=version,
                                                   Retention=shorter)) == ("AccessDenied", "Access Denied")  # fmt: skip
    governance = {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)}
    assert refused(lambda: s3.put_object_retention(Bucket=BUCKET, Key=key, VersionId=version, Retention=governance,
                                                   BypassGovernanceRetention=True))[0] == "AccessDenied"  # fmt: skip
    assert refused(lambda: s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version,
                                            BypassGovernanceRetention=True))[0] == "AccessDenied"  # fmt: skip
    head = s3.head_object(Bucket=BUCKET, Key=key, VersionId=version)
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)


def test_a_compliance_retention_may_be_extended(s3: Any) -> None:
    version, until = locked_version(s3)
    later = until + timedelta(days=30)

    s3.put_object_retention(Bucket=BUCKET, Key="digests/000000000001.json", VersionId=version,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})  # fmt: skip

    head = s3.head_object(Bucket=BUCKET, Key="digests/000000000001.json", VersionId=version)
    assert head["ObjectLockRetainUntilDate"] == later.replace(microsecond=0)


def test_versioning_cannot_be_suspended_on_a_bucket_with_object_lock(s3: Any) -> None:
    suspended = {"Status": "Suspended"}
    code, message = refused(lambda: s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration=suspended))
    assert (code, message) == ("InvalidBucketState", "An Object Lock configuration is present on this bucket, so "
                                                     "the versioning state cannot be changed.")  # fmt: skip
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # a no-op, as in S3
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_a_put_or_a_delete_marker_never_touches_the_locked_version(s3: Any) -> None:
    version, _ = locked_version(s3)
    key = "digests/000000000001.json"

    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged")  # S3 allows a new version on top
    s3.delete_object(Bucket=BUCKET, Key=key)  # and a delete marker
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix="digests/")

    assert len(listed["Versions"]) == 2 and len(listed["DeleteMarkers"]) == 1
    assert s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read() == b'{"sequence":1}'


def test_a_conditional_put_never_replaces_a_digest(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="digests/000000000002.json", Body=b"two", IfNoneMatch="*")

    code, _ = refused(lambda: s3.put_object(Bucket=BUCKET, Key="digests/000000000002.json", Body=b"forged",
                                            IfNoneMatch="*"))  # fmt: skip
    assert code == "PreconditionFailed"
    assert s3.get_object(Bucket=BUCKET, Key="digests/000000000002.json")["Body"].read() == b"two"
