"""Exact AWS call accounting inside the bench process.

Every botocore client created after ``install()`` (RoleWarden's cached clients, the DynamoDB resource
of its record store, bare boto3 clients) gets a ``before-parameter-build`` handler, the same event
``rwlocal.faults.count_calls`` and ``bench/callcount/sitecustomize.py`` use: it fires once per API call,
and botocore's retries of a call are not recounted. The handler only counts while a ``counting()``
block is open, so the bench's own seeding and the local SQS poller can be left out by opening the block
around RoleWarden's work alone.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_active: list[Counter[str]] = []
_installed = False


def _count(model: Any = None, **_: Any) -> None:
    if _active:
        name = f"{model.service_model.service_name}:{model.name}"
        with _lock:
            for counter in _active:
                counter[name] += 1


def install() -> None:
    """Hook every botocore client created from now on (idempotent). Call before any client exists."""
    global _installed
    if _installed:
        return
    import botocore.session

    original = botocore.session.Session.create_client

    @functools.wraps(original)
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", _count)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    _installed = True


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count every AWS call made (by any thread of this process) while the block is open."""
    install()
    counter: Counter[str] = Counter()
    with _lock:
        _active.append(counter)
    try:
        yield counter
    finally:
        _forget(counter)


def counted(func: Callable[..., Any], counter: Counter[str]) -> Callable[..., Any]:
    """``func`` wrapped so the calls it makes are added to ``counter`` (e.g. a Lambda handler)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            _active.append(counter)
        try:
            return func(*args, **kwargs)
        finally:
            _forget(counter)

    return wrapper


def _forget(counter: Counter[str]) -> None:
    """Remove this very counter (by identity: two Counters with equal counts compare equal)."""
    with _lock:
        for index in range(len(_active) - 1, -1, -1):
            if _active[index] is counter:
                del _active[index]
                return


def reads(calls: Counter[str]) -> int:
    return sum(n for name, n in calls.items() if name.split(":", 1)[1].startswith(("Describe", "Get", "List")))


def writes(calls: Counter[str]) -> int:
    return sum(calls.values()) - reads(calls)
