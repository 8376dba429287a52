"""Each escalation path in docs/threat-model.md names tests; they must exist (the doc cannot rot)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "threat-model.md").read_text()


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_path_has_a_test_that_exists() -> None:
    rows = [line for line in DOC.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) >= 15
    for row in rows:
        refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", row)
        assert refs, f"no test named for: {row[:80]}"
        for path, name in refs:
            file = ROOT / path
            assert file.exists(), path
            if name:
                assert name in _test_names(file), f"{path}::{name} does not exist"
