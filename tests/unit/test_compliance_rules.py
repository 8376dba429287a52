"""Role compliance decisions: pure tables, no network."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from rolewarden.config import COMPLIANCE_RULE_IDS, Config
from rolewarden.decide.compliance.judge import decide_role
from rolewarden.decide.compliance.registry import READ_PERMISSIONS, RULES, index_rules, registered_rules
from rolewarden.decide.compliance.rollback import restore_plan
from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation
from rolewarden.decide.compliance.trust import CANONICAL_TRUST
from rolewarden.decide.policy import (
    action_matches,
    parse_policy,
    resource_is_broad,
    resource_is_everything,
    without_statements,
)
from rolewarden.model.compliance import (
    REMEDIATION_ACTIONS,
    DeleteInlinePolicy,
    DetachManagedPolicy,
    PutBoundary,
    ReplaceTrustPolicy,
    RewriteInlinePolicy,
    RoleAction,
    single_version_policy,
)
from rolewarden.model.documents import PolicyDocumentError
from rolewarden.model.iam import AttachedPolicy, ManagedPolicy, Role

ACCOUNT = "123456789012"
PATH = "/rolewarden/"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/rolewarden-boundary"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
GRANT_ARN = f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/rolewarden-grants-web"
EC2_TRUST = CANONICAL_TRUST


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any = None, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": "Allow"}
    if action is not None:
        s["Action"] = action
    if resource is not None:
        s["Resource"] = resource
    s.update(extra)
    return s


def config(**compliance: Any) -> Config:
    rules = compliance.pop("rules", {})
    # every rule, except the instance-credential perimeter, which needs its endpoint services configured and has
    # its own table (tests/unit/test_perimeter_rule.py)
    modes = {rule: "enforce" for rule in COMPLIANCE_RULE_IDS if rule != "instance-credential-perimeter"} | rules
    return Config.from_data({"version": 1, "managed_path": PATH, "compliance": {"rules": modes, **compliance}})


def only(rule: str, **compliance: Any) -> Config:
    """A config where ``rule`` is the only rule that is not off."""
    modes = {r: "off" for r in COMPLIANCE_RULE_IDS} | {rule: "enforce"}
    return config(rules=modes, **compliance)


def role(
    inline: dict[str, Any] | None = None,
    attached: tuple[str, ...] = (),
    trust: Any = None,
    boundary: str | None = None,
    name: str = "web",
    path: str = PATH,
) -> Role:
    return Role(
        name=name,
        arn=f"arn:aws:iam::{ACCOUNT}:role{path}{name}",
        path=path,
        trust=trust if trust is not None else EC2_TRUST,
        boundary=boundary,
        attached=tuple(AttachedPolicy(a, a.rsplit("/", 1)[-1]) for a in attached),
        inline=inline or {},
    )


def managed(arn: str, document: Any) -> ManagedPolicy:
    return single_version_policy(arn, document)


POLICIES = {
    ADMIN_ARN: managed(ADMIN_ARN, doc(allow("*"))),
    READONLY_ARN: managed(READONLY_ARN, doc(allow(["s3:Get*", "ec2:Describe*"]))),
    GRANT_ARN: managed(GRANT_ARN, doc(allow("*"))),  # content belongs to grant-policy-drift
}


def violations(rule_id: str, view: Role, cfg: Config | None = None) -> list[Violation]:
    rule = registered_rules()[rule_id]
    return rule.evaluate(view, RuleContext(cfg or config(), POLICIES))


# ------------------------------------------------------------------ registry
def test_registry_holds_every_configurable_rule_with_its_declarations() -> None:
    rules = registered_rules()
    assert tuple(rules) == COMPLIANCE_RULE_IDS
    for rule_id, rule in rules.items():
        assert rule.id == rule_id
        assert rule.checks and rule.remedy, rule_id
        assert rule.permissions and all(":" in p for p in rule.permissions), rule_id


def test_a_rule_id_can_only_be_declared_once() -> None:
    class Duplicate(Rule):
        id = "no-admin-access"

    class Nameless(Rule):
        pass

    assert [r.id for r in RULES] == list(registered_rules())
    with pytest.raises(ValueError, match="unique id"):
        index_rules((*RULES, Duplicate()))
    with pytest.raises(ValueError, match="unique id"):
        index_rules((Nameless(),))


# ------------------------------------------------------------------ normalisation
@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "iam:PassRole", True),
        ("*:*", "s3:GetObject", True),
        ("iam:*", "iam:PassRole", True),
        ("iam:Put*", "iam:PutRolePolicy", True),
        ("iam:put*", "IAM:PUTROLEPOLICY", True),
        ("IAM:PASSROLE", "iam:PassRole", True),
        ("iam:Attach*Policy", "iam:AttachUserPolicy", True),
        ("iam:Pass?ole", "iam:PassRole", True),
        ("iam:Put*", "iam:PassRole", False),
        ("s3:*", "iam:PassRole", False),
        ("iam:PassRoles", "iam:PassRole", False),
        ("iam:List*", "iam:ListRoles", True),
    ],
    ids=[
        "star",
        "star-colon-star",
        "service-wildcard",
        "prefix-wildcard",
        "case-insensitive-pattern",
        "case-insensitive-name",
        "infix-wildcard",
        "question-mark",
        "other-prefix",
        "other-service",
        "no-partial-match",
        "list-prefix",
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("resource", "everything", "broad"),
    [
        ("*", True, True),
        ("arn:aws:*:*:*:*", True, True),
        ("arn:aws:iam::*:role/*", False, True),
        (f"arn:aws:iam::{ACCOUNT}:role/*", False, True),
        (f"arn:aws:iam::{ACCOUNT}:*", False, True),
        (f"arn:aws:iam::{ACCOUNT}:role/rolewarden/*", False, False),
        (f"arn:aws:iam::{ACCOUNT}:role/app-*", False, False),
        (f"arn:aws:iam::{ACCOUNT}:role/rolewarden/web", False, False),
        ("arn:aws:s3:::bucket/*", False, False),
        ("arn:aws:s3:::*", False, True),
    ],
    ids=[
        "star",
        "all-wildcard-arn",
        "any-account-roles",
        "all-roles",
        "all-iam",
        "path-scoped",
        "name-prefix",
        "one-role",
        "one-bucket-objects",
        "all-buckets",
    ],
)
def test_resource_breadth(resource: str, everything: bool, broad: bool) -> None:
    assert resource_is_everything(resource) is everything
    assert resource_is_broad(resource) is broad


@pytest.mark.parametrize(
    "document",
    [
        doc(allow("*")),
        json.dumps(doc(allow("*"))),
        "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C"
        "%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D",
        {"Version": "2012-10-17", "Statement": allow("*")},
        {"Version": "2012-10-17", "Statement": allow(["*"], ["*"])},
    ],
    ids=["dict", "json-string", "url-encoded-json", "statement-object", "lists"],
)
def test_documents_in_every_shape_normalise_alike(document: Any) -> None:
    policy = parse_policy(document)
    assert len(policy.statements) == 1
    statement = policy.statements[0]
    assert statement.is_allow and statement.every_resource
    assert statement.allows_action("iam:PassRole")


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[1, 2]",
        {"Statement": "x"},
        {"Statement": [{"Effect": "Maybe", "Action": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": 3}]},
        42,
    ],
    ids=["not-json", "json-array", "statement-string", "bad-effect", "action-number", "number"],
)
def test_unreadable_documents_raise_a_typed_error(document: Any) -> None:
    with pytest.raises(PolicyDocumentError):
        parse_policy(document)


def test_not_action_allows_everything_it_does_not_name() -> None:
    statement = parse_policy(doc({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})).statements[0]
    assert statement.allows_action("s3:DeleteBucket")
    assert statement.allows_action("sts:AssumeRole")
    assert not statement.allows_action("iam:PassRole")
    deny = parse_policy(doc({"Effect": "Deny", "Action": "*", "Resource": "*"})).statements[0]
    assert not deny.allows_action("s3:GetObject")


@pytest.mark.parametrize(
    ("statement", "drop", "expected"),
    [
        ([allow("s3:GetObject", "a"), allow("*")], [1], doc(allow("s3:GetObject", "a"))),
        (
            [allow("*"), allow("s3:GetObject", "a"), allow("s3:PutObject", "b")],
            [0],
            doc(allow("s3:GetObject", "a"), allow("s3:PutObject", "b")),
        ),
        ([allow("*")], [0], None),
        (allow("*"), [0], None),
        (allow("s3:GetObject", "a"), [], {"Version": "2012-10-17", "Statement": allow("s3:GetObject", "a")}),
    ],
    ids=["keeps-first", "keeps-order", "none-left", "object-statement-removed", "object-statement-kept"],
)
def test_without_statements_keeps_the_good_ones_verbatim(statement: Any, drop: list[int], expected: Any) -> None:
    assert without_statements({"Version": "2012-10-17", "Statement": statement}, drop) == expected


# ------------------------------------------------------------------ no-admin-access
ADMIN_CASES = [
    (doc(allow("*")), True),
    (doc(allow("*:*")), True),
    (doc(allow(["s3:GetObject", "*"])), True),
    (doc(allow("*", ["arn:aws:s3:::x", "*"])), True),
    (doc(allow("*", "arn:aws:*:*:*:*")), True),
    (doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), True),
    (doc({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::audit/*"}), True),
    (doc(allow("*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})), True),
    (json.dumps(doc(allow("*"))), True),
    (doc(allow("*", "arn:aws:s3:::bucket/*")), False),
    (doc(allow("s3:*")), False),
    (doc(allow("iam:*")), False),
    (doc({"Effect": "Deny", "Action": "*", "Resource": "*"}), False),
    (doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b/*"}), False),
]


@pytest.mark.parametrize(
    ("document", "bad"),
    ADMIN_CASES,
    ids=[
        "star",
        "star-colon-star",
        "star-in-list",
        "star-among-resources",
        "wildcard-arn-resource",
        "notaction-leaves-everything",
        "notresource",
        "condition-does-not-excuse",
        "json-string",
        "star-on-one-bucket",
        "service-wide",
        "iam-wide-not-admin",
        "deny",
        "notaction-on-one-bucket",
    ],
)
def test_no_admin_access_inline(document: Any, bad: bool) -> None:
    found = violations("no-admin-access", role(inline={"p": document}))
    assert bool(found) is bad
    if bad:
        assert found[0].remedy == Remedy("remove-statements", policy="p", statements=(0,))


def test_no_admin_access_detaches_aws_managed_admin_but_not_readonly_or_grant_policies() -> None:
    found = violations("no-admin-access", role(attached=(ADMIN_ARN, READONLY_ARN, GRANT_ARN)))
    assert [v.remedy for v in found] == [Remedy("detach", policy=ADMIN_ARN)]


# ------------------------------------------------------------------ no-privilege-escalation
LAMBDA_PASS = allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}})
ESCALATION_CASES = [
    (doc(allow("iam:PassRole")), False),  # no service action that could use the passed role
    (doc(allow("IAM:passrole"), allow("EC2:RUNINSTANCES")), True),
    (doc(allow("iam:*")), True),
    (doc(allow("iam:Put*")), True),
    (doc(allow("iam:Attach*")), True),
    (doc(allow("iam:CreatePolicyVersion", f"arn:aws:iam::{ACCOUNT}:policy/*")), True),
    (doc(allow("iam:SetDefaultPolicyVersion")), True),
    (doc(allow("iam:UpdateAssumeRolePolicy", "arn:aws:iam::*:role/*")), True),
    (doc(allow(["iam:CreateAccessKey", "iam:CreateLoginProfile"])), True),
    (doc(allow("iam:UpdateLoginProfile")), True),
    (doc(allow("iam:AddUserToGroup")), True),
    (doc(allow("iam:DeleteRolePermissionsBoundary")), True),
    (doc(allow("sts:AssumeRole")), True),
    (doc(allow("sts:*")), True),
    (doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"}), True),
    (
        doc(
            allow("iam:PassRole", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}),
            allow("ec2:RunInstances"),
        ),
        True,
    ),
    (doc(LAMBDA_PASS, allow(["lambda:CreateFunction", "lambda:InvokeFunction"])), True),
    (
        doc(
            allow("iam:PassRole", Condition={"StringLike": {"iam:PassedToService": "*"}}),
            allow(["glue:CreateJob", "glue:StartJobRun"]),
        ),
        True,
    ),
    (
        doc(
            allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com"]}}),
            allow("ec2:*"),
        ),
        True,
    ),
    (
        doc(
            allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}),
            allow("cloudformation:UpdateStack", "arn:aws:cloudformation:*:*:stack/app/*"),
        ),
        True,
    ),
    (doc(LAMBDA_PASS, allow("lambda:CreateFunction")), False),
    (doc(LAMBDA_PASS, allow(["lambda:InvokeFunction"])), False),
    (
        doc(
            allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
            allow(["lambda:CreateFunction", "lambda:InvokeFunction"]),
        ),
        False,
    ),
    (doc(allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/web")), False),
    (doc(allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/reader")), False),
    (doc(allow(["iam:Get*", "iam:List*"])), False),
    (doc(allow("s3:*")), False),
    (doc({"Effect": "Deny", "Action": "iam:*", "Resource": "*"}), False),
]


@pytest.mark.parametrize(
    ("document", "bad"),
    ESCALATION_CASES,
    ids=[
        "passrole",
        "passrole-any-case",
        "iam-wildcard",
        "put-wildcard",
        "attach-wildcard",
        "create-policy-version-all-policies",
        "set-default-version",
        "update-trust-any-account",
        "access-key-and-login-profile",
        "update-login-profile",
        "add-user-to-group",
        "delete-boundary",
        "assume-any-role",
        "sts-wildcard",
        "notaction-on-all-roles",
        "unrelated-condition-does-not-excuse",
        "lambda-chain",
        "glue-chain-any-service",
        "ec2-chain-wildcard",
        "cloudformation-chain",
        "lambda-pass-without-invoke",
        "lambda-pass-without-create",
        "ec2-pass-without-ec2-actions",
        "passrole-one-role",
        "assume-one-role",
        "iam-read-only",
        "s3-only",
        "deny",
    ],
)
def test_no_privilege_escalation(document: Any, bad: bool) -> None:
    found = violations("no-privilege-escalation", role(inline={"p": document}))
    assert bool(found) is bad, [v.message for v in found]


def test_chain_remedy_removes_only_the_passrole_statement() -> None:
    found = violations(
        "no-privilege-escalation",
        role(inline={"p": doc(LAMBDA_PASS, allow(["lambda:CreateFunction", "lambda:InvokeFunction"]))}),
    )
    assert [v.remedy for v in found] == [Remedy("remove-statements", policy="p", statements=(0,))]


def test_chain_is_found_across_policies_of_the_role() -> None:
    lambda_policy = f"arn:aws:iam::{ACCOUNT}:policy/lambda-dev"
    policies = {
        **POLICIES,
        lambda_policy: managed(lambda_policy, doc(allow(["lambda:CreateFunction", "lambda:InvokeFunction"]))),
    }
    view = role(inline={"pass": doc(LAMBDA_PASS)}, attached=(lambda_policy,))
    rule = registered_rules()["no-privilege-escalation"]
    found = rule.evaluate(view, RuleContext(config(), policies))
    assert [v.remedy.policy for v in found] == ["pass"]
    assert [p["id"] for p in found[0].details["paths"]] == ["lambda-001"]


def test_lambda_wildcard_is_an_existing_compute_escalation_of_its_own() -> None:
    """lambda:* includes UpdateFunctionCode: the code of any function, whatever its role, is the caller's."""
    found = violations("no-privilege-escalation", role(inline={"p": doc(allow("lambda:*"))}))
    ids = {p["id"] for v in found for p in v.details["paths"]}
    assert {"lambda-003", "lambda-configuration"} <= ids


# ------------------------------------------------------------------ trust-ec2-only
TRUST_CASES = [
    (EC2_TRUST, True),
    (json.dumps(EC2_TRUST), True),
    (
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"Service": ["ec2.amazonaws.com"]},
                "Action": ["sts:AssumeRole"],
            },
        },
        True,
    ),
    (
        doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ),
        True,
    ),
    (
        doc(
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        ),
        True,
    ),
    (doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}), False),
    (doc({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}), False),
    (
        doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ),
        False,
    ),
    (doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:*"}), False),
    (
        doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ),
        False,
    ),
    (
        doc(
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ),
        False,
    ),
    (doc({"Effect": "Allow", "NotPrincipal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}), False),
    (doc({"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}), False),
    ("{not json", False),
    (doc({"Effect": "Allow", "Principal": {"Service": 5}, "Action": "sts:AssumeRole"}), False),
]


@pytest.mark.parametrize(
    ("trust", "ok"),
    TRUST_CASES,
    ids=[
        "canonical",
        "json-string",
        "object-statement-lists",
        "condition-narrows",
        "extra-deny",
        "account-root",
        "anyone",
        "two-services",
        "sts-wildcard",
        "tag-session-too",
        "federated",
        "notprincipal",
        "nobody-may-assume",
        "unreadable",
        "service-not-a-string",
    ],
)
def test_trust_ec2_only(trust: Any, ok: bool) -> None:
    found = violations("trust-ec2-only", role(trust=trust))
    assert (not found) is ok
    if not ok:
        assert found[0].remedy == Remedy("trust")


# ------------------------------------------------------------------ boundary, inline, allowlist
@pytest.mark.parametrize(
    ("configured", "current", "bad"),
    [
        (None, None, False),
        (None, BOUNDARY, False),
        (BOUNDARY, BOUNDARY, False),
        (BOUNDARY, None, True),
        (BOUNDARY, f"arn:aws:iam::{ACCOUNT}:policy/other", True),
    ],
    ids=["none-configured", "none-configured-any-kept", "equal", "missing", "different"],
)
def test_permissions_boundary(configured: str | None, current: str | None, bad: bool) -> None:
    found = violations("permissions-boundary", role(boundary=current), config(permissions_boundary=configured))
    assert bool(found) is bad
    if bad:
        assert found[0].remedy == Remedy("boundary", boundary=BOUNDARY)


def test_no_inline_policies_names_each_inline_policy() -> None:
    assert violations("no-inline-policies", role()) == []
    found = violations("no-inline-policies", role(inline={"b": doc(allow("s3:GetObject")), "a": doc(allow("s3:*"))}))
    assert [v.remedy for v in found] == [Remedy("delete-inline", policy="a"), Remedy("delete-inline", policy="b")]


@pytest.mark.parametrize(
    ("attached", "allowed", "flagged"),
    [
        ((), [], []),
        ((READONLY_ARN,), [READONLY_ARN], []),
        ((READONLY_ARN, ADMIN_ARN), [READONLY_ARN], [ADMIN_ARN]),
        ((GRANT_ARN, f"{GRANT_ARN}-2"), [], []),
        (
            (f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/rolewarden-grants-db",),
            [],
            [f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/rolewarden-grants-db"],
        ),
        (
            (f"arn:aws:iam::{ACCOUNT}:policy/elsewhere/rolewarden-grants-web",),
            [],
            [f"arn:aws:iam::{ACCOUNT}:policy/elsewhere/rolewarden-grants-web"],
        ),
    ],
    ids=["none", "allowed", "one-not-allowed", "own-grant-parts", "another-roles-grant", "grant-name-wrong-path"],
)
def test_managed_policy_allowlist(attached: tuple[str, ...], allowed: list[str], flagged: list[str]) -> None:
    found = violations("managed-policy-allowlist", role(attached=attached), config(allowed_managed_policies=allowed))
    assert [v.remedy.policy for v in found] == flagged


def test_grant_policy_drift_hands_every_grant_policy_to_the_grants_code() -> None:
    found = violations("grant-policy-drift", role(attached=(GRANT_ARN, READONLY_ARN, f"{GRANT_ARN}-2")))
    assert [(v.remedy.kind, v.remedy.policy) for v in found] == [
        ("restore-grant", GRANT_ARN),
        ("restore-grant", f"{GRANT_ARN}-2"),
    ]


# ------------------------------------------------------------------ decisions and plans
def test_scope() -> None:
    cfg = config(protected_roles=["break-glass"])
    own = frozenset({f"arn:aws:iam::{ACCOUNT}:role/rolewarden/rw-exec"})
    admin = {"p": doc(allow("*"))}
    cases = {
        "outside": role(inline=admin, path="/other/"),
        "service-linked": role(inline=admin, path="/aws-service-role/ec2.amazonaws.com/"),
        "break-glass": role(inline=admin, name="break-glass"),
        "rw-exec": role(inline=admin, name="rw-exec"),
        "nested": role(inline=admin, name="nested", path="/rolewarden/team/"),
    }
    verdicts = {k: decide_role(v, cfg, POLICIES, own).verdict for k, v in cases.items()}
    assert verdicts == {
        "outside": "out-of-scope",
        "service-linked": "out-of-scope",
        "break-glass": "out-of-scope",
        "rw-exec": "out-of-scope",
        "nested": "noncompliant",
    }


def test_a_partly_bad_inline_policy_is_rewritten_keeping_good_statements() -> None:
    document = doc(
        allow("s3:GetObject", "arn:aws:s3:::data/*"),
        allow("*"),
        allow("iam:PassRole"),
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
    )
    decision = decide_role(role(inline={"mixed": document}), config(rules={"no-inline-policies": "report"}), POLICIES)
    assert decision.verdict == "noncompliant"
    (action,) = decision.actions
    assert isinstance(action, RewriteInlinePolicy)
    assert action.removed == (1, 2)
    assert action.rules == ("no-admin-access", "no-privilege-escalation")
    assert json.loads(action.document) == doc(
        allow("s3:GetObject", "arn:aws:s3:::data/*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
    )
    assert json.loads(action.expected) == document
    reported = [v.rule for v, mode in decision.violations if mode == "report"]
    assert reported == ["no-inline-policies"]


def test_an_all_bad_inline_policy_is_deleted_and_no_inline_enforce_deletes_outright() -> None:
    all_bad = decide_role(role(inline={"p": doc(allow("*"))}), config(rules={"no-inline-policies": "off"}), POLICIES)
    assert [type(a) for a in all_bad.actions] == [DeleteInlinePolicy]
    enforced = decide_role(role(inline={"p": doc(allow("*"), allow("s3:GetObject"))}), config(), POLICIES)
    (action,) = enforced.actions
    assert isinstance(action, DeleteInlinePolicy)
    assert action.rules == ("no-admin-access", "no-inline-policies", "no-privilege-escalation")


def test_every_remedy_in_one_plan() -> None:
    view = role(
        inline={"dbg": doc(allow("*"))},
        attached=(ADMIN_ARN, READONLY_ARN, GRANT_ARN),
        trust=doc({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}),
    )
    decision = decide_role(view, config(permissions_boundary=BOUNDARY), POLICIES)
    kinds = [(type(a).__name__, getattr(a, "policy_arn", getattr(a, "policy_name", ""))) for a in decision.actions]
    assert kinds == [
        ("DetachManagedPolicy", ADMIN_ARN),
        ("DetachManagedPolicy", READONLY_ARN),
        ("DeleteInlinePolicy", "dbg"),
        ("ReplaceTrustPolicy", ""),
        ("PutBoundary", ""),
    ]
    detach_admin = decision.actions[0]
    assert isinstance(detach_admin, DetachManagedPolicy)
    assert detach_admin.rules == ("managed-policy-allowlist", "no-admin-access", "no-privilege-escalation")
    trust = decision.actions[3]
    assert isinstance(trust, ReplaceTrustPolicy) and json.loads(trust.document) == CANONICAL_TRUST
    boundary = decision.actions[4]
    assert isinstance(boundary, PutBoundary) and boundary.boundary_arn == BOUNDARY
    assert all(a.scope == PATH and a.role_path == PATH and a.resource == "role/web" for a in decision.actions)
    assert decision.grant_policies == (GRANT_ARN,)


@pytest.mark.parametrize(
    ("mode", "actions", "reported"),
    [("enforce", 1, 1), ("report", 0, 1), ("off", 0, 0)],
    ids=["enforce-acts", "report-only-finds", "off-is-silent"],
)
def test_rule_modes(mode: str, actions: int, reported: int) -> None:
    cfg = config(rules={r: "off" for r in COMPLIANCE_RULE_IDS} | {"no-admin-access": mode})
    decision = decide_role(role(attached=(ADMIN_ARN,)), cfg, POLICIES)
    assert len(decision.actions) == actions
    assert len(decision.violations) == reported


def test_a_compliant_role_needs_nothing() -> None:
    decision = decide_role(
        role(attached=(READONLY_ARN, GRANT_ARN)), config(allowed_managed_policies=[READONLY_ARN]), POLICIES
    )
    assert decision.verdict == "compliant" and decision.actions == () and decision.violations == ()


def test_an_unreadable_policy_makes_an_unreadable_verdict_not_a_crash() -> None:
    decision = decide_role(role(inline={"p": "{broken"}), config(), POLICIES)
    assert decision.verdict == "unreadable" and decision.actions == ()
    missing = decide_role(role(attached=(f"arn:aws:iam::{ACCOUNT}:policy/unread",)), only("no-admin-access"), {})
    assert missing.verdict == "unreadable"


def test_deciding_is_deterministic_and_a_remediated_role_is_compliant() -> None:
    view = role(
        inline={"p": doc(allow("s3:GetObject", "arn:aws:s3:::d/*"), allow("iam:*"))},
        attached=(ADMIN_ARN,),
        trust=doc({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}),
    )
    cfg = config(rules={"no-inline-policies": "report", "managed-policy-allowlist": "report"})
    first, second = decide_role(view, cfg, POLICIES), decide_role(view, cfg, POLICIES)
    assert first == second
    rewrite = next(a for a in first.actions if isinstance(a, RewriteInlinePolicy))
    after = Role(view.name, view.arn, view.path, CANONICAL_TRUST, None, (), {"p": json.loads(rewrite.document)})
    assert decide_role(after, cfg, POLICIES).enforced == ()


def test_restore_plan_is_the_exact_difference() -> None:
    before = role(
        inline={"a": doc(allow("*")), "keep": doc(allow("s3:GetObject"))},
        attached=(ADMIN_ARN, READONLY_ARN),
        trust=doc({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}),
        boundary=BOUNDARY,
    )
    after = role(inline={"keep": doc(allow("s3:GetObject")), "new": doc(allow("s3:*"))}, attached=(READONLY_ARN,))
    steps = restore_plan(after.state(), before.state())
    assert steps == [
        ("trust", before.trust),
        ("put-boundary", BOUNDARY),
        ("attach", ADMIN_ARN),
        ("put-inline", ("a", doc(allow("*")))),
        ("delete-inline", "new"),
    ]
    assert restore_plan(before.state(), before.state()) == []
    assert restore_plan(before.state(), after.state())[1] == ("delete-boundary", None)


# ------------------------------------------------------------------ template: one source of truth
def _statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    out = []
    for policy in template["Resources"][logical_id]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            out.append(statement)
    return out


def _granted(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    granted: dict[str, list[dict[str, Any]]] = {}
    for statement in _statements(template, "RoleComplianceFunction"):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            granted.setdefault(action, []).append(statement)
    return granted


def test_every_rule_permission_and_read_is_granted_to_the_function() -> None:
    from rwlocal.stack import load_template

    granted = _granted(load_template())
    needed = {p: rule.id for rule in registered_rules().values() for p in rule.permissions}
    needed.update({p: "reads" for p in READ_PERMISSIONS})
    missing = {p: who for p, who in needed.items() if p not in granted}
    assert missing == {}


def test_the_function_may_write_nothing_no_rule_declares_and_only_under_the_managed_path() -> None:
    from rwlocal.stack import load_template

    granted = _granted(load_template())
    declared = {p for rule in registered_rules().values() for p in rule.permissions}
    writes = {a for a in granted if a.startswith("iam:") and not a.split(":")[1].startswith(("Get", "List"))}
    assert writes - declared == set()
    for action in writes:
        for statement in granted[action]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                text = json.dumps(resource)
                assert "${ManagedPath}" in text, (action, resource)
    # grant-policy-drift goes to the grants queue: the compliance function may write no grant policy and
    # attach nothing (only the grants function does).
    grant_writes = {
        "iam:CreatePolicy",
        "iam:DeletePolicy",
        "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:AttachRolePolicy",
    }
    assert grant_writes & set(granted) == set()
    assert "rolewarden-grants-" not in json.dumps(_statements(load_template(), "RoleComplianceFunction"))
    (send,) = [s for s in granted["sqs:SendMessage"] if s.get("Sid") == "GrantDriftToTheGrantsQueue"]
    assert send["Resource"] == {"Fn::GetAtt": ["BucketGrantsQueue", "Arn"]}


def test_the_forwarder_forwards_exactly_the_events_the_stack_listens_to() -> None:
    from rwlocal.stack import ROOT, load_template

    main = load_template()["Resources"]
    forwarder = load_template(ROOT / "forwarder.yaml")["Resources"]
    listened = main["IamRoleChangesRule"]["Properties"]["EventPattern"]["detail"]["eventName"]
    forwarded = forwarder["IamRoleChangesForwardRule"]["Properties"]["EventPattern"]["detail"]["eventName"]
    assert forwarded == listened
    assert sorted(listened) == sorted(
        __import__("rolewarden.triggers", fromlist=["x"]).IAM_ROLE_EVENTS
        | __import__("rolewarden.triggers", fromlist=["x"]).IAM_POLICY_EVENTS
    )
    for logical_id in ("IamRoleChangesRule", "IamRoleChangesByOthersRule"):
        # in every home stack, whatever its region (not only in us-east-1)
        assert main[logical_id].get("Condition") in (None, "IsHome"), f"{logical_id} must also exist outside us-east-1"


@pytest.mark.parametrize("action_type", REMEDIATION_ACTIONS, ids=lambda t: t.verb)
def test_every_remediation_action_describes_its_role_and_rules_and_serialises(action_type: type[RoleAction]) -> None:
    fields = {
        "policy_arn": ADMIN_ARN,
        "policy_name": "p",
        "document": "{}",
        "expected": "{}",
        "removed": (1,),
        "boundary_arn": BOUNDARY,
        "profile_name": "web",
        "profile_path": PATH,
    }
    names = {f.name for f in dataclasses.fields(action_type)} - {"role_name", "role_path", "scope", "rules"}
    action = action_type(
        role_name="web", role_path=PATH, scope=PATH, rules=("rule-a", "rule-b"), **{n: fields[n] for n in names}
    )
    text = action.describe()
    assert "web" in text and "rule-a, rule-b" in text and action.verb not in ("", None)
    assert action.as_dict()["action"] == action.verb and action.resource == "role/web"
    assert action.as_dict()["capability"] == "role_compliance"
