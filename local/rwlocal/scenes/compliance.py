"""`make demo` scene: a managed role drifts (AdministratorAccess attached, a trust policy open to another
account, a debug inline policy), the CloudTrail events go through the stack's EventBridge rules and
queue into the real role-compliance handler, and the role is put back, with the prior state recorded.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3

from rwlocal import world as w
from rwlocal.pipeline import put_events
from rwlocal.server import ACCOUNT_ID

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
ADMIN_DOCUMENT = w.ADMIN_DOCUMENT
ROLE = "billing-app"
OTHER_ACCOUNT_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "sts:AssumeRole"},
    ],
}
DEBUG_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "ReadReports", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"},
        {"Sid": "TemporaryDebug", "Effect": "Allow", "Action": "iam:*", "Resource": "*"},
    ],
}


def cloudtrail_event(name: str, params: dict[str, Any], caller: str = "platform-admin") -> dict[str, Any]:
    """An IAM CloudTrail event as EventBridge delivers it (see events/cloudtrail-iam-*.json)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "source": "aws.iam",
        "detail-type": "AWS API Call via CloudTrail",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLEADMIN:alice",
                "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{caller}/alice",
                "accountId": ACCOUNT_ID,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEADMIN",
                        "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{caller}",
                        "accountId": ACCOUNT_ID,
                        "userName": caller,
                    },
                    "attributes": {"creationDate": now, "mfaAuthenticated": "false"},
                },
            },
            "eventTime": now,
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "requestParameters": params,
            "responseElements": None,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT_ID,
        },
    }


def _state(role: str) -> dict[str, str]:
    iam: Any = boto3.client("iam")
    raw = iam.get_role(RoleName=role)["Role"]
    attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    inline = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        statements = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]
        inline[name] = ", ".join(s.get("Sid", "?") for s in statements)
    principals = [json.dumps(s["Principal"]) for s in raw["AssumeRolePolicyDocument"]["Statement"]]
    return {
        "attached policies": ", ".join(attached) or "-",
        "inline policies": "; ".join(f"{k} [{v}]" for k, v in inline.items()) or "-",
        "trusted principals": " ".join(principals),
    }


def scene(demo: Any) -> None:
    demo.section("Role compliance: a managed role drifts and is put back")
    w.ensure_aws_managed_policy()
    iam = boto3.client("iam")
    w.create_role(ROLE)
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(OTHER_ACCOUNT_TRUST))
    iam.put_role_policy(RoleName=ROLE, PolicyName="debug", PolicyDocument=json.dumps(DEBUG_POLICY))
    before = _state(ROLE)

    # What CloudTrail would emit for those three calls, made by a person through a role session.
    sent = put_events(
        [
            cloudtrail_event("AttachRolePolicy", {"roleName": ROLE, "policyArn": ADMIN_ARN}),
            cloudtrail_event(
                "UpdateAssumeRolePolicy", {"roleName": ROLE, "policyDocument": json.dumps(OTHER_ACCOUNT_TRUST)}
            ),
            cloudtrail_event(
                "PutRolePolicy", {"roleName": ROLE, "policyName": "debug", "policyDocument": json.dumps(DEBUG_POLICY)}
            ),
        ]
    )
    found: list[Any] = []

    def collect(consumer: str, event: dict[str, Any], response: dict[str, Any]) -> None:
        sink = demo.pipeline.consumers[consumer].handler().handler.last_sink
        if sink is not None:
            found.extend(sink.findings)

    # The findings are shown as a table below rather than as the function's JSON log lines.
    demo.pipeline.consumers["RoleComplianceFunction"].handler()  # loaded now: its Logger sets the level once
    service_logger = logging.getLogger("rolewarden")
    saved = service_logger.level
    service_logger.setLevel(logging.ERROR)
    demo.pipeline.on_batch = collect
    try:
        stats = demo.pipeline.drain(["RoleComplianceFunction"])
    finally:
        demo.pipeline.on_batch = None
        service_logger.setLevel(saved)
    after = _state(ROLE)
    demo.table(
        "findings (also published to the SNS findings topic)",
        ["rule", "mode", "finding"],
        [[f.rule, f.details.get("mode", "-"), f.message] for f in found],
    )
    demo.table(
        f"role {ROLE}: {sent} CloudTrail events -> IamRoleChangesRule -> RoleComplianceQueue -> handler "
        f"({stats.invocations} handler invocations in the demo so far)",
        ["", "before", "after"],
        [[key, before[key], after[key]] for key in before],
    )

    from rolewarden.operator import compliance

    table = demo.stack.physical("StateTable")
    records = compliance.history(f"role/{ROLE}", table=table)
    demo.table(
        "recorded remediations (state table): `rolewarden rollback role/NAME --to RECORD` restores one",
        ["record", "time", "rules", "what was done"],
        [
            [r["record_id"], r["time"], ", ".join(sorted({f["rule"] for f in r["findings"]})), "; ".join(r["actions"])]
            for r in records
        ],
    )
    if after["attached policies"] != "-" or "210987654321" in after["trusted principals"] or not records:
        raise SystemExit(f"demo check failed: role {ROLE} was not put back: {after}")
    if "TemporaryDebug" in after["inline policies"]:
        raise SystemExit("demo check failed: the escalating debug statement is still there")
