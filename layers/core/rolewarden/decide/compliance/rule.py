"""The compliance rule framework: what a rule is (``Rule``: id, what it checks, its remedy and the IAM
permissions that remedy needs), what it finds (``Violation`` with a ``Remedy``), what it reads
(``RuleContext``), and the helpers rules share to walk a role's permission documents.

Rules are small objects (Cloud Custodian style); ``rolewarden.decide.compliance.registry`` declares them
in one literal tuple, and a unit test checks their permissions against template.yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from rolewarden.config import Config, RuleMode
from rolewarden.decide.policy import PolicyDocument, Statement, parse_policy
from rolewarden.model.compliance import is_grant_policy
from rolewarden.model.documents import PolicyDocumentError
from rolewarden.model.iam import ManagedPolicy, Role

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
    #: What a finding reports beyond the message; read-only, like the violation (none: the shared empty view).
    details: Mapping[str, Any] = MappingProxyType({})
    #: A stricter limit than the rule's mode for this violation (e.g. its escalation category's); None: the rule's.
    mode: RuleMode | None = None


@dataclass(frozen=True)
class RuleContext:
    config: Config
    #: The managed policies read, by ARN (``IamSnapshot.policies`` or an on-demand read).
    policies: Mapping[str, ManagedPolicy]

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

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:  # pragma: no cover - abstract
        raise NotImplementedError


_MODE_RANK: dict[str, int] = {"off": 0, "report": 1, "enforce": 2}


def weaker_mode(a: RuleMode, b: RuleMode | None) -> RuleMode:
    """The less strict of two modes (off < report < enforce); ``b`` None leaves ``a``."""
    if b is None:
        return a
    return a if _MODE_RANK[a] <= _MODE_RANK[b] else b


def documents(role: Role, ctx: RuleContext) -> Iterator[tuple[str, str, PolicyDocument]]:
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


def statement_violations(
    rule_id: str,
    role: Role,
    ctx: RuleContext,
    offending: Callable[[Statement], str | None],
) -> list[Violation]:
    """Violations for the statements ``offending`` names (it returns the reason, or None): a managed
    policy with one is detached; an inline policy loses those statements."""
    violations = []
    for kind, name, document in documents(role, ctx):
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
