"""Helpers for functional tests: load a function's real app.py, build events, the small readers that several
test files share."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3

from rwlocal import world as w
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


def iam() -> Any:
    return boto3.client("iam")


def profiles_app(write_config: Callable[..., Path]) -> Any:
    """The instance-profiles function's app.py, with the base test config (tests/conftest.py) written."""
    write_config()
    return load_app("instance_profiles")


def compliance_app() -> Any:
    """The role-compliance function's app.py, with the policy versions cached in this process (by ARN, so
    possibly another test's) forgotten."""
    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()
    return load_app("role_compliance")


def running(instance_id: str, time: str | None = None) -> dict[str, Any]:
    """An EC2 state-change event to running (at ``time``, an ISO timestamp, when given)."""
    event = w.state_change_event(instance_id, "running")
    if time is not None:
        event["time"] = time
    return event


def ec2_writes(counter: Any) -> dict[str, int]:
    """The EC2 writes a rwlocal.faults.count_calls counter saw, by operation."""
    writes: Mapping[str, int] = counter.writes()
    return {k: v for k, v in writes.items() if k.startswith("ec2:")}


class Result:
    """What one command-line run answered: exit code, standard output and standard error."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:  # shown when an assertion fails
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


#: The grants tests' config: the managed path and the default tag prefix, nothing else.
GRANTS_CONFIG = """
version: 1
managed_path: /rolewarden/
bucket_grants:
  tag_prefix: "rolewarden:"
"""
#: The generated grant policy of the role web-server in moto's default account.
WEB_SERVER_GRANT_POLICY = "arn:aws:iam::123456789012:policy/rolewarden/rolewarden-grants-web-server"
