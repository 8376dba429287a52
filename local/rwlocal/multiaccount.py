"""The multi-account local AWS (issue 14): the central stack (template.yaml, Mode=central) in moto's default
account and member stacks (member.yaml) in other account ids, each created the way a service-managed
StackSet would, by CloudFormation in the member account. moto keeps one state per account id, and STS
AssumeRole into a role of another account returns credentials that act there (it does not check the role
exists), which is how this module reaches each member."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import boto3

from rwlocal.stack import ROOT, Stack, deploy, load_template

CENTRAL_ACCOUNT = "123456789012"  # moto's default account
ORGANIZATION_ID = "o-rolewarden01"
MEMBER_TEMPLATE = ROOT / "member.yaml"


def member_session(account: str, region: str = "us-east-1") -> boto3.session.Session:
    """A session acting in ``account``, as the organization's access role of a member would give."""
    given = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="rwlocal-stackset"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=given["AccessKeyId"],
        aws_secret_access_key=given["SecretAccessKey"],
        aws_session_token=given["SessionToken"],
        region_name=region,
    )


@dataclass
class Member:
    account: str
    stack_name: str
    resources: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def session(self) -> boto3.session.Session:
        return member_session(self.account)


def deploy_central(name: str = "rolewarden-central") -> Stack:
    return deploy(name, {"Mode": "central", "OrganizationId": ORGANIZATION_ID})


def deploy_member(central: Stack, account: str, region: str = "us-east-1") -> Member:
    """member.yaml in ``account`` with the parameters the StackSet would pass from the central outputs."""
    profiles, grants, compliance = central.outputs["CentralRoleNames"].split(",")
    parameters = {
        "CentralAccountId": CENTRAL_ACCOUNT,
        "CentralRegion": region,
        "CentralBusName": central.outputs["CentralBusName"],
        "InstanceProfilesRoleName": profiles,
        "BucketGrantsRoleName": grants,
        "RoleComplianceRoleName": compliance,
        "OrganizationId": ORGANIZATION_ID,
    }
    name = f"StackSet-rolewarden-member-{account}"
    cfn = member_session(account, region).client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(load_template(MEMBER_TEMPLATE)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"member stack in {account} ended {described['StackStatus']}")
    resources = {
        s["LogicalResourceId"]: s.get("PhysicalResourceId", "")
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        for s in page["StackResourceSummaries"]
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return Member(account, name, resources, outputs)
