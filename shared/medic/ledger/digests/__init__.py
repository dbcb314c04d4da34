"""Periodic digests of the remediation log's chain heads, in storage no Medic role can overwrite or delete.

Modelled on CloudTrail's log file integrity validation (AWS CloudTrail User Guide, "CloudTrail digest file
structure"): a digest is written every hour by a writer of its own (`functions/digest`), lists the chains whose head
moved since the previous digest (every chain in the first one) with their head's seq and hash, and carries the
SHA-256 of the previous digest, so the digests form a chain of their own. They go to an S3 bucket with Object Lock
in compliance mode (template.yaml, `DigestBucket`): no one can overwrite or delete a digest before its retention
ends, and a digest cannot be replaced by a later version (the bucket policy requires `If-None-Match`).

`medic log verify` checks every chain against the digests that cover it (`check.check_digests`): a chain that was
rewritten, shortened or deleted after a digest recorded its head no longer matches it, whatever the rewriter could
recompute, since no role that writes the log can write digests.

    model   the digest format (`Digest`), its key and canonical bytes
    store   the bucket (`DigestStore`): the latest digest, every version of every digest, a conditional put
    writer  the scheduled writer (`write_digest`)
    check   the verification (`check_digests`)
"""
