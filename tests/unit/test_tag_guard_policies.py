"""The guardrails in policies/ (issue 16): every IAM document checked against the offline IAM service
catalog (actions, condition keys, operators, resource ARNs) and against the tag keys the shipped config
really uses; and the template's instance-profile IAM rules (issue 10, defect 7) kept in step with the
forwarder and with triggers.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from rolewarden.config import parse_config
from rolewarden.triggers import IAM_PROFILE_EVENTS
from rwlocal import iamcatalog
from rwlocal.stack import load_template

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
SHIPPED = parse_config((ROOT / "config" / "rolewarden.yaml").read_text(), "config/rolewarden.yaml")
PIPELINE = "arn:aws:iam::111122223333:role/platform-pipeline"


def _documents(name: str, parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The template's policy documents with its intrinsics resolved by the catalog's own resolver. An
    Organizations policy's Content is handed to it as a managed policy's document (same JSON grammar)."""
    template = copy.deepcopy(load_template(POLICIES / name))
    lists = {k for k, v in template.get("Parameters", {}).items() if v["Type"] == "CommaDelimitedList"}
    template["Resources"] = _split_lists(template["Resources"], lists)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Organizations::Policy":
            resource["Type"] = "AWS::IAM::ManagedPolicy"
            resource["Properties"] = {"PolicyDocument": resource["Properties"]["Content"]}
    return dict(iamcatalog.template_documents(template, parameters))


def _split_lists(node: Any, lists: set[str]) -> Any:
    """CloudFormation resolves a Ref to a CommaDelimitedList parameter to a list; the catalog's resolver
    returns the raw text, so spell that out as the equivalent Fn::Split before resolving."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in lists:
            return {"Fn::Split": [",", node]}
        return {k: _split_lists(v, lists) for k, v in node.items()}
    if isinstance(node, list):
        return [_split_lists(v, lists) for v in node]
    return node


def tag_condition_problems(document: dict[str, Any]) -> list[str]:
    """A tag condition key (aws:TagKeys, aws:RequestTag/...) on an action the catalog does not list it for.
    The catalog check accepts global aws:* keys everywhere, but such a key is simply absent from the
    request of an action that does not support it, and a Deny conditioned on it never applies."""
    out = []
    for statement in _list(document["Statement"]):
        keys = [k for ops in statement.get("Condition", {}).values() for k in ops if k.startswith(TAG_KEYS)]
        if not keys:
            continue
        for action in _list(statement["Action"]):
            service, _, name = action.partition(":")
            privilege = iamcatalog.catalog()[service]["privileges"][name]
            supported = {k for rt in privilege["resource_types"].values() for k in rt["condition_keys"]}
            for key in keys:
                template = "aws:RequestTag/${TagKey}" if key.startswith("aws:RequestTag/") else key
                if template not in supported:
                    out.append(f"{statement.get('Sid', '?')}: {action} does not support {key}")
    return out


TAG_KEYS = ("aws:TagKeys", "aws:RequestTag/")


def _defaults(name: str) -> dict[str, str]:
    params = load_template(POLICIES / name)["Parameters"]
    return {k: str(v["Default"]) for k, v in params.items() if "Default" in v}


GUARDS = ["tag-guard-scp.yaml", "tag-guard-boundary.yaml"]
PARAMS = {"ExemptPrincipalArns": f"{PIPELINE},arn:aws:iam::*:role/ops/*", "TargetIds": "ou-abcd-12345678"}


@pytest.mark.parametrize("name", GUARDS)
def test_each_guard_document_passes_the_iam_catalog(name: str) -> None:
    documents = _documents(name, {**_defaults(name), **PARAMS})
    assert documents
    for where, document in documents.items():
        assert iamcatalog.problems(document, where=where) == []
        assert tag_condition_problems(document) == []


def test_the_catalog_check_is_not_vacuous() -> None:
    """The same check refuses the action the issue names but IAM does not have (s3:DeleteBucketTagging is
    authorized by s3:PutBucketTagging), and a tag-key condition on PutBucketTagging, which takes none."""
    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Action": "s3:DeleteBucketTagging", "Resource": "arn:aws:s3:::*"},
            {
                "Effect": "Deny",
                "Action": "s3:PutBucketTagging",
                "Resource": "arn:aws:s3:::*",
                "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "rolewarden:*"}},
            },
        ],
    }
    assert any("DeleteBucketTagging" in line for line in iamcatalog.problems(bad))
    bad["Statement"] = bad["Statement"][1:]
    assert tag_condition_problems(bad) == ["?: s3:PutBucketTagging does not support aws:TagKeys"]


def _statements(name: str) -> dict[str, dict[str, Any]]:
    (document,) = [d for w, d in _documents(name, {**_defaults(name), **PARAMS}).items() if "Guard" in w]
    return {s["Sid"]: s for s in document["Statement"]}


@pytest.mark.parametrize("name", GUARDS)
def test_the_guard_covers_the_tag_keys_the_config_uses(name: str) -> None:
    """Fails when the config's instance rule keys or bucket_grants.tag_prefix and the guard disagree."""
    statements = _statements(name)
    prefix = _defaults(name)["TagPrefix"]
    assert prefix == SHIPPED.bucket_grants.tag_prefix
    guarded = statements["DenyGuardedInstanceTagKeys"]["Condition"]["ForAnyValue:StringLike"]["aws:TagKeys"]
    for rule in SHIPPED.instance_profiles.rules:
        for key in rule.match:
            assert key.startswith(guarded.rstrip("*")), f"instance rule key {key!r} is not guarded by {guarded}"
    bucket = statements["DenyGuardedBucketTagKeys"]["Condition"]["ForAnyValue:StringLike"]["aws:TagKeys"]
    assert bucket == f"{SHIPPED.bucket_grants.tag_prefix}*"
    # the values the guard lets through are exactly the ones the config's rules map to profiles
    values = statements["DenyUnknownProfileTagValues"]["Condition"]["StringNotEquals"]
    (key,) = values
    wanted: set[str] = set()
    for rule in SHIPPED.instance_profiles.rules:
        value = rule.match.get(key.removeprefix("aws:RequestTag/"))
        if value is not None:
            wanted |= set(value) if isinstance(value, list) else {value}
    assert set(values[key]) == wanted
    # every principal but the named ones, in every statement that limits who may tag
    for sid in ("DenyGuardedInstanceTagKeys", "DenyGuardedBucketTagKeys", "DenyWholeTagSetBucketTagging"):
        exempt = statements[sid]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
        assert exempt == PARAMS["ExemptPrincipalArns"].split(",")
    # every tagging action the issue names (DeleteBucketTagging is authorized by s3:PutBucketTagging)
    actions = {a for s in statements.values() if s["Effect"] == "Deny" for a in _list(s["Action"])}
    assert actions == {"ec2:CreateTags", "ec2:DeleteTags", "s3:PutBucketTagging", "s3:TagResource", "s3:UntagResource"}


def test_the_boundary_denies_what_the_scp_denies() -> None:
    scp, boundary = _statements(GUARDS[0]), _statements(GUARDS[1])
    allow = boundary.pop("BoundaryAllowsWhatIdentityPoliciesGrant")
    assert allow["Effect"] == "Allow"
    assert scp == boundary


def test_the_tag_policy_names_the_keys_and_values_the_config_uses() -> None:
    template = load_template(POLICIES / "tag-policy.yaml")
    content = template["Resources"]["RoleWardenTagPolicy"]["Properties"]["Content"]["tags"]
    prefix = SHIPPED.bucket_grants.tag_prefix
    instance_keys = {k for rule in SHIPPED.instance_profiles.rules for k in rule.match}
    bucket_keys = {prefix + level for level in SHIPPED.bucket_grants.levels}
    assert set(content) == instance_keys | bucket_keys
    for key, entry in content.items():
        assert entry["tag_key"] == {"@@assign": key}
    profile_values = template["Parameters"]["ProfileTagValues"]["Default"].split(",")
    assert profile_values == _defaults("tag-guard-scp.yaml")["ProfileTagValues"].split(",")
    assert content[f"{prefix}profile"]["tag_value"] == {"@@assign": {"Ref": "ProfileTagValues"}}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- the instance-profile IAM rules ----------------------------------------------------------------
TEMPLATE = load_template()["Resources"]
FORWARDER = load_template(ROOT / "forwarder.yaml")["Resources"]


def _iam_rules(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v
        for k, v in resources.items()
        if v["Type"] == "AWS::Events::Rule" and v["Properties"].get("EventPattern", {}).get("source") == ["aws.iam"]
    }


def test_profile_rules_target_the_instance_profiles_queue_with_the_self_caused_filter() -> None:
    rules = _iam_rules(TEMPLATE)
    mine = {k: v for k, v in rules.items() if k.startswith("InstanceProfileRoleChanges")}
    assert set(mine) == {"InstanceProfileRoleChangesRule", "InstanceProfileRoleChangesByOthersRule"}
    for logical_id, rule in mine.items():
        props = rule["Properties"]
        assert sorted(props["EventPattern"]["detail"]["eventName"]) == sorted(IAM_PROFILE_EVENTS)
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["InstanceProfilesQueue", "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["InstanceProfilesDLQ", "Arn"]}}
        assert "Condition" not in rule, f"{logical_id} must also exist outside us-east-1"
    # the same self-caused filter as the IAM role rules, so RoleWarden never reacts to itself
    for mine_id, role_id in (
        ("InstanceProfileRoleChangesRule", "IamRoleChangesRule"),
        ("InstanceProfileRoleChangesByOthersRule", "IamRoleChangesByOthersRule"),
    ):
        a, b = (rules[x]["Properties"]["EventPattern"]["detail"] for x in (mine_id, role_id))
        # in the home stack (the IAM role rules exist only there) the profile rules filter the same sessions
        a = _home_branch(a)
        assert {k: v for k, v in a.items() if k != "eventName"} == {k: v for k, v in b.items() if k != "eventName"}


def _home_branch(node: Any) -> Any:
    """The value a node takes in the home region's stack: every ``Fn::If: [IsHome, a, b]`` is ``a``."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] == "IsHome":
            return _home_branch(node["Fn::If"][1])
        return {k: _home_branch(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_home_branch(v) for v in node]
    return node


def test_the_forwarder_forwards_the_same_iam_event_names_as_the_stack_listens_to() -> None:
    listened = {
        n for r in _iam_rules(TEMPLATE).values() for n in r["Properties"]["EventPattern"]["detail"]["eventName"]
    }
    forwarded = {
        n for r in _iam_rules(FORWARDER).values() for n in r["Properties"]["EventPattern"]["detail"]["eventName"]
    }
    assert forwarded == listened
    assert forwarded >= IAM_PROFILE_EVENTS
    (dlq_policy,) = [v for v in FORWARDER.values() if v["Type"] == "AWS::SQS::QueuePolicy"]
    sources = dlq_policy["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == sorted(_iam_rules(FORWARDER))


def test_the_heartbeat_is_granted_like_complete_lifecycle_action() -> None:
    statements = TEMPLATE["InstanceProfilesFunction"]["Properties"]["Policies"][0]["Statement"]
    (hooks,) = [s for s in statements if s.get("Sid") == "ReleaseLaunchHooks"]
    assert hooks["Action"] == ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    assert "autoScalingGroupName/*" in hooks["Resource"]["Fn::Sub"]
