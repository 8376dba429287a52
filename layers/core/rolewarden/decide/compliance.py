"""Role compliance, PURE: policy-document arithmetic, the rules catalog, and the remediation plan.

No boto3, no os.environ, no clock. Inputs are the observed roles and managed policies (``RoleView``,
``ManagedPolicyView``) and the config; outputs are findings-to-be (``Violation``) and explicit
actions (subclasses of ``rolewarden.model.actions.Action``) that ``rolewarden.aws.compliance`` carries out.

Each rule is a small registered object (Cloud Custodian style) that declares its ``id``, what it
``checks``, its ``remedy`` and the IAM ``permissions`` that remedy needs; a unit test checks those
permissions against template.yaml.

Policy semantics used here (documented choices where IAM leaves room):

* Documents may be dicts or JSON strings (also URL-encoded, as IAM's raw API returns them);
  ``Statement``, ``Action``, ``NotAction``, ``Resource`` and ``NotResource`` may be a string or a list.
* Actions match case-insensitively with IAM wildcards (``*``, ``?``): ``iam:Put*`` covers
  ``iam:PutRolePolicy``. An Allow with ``NotAction`` allows every action it does not name.
* Deny statements are never removed. ``no-admin-access`` judges each Allow on its own; the escalation
  rule reads the role's policies as one set, where an unconditional Deny (in any policy of the role)
  closes what it denies.
* Conditions never excuse an Allow, with the exceptions the escalation table names: ``iam:PassedToService``
  on ``iam:PassRole`` (the path's service principal must pass it) and ``iam:PolicyARN`` with concrete
  values on ``iam:Attach*Policy``.
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
from rolewarden.decide.escalation_paths import PASS_ROLE, PATHS, EscalationPath, Need
from rolewarden.model.actions import Action

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
    #: Names of the instance profiles that hold the role; None when they were not read.
    instance_profiles: tuple[str, ...] | None = None

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
RemedyKind = Literal[
    "detach",
    "remove-statements",
    "delete-inline",
    "trust",
    "boundary",
    "restore-grant",
    "instance-profile",
    "put-inline",  # put an inline policy RoleWarden owns (``document``), e.g. the instance-credential perimeter
    "report-only",  # nothing to change: what a rule can only report
]


@dataclass(frozen=True)
class Remedy:
    kind: RemedyKind
    policy: str = ""  # a managed policy ARN, or an inline policy name
    statements: tuple[int, ...] = ()
    boundary: str = ""
    document: str = ""  # canonical JSON, for "put-inline"


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    remedy: Remedy
    details: Mapping[str, Any] = field(default_factory=dict)
    #: A stricter limit than the rule's mode for this violation (e.g. its escalation category's); None: the rule's.
    mode: RuleMode | None = None


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


# ------------------------------------------------------------------ escalation paths (the table: escalation_paths.py)
#: A policy variable naming the caller's own IAM user: for a role it resolves to nothing, so a resource
#: written with it (the documented self-service pattern ``user/${aws:username}``) grants a role nothing.
SELF_USER_VARIABLE = "${aws:username}"
_VARIABLE = re.compile(r"\$\{[^}]*\}")


def statement_covers(statement: Statement, action: str) -> bool:
    """Whether the statement's Action/NotAction covers ``action``, whatever its Effect."""
    if statement.actions is not None:
        return any(action_matches(pattern, action) for pattern in statement.actions)
    if statement.not_actions is not None:
        return not any(action_matches(pattern, action) for pattern in statement.not_actions)
    return False


def resource_matches(pattern: str, arn: str) -> bool:
    """An IAM resource pattern against one ARN (wildcards; a policy variable other than the caller's
    user name may be anything, so it counts as a wildcard)."""
    return action_matches(_VARIABLE.sub("*", pattern), arn)


def _usable(resources: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(r for r in resources if SELF_USER_VARIABLE not in r.lower())


def _applies_to(statement: Statement, arn: str) -> bool:
    if statement.not_resources is not None:
        return not any(resource_matches(r, arn) for r in statement.not_resources)
    return any(resource_matches(r, arn) for r in _usable(statement.resources or ()))


def _broad(statement: Statement) -> bool:
    if statement.not_resources is not None:
        return True
    return any(resource_is_broad(r) for r in _usable(statement.resources or ()))


def _broad_for_type(statement: Statement, resource_type: str) -> bool:
    """Grants every resource of ``resource_type`` (``*``, ``...:instance/*``), or uses NotResource."""
    if statement.not_resources is not None:
        return True
    for resource in _usable(statement.resources or ()):
        if resource_is_everything(resource):
            return True
        rest = resource.split(":", 5)[-1]
        if rest[:1] in ("*", "?"):
            return True
        kind, sep, name = rest.partition("/")
        if sep and action_matches(kind, resource_type) and name[:1] in ("*", "?"):
            return True
    return False


def _condition(statement: Statement, key: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(values an operator requires, values a negated operator excludes) for ``key``; None if absent.
    ``...IfExists`` operators do not narrow (the key may be absent)."""
    wanted: list[str] = []
    excluded: list[str] = []
    present = False
    for operator, block in statement.condition.items():
        if not isinstance(block, Mapping) or "ifexists" in str(operator).lower():
            continue
        for name, value in block.items():
            if str(name).lower() != key.lower():
                continue
            present = True
            values = [value] if isinstance(value, str) else [str(v) for v in value or []]
            (excluded if "not" in str(operator).lower() else wanted).extend(values)
    return (tuple(wanted), tuple(excluded)) if present else None


def _passes_to(statement: Statement, principals: Sequence[str]) -> bool:
    """Whether the PassRole statement lets the role be passed to one of the service principals."""
    found = _condition(statement, "iam:PassedToService")
    if found is None:
        return True
    wanted, excluded = found
    return any(
        (not wanted or any(action_matches(v, p) for v in wanted)) and not any(action_matches(v, p) for v in excluded)
        for p in principals
    )


def _narrowed(statement: Statement, key: str) -> bool:
    """A condition on ``key`` that names concrete values (no wildcard, no AWS-managed policy)."""
    found = _condition(statement, key)
    if found is None or not found[0] or found[1]:
        return False
    return all(not resource_is_broad(v) and ":iam::aws:" not in v for v in found[0])


@dataclass(frozen=True)
class Grant:
    """One statement of one of the role's permission policies."""

    kind: str  # "inline" | "managed"
    policy: str  # inline policy name or managed policy ARN
    statement: Statement


@dataclass(frozen=True)
class PathMatch:
    """An escalation path the role's policies open, and the statements that open it (the key needs')."""

    path: EscalationPath
    statements: tuple[Grant, ...]

    def describe(self) -> str:
        return f"{self.path.id} ({self.path.title}; sources: {', '.join(self.path.sources)})"


@dataclass(frozen=True)
class RoleGrants:
    """Every statement of a role's permission policies, with what "the role itself" means for scopes."""

    role_arn: str
    attached_policies: tuple[str, ...]
    grants: tuple[Grant, ...]

    @property
    def allows(self) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.statement.is_allow)

    @property
    def _denies(self) -> tuple[Statement, ...]:
        # A conditional Deny may not apply to the attacker's request: it excuses nothing.
        return tuple(g.statement for g in self.grants if not g.statement.is_allow and not g.statement.condition)

    def denied(self, action: str, arn: str | None = None) -> bool:
        """Denied on every resource (``arn`` None) or on ``arn``, by an unconditional Deny of the role."""
        for s in self._denies:
            if not statement_covers(s, action):
                continue
            if arn is None and s.not_resources is None and any(resource_is_everything(r) for r in s.resources or ()):
                return True
            if arn is not None and _applies_to(s, arn):
                return True
        return False

    def need_statements(self, path: EscalationPath, need: Need) -> tuple[Grant, ...]:
        """The Allow statements that satisfy ``need`` (empty: the need, and so the path, is not met)."""
        if self.denied(need.action):
            return ()
        candidates = [
            g
            for g in self.allows
            if statement_covers(g.statement, need.action)
            and not (need.narrowed_by and _narrowed(g.statement, need.narrowed_by))
            and not (need.action == PASS_ROLE and path.principals and not _passes_to(g.statement, path.principals))
            and (g.statement.not_resources is not None or _usable(g.statement.resources or ()))
        ]
        if need.scope == "any":
            return tuple(candidates)
        if need.types:
            by_type = [[g for g in candidates if _broad_for_type(g.statement, t)] for t in need.types]
            if not all(by_type):
                return ()
            return tuple(g for g in candidates if any(g in found for found in by_type))
        if need.scope == "self" and self.denied(need.action, self.role_arn):
            return ()  # the role itself is out of reach; other roles are the pair paths' business
        chosen = [g for g in candidates if _broad(g.statement)]
        targets: tuple[str, ...] = ()
        if need.scope == "self":
            targets = (self.role_arn,)
        elif need.scope == "policy":
            targets = self.attached_policies
        for g in candidates:
            if g not in chosen and any(
                _applies_to(g.statement, t) and not self.denied(need.action, t) for t in targets
            ):
                chosen.append(g)
        return tuple(chosen)

    def match(self, path: EscalationPath) -> PathMatch | None:
        key: list[Grant] = []
        for need in path.needs:
            found = self.need_statements(path, need)
            if not found:
                return None
            if need.key:
                key.extend(g for g in found if g not in key)
        return PathMatch(path, tuple(key))

    def matches(self, paths: Iterable[EscalationPath] = PATHS) -> list[PathMatch]:
        return [m for p in paths if (m := self.match(p)) is not None]


def role_grants(role: RoleView, ctx: RuleContext) -> RoleGrants:
    """The statements of every permission policy of the role (inline and attached; grant policies left
    to grant-policy-drift), read as one set: a path may need statements from several policies."""
    grants = tuple(Grant(kind, name, s) for kind, name, document in _documents(role, ctx) for s in document.statements)
    attached = tuple(p.arn for p in role.attached if not ctx.policies.get(p.arn, _NO_POLICY).aws_managed)
    return RoleGrants(role.arn, attached, grants)


_NO_POLICY = ManagedPolicyView("arn:aws:iam::aws:policy/none", "none", "/", "", {})
_MODE_RANK: dict[str, int] = {"off": 0, "report": 1, "enforce": 2}


def weaker_mode(a: RuleMode, b: RuleMode | None) -> RuleMode:
    """The less strict of two modes (off < report < enforce); ``b`` None leaves ``a``."""
    if b is None:
        return a
    return a if _MODE_RANK[a] <= _MODE_RANK[b] else b


@register
class NoPrivilegeEscalation(Rule):
    id = "no-privilege-escalation"
    checks = (
        "No escalation path of the table in rolewarden.decide.escalation_paths (README: 'Escalation paths') is open "
        "through the role's policies taken together: IAM writes on the role itself, a policy attached to it, or any "
        "principal; credentials of other users; trust policy rewrites and broad sts:AssumeRole; iam:PassRole to a "
        "service that runs caller-supplied code with that service's actions; code changes in compute that already runs "
        "with a role. Deny, NotAction/NotResource, wildcards in any case, iam:PassedToService, iam:PolicyARN and "
        "resource ARNs are honoured; other conditions do not excuse."
    )
    remedy = (
        "Remove the statements that open the path (the dangerous half: PassRole, the IAM write, the code change), "
        "keep the rest; detach a managed policy that opens one. Per-category modes and per-path exemptions in "
        "compliance.escalation."
    )
    permissions = NoAdminAccess.permissions

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        settings = ctx.config.compliance.escalation
        matches = [
            m
            for m in role_grants(role, ctx).matches()
            if not settings.exempt(role.name, m.path.id, m.path.category)
            and settings.category_mode(m.path.category) != "off"
        ]
        # One violation per (policy, mode): the remedy of a policy is planned once per mode.
        groups: dict[tuple[str, str, RuleMode], list[tuple[PathMatch, list[Grant]]]] = {}
        for m in matches:
            mode = settings.category_mode(m.path.category)
            for g in m.statements:
                entry = groups.setdefault((g.kind, g.policy, mode), [])
                found = next((e for e in entry if e[0] is m), None)
                if found is None:
                    entry.append((m, [g]))
                else:
                    found[1].append(g)
        violations = []
        for (kind, policy, mode), entries in sorted(groups.items()):
            indexes = sorted({g.statement.index for _m, grants in entries for g in grants})
            described = "; ".join(m.describe() for m, _g in entries)
            if kind == "managed":
                message = f"attached policy {policy} opens escalation path {described}"
                remedy = Remedy("detach", policy=policy)
            else:
                message = f"inline policy {policy} statement(s) {indexes} open escalation path {described}"
                remedy = Remedy("remove-statements", policy=policy, statements=tuple(indexes))
            statements = {g.statement.index: g.statement.raw for _m, grants in entries for g in grants}
            details = {
                "policy_kind": kind,
                "policy": policy,
                "statements": [statements[i] for i in indexes],
                "paths": [
                    {
                        "id": m.path.id,
                        "title": m.path.title,
                        "category": m.path.category,
                        "sources": list(m.path.sources),
                    }
                    for m, _g in entries
                ],
            }
            violations.append(Violation(self.id, message, remedy, details, mode))
        return violations


def judge_documents(
    config: Config,
    inline: Mapping[str, Any],
    managed: Mapping[str, Any] | None = None,
    *,
    role_name: str = "candidate",
    role_path: str | None = None,
    account: str = "000000000000",
) -> list[tuple[Violation, RuleMode]]:
    """Judge one role's permission documents with the content rules (``no-admin-access`` and
    ``no-privilege-escalation``), exactly as ``decide_role`` would, without any AWS call.

    ``inline``: inline policy documents by name; ``managed``: managed policy documents by ARN (dict, JSON
    or URL-encoded JSON). The role is ``role/<role_path><role_name>`` (path: the managed path by default).
    Returns (violation, mode) for every violation of a rule that is not off; ``mode`` is the effective one
    (category modes and exemptions applied). Each escalation violation's ``details["paths"]`` names the
    path ids, categories and sources. Raises PolicyDocumentError for a document that cannot be read."""
    path = role_path or config.managed_path
    policies = {
        arn: ManagedPolicyView(
            arn, policy_path_and_name(arn)[1], policy_path_and_name(arn)[0], "v1", load_document(doc)
        )
        for arn, doc in (managed or {}).items()
    }
    role = RoleView(
        name=role_name,
        arn=f"arn:aws:iam::{account}:role{path}{role_name}",
        path=path,
        trust=CANONICAL_TRUST,
        attached=tuple(AttachedPolicy(arn, policies[arn].name) for arn in policies),
        inline={name: load_document(doc) for name, doc in inline.items()},
    )
    ctx = RuleContext(config, policies)
    found: list[tuple[Violation, RuleMode]] = []
    for rule_id in CONTENT_RULES:
        mode = config.rule_mode(rule_id)
        if mode == "off":
            continue
        for violation in _REGISTRY[rule_id].evaluate(role, ctx):
            effective = weaker_mode(mode, violation.mode)
            if effective != "off":
                found.append((violation, effective))
    return found


#: The rules that judge what a role's documents allow (the rest judge trust, boundary and attachments).
CONTENT_RULES = ("no-admin-access", "no-privilege-escalation")


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
        owned = OWNED_INLINE_POLICIES if ctx.config.rule_mode("instance-credential-perimeter") != "off" else ()
        return [
            Violation(self.id, f"inline policy {name}", Remedy("delete-inline", policy=name), {"policy": name})
            for name in sorted(role.inline)
            if name not in owned
        ]


#: Inline policies RoleWarden itself keeps on roles (while their rule is on): not "foreign" inline policies.
OWNED_INLINE_POLICIES = ("rolewarden-instance-perimeter",)


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
    remedy = "Restore it: handed to the bucket_grants capability, one message per role on its queue."
    #: Compliance writes no grant policy: it sends the role to the grants queue (ROLEWARDEN_GRANTS_QUEUE_URL).
    permissions = ("sqs:SendMessage",)

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        """Every grant policy of an evaluated role is handed to the grants code, which alone knows what
        the tags call for; it finds drift (or none) and reports it."""
        return [
            Violation(self.id, f"grant policy {p.arn}: check against bucket tags", Remedy("restore-grant", p.arn))
            for p in role.attached
            if is_grant_policy(p.arn, ctx.managed_path)
        ]


def ec2_may_assume(trust: Any) -> bool:
    """Whether an Allow statement of the trust policy lets ec2.amazonaws.com call sts:AssumeRole."""
    try:
        policy = parse_policy(trust)
    except PolicyDocumentError:
        return False
    for s in policy.statements:
        if not s.is_allow or not statement_covers(s, "sts:AssumeRole") or not isinstance(s.principal, Mapping):
            continue
        service = s.principal.get("Service")
        services = [service] if isinstance(service, str) else list(service or [])
        if any(isinstance(v, str) and v.lower() == EC2_PRINCIPAL for v in services):
            return True
    return False


@register
class Ec2InstanceProfile(Rule):
    id = "ec2-instance-profile"
    checks = (
        "A managed role that ec2.amazonaws.com may assume is in an instance profile (the IAM console makes one "
        "when it creates a role for EC2; the API, the CLI and CloudFormation do not)."
    )
    remedy = "Create an instance profile of the role's name, at the role's path, and add the role to it."
    permissions = (
        "iam:ListInstanceProfilesForRole",
        "iam:CreateInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:PassRole",
    )

    def evaluate(self, role: RoleView, ctx: RuleContext) -> list[Violation]:
        if role.instance_profiles is None or role.instance_profiles or not ec2_may_assume(role.trust):
            return []
        message = f"EC2 may assume the role but no instance profile holds it; {role.path}{role.name} would"
        return [Violation(self.id, message, Remedy("instance-profile"), {"instance_profile": role.path + role.name})]


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


@dataclass(frozen=True)
class CreateInstanceProfile(RoleAction):
    """CreateInstanceProfile (name and path of the role) + AddRoleToInstanceProfile."""

    verb: ClassVar[str] = "create-instance-profile"
    profile_name: str
    profile_path: str

    def describe(self) -> str:
        return (
            f"create instance profile {self.profile_path}{self.profile_name} holding role {self.role_name} "
            f"({', '.join(self.rules)})"
        )


@dataclass(frozen=True)
class PutInlinePolicy(RoleAction):
    """PutRolePolicy of an inline policy RoleWarden owns, if it still is what was read (``expected``,
    empty: absent)."""

    verb: ClassVar[str] = "put-inline-policy"
    policy_name: str
    document: str  # canonical JSON
    expected: str

    def describe(self) -> str:
        return f"put inline policy {self.policy_name} on role {self.role_name} ({', '.join(self.rules)})"


REMEDIATION_ACTIONS: tuple[type[RoleAction], ...] = (
    DetachManagedPolicy,
    RewriteInlinePolicy,
    DeleteInlinePolicy,
    ReplaceTrustPolicy,
    PutBoundary,
    CreateInstanceProfile,
    PutInlinePolicy,
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
                found.extend((v, m) for v in rule.evaluate(role, ctx) if (m := weaker_mode(mode, v.mode)) != "off")
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
    profile: set[str] = set()
    put: dict[str, tuple[str, set[str]]] = {}
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
        elif r.kind == "instance-profile":
            profile.add(v.rule)
        elif r.kind == "put-inline":
            put.setdefault(r.policy, (r.document, set()))[1].add(v.rule)
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
    if profile:
        actions.append(
            CreateInstanceProfile(**base, rules=tuple(sorted(profile)), profile_name=role.name, profile_path=role.path)
        )
    for name, (text, rules) in sorted(put.items()):
        current = role.inline.get(name)
        expected = canonical_json(load_document(current)) if current is not None else ""
        actions.append(
            PutInlinePolicy(**base, rules=tuple(sorted(rules)), policy_name=name, document=text, expected=expected)
        )
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


# The rules that live in their own modules register themselves on import (keep this last).
from rolewarden.decide import perimeter as _perimeter  # noqa: E402,F401
