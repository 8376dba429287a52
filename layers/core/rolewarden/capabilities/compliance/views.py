"""Where ``rolewarden.model.iam`` meets ``rolewarden.decide.compliance``: the same ``decide_role`` and
``out_of_scope``, taking the one IAM snapshot's ``Role`` and ``ManagedPolicy``.

# removed when the rules split lands (issue 11): decide.compliance then takes Role and ManagedPolicy
itself, and the callers import ``decide_role``/``out_of_scope`` from it under the same names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import overload

from rolewarden.config import Config
from rolewarden.decide import compliance
from rolewarden.decide.compliance import AttachedPolicy, ManagedPolicyView, RoleDecision, RoleView
from rolewarden.model.iam import ManagedPolicy, Role


@overload
def _as_view(item: Role) -> RoleView: ...
@overload
def _as_view(item: ManagedPolicy) -> ManagedPolicyView: ...
def _as_view(item: Role | ManagedPolicy) -> RoleView | ManagedPolicyView:
    if isinstance(item, Role):
        attached = tuple(AttachedPolicy(p.arn, p.name) for p in item.attached)
        return RoleView(
            item.name, item.arn, item.path, item.trust, item.boundary, attached, item.inline, item.instance_profiles
        )
    return ManagedPolicyView(item.arn, item.name, item.path, item.default_version, item.document)


class _PolicyViews(Mapping[str, ManagedPolicyView]):
    """The policies as views, converted when a rule looks one up (a sweep holds thousands)."""

    def __init__(self, policies: Mapping[str, ManagedPolicy]) -> None:
        self._policies = policies

    def __getitem__(self, arn: str) -> ManagedPolicyView:
        return _as_view(self._policies[arn])

    def __iter__(self) -> Iterator[str]:
        return iter(self._policies)

    def __len__(self) -> int:
        return len(self._policies)


def decide_role(
    role: Role, config: Config, policies: Mapping[str, ManagedPolicy], self_role_arns: frozenset[str] = frozenset()
) -> RoleDecision:
    return compliance.decide_role(_as_view(role), config, _PolicyViews(policies), self_role_arns)


def out_of_scope(role: Role, config: Config, self_role_arns: frozenset[str] = frozenset()) -> str | None:
    return compliance.out_of_scope(_as_view(role), config, self_role_arns)


def views_of(role: Role, policies: Mapping[str, ManagedPolicy]) -> tuple[RoleView, Mapping[str, ManagedPolicyView]]:
    """The role and its policies as the rules take them (for callers of single rules, e.g. explain)."""
    return _as_view(role), _PolicyViews(policies)
