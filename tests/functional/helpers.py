"""Helpers for functional tests: load a function's real app.py, build events."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from rwlocal.pipeline import FakeContext

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def load_app(function_dir: str) -> Any:
    path = ROOT / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(f"test_app_{function_dir}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(app: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = app.lambda_handler(event, FakeContext("test"))
    return result


def sink_of(app: Any) -> Any:
    return app.lambda_handler.handler.last_sink


def sample(name: str, **replace: str) -> dict[str, Any]:
    """A sample event from events/, with strings replaced (e.g. the instance id)."""
    text = (EVENTS / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return dict(json.loads(text))
