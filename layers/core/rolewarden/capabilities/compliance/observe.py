"""The observe step of role compliance: read the roles and policies the targets concern (reads only).

A sweep reads everything in one paginated GetAccountAuthorizationDetails; events read only the roles
they name (GetRole, then the policy lists only for roles in scope), or the managed roles a changed
policy is attached to (ListEntitiesForPolicy), and the documents of the policies those roles hold that
the read did not bring. All of it through the one IAM reader, ``rolewarden.aws.iam_snapshot``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rolewarden.aws import iam_snapshot
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.decide.compliance.scope import out_of_scope
from rolewarden.errors import PermanentError, RetryableError, RoleWardenError
from rolewarden.model.compliance import is_grant_policy
from rolewarden.model.iam import ManagedPolicy, Role
from rolewarden.model.targets import Target
from rolewarden.settings import current as current_settings


@dataclass(frozen=True)
class ComplianceSnapshot:
    """What one observe step read."""

    #: role name -> the role (None: an event named a role IAM does not have)
    roles: Mapping[str, Role | None] = field(default_factory=dict)
    #: policy ARN -> the policy with (at least) its default version's document
    policies: Mapping[str, ManagedPolicy] = field(default_factory=dict)
    #: target -> the role names it concerns
    per_target: Mapping[Target, tuple[str, ...]] = field(default_factory=dict)
    #: grant policies named by policy events
    grant_policies: frozenset[str] = frozenset()
    #: targets whose reads failed, with their outcome
    failed: Mapping[Target, Outcome] = field(default_factory=dict)
    #: the cost of a sweep's read, for its summary log
    calls: str = ""
    #: the account the roles are in ("" when no sweep read told it)
    account: str = ""


def _failure(exc: RoleWardenError) -> Outcome:
    return Outcome("retry" if isinstance(exc, RetryableError) else "dead", str(exc))


def observe(run: Run, targets: Sequence[Target]) -> ComplianceSnapshot:
    """Read what ``targets`` concern. Raises RetryableError/PermanentError only when a sweep's read fails;
    a failed event read becomes that target's outcome in ``failed``."""
    config = run.config
    roles: dict[str, Role | None] = {}
    policies: dict[str, ManagedPolicy] = {}
    per_target: dict[Target, tuple[str, ...]] = {}
    grant_policies: set[str] = set()
    failed: dict[Target, Outcome] = {}
    complete: set[str] = set()  # roles whose attached and inline policies have been read
    calls, account = "", ""
    if any(t.kind == "sweep" for t in targets):
        snapshot = iam_snapshot.read_account()
        roles.update(snapshot.roles)
        # A policy whose default document the answer lacks is read on demand if a role in scope needs it.
        policies.update({arn: p for arn, p in snapshot.policies.items() if p.default is not None})
        calls, account = f"GetAccountAuthorizationDetails x{snapshot.pages}", snapshot.account
        complete.update(snapshot.roles)
        for target in targets:
            per_target[target] = tuple(sorted(snapshot.roles)) if target.kind == "sweep" else ()
    for target in targets:
        if target.kind == "sweep":
            continue
        try:
            names: list[str] = []
            if target.kind == "policy":
                if is_grant_policy(target.id, config.managed_path):
                    grant_policies.add(target.id)
                names = iam_snapshot.roles_for_policy(target.id, config.managed_path) or []
            elif target.kind == "role":
                names = [target.id]
            per_target[target] = tuple(names)
            for name in names:
                if name not in roles:
                    roles[name] = iam_snapshot.get_role(name)
        except (RetryableError, PermanentError) as exc:
            failed[target] = _failure(exc)

    def fail_role(name: str, exc: RoleWardenError) -> None:
        roles.pop(name, None)
        for target, names in per_target.items():
            if name in names and target.kind != "sweep":
                failed[target] = _failure(exc)

    # Complete the roles that events named (GetRole only so far) when they are in scope.
    own = current_settings().self_role_arns
    with_profiles = config.rule_mode("ec2-instance-profile") != "off"
    needed: set[str] = set()
    for name, role in list(roles.items()):
        if role is None or out_of_scope(role, config, own) is not None:
            continue
        full: Role | None = role
        if name not in complete:
            try:
                full = iam_snapshot.complete_role(role, with_profiles=with_profiles)
            except (RetryableError, PermanentError) as exc:
                fail_role(name, exc)
                continue
            roles[name] = full
            complete.add(name)
        if full is not None:
            needed.update(p.arn for p in full.attached if p.arn not in policies)
    if needed:
        try:
            policies.update(iam_snapshot.read_policies(needed))
        except (RetryableError, PermanentError) as exc:
            for name in [n for n, r in roles.items() if r is not None and needed & set(r.attached_arns)]:
                fail_role(name, exc)
    return ComplianceSnapshot(roles, policies, per_target, frozenset(grant_policies), failed, calls, account)
