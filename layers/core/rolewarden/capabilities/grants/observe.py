"""The observe step of bucket grants: every read one decision needs, made before deciding, returned as
one frozen ``GrantsSnapshot`` (the IAM snapshot, the buckets read from S3, the buckets that could not
be read). Reads only.

* ``bucket`` targets: the bucket (GetBucketTagging, and GetBucketEncryption when it has grant tags);
  then, for each affected role whose generated policies cannot be trusted as a read-back, the buckets
  those policies name (``decide.grants.plan.buckets_needed`` says which).
* ``role`` / ``policy`` targets: the buckets named by the role's generated policies (any version).
* ``sweep``: ListBuckets once and every bucket once.
Always one paginated GetAccountAuthorizationDetails.
"""

from __future__ import annotations

from collections.abc import Sequence

from rolewarden.aws import iam_snapshot
from rolewarden.aws.grants import reads
from rolewarden.capabilities.base import Run
from rolewarden.decide.grants.plan import buckets_needed
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.grants import BucketView, GrantsSnapshot, ReadFailure
from rolewarden.model.iam import IamSnapshot
from rolewarden.model.targets import Target


def read_iam() -> IamSnapshot:
    """The IAM snapshot the grants capability decides from (roles, local managed policies)."""
    return iam_snapshot.read_account(reads.GRANTS_FILTERS)


def observe(run: Run, targets: Sequence[Target]) -> GrantsSnapshot:
    """Read what deciding ``targets`` needs. A failed IAM read or ListBuckets raises (every target fails);
    a bucket that cannot be read is kept in ``unreadable`` with why."""
    config = run.config
    prefix = config.bucket_grants.tag_prefix
    iam = read_iam()
    buckets: dict[str, BucketView] = {}
    unreadable: dict[str, ReadFailure] = {}

    def read(name: str) -> None:
        if name in buckets or name in unreadable:
            return
        try:
            buckets[name] = reads.read_bucket(name, prefix)
        except (RetryableError, PermanentError) as exc:
            unreadable[name] = ReadFailure(isinstance(exc, RetryableError), str(exc))

    if any(t.kind == "sweep" for t in targets):
        listed = tuple(reads.list_buckets())
        for name in listed:
            read(name)
        return GrantsSnapshot(iam, buckets, unreadable, listed)
    for target in targets:
        if target.kind == "bucket":
            read(target.id)
    for name in sorted(buckets_needed(GrantsSnapshot(iam, dict(buckets), dict(unreadable)), config, targets)):
        read(name)
    return GrantsSnapshot(iam, buckets, unreadable)
