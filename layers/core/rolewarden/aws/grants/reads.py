"""The reads of bucket grants: a bucket's tags and default customer key (``read_bucket``), every bucket
(``list_buckets``, once per sweep), and the IAM snapshot (one paginated GetAccountAuthorizationDetails:
every role, and every local managed policy with all its versions, documents and attachments)."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of
from rolewarden.model.grants import BucketView

_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_AWS_MANAGED_S3_KEYS = ("alias/aws/s3",)
#: What the grants capability reads from GetAccountAuthorizationDetails.
GRANTS_FILTERS = ("Role", "LocalManagedPolicy")


def _bucket_key(rules: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(customer key ARN, problem) from a bucket's default-encryption rules."""
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") not in ("aws:kms", "aws:kms:dsse"):
            continue
        key = str(default.get("KMSMasterKeyID") or "")
        if not key or key.endswith(_AWS_MANAGED_S3_KEYS):
            return None, None  # the AWS managed key aws/s3: its key policy already serves the account
        if _KMS_KEY_ARN_RE.match(key):
            return key, None
        return None, (
            f"the bucket's default encryption names KMS key {key[:100]!r} by id or alias; RoleWarden makes no "
            "KMS calls and grants keys by ARN only, so the grant does not include the key: set the key ARN"
        )
    return None, None


def read_bucket(name: str, tag_prefix: str) -> BucketView:
    """The bucket's tags (and its default customer key when it carries grant tags), read from S3 now."""
    s3 = client("s3")
    try:
        try:
            tag_set = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except ClientError as exc:
            if code_of(exc) == "NoSuchTagSet":
                tag_set = []
            elif code_of(exc) == "NoSuchBucket":
                return BucketView(name, exists=False)
            else:
                raise
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in tag_set}
        if not any(key.startswith(tag_prefix) for key in tags):
            return BucketView(name, tags=tags)
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"].get("Rules", [])
        except ClientError as exc:
            if code_of(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                rules = []
            elif code_of(exc) == "NoSuchBucket":
                return BucketView(name, exists=False)
            else:
                raise
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, f"s3 read of bucket {name}") from exc
    key, problem = _bucket_key(rules)
    return BucketView(name, tags=tags, kms_key=key, kms_problem=problem)


def list_buckets() -> list[str]:
    s3 = client("s3")
    try:
        if s3.can_paginate("list_buckets"):
            names = [b["Name"] for page in s3.get_paginator("list_buckets").paginate() for b in page.get("Buckets", [])]
        else:  # pragma: no cover - older botocore
            names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, "s3:ListBuckets") from exc
    return sorted(set(names))
