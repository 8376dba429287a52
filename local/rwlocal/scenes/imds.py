"""`make demo` scene (issue 15): an instance launched with IMDSv1 open gets its profile and IMDSv2 in one pass
of the instance-profiles handler, and its role gets the instance-credential perimeter from the role-compliance
handler, both through the stack's EventBridge rules and queues."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

import boto3
import yaml

from rwlocal import world as w
from rwlocal.pipeline import put_events
from rwlocal.scenes.compliance import cloudtrail_event

ROLE = "reports-app"
PROFILE = "reports-app"
POLICY = "rolewarden-instance-perimeter"
APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "ReadReports", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"},
        {"Sid": "Queue", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
        {"Sid": "Params", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"},
    ],
}


def _config(base: str) -> str:
    """The demo's config with IMDSv2 enforced and the perimeter on, its VPC reaching S3 and SQS through endpoints."""
    with open(base, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["instance_profiles"]["rules"].append({"match": {"rolewarden:profile": "reports"}, "profile": PROFILE})
    data["instance_profiles"]["metadata"] = {"imdsv2": "enforce", "hop_limit": 2}
    compliance = data.setdefault("compliance", {})
    compliance.setdefault("rules", {})["instance-credential-perimeter"] = "enforce"
    compliance["instance_perimeter"] = {
        "endpoint_services": [{"roles": [ROLE], "services": ["s3", "sqs"], "note": "S3 gateway + SQS interface"}]
    }
    handle_fd, name = tempfile.mkstemp(prefix="rolewarden-demo-imds-", suffix=".yaml")
    with os.fdopen(handle_fd, "w") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    return name


def _metadata(instance_id: str) -> str:
    raw = w.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    options = raw["MetadataOptions"]
    return f"HttpTokens {options['HttpTokens']}, hop limit {options['HttpPutResponseHopLimit']}"


def _perimeter(role: str) -> str:
    iam: Any = boto3.client("iam")
    if POLICY not in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        return "-"
    document = iam.get_role_policy(RoleName=role, PolicyName=POLICY)["PolicyDocument"]
    return "; ".join(f"{s['Sid']}: deny {', '.join(s['Action'])}" for s in document["Statement"])


def scene(demo: Any) -> None:
    demo.section("IMDSv2 with the attach, and the instance-credential perimeter (issue 15)")
    pipeline = demo.pipeline
    saved_config = pipeline.env_overrides.get("ROLEWARDEN_CONFIG")
    pipeline.env_overrides["ROLEWARDEN_CONFIG"] = _config(saved_config or "config/rolewarden.yaml")
    service_logger = logging.getLogger("rolewarden")
    saved_level = service_logger.level
    service_logger.setLevel(logging.ERROR)
    try:
        w.create_profile(PROFILE)
        boto3.client("iam").put_role_policy(RoleName=ROLE, PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
        instance = w.run_instance({"Name": "reports-1", "rolewarden:profile": "reports"})
        before = (w.attached_profiles([instance]).get(instance, "-"), _metadata(instance))
        put_events([w.state_change_event(instance, "running")])
        pipeline.drain(["InstanceProfilesFunction"])
        after = (w.attached_profiles([instance]).get(instance, "-"), _metadata(instance))
        demo.table(
            f"instance {instance} (launched with IMDSv1 open): one running event, one reconcile "
            "(DescribeInstances, then AssociateIamInstanceProfile and ModifyInstanceMetadataOptions)",
            ["", "profile", "metadata options"],
            [["before", *before], ["after", *after]],
        )

        found: list[Any] = []

        def collect(consumer: str, event: dict[str, Any], response: dict[str, Any]) -> None:
            sink = pipeline.consumers[consumer].handler().handler.last_sink
            if sink is not None:
                found.extend(f for f in sink.findings if f.rule == "instance-credential-perimeter")

        perimeter_before = _perimeter(ROLE)
        put_events([cloudtrail_event("PutRolePolicy", {"roleName": ROLE, "policyName": "app"})])
        pipeline.on_batch = collect
        try:
            pipeline.drain(["RoleComplianceFunction"])
        finally:
            pipeline.on_batch = None
        perimeter_after = _perimeter(ROLE)
        demo.table(
            f"role {ROLE}: its VPC reaches S3 and SQS through endpoints; it may also call SSM (no endpoint)",
            ["", POLICY],
            [["before", perimeter_before], ["after", perimeter_after]],
        )
        rows = [[f.details.get("mode"), f.message] for f in found]
        demo.table("what the perimeter rule says", ["mode", "finding"], rows)
    finally:
        pipeline.env_overrides["ROLEWARDEN_CONFIG"] = saved_config or ""
        service_logger.setLevel(saved_level)
    if after[0] != PROFILE or not after[1].startswith("HttpTokens required, hop limit 2"):
        raise SystemExit(f"demo check failed: {instance} ended with {after}")
    if "s3:*, sqs:*" not in perimeter_after or "ssm" in perimeter_after:
        raise SystemExit(f"demo check failed: role {ROLE} perimeter is {perimeter_after!r}")
