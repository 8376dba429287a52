"""House rules that keep the shape: a boto3-free pure core, thin handlers, one-way imports.

The layering itself (entry points -> operator -> capabilities -> decide | aws -> model, config, settings,
errors, telemetry) is an import-linter contract in pyproject.toml, run by ``make lint``; the last test
here runs it too, so the unit suite fails on a wrong-way import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "rolewarden"
PURE = [
    PACKAGE / "config.py",
    *sorted((PACKAGE / "model").rglob("*.py")),
    PACKAGE / "triggers.py",
    *sorted((PACKAGE / "events").rglob("*.py")),
    *sorted((PACKAGE / "decide").rglob("*.py")),
]
FORBIDDEN = ("boto3", "botocore", "os", "time", "datetime", "rolewarden.aws")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", [p for p in PURE if p.name != "config.py"], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_core_imports_no_io(path: Path) -> None:
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {bad}: the decision core must stay free of I/O and clocks"


def test_config_imports_no_boto3() -> None:
    bad = {m for m in imported_modules(PACKAGE / "config.py") if m.split(".")[0] in ("boto3", "botocore")}
    assert not bad


@pytest.mark.parametrize("app", sorted((ROOT / "functions").glob("*/app.py")), ids=lambda p: p.parent.name)
def test_handlers_are_thin(app: Path) -> None:
    code = [line for line in app.read_text().splitlines() if line.strip() and not line.lstrip().startswith(("#", '"'))]
    assert len(code) <= 6, f"{app} has {len(code)} lines of code; logic belongs in the rolewarden layer"


@pytest.mark.parametrize("path", sorted((PACKAGE / "model").glob("*.py")), ids=lambda p: p.name)
def test_the_model_package_depends_on_nothing_of_rolewarden_but_itself(path: Path) -> None:
    """model/ is the bottom: plain data types that every layer may use, importing no other layer."""
    own = {m for m in imported_modules(path) if m == "rolewarden" or m.startswith("rolewarden.")}
    bad = {m for m in own if not m.startswith("rolewarden.model")}
    assert not bad, f"model/{path.name} imports {bad}"


def test_settings_is_the_bottom_beside_errors() -> None:
    own = {m for m in imported_modules(PACKAGE / "settings.py") if m.startswith("rolewarden")}
    assert own <= {"rolewarden.errors"}


#: The spine of the layering, top to bottom (issue 11).
ENTRY_TO_MODEL = (
    "rolewarden.runtime",
    "rolewarden.operator",
    "rolewarden.capabilities",
    "rolewarden.decide",
    "rolewarden.model",
)


def test_the_layer_contracts_cover_the_target_layout() -> None:
    """Every module and package of rolewarden sits in exactly one layer (a module left out would be free to
    import anything), and the layers run entry points -> operator -> capabilities -> decide | aws -> model."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    placed = [
        [name.strip("() ") for part in layer.split("|") for name in part.split(":")] for layer in layers["layers"]
    ]
    names = [name for layer in placed for name in layer]
    assert len(names) == len(set(names)), "a module is in two layers"
    top_level = {
        f"rolewarden.{p.stem if p.is_file() else p.name}"
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert top_level == set(names), f"not in a layer: {sorted(top_level - set(names))}"
    order = [next(i for i, layer in enumerate(placed) if name in layer) for name in ENTRY_TO_MODEL]
    assert order == sorted(order) and len(set(order)) == len(order), "the layers are out of order"
    assert "|" in layers["layers"][placed.index(next(lay for lay in placed if "rolewarden.decide" in lay))]
    forbidden = {
        c["source_modules"][0]: set(c["forbidden_modules"]) for c in config["contracts"] if c["type"] == "forbidden"
    }
    assert forbidden["rolewarden.decide"] >= {"boto3", "botocore", "rolewarden.aws", "rolewarden.capabilities"}
    assert forbidden["rolewarden.aws"] >= {"rolewarden.decide", "rolewarden.capabilities"}


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is in requirements-dev.txt: run make setup"
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_an_installed_package_holds_every_subpackage_and_data_file() -> None:
    """``pip install .`` (the CLI on an operator's machine) ships what the layer ships: pyproject.toml lists
    every package of the tree and every data file in it (e.g. the escalation table's paths.json)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(("rolewarden", *init.parent.relative_to(PACKAGE).parts))
        for init in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk <= set(setuptools["packages"])
    data = {
        ".".join(("rolewarden", *path.parent.relative_to(PACKAGE).parts)) + "/" + path.name
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    declared = {f"{package}/{name}" for package, names in setuptools.get("package-data", {}).items() for name in names}
    assert data == declared
