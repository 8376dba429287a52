"""Deploy template.yaml into the moto server: translate the SAM template offline (moto has no SAM
transform), upload stand-in artifacts, and create the CloudFormation stack. The SQS event source
mappings are left out: moto would try to invoke the functions in Docker; ``rwlocal.pipeline`` plays
Lambda's SQS poller instead, calling the real handlers in-process with the functions' own environment."""

from __future__ import annotations

import ast
import copy
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ARTIFACT_BUCKET = "rolewarden-local-artifacts"


class _CfnLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation short forms (!Ref, !Sub, !GetAtt...) as their long forms,
    without touching the global yaml loaders (samcli.yamlhelper registers OrderedDict globally)."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as a dict, short-form intrinsics (!Ref, !Sub...) expanded."""
    return dict(yaml.load(path.read_text(), Loader=_CfnLoader))


def translate(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the SAM transform offline and return plain CloudFormation."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{ARTIFACT_BUCKET}/{Path(props[key]).name or 'code'}.zip"
    session = boto3.session.Session(region_name="us-east-1")
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session)
    return dict(translator.translate(sam, parameter_values=dict(parameters or {}), get_managed_policy_map=lambda: {}))


def _artifact_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


@dataclass
class Stack:
    name: str
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    outputs: dict[str, str] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)  # the SAM template as written

    def physical(self, logical_id: str) -> str:
        return self.resources[logical_id]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment variables as deployed (intrinsics resolved by CloudFormation)."""
        config = boto3.client("lambda").get_function_configuration(FunctionName=self.physical(logical_id))
        return {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}

    def function_role_arn(self, logical_id: str) -> str:
        """The ARN of the function's execution role, read from IAM (moto's Lambda config can disagree)."""
        role_name = self.physical(f"{logical_id}Role")
        return str(boto3.client("iam").get_role(RoleName=role_name)["Role"]["Arn"])


def deploy(name: str = "rolewarden-local", parameters: dict[str, str] | None = None) -> Stack:
    """Create the stack in the moto server that AWS_ENDPOINT_URL points at."""
    template = load_template()
    cfn_template = translate(template)
    for logical_id in [
        k for k, v in cfn_template["Resources"].items() if v["Type"] == "AWS::Lambda::EventSourceMapping"
    ]:
        del cfn_template["Resources"][logical_id]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    payload = _artifact_zip()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"{Path(props[key]).name or 'code'}.zip", Body=payload)
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {name} ended {described['StackStatus']}: {described.get('StackStatusReason')}")
    resources: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for summary in page["StackResourceSummaries"]:
            if summary.get("LogicalResourceId"):
                resources[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    stack = Stack(name=name, resources=resources, outputs=outputs, template=template)
    _pin_schedules(stack)
    restore_inline_policies_as_text()
    return stack


def restore_inline_policies_as_text(iam: Any = None) -> None:
    """moto 5.2 quirk: inline role policies created by CloudFormation are stored as Python dicts (None for
    AWS::NoValue), and GetAccountAuthorizationDetails then fails with a 500 (``parse.quote(dict)`` in
    ``Role.role_policy_list``). Writing each one back as JSON text with the same statements fixes it (``iam``:
    a client of the account to fix, the default account's when None)."""
    iam = iam or boto3.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                raw = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
                if isinstance(raw, dict):
                    document: Any = raw
                elif isinstance(raw, str) and raw.startswith("{'"):
                    document = ast.literal_eval(raw)
                else:
                    continue
                document["Statement"] = [s for s in document.get("Statement", []) if s]
                document.setdefault("Version", "2012-10-17")
                iam.put_role_policy(RoleName=role["RoleName"], PolicyName=name, PolicyDocument=json.dumps(document))


def schedule_rules(template: dict[str, Any]) -> list[str]:
    return [
        k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in v.get("Properties", {})
    ]


def _pin_schedules(stack: Stack) -> None:
    """moto quirk: a scheduled rule (no EventPattern) matches *every* event put on the bus. Give each
    one a pattern matching only its own Scheduled Event, which ``rwlocal.pipeline.fire_schedule``
    sends to play the schedule's part."""
    events = boto3.client("events")
    for logical_id in schedule_rules(stack.template):
        if logical_id not in stack.resources:
            continue  # its Condition is false in this stack (e.g. a global capability outside the home region)
        rule = events.describe_rule(Name=stack.physical(logical_id))
        events.put_rule(
            Name=rule["Name"],
            ScheduleExpression=rule["ScheduleExpression"],
            EventPattern=json.dumps(
                {"source": ["aws.events"], "detail-type": ["Scheduled Event"], "resources": [rule["Arn"]]}
            ),
            State="ENABLED",
        )
