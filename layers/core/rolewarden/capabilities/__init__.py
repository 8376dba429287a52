"""Capabilities: observe -> decide -> apply for one kind of resource. Each exposes ``reconcile``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rolewarden.capabilities.base import Capability

_MODULES = {
    "instance_profiles": "rolewarden.capabilities.profiles",
    "bucket_grants": "rolewarden.capabilities.grants",
    "role_compliance": "rolewarden.capabilities.compliance",
}


def get(name: str) -> Capability:
    """The capability object by name (its module is imported on first use, to keep cold starts small)."""
    module = importlib.import_module(_MODULES[name])
    return module.CAPABILITY  # type: ignore[no-any-return]


def names() -> list[str]:
    return list(_MODULES)
