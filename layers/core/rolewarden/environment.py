"""Settings the stack passes through the environment (the config file holds everything else)."""

from __future__ import annotations

import os

#: Capabilities that change global resources (IAM roles and policies, the account's bucket grants):
#: they act from the home region only.
GLOBAL_CAPABILITIES = frozenset({"bucket_grants", "role_compliance"})


def self_role_arns() -> frozenset[str]:
    """RoleWarden's own execution roles (ROLEWARDEN_SELF_ROLE_ARNS, comma-separated; set by the template)."""
    raw = os.environ.get("ROLEWARDEN_SELF_ROLE_ARNS", "")
    return frozenset(arn.strip() for arn in raw.split(",") if arn.strip())


def current_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


def outside_home_region(capability: str) -> str | None:
    """Why this capability must not act here (None: it may). ROLEWARDEN_HOME_REGION (set by the template
    from HomeRegion) names the one region whose stack writes IAM; unset means this region is home."""
    home = os.environ.get("ROLEWARDEN_HOME_REGION", "").strip()
    region = current_region()
    if capability not in GLOBAL_CAPABILITIES or not home or not region or home == region:
        return None
    return (
        f"{capability} changes global IAM resources and acts only in the home region {home}, not in {region}; "
        "this stack should forward its events there (HomeRegion)"
    )


def number(name: str, default: float) -> float:
    """A numeric setting; a value that is not a number is a clear error, not a silent default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
