"""Which roles the compliance capability may judge and change at all."""

from __future__ import annotations

from rolewarden.config import Config
from rolewarden.model.compliance import SERVICE_LINKED_PATH
from rolewarden.model.iam import Role


def out_of_scope(role: Role, config: Config, self_role_arns: frozenset[str] = frozenset()) -> str | None:
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
