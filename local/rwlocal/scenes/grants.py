"""`make demo` scene: bucket tags drive S3 grants. Managed roles and buckets are seeded, one bucket is
tagged, the CloudTrail PutBucketTagging event goes through the stack's own EventBridge rule and queue into
the real bucket-grants handler, and the role's generated policy is shown before and after. Then the
grant is narrowed (a new policy version), and a bad tag value is refused.
"""

from __future__ import annotations

import json
from typing import Any, cast

import boto3

from rwlocal import world as w
from rwlocal.pipeline import put_events

PATH = "/rolewarden/"
BUCKETS = {
    "acme-reports": {"team": "analytics"},
    "acme-uploads": {"team": "ingest"},
    "acme-audit-logs": {"rolewarden:read": "reporting-app"},  # protected by config: never granted
}


def tagging_event(bucket: str, tags: dict[str, str]) -> dict[str, Any]:
    """A CloudTrail PutBucketTagging event (the shape of events/cloudtrail-s3-putbuckettagging.json)."""
    return {
        "source": "aws.s3",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutBucketTagging",
            "awsRegion": "us-east-1",
            "requestParameters": {
                "bucketName": bucket,
                "tagging": "",
                "Tagging": {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}},
            },
            "userIdentity": {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::123456789012:assumed-role/platform-admin/alice",
            },
        },
    }


def _tag(bucket: str, tags: dict[str, str]) -> None:
    boto3.client("s3").put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
    )
    put_events([tagging_event(bucket, tags)])


def grant_policies(role: str) -> list[dict[str, Any]]:
    """The role's generated policies: name, versions, default, statements in brief."""
    iam = boto3.client("iam")
    rows = []
    for page in iam.get_paginator("list_policies").paginate(Scope="Local", PathPrefix=PATH):
        for policy in page["Policies"]:
            if policy["PolicyName"] not in (f"rolewarden-grants-{role}",) and not policy["PolicyName"].startswith(
                f"rolewarden-grants-{role}-"
            ):
                continue
            versions = iam.list_policy_versions(PolicyArn=policy["Arn"])["Versions"]
            document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            rows.append(
                {
                    "name": policy["PolicyName"],
                    "default": policy["DefaultVersionId"],
                    "versions": sorted((v["VersionId"] for v in versions), key=lambda v: int(v[1:])),
                    "statements": cast(Any, document)["PolicyVersion"]["Document"]["Statement"],
                }
            )
    return rows


def _brief(statement: dict[str, Any]) -> str:
    actions = ", ".join(a.split(":", 1)[1] for a in statement["Action"])
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return f"{statement.get('Sid', '')}: {actions} on {', '.join(r.split(':::')[-1] for r in resources)}"


def _show(demo: Any, title: str, role: str) -> None:
    policies = grant_policies(role)
    rows = [
        [p["name"], p["default"], " ".join(p["versions"]), "\n".join(_brief(s) for s in p["statements"])]
        for p in policies
    ] or [["(none)", "", "", ""]]
    demo.table(title, ["policy", "default", "versions", "statements"], rows)


def scene(demo: Any) -> None:
    demo.section("Bucket tags drive S3 grants")
    for role in ("reporting-app", "ingest-worker"):
        w.create_role(role)
    w.create_role("legacy-app", path="/legacy/")
    s3 = boto3.client("s3")
    for bucket, tags in BUCKETS.items():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    demo.console.print(
        "Roles reporting-app and ingest-worker are under /rolewarden/, legacy-app is not. "
        f"Buckets: {', '.join(BUCKETS)}."
    )
    _show(demo, "reporting-app before", "reporting-app")

    demo.console.print(
        'Tag acme-reports with rolewarden:read = "reporting-app" and acme-uploads with '
        'rolewarden:write = "reporting-app ingest-worker"; the events go through the stack.'
    )
    _tag("acme-reports", {"team": "analytics", "rolewarden:read": "reporting-app"})
    _tag("acme-uploads", {"team": "ingest", "rolewarden:write": "reporting-app ingest-worker"})
    _tag("acme-audit-logs", {"rolewarden:read": "reporting-app"})
    demo.pipeline.drain(["BucketGrantsFunction"])
    _show(demo, "reporting-app after the tags", "reporting-app")

    demo.console.print('Narrow: acme-uploads now lists only ingest-worker, and a tag value tries "* legacy-app".')
    _tag("acme-uploads", {"team": "ingest", "rolewarden:write": "ingest-worker"})
    _tag("acme-reports", {"team": "analytics", "rolewarden:read": "reporting-app * legacy-app"})
    demo.pipeline.drain(["BucketGrantsFunction"])
    _show(demo, "reporting-app after narrowing (a new default version; v1 kept for rollback)", "reporting-app")
    after = grant_policies("reporting-app")
    text = json.dumps(after)
    if not after or "acme-uploads" in text or "acme-audit-logs" in text or '"*"' in text:
        raise SystemExit("demo check failed: reporting-app's grants are not what the tags say")
    demo.console.print(
        "acme-audit-logs is protected (config) and never granted; '*' and legacy-app (outside /rolewarden/) "
        "were refused with findings and never reached a policy."
    )
