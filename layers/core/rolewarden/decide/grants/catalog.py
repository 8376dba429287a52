"""The S3 action catalog of bucket grants: which S3 actions RoleWarden grants (on the bucket ARN or on
``bucket/*``), which it refuses because they change who may access the data, what each needs from the
bucket's customer key, and each configured level's actions split by resource type. PURE."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rolewarden.config import Config

# -- which S3 actions apply to the bucket ARN and which to bucket/* ------------------------------
# From the Service Authorization Reference ("Actions defined by Amazon S3", resource type column).
# Only data access and read-only bucket configuration are listed: actions that change a bucket's or
# an object's permissions (PutBucketPolicy, PutObjectAcl, DeleteBucket...) are deliberately absent,
# so a level naming one is refused with a finding instead of being granted through a tag.
BUCKET_LEVEL_ACTIONS = frozenset(
    {
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:ListBucketMultipartUploads",
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetBucketTagging",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketPolicy",
        "s3:GetBucketLogging",
        "s3:GetBucketNotification",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketWebsite",
        "s3:GetEncryptionConfiguration",
        "s3:GetLifecycleConfiguration",
        "s3:GetReplicationConfiguration",
        "s3:GetAccelerateConfiguration",
    }
)
OBJECT_LEVEL_ACTIONS = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAttributes",
        "s3:GetObjectVersionAttributes",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectAcl",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
        "s3:GetObjectTorrent",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:AbortMultipartUpload",
        "s3:RestoreObject",
    }
)
#: Object tags are an authorization input (s3:ExistingObjectTag conditions in bucket and IAM policies, ABAC):
#: whoever may change them may change who can read the object. They are refused like the other
#: permission-changing actions (a level naming one is unusable and reported, never granted).
PERMISSION_CHANGING_ACTIONS = frozenset(
    {
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
        "s3:PutObjectAcl",
        "s3:PutObjectVersionAcl",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketAcl",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketTagging",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
    }
)
assert not PERMISSION_CHANGING_ACTIONS & (BUCKET_LEVEL_ACTIONS | OBJECT_LEVEL_ACTIONS)
_DECRYPT = ("kms:Decrypt",)
_ENCRYPT = ("kms:Decrypt", "kms:GenerateDataKey")  # multipart uploads also need Decrypt
#: What an S3 action needs from the bucket's customer key when the bucket is SSE-KMS encrypted.
KMS_FOR_ACTION: Mapping[str, tuple[str, ...]] = {
    "s3:GetObject": _DECRYPT,
    "s3:GetObjectVersion": _DECRYPT,
    "s3:GetObjectTorrent": _DECRYPT,
    "s3:RestoreObject": _DECRYPT,
    "s3:PutObject": _ENCRYPT,
}


def resource_type(action: str) -> Literal["bucket", "object"] | None:
    if action in BUCKET_LEVEL_ACTIONS:
        return "bucket"
    if action in OBJECT_LEVEL_ACTIONS:
        return "object"
    return None


@dataclass(frozen=True)
class LevelActions:
    bucket: frozenset[str]
    object: frozenset[str]
    kms: frozenset[str]


def level_table(config: Config) -> tuple[dict[str, LevelActions], dict[str, list[str]]]:
    """Each usable level's actions split by resource type, and the unknown actions of unusable levels."""
    usable: dict[str, LevelActions] = {}
    unknown: dict[str, list[str]] = {}
    for level, actions in config.bucket_grants.levels.items():
        bad = sorted(a for a in actions if resource_type(a) is None)
        if bad:
            unknown[level] = bad
            continue
        usable[level] = LevelActions(
            bucket=frozenset(a for a in actions if resource_type(a) == "bucket"),
            object=frozenset(a for a in actions if resource_type(a) == "object"),
            kms=frozenset(k for a in actions for k in KMS_FOR_ACTION.get(a, ())),
        )
    return usable, unknown
