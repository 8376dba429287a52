"""Bucket tags drive S3 grants: observe (S3 + one IAM pass), decide (pure), apply the plan."""

from rolewarden.capabilities.grants.reconcile import BucketGrants

CAPABILITY = BucketGrants()
