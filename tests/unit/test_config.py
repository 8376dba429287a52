"""The config schema: every mistake is a clear error naming the source and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolewarden.config import Config, load_config, parse_config
from rolewarden.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_is_valid() -> None:
    config = parse_config((ROOT / "config" / "rolewarden.yaml").read_text(), "config/rolewarden.yaml")
    assert config.managed_path == "/rolewarden/"
    assert config.instance_profiles.rules


def test_defaults_fill_everything_but_version() -> None:
    config = parse_config("version: 1")
    assert config.dry_run is False
    assert config.instance_profiles.on_mismatch == "replace"
    assert config.bucket_grants.max_policies_per_role == 5
    assert config.compliance.rules["no-inline-policies"] == "report"


BAD = [
    ("not-yaml", "version: [1", "not valid YAML"),
    ("not-a-mapping", "- 1\n- 2", "top level must be a mapping"),
    ("missing-version", "managed_path: /x/", "version: required key is missing"),
    ("wrong-version", "version: 2", "version:"),
    ("unknown-top-key", "version: 1\nmanaged_paths: /x/", "managed_paths: unknown key"),
    ("unknown-nested-key", "version: 1\ninstance_profiles: {rulez: []}", "instance_profiles.rulez: unknown key"),
    ("root-path", "version: 1\nmanaged_path: /", "managed_path:"),
    ("path-without-slash", "version: 1\nmanaged_path: rolewarden", "managed_path:"),
    ("dry-run-string", "version: 1\ndry_run: 'yes'", "dry_run:"),
    ("bad-mismatch", "version: 1\ninstance_profiles: {on_mismatch: delete}", "instance_profiles.on_mismatch:"),
    (
        "rule-without-profile",
        "version: 1\ninstance_profiles: {rules: [{match: {a: b}}]}",
        "instance_profiles.rules.0.profile: required key is missing",
    ),
    (
        "rule-empty-match",
        "version: 1\ninstance_profiles: {rules: [{match: {}, profile: p}]}",
        "instance_profiles.rules.0.match:",
    ),
    ("rule-empty-list", "version: 1\ninstance_profiles: {rules: [{match: {a: []}, profile: p}]}", "empty list"),
    (
        "bad-profile-name",
        "version: 1\ninstance_profiles: {rules: [{match: {a: b}, profile: 'a b'}]}",
        "not a valid instance profile name",
    ),
    ("bad-default", "version: 1\ninstance_profiles: {default: 'x/y'}", "instance_profiles.default:"),
    ("level-not-s3", "version: 1\nbucket_grants: {levels: {read: [ec2:RunInstances]}}", "is not an s3: action"),
    ("level-star", "version: 1\nbucket_grants: {levels: {all: ['s3:*']}}", "bucket_grants.levels:"),
    ("too-many-policies", "version: 1\nbucket_grants: {max_policies_per_role: 50}", "max_policies_per_role:"),
    ("bad-boundary", "version: 1\ncompliance: {permissions_boundary: not-an-arn}", "is not an IAM policy ARN"),
    ("unknown-rule", "version: 1\ncompliance: {rules: {no-fun: enforce}}", "unknown rule"),
    ("bad-rule-mode", "version: 1\ncompliance: {rules: {no-admin-access: fix}}", "compliance.rules.no-admin-access:"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD], ids=[i for i, _, _ in BAD])
def test_mistakes_are_clear_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf.yaml")
    message = str(caught.value)
    assert "conf.yaml" in message
    assert expected in message


def test_stack_managed_path_must_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLEWARDEN_MANAGED_PATH", "/other/")
    with pytest.raises(ConfigError, match="differs from the stack's ManagedPath"):
        parse_config("version: 1\nmanaged_path: /rolewarden/")


def test_stack_dry_run_forces_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLEWARDEN_DRY_RUN", "true")
    assert parse_config("version: 1\ndry_run: false").dry_run is True


def test_load_config_from_file_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLEWARDEN_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="ROLEWARDEN_CONFIG is not set"):
        load_config()
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "nope.yaml"))
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nmanaged_path: /team/\n")
    assert isinstance(load_config(str(path)), Config)
    assert load_config(str(path)).managed_path == "/team/"
    path.write_text("version: 1\nmanaged_path: /team2/\n")
    assert load_config(str(path)).managed_path == "/team2/"  # a changed file is re-parsed


@pytest.mark.parametrize("path", ["/*/", "/role?/", "/a//", "//", "/a b/", "/rolewarden"])
def test_managed_path_refuses_wildcards_and_odd_paths(path: str) -> None:
    with pytest.raises(ConfigError, match="managed_path"):
        parse_config(f"version: 1\nmanaged_path: '{path}'")
