"""Typed models of the S3 bucket events the bucket-grants function routes (see ``rolewarden.events``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rolewarden.errors import MalformedEvent
from rolewarden.events.fields import REQUEST, EnvelopeFields, cloudtrail_request, matching, resource_arns

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$")


@dataclass(frozen=True)
class S3BucketCall:
    """AWS API Call via CloudTrail on a bucket. PutBucketTagging, DeleteBucketTagging, CreateBucket,
    DeleteBucket and Put/DeleteBucketEncryption carry bucketName; TagResource/UntagResource (S3 console,
    CloudFormation, ABAC buckets) carry the resource ARN. None for a failed call or another S3 resource."""

    bucket: str

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> S3BucketCall | None:
        params = cloudtrail_request(env)
        if params is None:
            return None
        name = params.get("bucketName")
        if isinstance(name, str):
            return cls(matching(params, "bucketName", REQUEST, _BUCKET_RE, "a bucket name"))
        arn = params.get("resourceArn") or params.get("ResourceArn")
        if not isinstance(arn, str):
            raise MalformedEvent(
                f"{REQUEST}.bucketName or .resourceArn must be a string,"
                f" got {type(name).__name__} and {type(arn).__name__}"
            )
        match = _BUCKET_ARN_RE.match(arn)
        return cls(match.group(1)) if match else None  # an access point, a job ...: not a bucket


@dataclass(frozen=True)
class BucketTagChange:
    """Tag Change on Resource (aws.tag) for S3 buckets; None for other services' resources."""

    buckets: tuple[str, ...]

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> BucketTagChange | None:
        if env.detail.get("service") != "s3" or env.detail.get("resource-type") != "bucket":
            return None
        return cls(resource_arns(env, _BUCKET_ARN_RE, "an S3 bucket ARN"))
