"""RoleWarden configs for the local harness: the one base that the tests, the chaos suite and the benchmarks
build their configs from (version 1, the managed path ``/rolewarden/``), and the instance-profile rules they
share, so that a config's header and rules are written once."""

from __future__ import annotations

from typing import Any

import yaml

MANAGED_PATH = "/rolewarden/"
#: Instance-profile rules the harness worlds use (rwlocal.world builds the profiles they name).
WEB_RULE: dict[str, Any] = {"match": {"rolewarden:profile": "web"}, "profile": "web-server"}
DATA_RULE: dict[str, Any] = {"match": {"team": "data", "env": ["prod", "staging"]}, "profile": "data-worker"}
ADMIN_RULE: dict[str, Any] = {"match": {"rolewarden:profile": "admin"}, "profile": "break-glass-admin"}
GHOST_RULE: dict[str, Any] = {"match": {"rolewarden:profile": "ghost"}, "profile": "does-not-exist"}


def config_yaml(**sections: Any) -> str:
    """A version-1 config as YAML: ``managed_path`` /rolewarden/ unless given, then ``sections`` (top-level keys
    of the config reference, e.g. ``instance_profiles={"rules": [WEB_RULE]}``) in the order given."""
    data: dict[str, Any] = {"version": 1, "managed_path": MANAGED_PATH, **sections}
    return str(yaml.safe_dump(data, sort_keys=False))
