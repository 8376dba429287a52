"""House rules that keep the shape: a boto3-free pure core, thin handlers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "core" / "rolewarden"
PURE = [
    PACKAGE / "config.py",
    *sorted((PACKAGE / "model").glob("*.py")),
    PACKAGE / "triggers.py",
    *sorted((PACKAGE / "decide").glob("*.py")),
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


@pytest.mark.parametrize("path", [p for p in PURE if p.name != "config.py"], ids=lambda p: p.name)
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
