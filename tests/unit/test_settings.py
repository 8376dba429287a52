"""Settings: one frozen object from the environment, documented in the README, the only reader of os.environ."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from rolewarden import settings as settings_module
from rolewarden.errors import ConfigError
from rolewarden.settings import Settings, SettingsError, current, pinned

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "rolewarden"


def _reads_environment(path: Path) -> bool:
    """True when the module touches ``os.environ``/``os.getenv`` (or imports them from ``os``)."""
    names = {"environ", "getenv", "environb"}
    for node in ast.walk(ast.parse(path.read_text())):
        attribute = isinstance(node, ast.Attribute) and node.attr in names
        if attribute and isinstance(node.value, ast.Name) and node.value.id == "os":  # type: ignore[attr-defined]
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & names:
            return True
    return False


def _readme_variables() -> dict[str, str]:
    """Variable -> default column of the README's "Environment variables" table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Environment variables") :]
    section = section[: section.index("\n## ")]
    found: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                found[name] = cells[1]
    return found


def test_every_setting_is_in_the_readme_table_and_nothing_else() -> None:
    documented = _readme_variables()
    declared = {name for names in Settings.variables().values() for name in names}
    assert declared - set(documented) == set(), "settings missing from the README's Environment variables table"
    assert set(documented) - declared == set(), "README rows for variables Settings does not read"


@pytest.mark.parametrize("spec", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_the_readme_gives_each_numeric_default(spec: dataclasses.Field[object]) -> None:
    default = spec.default
    if isinstance(default, bool) or not isinstance(default, int | float):
        return
    (name,) = spec.metadata["env"]
    assert _readme_variables()[name] == f"`{default:g}`"


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_settings_reads_the_environment() -> None:
    strays = {
        str(p.relative_to(PACKAGE)) for p in _package_files() if p.name != "settings.py" and _reads_environment(p)
    }
    assert strays == set(), "read the environment through rolewarden.settings instead"


def test_defaults_when_nothing_is_set() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.table, s.max_receive, s.retry_base, s.sweep_max_parts, s.dry_run) == ("", 5, 5.0, 200, False)
    assert s.self_role_arns == frozenset() and s.pacing is True and s.no_color is False


def test_values_are_parsed_and_empty_means_default() -> None:
    s = Settings.from_env(
        {
            "ROLEWARDEN_TABLE": " state ",
            "ROLEWARDEN_MAX_RECEIVE": "3",
            "ROLEWARDEN_RETRY_BASE": "0.5",
            "ROLEWARDEN_DRY_RUN": "TRUE",
            "ROLEWARDEN_SELF_ROLE_ARNS": "arn:a, ,arn:b",
            "ROLEWARDEN_SWEEP_MARGIN": "",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "NO_COLOR": "",
        }
    )
    assert (s.table, s.max_receive, s.retry_base, s.dry_run) == ("state", 3, 0.5, True)
    assert s.self_role_arns == frozenset({"arn:a", "arn:b"})
    assert s.sweep_margin == 30.0 and s.region == "eu-west-1" and s.no_color is True
    assert Settings.from_env({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1"}).region == "us-east-1"
    assert Settings.from_env({"ROLEWARDEN_DRY_RUN": "false"}).dry_run is False


@pytest.mark.parametrize(
    ("name", "raw", "problem"),
    [
        ("ROLEWARDEN_MAX_RECEIVE", "five", "is not an integer"),
        ("ROLEWARDEN_MAX_RECEIVE", "0", "must be >= 1"),
        ("ROLEWARDEN_RETRY_CAP", "lots", "is not a number"),
        ("ROLEWARDEN_THROTTLE_WAIT", "-1", "must be >= 0"),
        ("ROLEWARDEN_PACE_FACTOR", "0", "must be > 0"),
        ("ROLEWARDEN_CONFIG_MAX_AGE", "1.5", "is not an integer"),
        ("ROLEWARDEN_PACING", "maybe", "must be on or off"),
        ("ROLEWARDEN_RETRY_MODE", "eager", "must be standard, adaptive or legacy"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, raw: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(name) + r".*" + re.escape(problem)) as caught:
        Settings.from_env({name: raw})
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("capability", "home", "region", "refused"),
    [
        ("role_compliance", "eu-west-1", "eu-central-1", True),
        ("bucket_grants", "eu-west-1", "eu-central-1", True),
        ("instance_profiles", "eu-west-1", "eu-central-1", False),
        ("role_compliance", "eu-west-1", "eu-west-1", False),
        ("role_compliance", "", "eu-central-1", False),
    ],
)
def test_global_capabilities_act_only_in_the_home_region(
    capability: str, home: str, region: str, refused: bool
) -> None:
    s = Settings.from_env({"ROLEWARDEN_HOME_REGION": home, "AWS_REGION": region})
    reason = s.outside_home_region(capability)
    assert (reason is not None) == refused
    if refused:
        assert reason is not None and f"home region {home}, not in {region}" in reason


def test_current_is_built_once_and_follows_a_changed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLEWARDEN_TABLE", "one")
    first = current()
    assert current() is first and first.table == "one"
    monkeypatch.setenv("ROLEWARDEN_TABLE", "two")
    assert current().table == "two"


def test_pinned_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLEWARDEN_TABLE", "from-env")
    with pinned(Settings(table="explicit")) as s:
        assert current() is s
    assert current().table == "from-env"
    assert settings_module._pinned == []
