"""Functional tests talk to the moto server over HTTP."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/functional/" in str(item.fspath):
            item.add_marker(pytest.mark.functional)
