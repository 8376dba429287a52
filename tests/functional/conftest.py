"""Functional tests talk to the moto server over HTTP."""

import io
import sys
from collections.abc import Callable

import pytest

from rwlocal.server import LocalAws
from tests.functional.helpers import Result


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/functional/" in str(item.fspath):
            item.add_marker(pytest.mark.functional)


@pytest.fixture(autouse=True)
def instant_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore sleeps between retries in botocore.endpoint; record the delays instead of waiting.
    (Only botocore's module reference is replaced, not time.sleep itself, so moto is unaffected.)"""
    import types

    import botocore.endpoint

    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=delays.append))
    return delays


@pytest.fixture
def cli(aws: LocalAws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """cli("plan", "--json") -> Result; stdin is not a terminal unless a test says otherwise."""
    from rolewarden.aws import iam_snapshot
    from rolewarden.cli.main import main

    iam_snapshot.clear_caches()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    capsys.readouterr()

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
