"""One cached boto3 client per service, created lazily so tests and local servers are in place first."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from rolewarden.aws import pacing
from rolewarden.settings import current

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: boto3.session.Session | None = None
#: (event name, handler) pairs registered on every client, e.g. call counters and fault injection.
_hooks: list[tuple[str, Any]] = []
#: services whose writes are paced client-side (rolewarden.aws.pacing)
PACED_SERVICES = frozenset({"ec2", "iam"})


def _botocore_config() -> BotoConfig:
    # Standard retry mode retries throttling (RequestLimitExceeded, Throttling, SlowDown...),
    # 5xx answers and dropped connections with exponential backoff and jitter. The mode and the
    # attempt count are settings so the CLI can use adaptive mode on large sweeps.
    settings = current()
    retries: Any = {"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts}  # first try included
    return BotoConfig(
        retries=retries,
        user_agent_extra="rolewarden/0.1",
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=20,
    )


def session() -> boto3.session.Session:
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session


def client(service: str) -> Any:
    """The shared client for ``service`` (honours AWS_ENDPOINT_URL, region and credential chain)."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    made = session().client(service, config=_botocore_config())  # type: ignore[call-overload]
    if service in PACED_SERVICES:
        # every attempt of a throttled write waits for this container's share of the account's bucket
        made.meta.events.register(f"before-send.{service}", pacing.pacer().hook)
    for event_name, handler in _hooks:
        made.meta.events.register(event_name, handler)
    with _lock:
        return _clients.setdefault(service, made)


def add_hook(event_name: str, handler: Any) -> None:
    """Register a botocore event handler on every client, present and future (counters, fault injection)."""
    with _lock:
        _hooks.append((event_name, handler))
        existing = list(_clients.values())
    for made in existing:
        made.meta.events.register(event_name, handler)


def remove_hook(event_name: str, handler: Any) -> None:
    with _lock:
        if (event_name, handler) in _hooks:
            _hooks.remove((event_name, handler))
        existing = list(_clients.values())
    for made in existing:
        made.meta.events.unregister(event_name, handler)


def reset() -> None:
    """Forget every client and the session (tests, or after the environment changed)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
    pacing.reset()
    from rolewarden.aws import records

    records.reset_cache()
