"""Role compliance, PURE: policy-document arithmetic, the rules catalog, and the remediation plan.

No boto3, no os.environ, no clock. Inputs are the observed roles and managed policies (``RoleView``,
``ManagedPolicyView``) and the config; outputs are findings-to-be (``Violation``) and explicit
actions (subclasses of ``rolewarden.plan.Action``) that ``rolewarden.aws.compliance`` carries out.

Each rule is a small registered object (Cloud Custodian style) that declares its ``id``, what it
``checks``, its ``remedy`` and the IAM ``permissions`` that remedy needs; a unit test checks those
permissions against template.yaml.

Policy semantics used here (documented choices where IAM leaves room):

* Documents may be dicts or JSON strings (also URL-encoded, as IAM's raw API returns them);
  ``Statement``, ``Action``, ``NotAction``, ``Resource`` and ``NotResource`` may be a string or a list.
* Actions match case-insensitively with IAM wildcards (``*``, ``?``): ``iam:Put*`` covers
  ``iam:PutRolePolicy``. An Allow with ``NotAction`` allows every action it does not name.
* Deny statements are never removed and never excuse an Allow (RoleWarden does not evaluate the
  whole policy set; a broad Allow is non-compliant on its own).
* Conditions never excuse an Allow, with one exception: an ``iam:PassRole`` narrowed by an
  ``iam:PassedToService`` condition is judged by the well-known PassRole chains of those services.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal

from rolewarden.config import Config, RuleMode
from rolewarden.plan import Action

CAPABILITY_NAME = "role_compliance"
SERVICE_LINKED_PATH = "/aws-service-role/"
GRANT_POLICY_PREFIX = "rolewarden-grants-"
EC2_PRINCIPAL = "ec2.amazonaws.com"
#: The canonical trust policy that ``trust-ec2-only`` puts back.
CANONICAL_TRUST: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": EC2_PRINCIPAL}, "Action": "sts:AssumeRole"}],
}
#: IAM reads of the capability (sweep and per-event); checked against template.yaml by a test.
READ_PERMISSIONS = (
    "iam:GetAccountAuthorizationDetails",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListEntitiesForPolicy",
)


class PolicyDocumentError(ValueError):
    """A policy document that cannot be read as IAM policy grammar."""


# ================================================================== policy documents
def _as_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise PolicyDocumentError(f"{where} must be a string or a list of strings")


@dataclass(frozen=True)
class Statement:
    """One statement, normalised. ``raw`` is the statement as written (kept verbatim on rewrite)."""

    index: int
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] | None  # None: the statement uses NotAction
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None  # None: the statement uses NotResource (or names none)
    not_resources: tuple[str, ...] | None
    condition: Mapping[str, Any]
    principal: Any = None
    not_principal: Any = None
    sid: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_allow(self) -> bool:
        return self.effect == "Allow"

    def allows_action(self, action: str) -> bool:
        """True when this statement is an Allow whose Action/NotAction covers ``action``."""
        if not self.is_allow:
            return False
        if self.actions is not None:
            return any(action_matches(pattern, action) for pattern in self.actions)
        if self.not_actions is not None:
            return not any(action_matches(pattern, action) for pattern in self.not_actions)
        return False

    @property
    def every_resource(self) -> bool:
        """Applies to every resource: ``*`` (or an all-wildcard ARN), or NotResource."""
        if self.not_resources is not None:
            return True
        return self.resources is not None and any(resource_is_everything(r) for r in self.resources)

    @property
    def broad_resource(self) -> bool:
        """Applies to a broad set of resources (see ``resource_is_broad``), or NotResource."""
        if self.not_resources is not None:
            return True
        return self.resources is not None and any(resource_is_broad(r) for r in self.resources)


@dataclass(frozen=True)
class PolicyDocument:
    raw: Mapping[str, Any]
    statements: tuple[Statement, ...]
    statement_is_list: bool


def load_document(document: Any) -> dict[str, Any]:
    """A policy document as a dict, from a dict, a JSON string or a URL-encoded JSON string."""
    if isinstance(document, Mapping):
        return dict(document)
    if isinstance(document, str):
        text = document.strip()
        if text.startswith("%7B") or text.startswith("%7b"):
            text = urllib.parse.unquote(text)
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise PolicyDocumentError(f"not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise PolicyDocumentError("the document is not a JSON object")
        return loaded
    raise PolicyDocumentError(f"a policy document cannot be a {type(document).__name__}")


def parse_policy(document: Any) -> PolicyDocument:
    """Normalise a policy document (dict or JSON string; Statement a dict or a list)."""
    raw = load_document(document)
    statement = raw.get("Statement")
    if isinstance(statement, Mapping):
        items: list[Any] = [statement]
        is_list = False
    elif isinstance(statement, list):
        items, is_list = statement, True
    else:
        raise PolicyDocumentError("Statement must be an object or a list of objects")
    parsed = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PolicyDocumentError(f"Statement[{index}] is not an object")
        effect = str(item.get("Effect", ""))
        if effect.lower() not in ("allow", "deny"):
            raise PolicyDocumentError(f"Statement[{index}].Effect must be Allow or Deny")
        where = f"Statement[{index}]"
        actions = _as_list(item["Action"], f"{where}.Action") if "Action" in item else None
        not_actions = _as_list(item["NotAction"], f"{where}.NotAction") if "NotAction" in item else None
        resources = _as_list(item["Resource"], f"{where}.Resource") if "Resource" in item else None
        not_resources = _as_list(item["NotResource"], f"{where}.NotResource") if "NotResource" in item else None
        condition = item.get("Condition") or {}
        if not isinstance(condition, Mapping):
            raise PolicyDocumentError(f"{where}.Condition must be an object")
        parsed.append(
            Statement(
                index=index,
                effect="Allow" if effect.lower() == "allow" else "Deny",
                actions=actions,
                not_actions=not_actions,
                resources=resources,
                not_resources=not_resources,
                condition=condition,
                principal=item.get("Principal"),
                not_principal=item.get("NotPrincipal"),
                sid=str(item.get("Sid", "")),
                raw=dict(item),
            )
        )
    return PolicyDocument(raw=raw, statements=tuple(parsed), statement_is_list=is_list)


def without_statements(document: Any, indexes: Iterable[int]) -> dict[str, Any] | None:
    """The document minus the statements at ``indexes`` (others kept verbatim, in order); None if none is left."""
    policy = parse_policy(document)
    drop = set(indexes)
    kept = [dict(s.raw) for s in policy.statements if s.index not in drop]
    if not kept:
        return None
    out = dict(policy.raw)
    out["Statement"] = kept if policy.statement_is_list else kept[0]
    return out


def canonical_json(document: Mapping[str, Any]) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for comparisons and action parameters."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{escaped}$", re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, ``*`` and ``?`` wildcards (``iam:Put*``, ``iam:*``, ``*``)."""
    return _pattern(pattern).match(action.lower()) is not None


def pattern_is_everything(pattern: str) -> bool:
    """``*``, ``*:*`` and their variants match every action."""
    return pattern.replace("*", "") in ("", ":")


def resource_is_everything(resource: str) -> bool:
    """``*`` or an ARN whose service, region, account and resource parts are all wildcards."""
    if resource.replace("*", "") == "":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return False
    return all(part.replace("*", "").replace("?", "") == "" for part in parts[2:])


def resource_is_broad(resource: str) -> bool:
    """A resource that names no particular principal or policy: ``*``; an ARN with a wildcard service
    or account; or a resource part that starts with a wildcard right after its type (``role/*``,
    ``user/*``, ``*``). A path-scoped pattern (``role/rolewarden/*``, ``role/app-*``) is not broad."""
    if resource_is_everything(resource):
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return "*" in resource or "?" in resource
    service, account, rest = parts[2], parts[4], parts[5]
    if "*" in service or "?" in service or "*" in account or "?" in account:
        return True
    if rest[:1] in ("*", "?"):
        return True
    if service == "s3":
        return False  # S3 ARNs have no resource type: "bucket/*" names one bucket's objects
    _type, sep, name = rest.partition("/")
    if not sep:
        _type, sep, name = rest.partition(":")
    return bool(sep) and name[:1] in ("*", "?")


def condition_values(statement: Statement, key: str) -> tuple[str, ...] | None:
    """Every value the statement's Condition gives ``key`` (any operator, case-insensitive key); None if absent."""
    found: list[str] = []
    present = False
    for operator, block in statement.condition.items():
        if not isinstance(block, Mapping) or "IfExists" in str(operator):
            continue  # ...IfExists does not narrow when the key is absent
        for name, value in block.items():
            if str(name).lower() == key.lower():
                present = True
                found.extend([value] if isinstance(value, str) else [str(v) for v in value or []])
    return tuple(found) if present else None


# ================================================================== observed state
@dataclass(frozen=True)
class AttachedPolicy:
    arn: str
    name: str


@dataclass(frozen=True)
class RoleView:
    """One role as IAM shows it now (GetRole + lists, or GetAccountAuthorizationDetails)."""

    name: str
    arn: str
    path: str
    trust: Mapping[str, Any]
    boundary: str | None = None
    attached: tuple[AttachedPolicy, ...] = ()
    inline: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The role's full permission state, as plain data (what a record stores and rollback restores)."""
        return {
            "role": self.name,
            "arn": self.arn,
            "path": self.path,
            "attached_policies": sorted(p.arn for p in self.attached),
            "inline_policies": {name: dict(doc) for name, doc in sorted(self.inline.items())},
            "trust_policy": dict(self.trust),
            "permissions_boundary": self.boundary,
        }


@dataclass(frozen=True)
class ManagedPolicyView:
    """A managed policy and its default version's document."""

    arn: str
    name: str
    path: str
    default_version: str
    document: Mapping[str, Any]

    @property
    def aws_managed(self) -> bool:
        return self.arn.split(":")[4:5] == ["aws"]


def policy_path_and_name(arn: str) -> tuple[str, str]:
    """(path, name) of a policy ARN: ``arn:aws:iam::1:policy/a/b/name`` -> (``/a/b/``, ``name``)."""
    resource = arn.split(":", 5)[-1]
    rest = resource[len("policy") :] if resource.startswith("policy") else resource
    path, _, name = rest.rpartition("/")
    return f"{path}/" if path else "/", name


def is_grant_policy(arn: str, managed_path: str) -> bool:
    """RoleWarden's own grant policy: ``rolewarden-grants-<role>[-N]`` at the managed path."""
    if arn.split(":")[4:5] == ["aws"]:
        return False
    path, name = policy_path_and_name(arn)
    return path == managed_path and name.startswith(GRANT_POLICY_PREFIX)


def is_own_grant_policy(arn: str, managed_path: str, role_name: str) -> bool:
    """A grant policy of ``role_name`` itself (``rolewarden-grants-<role>`` or ``-2``, ``-3``...)."""
    if not is_grant_policy(arn, managed_path):
        return False
    name = policy_path_and_name(arn)[1]
    return re.fullmatch(re.escape(GRANT_POLICY_PREFIX + role_name) + r"(-\d+)?", name) is not None


# ================================================================== rules
RemedyKind = Literal["detach", "remove-statements", "delete-inline", "trust", "boundary", "restore-grant"]


@dataclass(frozen=True)
class Remedy:
    kind: RemedyKind
    policy: str = ""  # a managed policy ARN, or an inline policy name
    statements: tuple[int, ...] = ()
    boundary: str = ""


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    remedy: Remedy
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleContext:
    config: Config
    policies: Mapping[str, ManagedPolicyView]

    @property
    def managed_path(self) -> str:
        return self.config.managed_path


class Rule:
    """A compliance rule. Subclasses set the class attributes and implement ``evaluate``."""

    id: ClassVar[str] = ""
    checks: ClassVar[str] = ""
    remedy: ClassVar[str] = ""
    #: IAM actions the remedy needs (template.yaml's RoleComplianceFunction must grant them).
    permissions: ClassVar[tuple[str, ...]] = ()

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:  # pragma: no cover - abstract
        raise NotImplementedError


_REGISTRY: dict[str, Rule] = {}


def register[R: type[Rule]](cls: R) -> R:
    if not cls.id or cls.id in _REGISTRY:
        raise ValueError(f"rule {cls.__name__} needs a unique id, got {cls.id!r}")
    _REGISTRY[cls.id] = cls()
    return cls


def registered_rules() -> dict[str, Rule]:
    return dict(_REGISTRY)


def _documents(role: RoleView, ctx: RuleContext) -> Iterator[tuple[str, str, PolicyDocument]]:
    """("inline", name, doc) and ("managed", arn, doc) for every permission policy of the role.

    RoleWarden's own grant policies are left to ``grant-policy-drift`` (their content is what the
    bucket tags call for; the grants code restores it)."""
    for name, document in sorted(role.inline.items()):
        yield "inline", name, parse_policy(document)
    for attached in role.attached:
        if is_grant_policy(attached.arn, ctx.managed_path):
            continue
        policy = ctx.policies.get(attached.arn)
        if policy is None:
            raise PolicyDocumentError(f"the document of attached policy {attached.arn} was not read")
        yield "managed", attached.arn, parse_policy(policy.document)


def _statement_rule(
    rule_id: str,
    role: RoleView,
    ctx: RuleContext,
    offending: Callable[[Statement], str | None],
) -> list[Violation]:
    """Violations for the statements ``offending`` names (it returns the reason, or None)."""
    violations = []
    for kind, name, document in _documents(role, ctx):
        bad = {s.index: why for s in document.statements if (why := offending(s)) is not None}
        if not bad:
            continue
        reasons = sorted(set(bad.values()))
        if kind == "managed":
            message = f"attached policy {name} {'; '.join(reasons)}"
            remedy = Remedy("detach", policy=name)
        else:
            message = f"inline policy {name} statement(s) {sorted(bad)} {'; '.join(reasons)}"
            remedy = Remedy("remove-statements", policy=name, statements=tuple(sorted(bad)))
        details = {"policy_kind": kind, "policy": name, "statements": [document.statements[i].raw for i in sorted(bad)]}
        violations.append(Violation(rule_id, message, remedy, details))
    return violations


@register
class NoAdminAccess(Rule):
    id = "no-admin-access"
    checks = (
        "No attached managed policy (AWS-managed included) or inline statement allows every action "
        "('*', '*:*', or an Allow with NotAction, which leaves every unnamed action) on every resource."
    )
    remedy = "Detach the managed policy; remove the offending inline statements (delete the policy if none is left)."
    permissions = ("iam:DetachRolePolicy", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy")

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        def offending(s: Statement) -> str | None:
            if not s.is_allow or not s.every_resource:
                return None
            if s.actions is not None and any(pattern_is_everything(a) for a in s.actions):
                return "allows every action on every resource"
            if s.not_actions is not None:
                return f"allows every action except {list(s.not_actions)} (NotAction) on every resource"
            return None

        return _statement_rule(self.id, role, ctx, offending)


#: Single actions that let a principal raise its own or another principal's privileges.
ESCALATION_ACTIONS = (
    "iam:PassRole",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AddUserToGroup",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "sts:AssumeRole",
)
#: Well-known PassRole chains: passing a role to the service plus any one of these action sets.
PASSROLE_CHAINS: dict[str, tuple[tuple[str, ...], ...]] = {
    "lambda.amazonaws.com": (
        ("lambda:CreateFunction", "lambda:InvokeFunction"),
        ("lambda:CreateFunction", "lambda:CreateEventSourceMapping"),
        ("lambda:CreateFunction", "lambda:AddPermission"),
        ("lambda:CreateFunction", "lambda:CreateFunctionUrlConfig"),
    ),
    "glue.amazonaws.com": (
        ("glue:CreateDevEndpoint",),
        ("glue:UpdateDevEndpoint",),
        ("glue:CreateJob",),
        ("glue:CreateSession",),
    ),
    "cloudformation.amazonaws.com": (
        ("cloudformation:CreateStack",),
        ("cloudformation:UpdateStack",),
        ("cloudformation:CreateChangeSet",),
        ("cloudformation:CreateStackSet",),
    ),
    "ec2.amazonaws.com": (
        ("ec2:RunInstances",),
        ("ec2:AssociateIamInstanceProfile",),
        ("ec2:ReplaceIamInstanceProfileAssociation",),
    ),
}


def _role_allows(role: RoleView, ctx: RuleContext) -> Callable[[str], bool]:
    """Whether any Allow statement of the role (on any resource) covers an action."""
    statements = [s for _k, _n, d in _documents(role, ctx) for s in d.statements if s.is_allow]

    def allows(action: str) -> bool:
        return any(s.allows_action(action) for s in statements)

    return allows


@register
class NoPrivilegeEscalation(Rule):
    id = "no-privilege-escalation"
    checks = (
        "No Allow on broad resources of actions that raise privileges (iam:PassRole, iam:CreatePolicyVersion, "
        "iam:SetDefaultPolicyVersion, iam:Attach*Policy, iam:Put*Policy, iam:UpdateAssumeRolePolicy, "
        "iam:CreateAccessKey, iam:*LoginProfile, iam:AddUserToGroup, permissions-boundary changes, "
        "sts:AssumeRole), wildcards included; and no iam:PassRole narrowed to a service whose well-known "
        "chain (Lambda, Glue, CloudFormation, EC2) the role also allows."
    )
    remedy = NoAdminAccess.remedy
    permissions = NoAdminAccess.permissions

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        allows = _role_allows(role, ctx)

        def offending(s: Statement) -> str | None:
            if not s.is_allow or not s.broad_resource:
                return None
            covered = [a for a in ESCALATION_ACTIONS if s.allows_action(a)]
            if not covered:
                return None
            services = condition_values(s, "iam:PassedToService")
            if covered == ["iam:PassRole"] and services is not None:
                chains = [
                    f"{service} ({' + '.join(['iam:PassRole', *chain])})"
                    for service, options in PASSROLE_CHAINS.items()
                    if any(action_matches(pattern, service) for pattern in services)
                    for chain in options
                    if all(allows(a) for a in chain)
                ]
                return f"allows the PassRole chain {chains[0]} on broad resources" if chains else None
            shown = ", ".join(covered[:4]) + (f" and {len(covered) - 4} more" if len(covered) > 4 else "")
            return f"allows {shown} on broad resources"

        return _statement_rule(self.id, role, ctx, offending)


def trust_problems(document: Any) -> list[str]:
    """Why a trust policy is not "sts:AssumeRole for ec2.amazonaws.com only" ([] when it is)."""
    try:
        policy = parse_policy(document)
    except PolicyDocumentError as exc:
        return [f"unreadable trust policy: {exc}"]
    problems = []
    ec2_allowed = False
    for s in policy.statements:
        if not s.is_allow:
            continue
        if s.not_principal is not None or s.not_actions is not None:
            problems.append(f"statement {s.index} uses NotPrincipal/NotAction")
            continue
        principal = s.principal
        services: tuple[str, ...] = ()
        if isinstance(principal, Mapping) and set(principal) == {"Service"}:
            try:
                services = _as_list(principal["Service"], "Principal.Service")
            except PolicyDocumentError:
                services = ()
        if not services or any(svc.lower() != EC2_PRINCIPAL for svc in services):
            problems.append(f"statement {s.index} trusts {json.dumps(principal, sort_keys=True)}")
            continue
        actions = s.actions or ()
        if not actions or any(a.lower() != "sts:assumerole" for a in actions):
            problems.append(f"statement {s.index} allows {list(actions)}, not only sts:AssumeRole")
            continue
        ec2_allowed = True
    if not ec2_allowed and not problems:
        problems.append("no statement lets ec2.amazonaws.com assume the role")
    return problems


@register
class TrustEc2Only(Rule):
    id = "trust-ec2-only"
    checks = "The trust policy allows sts:AssumeRole only to the service principal ec2.amazonaws.com."
    remedy = "Replace the trust policy with the canonical EC2-only one."
    permissions = ("iam:UpdateAssumeRolePolicy",)

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        problems = trust_problems(role.trust)
        if not problems:
            return []
        return [Violation(self.id, f"trust policy: {'; '.join(problems)}", Remedy("trust"), {"trust": role.trust})]


@register
class PermissionsBoundary(Rule):
    id = "permissions-boundary"
    checks = "The role's permissions boundary is the configured policy (no rule when none is configured)."
    remedy = "Put the configured permissions boundary."
    permissions = ("iam:PutRolePermissionsBoundary",)

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        wanted = ctx.config.compliance.permissions_boundary
        if wanted is None or role.boundary == wanted:
            return []
        message = f"permissions boundary is {role.boundary or 'absent'}, not {wanted}"
        return [Violation(self.id, message, Remedy("boundary", boundary=wanted), {"boundary": role.boundary})]


@register
class NoInlinePolicies(Rule):
    id = "no-inline-policies"
    checks = "The role has no inline policies."
    remedy = "Delete the inline policies."
    permissions = ("iam:GetRolePolicy", "iam:DeleteRolePolicy")

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        return [
            Violation(self.id, f"inline policy {name}", Remedy("delete-inline", policy=name), {"policy": name})
            for name in sorted(role.inline)
        ]


@register
class ManagedPolicyAllowlist(Rule):
    id = "managed-policy-allowlist"
    checks = (
        "Every attached managed policy is in allowed_managed_policies or is the role's own RoleWarden grant policy."
    )
    remedy = "Detach the other managed policies."
    permissions = ("iam:DetachRolePolicy",)

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        allowed = set(ctx.config.compliance.allowed_managed_policies)
        return [
            Violation(
                self.id, f"attached policy {p.arn} is not allowed", Remedy("detach", policy=p.arn), {"policy": p.arn}
            )
            for p in role.attached
            if p.arn not in allowed and not is_own_grant_policy(p.arn, ctx.managed_path, role.name)
        ]


@register
class GrantPolicyDrift(Rule):
    id = "grant-policy-drift"
    checks = "RoleWarden's own grant policies have the default version that the bucket tags call for."
    remedy = "Restore it (delegated to the bucket_grants capability)."
    #: What the grants code needs to restore a role's grant policies (it may re-split them into parts).
    permissions = (
        "iam:GetAccountAuthorizationDetails",
        "iam:CreatePolicy",
        "iam:DeletePolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:DeletePolicyVersion",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
    )

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        """Every grant policy of an evaluated role is handed to the grants code, which alone knows what
        the tags call for; it finds drift (or none) and reports it."""
        return [
            Violation(self.id, f"grant policy {p.arn}: check against bucket tags", Remedy("restore-grant", p.arn))
            for p in role.attached
            if is_grant_policy(p.arn, ctx.managed_path)
        ]


# ================================================================== actions
@dataclass(frozen=True)
class RoleAction(Action):
    """Base of the remediation actions: every one names a role and the scope it must be under."""

    capability: ClassVar[str] = CAPABILITY_NAME
    role_name: str
    role_path: str
    scope: str  # the managed path; the executor refuses a role outside it (defense in depth)
    rules: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"role/{self.role_name}"


@dataclass(frozen=True)
class DetachManagedPolicy(RoleAction):
    verb: ClassVar[str] = "detach-policy"
    policy_arn: str

    def describe(self) -> str:
        return f"detach {self.policy_arn} from role {self.role_name} ({', '.join(self.rules)})"


@dataclass(frozen=True)
class RewriteInlinePolicy(RoleAction):
    """PutRolePolicy with the kept statements, if the policy still is what was read (``expected``)."""

    verb: ClassVar[str] = "rewrite-inline-policy"
    policy_name: str
    document: str  # canonical JSON of the new document
    expected: str  # canonical JSON of the document read
    removed: tuple[int, ...]

    def describe(self) -> str:
        return (
            f"remove statement(s) {list(self.removed)} from inline policy {self.policy_name} of role "
            f"{self.role_name} ({', '.join(self.rules)})"
        )


@dataclass(frozen=True)
class DeleteInlinePolicy(RoleAction):
    verb: ClassVar[str] = "delete-inline-policy"
    policy_name: str
    expected: str  # canonical JSON of the document read

    def describe(self) -> str:
        return f"delete inline policy {self.policy_name} of role {self.role_name} ({', '.join(self.rules)})"


@dataclass(frozen=True)
class ReplaceTrustPolicy(RoleAction):
    verb: ClassVar[str] = "replace-trust-policy"
    document: str

    def describe(self) -> str:
        return f"replace the trust policy of role {self.role_name} with the EC2-only one ({', '.join(self.rules)})"


@dataclass(frozen=True)
class PutBoundary(RoleAction):
    verb: ClassVar[str] = "put-boundary"
    boundary_arn: str

    def describe(self) -> str:
        return f"put permissions boundary {self.boundary_arn} on role {self.role_name} ({', '.join(self.rules)})"


REMEDIATION_ACTIONS: tuple[type[RoleAction], ...] = (
    DetachManagedPolicy,
    RewriteInlinePolicy,
    DeleteInlinePolicy,
    ReplaceTrustPolicy,
    PutBoundary,
)


# ================================================================== decision
Verdict = Literal["compliant", "noncompliant", "out-of-scope", "unreadable"]


@dataclass(frozen=True)
class RoleDecision:
    role: str
    verdict: Verdict
    reason: str = ""
    #: (violation, mode) for every rule that is not off.
    violations: tuple[tuple[Violation, RuleMode], ...] = ()
    actions: tuple[RoleAction, ...] = ()
    #: Grant policies to hand to the grants code, with the mode of grant-policy-drift.
    grant_policies: tuple[str, ...] = ()

    @property
    def enforced(self) -> tuple[Violation, ...]:
        return tuple(v for v, mode in self.violations if mode == "enforce")


def out_of_scope(role: RoleView, config: Config, self_role_arns: frozenset[str] = frozenset()) -> str | None:
    """Why RoleWarden must not touch the role (None: it is in scope)."""
    if role.path.startswith(SERVICE_LINKED_PATH):
        return "service-linked role"
    if not role.path.startswith(config.managed_path):
        return f"path {role.path} is outside the managed path {config.managed_path}"
    if role.name in config.compliance.protected_roles:
        return "protected role (compliance.protected_roles)"
    if role.arn in self_role_arns:
        return "RoleWarden's own execution role"
    return None


def decide_role(
    role: RoleView,
    config: Config,
    policies: Mapping[str, ManagedPolicyView],
    self_role_arns: frozenset[str] = frozenset(),
) -> RoleDecision:
    """Evaluate every rule that is not off, and plan the remedies of the enforced ones."""
    reason = out_of_scope(role, config, self_role_arns)
    if reason is not None:
        return RoleDecision(role.name, "out-of-scope", reason)
    ctx = RuleContext(config, policies)
    found: list[tuple[Violation, RuleMode]] = []
    try:
        for rule_id, rule in _REGISTRY.items():
            mode = config.rule_mode(rule_id)
            if mode != "off":
                found.extend((v, mode) for v in rule.evaluate(role, ctx))
    except PolicyDocumentError as exc:
        return RoleDecision(role.name, "unreadable", f"a policy of the role cannot be read: {exc}")
    grants = tuple(sorted({v.remedy.policy for v, _m in found if v.remedy.kind == "restore-grant"}))
    real = tuple((v, m) for v, m in found if v.remedy.kind != "restore-grant")
    actions = plan_remedies(role, config.managed_path, [v for v, m in real if m == "enforce"])
    verdict: Verdict = "noncompliant" if real else "compliant"
    return RoleDecision(role.name, verdict, "", real, actions, grants)


def plan_remedies(role: RoleView, scope: str, violations: Sequence[Violation]) -> tuple[RoleAction, ...]:
    """Merge the remedies of enforced violations into the fewest actions: one per policy touched."""
    base = {"role_name": role.name, "role_path": role.path, "scope": scope}
    detach: dict[str, set[str]] = {}
    delete: dict[str, set[str]] = {}
    strip: dict[str, dict[int, set[str]]] = {}
    trust: set[str] = set()
    boundary: dict[str, set[str]] = {}
    for v in violations:
        r = v.remedy
        if r.kind == "detach":
            detach.setdefault(r.policy, set()).add(v.rule)
        elif r.kind == "delete-inline":
            delete.setdefault(r.policy, set()).add(v.rule)
        elif r.kind == "remove-statements":
            for index in r.statements:
                strip.setdefault(r.policy, {}).setdefault(index, set()).add(v.rule)
        elif r.kind == "trust":
            trust.add(v.rule)
        elif r.kind == "boundary":
            boundary.setdefault(r.boundary, set()).add(v.rule)
    actions: list[RoleAction] = []
    for arn, rules in sorted(detach.items()):
        actions.append(DetachManagedPolicy(**base, rules=tuple(sorted(rules)), policy_arn=arn))
    for name in sorted(set(strip) | set(delete)):
        document = role.inline[name]
        expected = canonical_json(load_document(document))
        indexes = strip.get(name, {})
        rules = set(delete.get(name, set()))
        for by in indexes.values():
            rules |= by
        kept = None if name in delete else without_statements(document, indexes)
        if kept is None:
            actions.append(DeleteInlinePolicy(**base, rules=tuple(sorted(rules)), policy_name=name, expected=expected))
        else:
            actions.append(
                RewriteInlinePolicy(
                    **base,
                    rules=tuple(sorted(rules)),
                    policy_name=name,
                    document=canonical_json(kept),
                    expected=expected,
                    removed=tuple(sorted(indexes)),
                )
            )
    if trust:
        actions.append(ReplaceTrustPolicy(**base, rules=tuple(sorted(trust)), document=canonical_json(CANONICAL_TRUST)))
    for arn, rules in sorted(boundary.items()):
        actions.append(PutBoundary(**base, rules=tuple(sorted(rules)), boundary_arn=arn))
    return tuple(actions)


@dataclass(frozen=True)
class Breaker:
    tripped: bool
    roles: tuple[str, ...]
    limit: int


def circuit_breaker(decisions: Iterable[RoleDecision], limit: int) -> Breaker:
    """Trip when more roles than ``limit`` would be remediated in one run."""
    roles = tuple(sorted(d.role for d in decisions if d.actions))
    return Breaker(len(roles) > limit, roles, limit)


def restore_plan(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The writes that turn role state ``current`` into ``wanted`` (both from ``RoleView.state``).

    Steps, in a safe order (grant before revoke is not a concern: this restores a recorded state):
    ("trust", doc), ("put-boundary", arn), ("delete-boundary", None), ("attach", arn),
    ("detach", arn), ("put-inline", (name, doc)), ("delete-inline", name)."""
    steps: list[tuple[str, Any]] = []
    if canonical_json(current["trust_policy"]) != canonical_json(wanted["trust_policy"]):
        steps.append(("trust", wanted["trust_policy"]))
    if current.get("permissions_boundary") != wanted.get("permissions_boundary"):
        if wanted.get("permissions_boundary"):
            steps.append(("put-boundary", wanted["permissions_boundary"]))
        else:
            steps.append(("delete-boundary", None))
    have, want = set(current["attached_policies"]), set(wanted["attached_policies"])
    steps.extend(("attach", arn) for arn in sorted(want - have))
    steps.extend(("detach", arn) for arn in sorted(have - want))
    cur_inline, want_inline = current["inline_policies"], wanted["inline_policies"]
    for name, doc in sorted(want_inline.items()):
        if name not in cur_inline or canonical_json(cur_inline[name]) != canonical_json(doc):
            steps.append(("put-inline", (name, doc)))
    steps.extend(("delete-inline", name) for name in sorted(set(cur_inline) - set(want_inline)))
    return steps
