"""The config schema: every mistake is a clear error naming the source and the key path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import pytest

from rolewarden.config import Config, config_json, load_config, parse_config
from rolewarden.errors import ConfigError
from rolewarden.schema import Check, Limits, SchemaError, Section

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


def test_every_problem_is_listed_with_its_key_path() -> None:
    text = "version: 1\nmanaged_path: /\ndry_run: 'yes'\nbogus: 1\ncompliance: {rules: {no-admin-access: fix}}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf.yaml")
    assert str(caught.value).splitlines() == [
        "invalid config conf.yaml:",
        "  managed_path: '/' would put every role in the account under RoleWarden; use a path like /rolewarden/",
        "  dry_run: Input should be a valid boolean (true or false), got 'yes'",
        "  compliance.rules.no-admin-access: Input should be 'enforce', 'report' or 'off', got 'fix'",
        "  bogus: unknown key",
    ]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("hop_limit: 3", 3),
        ("hop_limit: '3'", 3),  # a quoted number is read as one (as before)
        ("hop_limit: 3.0", 3),
        ("hop_limit: 3.5", "instance_profiles.metadata.hop_limit: Input should be a valid integer, got 3.5"),
        ("hop_limit: true", "instance_profiles.metadata.hop_limit: Input should be a valid integer, got True"),
        ("hop_limit: 65", "instance_profiles.metadata.hop_limit: must be at most 64, got 65"),
        ("exemptions: x", "instance_profiles.metadata.exemptions: Input should be a valid list, got 'x'"),
        ("exemptions: [{match: {a: 1}, reason: r}]", "exemptions.0.match.a: Input should be a string or a list of"),
        ("exemptions: [{match: {a: [b, 1]}, reason: r}]", "exemptions.0.match.a.1: Input should be a valid string"),
        ("exemptions: [{match: {1: b}, reason: r}]", "exemptions.0.match.1: Input should be a valid string (as a key)"),
        ("exemptions: [{match: {a: b}, reason: ''}]", "exemptions.0.reason: must have at least 1 character, got 0"),
        ("exemptions: [7]", "exemptions.0: Input should be a mapping of keys to values, got 7"),
    ],
)
def test_types_are_checked_strictly_with_the_path_of_the_bad_value(metadata: str, expected: int | str) -> None:
    text = f"version: 1\ninstance_profiles:\n  metadata: {{{metadata}}}\n"
    if isinstance(expected, int):
        assert parse_config(text).instance_profiles.metadata.hop_limit == expected
        return
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf.yaml")
    assert expected in str(caught.value)


def test_the_shipped_config_reads_the_same_with_the_python_yaml_parser() -> None:
    """parse_config uses libyaml when PyYAML has it; the shipped config means the same to both parsers."""
    import yaml

    text = (ROOT / "config" / "rolewarden.yaml").read_text()
    assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader)
    assert parse_config(text) == Config.from_data(yaml.load(text, Loader=yaml.SafeLoader))


def test_a_config_written_as_json_means_the_same_and_is_read_without_pyyaml() -> None:
    """JSON is YAML: the shipped config as JSON is the same config, and reading it never imports PyYAML
    (about a tenth of import boto3 at cold start)."""
    import yaml

    text = (ROOT / "config" / "rolewarden.yaml").read_text()
    as_json = json.dumps(yaml.safe_load(text), indent=2)
    assert parse_config(as_json) == parse_config(text)
    code = "import sys\nfrom rolewarden.config import parse_config\nparse_config(sys.stdin.read())\n"
    code += "print(sorted(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], input=as_json, capture_output=True, text=True, check=True)
    modules = proc.stdout.strip()
    assert "'rolewarden.schema'" in modules and "'yaml'" not in modules


def test_the_config_layer_build_ships_the_config_as_json_that_reads_back_the_same(tmp_path: Path) -> None:
    """config/Makefile's build-ConfigLayer (sam build, with the layer's BuildMethod: makefile) writes only
    rolewarden.json, from a copy of config/ as sam runs it; the function reading it gets the same config."""
    source, artifacts = tmp_path / "config", tmp_path / "opt"
    shutil.copytree(ROOT / "config", source)
    artifacts.mkdir()
    make = ["make", "-s", "build-ConfigLayer", f"ARTIFACTS_DIR={artifacts}", f"PYTHON={sys.executable}"]
    proc = subprocess.run(make, cwd=source, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in artifacts.iterdir()] == ["rolewarden.json"]
    text = (artifacts / "rolewarden.json").read_text()
    assert text.startswith("{")  # read with the json module (the test above: without PyYAML)
    assert parse_config(text, "/opt/rolewarden.json") == parse_config((ROOT / "config" / "rolewarden.yaml").read_text())


def test_the_config_layer_build_fails_on_an_invalid_config(tmp_path: Path) -> None:
    (tmp_path / "rolewarden.yaml").write_text("version: 1\nmanaged_paths: /x/\n")
    shutil.copy(ROOT / "config" / "Makefile", tmp_path / "Makefile")
    make = ["make", "-s", "build-ConfigLayer", f"ARTIFACTS_DIR={tmp_path / 'opt'}", f"PYTHON={sys.executable}"]
    proc = subprocess.run(make, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "managed_paths: unknown key" in proc.stderr and not (tmp_path / "opt" / "rolewarden.json").exists()


def test_config_json_keeps_account_ids_yaml_reads_as_numbers() -> None:
    text = (
        "version: 1\naccounts:\n  mode: central\n  organization_id: o-a1b2c3d4e5\n"
        "  include_accounts: [111111111111]\n  overrides:\n    111111111111: {dry_run: true}\n"
    )
    out = config_json(text, "accounts.yaml")
    assert json.loads(out)["accounts"]["overrides"] == {"111111111111": {"dry_run": True}}
    assert parse_config(out) == parse_config(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        config_json("version: 2\n", "bad.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{version: 1, dry_run: true}", None),  # a YAML flow mapping, not JSON: read as YAML
        ('{"version": 1, "dry_run": "yes"}', "dry_run: Input should be a valid boolean (true or false), got 'yes'"),
        ('{"version": 1, "bogus": {}}', "bogus: unknown key"),
        ('{"version": 1,', "not valid YAML"),
    ],
)
def test_json_and_flow_mappings(text: str, expected: str | None) -> None:
    if expected is None:
        assert parse_config(text).dry_run is True
        return
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf.json")
    assert "conf.json" in str(caught.value) and expected in str(caught.value)


# -- the validation base (rolewarden.schema), as a new section would use it ---------------------------
def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"{value} is odd")
    return value


@dataclass(frozen=True)
class _Pair(Section):
    low: Annotated[int, Check(_even)]
    high: Annotated[int, Limits(le=100)] = 10
    names: Annotated[list[str], Limits(min_length=1, max_length=2)] = field(default_factory=lambda: ["x"])

    def check(self) -> _Pair:
        if self.low > self.high:
            raise ValueError("low is above high")
        return replace(self, names=sorted(self.names)) if self.given("names") else self


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        ({"low": 2}, _Pair(2, 10, ["x"])),
        ({"low": 2, "high": 4, "names": ["b", "a"]}, _Pair(2, 4, ["a", "b"])),
        ({"low": 3}, [("low", "3 is odd")]),
        ({"low": 12}, [("", "low is above high")]),
        (
            {"low": "x", "high": 101, "names": [], "more": 1},
            [
                ("low", "Input should be a valid integer, got 'x'"),
                ("high", "must be at most 100, got 101"),
                ("names", "must have at least 1 item, got 0"),
                ("more", "unknown key"),
            ],
        ),
        ({}, [("low", "required key is missing")]),
    ],
    ids=["defaults", "given-and-checked", "field-check", "cross-field-check", "all-problems", "required"],
)
def test_a_section_checks_fields_then_itself(data: dict[str, object], outcome: object) -> None:
    if isinstance(outcome, _Pair):
        assert _Pair.from_data(data) == outcome
        return
    with pytest.raises(SchemaError) as caught:
        _Pair.from_data(data)
    assert caught.value.problems == outcome
