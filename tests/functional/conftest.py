"""Functional tests talk to the moto server over HTTP."""

import pytest


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
