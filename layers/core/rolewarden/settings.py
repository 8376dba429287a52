"""Settings: every environment variable RoleWarden reads, as one frozen object.

The stack passes a few values through the environment (template.yaml: queue URLs, the state table,
the managed path...); the config file holds everything else. This module is the only reader of
``os.environ`` in the package (a unit test keeps it so). ``Settings.from_env(env)`` builds the
settings from any mapping (tests and the CLI build one explicitly); ``current()`` is this process's,
built once from ``os.environ`` at first use and cached. The cache is keyed on the variables' values, so
it is rebuilt only when one of them changes: never in Lambda, where the environment is fixed at init,
but in tests and the local pipeline, which run several functions' environments in one process.
``pinned(settings)`` makes ``current()`` answer given settings for a block (the CLI, tests).

Every field is in the README's configuration reference ("Environment variables"), with its
default; a unit test checks that the two agree. A value that cannot be parsed is a ``SettingsError``
naming the variable, never a silent default.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from rolewarden.errors import ConfigError

#: Capabilities that change global resources (IAM roles and policies, the account's bucket grants):
#: they act from the home region only.
GLOBAL_CAPABILITIES = frozenset({"bucket_grants", "role_compliance"})


class SettingsError(ConfigError, ValueError):
    """An environment variable whose value cannot be used. Nothing acts until it is fixed."""


def _var(*names: str, default: Any, parse: str = "str") -> Any:
    """A field read from the first set variable of ``names``, parsed as ``parse``."""
    return field(default=default, metadata={"env": names, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """The environment's settings (see the README's "Environment variables" for each one's meaning)."""

    config: str = _var("ROLEWARDEN_CONFIG", default="")
    table: str = _var("ROLEWARDEN_TABLE", default="")
    managed_path: str = _var("ROLEWARDEN_MANAGED_PATH", default="")
    dry_run: bool = _var("ROLEWARDEN_DRY_RUN", default=False, parse="true")
    config_max_age: int = _var("ROLEWARDEN_CONFIG_MAX_AGE", default=300, parse="int>=0")
    home_region: str = _var("ROLEWARDEN_HOME_REGION", default="")
    region: str = _var("AWS_REGION", "AWS_DEFAULT_REGION", default="")
    self_role_arns: frozenset[str] = _var("ROLEWARDEN_SELF_ROLE_ARNS", default=frozenset(), parse="list")
    queue_url: str = _var("ROLEWARDEN_QUEUE_URL", default="")
    sweep_queue_url: str = _var("ROLEWARDEN_SWEEP_QUEUE_URL", default="")
    dlq_url: str = _var("ROLEWARDEN_DLQ_URL", default="")
    findings_topic: str = _var("ROLEWARDEN_FINDINGS_TOPIC", default="")
    grants_queue_url: str = _var("ROLEWARDEN_GRANTS_QUEUE_URL", default="")
    max_receive: int = _var("ROLEWARDEN_MAX_RECEIVE", default=5, parse="int>=1")
    retry_base: float = _var("ROLEWARDEN_RETRY_BASE", default=5.0, parse="float>=0")
    retry_cap: float = _var("ROLEWARDEN_RETRY_CAP", default=300.0, parse="float>=0")
    throttle_wait: float = _var("ROLEWARDEN_THROTTLE_WAIT", default=20.0, parse="float>=0")
    sweep_margin: float = _var("ROLEWARDEN_SWEEP_MARGIN", default=30.0, parse="float>=0")
    sweep_max_parts: int = _var("ROLEWARDEN_SWEEP_MAX_PARTS", default=200, parse="int>=1")
    propagation_wait: float = _var("ROLEWARDEN_PROPAGATION_WAIT", default=30.0, parse="float>=0")
    retry_mode: str = _var("ROLEWARDEN_RETRY_MODE", default="standard", parse="retry-mode")
    max_attempts: int = _var("ROLEWARDEN_MAX_ATTEMPTS", default=6, parse="int>=1")
    pacing: bool = _var("ROLEWARDEN_PACING", default=True, parse="on-off")
    pace_containers: int = _var("ROLEWARDEN_PACE_CONTAINERS", default=1, parse="int>=1")
    pace_factor: float = _var("ROLEWARDEN_PACE_FACTOR", default=1.0, parse="float>0")
    pace_max_wait: float = _var("ROLEWARDEN_PACE_MAX_WAIT", default=30.0, parse="float>=0")
    mode: str = _var("ROLEWARDEN_MODE", default="single", parse="mode")
    execution_role: str = _var("ROLEWARDEN_EXECUTION_ROLE", default="RoleWardenExecution")
    account_id: str = _var("ROLEWARDEN_ACCOUNT_ID", default="")
    security_hub: bool = _var("ROLEWARDEN_SECURITY_HUB", default=False, parse="on-off")
    log_level: str = _var("ROLEWARDEN_LOG_LEVEL", default="ERROR")
    service_name: str = _var("POWERTOOLS_SERVICE_NAME", default="rolewarden")
    metrics_namespace: str = _var("POWERTOOLS_METRICS_NAMESPACE", default="RoleWarden")
    lambda_function_name: str = _var("AWS_LAMBDA_FUNCTION_NAME", default="")
    no_color: bool = _var("NO_COLOR", default=False, parse="present")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings ``env`` holds; a variable that is unset or empty takes its default."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            names: tuple[str, ...] = spec.metadata["env"]
            parse: str = spec.metadata["parse"]
            if parse == "present":
                values[spec.name] = any(name in env for name in names)
                continue
            for name in names:
                raw = env.get(name, "").strip()
                if raw:
                    values[spec.name] = _PARSERS[parse](name, raw)
                    break
        return cls(**values)

    @classmethod
    def variables(cls) -> dict[str, tuple[str, ...]]:
        """Field name -> the environment variables it is read from (first set one wins)."""
        return {spec.name: spec.metadata["env"] for spec in fields(cls)}

    def outside_home_region(self, capability: str) -> str | None:
        """Why ``capability`` must not act here (None: it may). ``home_region`` (set by the template from
        HomeRegion) names the one region whose stack writes IAM; unset means this region is home."""
        home, region = self.home_region, self.region
        if capability not in GLOBAL_CAPABILITIES or not home or not region or home == region:
            return None
        return (
            f"{capability} changes global IAM resources and acts only in the home region {home}, not in {region}; "
            "this stack should forward its events there (HomeRegion)"
        )


def _number[N: (int, float)](kind: Callable[[str], N], minimum: N, strict: bool) -> Callable[[str, str], N]:
    def parse(name: str, raw: str) -> N:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value < minimum or (strict and value == minimum):
            raise SettingsError(f"{name}={raw!r} must be {'>' if strict else '>='} {minimum}")
        return value

    return parse


def _mode(name: str, raw: str) -> str:
    if raw not in ("single", "central"):
        raise SettingsError(f"{name} must be single or central, not {raw!r}")
    return raw


def _on_off(name: str, raw: str) -> bool:
    flag = raw.lower()
    if flag not in ("on", "off", "true", "false", "1", "0"):
        raise SettingsError(f"{name} must be on or off, not {raw!r}")
    return flag in ("on", "true", "1")


def _retry_mode(name: str, raw: str) -> str:
    if raw not in ("standard", "adaptive", "legacy"):
        raise SettingsError(f"{name} must be standard, adaptive or legacy, not {raw!r}")
    return raw


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "str": lambda name, raw: raw,
    "true": lambda name, raw: raw.lower() == "true",  # the template passes DryRun's "true"/"false"
    "list": lambda name, raw: frozenset(item.strip() for item in raw.split(",") if item.strip()),
    "int>=0": _number(int, 0, strict=False),
    "int>=1": _number(int, 1, strict=False),
    "float>=0": _number(float, 0.0, strict=False),
    "float>0": _number(float, 0.0, strict=True),
    "on-off": _on_off,
    "retry-mode": _retry_mode,
    "mode": _mode,
}

_NAMES = tuple(name for names in Settings.variables().values() for name in names)
_lock = threading.Lock()
_cached: tuple[tuple[str | None, ...], Settings] | None = None
_pinned: list[Settings] = []


def current() -> Settings:
    """This process's settings: built from ``os.environ`` at first use, rebuilt only if a variable changed."""
    if _pinned:
        return _pinned[-1]
    global _cached
    key = tuple(os.environ.get(name) for name in _NAMES)
    with _lock:
        if _cached is None or _cached[0] != key:
            _cached = (key, Settings.from_env(os.environ))
        return _cached[1]


@contextmanager
def pinned(settings: Settings) -> Iterator[Settings]:
    """``current()`` answers ``settings`` inside the block (whatever the environment holds)."""
    _pinned.append(settings)
    try:
        yield settings
    finally:
        _pinned.remove(settings)
