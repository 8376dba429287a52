"""Shared fixtures: one embedded moto server per test session (real HTTP, real boto3 clients),
reset before every test; config files written per test."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# CI runs hypothesis derandomized, so a red CI is always reproducible; locally it explores freely.
from hypothesis import settings as _hypothesis_settings

from rwlocal import configs
from rwlocal.server import ROLEWARDEN_ENV, LocalAws

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        yield aws


@pytest.fixture
def aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """A clean moto server and a clean RoleWarden process state for one test."""
    local_aws.reset()
    for key in ROLEWARDEN_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ROLEWARDEN_PROPAGATION_WAIT", "0")
    monkeypatch.setenv("ROLEWARDEN_THROTTLE_WAIT", "0")  # a test that wants in-invocation throttle retries sets it
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "RoleWardenTest")
    # moto answers at any rate and the harness runs on a scaled clock: client-side pacing at AWS's real
    # rates would only slow the tests (tests/unit/test_pacing.py tests it; the bench's throttled scenarios
    # measure it)
    monkeypatch.setenv("ROLEWARDEN_PACING", "off")
    from rolewarden import config
    from rolewarden.aws import pacing

    pacing.reset()
    from rolewarden.capabilities.profiles import guard as profiles

    profiles.clear_profile_cache()
    config._cache.clear()
    from rolewarden import account_runs

    account_runs.reset()  # the per-container account sessions, home account and Organizations cache
    return local_aws


BASE_CONFIG = configs.config_yaml(
    instance_profiles={"rules": [configs.WEB_RULE, configs.DATA_RULE, configs.ADMIN_RULE, configs.GHOST_RULE]}
)


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """write_config(text=BASE_CONFIG, **top_level_overrides) -> path; also sets ROLEWARDEN_CONFIG."""
    import yaml

    def write(text: str = BASE_CONFIG, **overrides: Any) -> Path:
        data = yaml.safe_load(textwrap.dedent(text))
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path = tmp_path / f"rolewarden-{len(list(tmp_path.glob('rolewarden-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        monkeypatch.setenv("ROLEWARDEN_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def config_env() -> dict[str, str]:
    return dict(os.environ)
