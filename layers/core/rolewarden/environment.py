"""Settings the stack passes through the environment (the config file holds everything else)."""

from __future__ import annotations

import os


def self_role_arns() -> frozenset[str]:
    """RoleWarden's own execution roles (ROLEWARDEN_SELF_ROLE_ARNS, comma-separated; set by the template)."""
    raw = os.environ.get("ROLEWARDEN_SELF_ROLE_ARNS", "")
    return frozenset(arn.strip() for arn in raw.split(",") if arn.strip())
