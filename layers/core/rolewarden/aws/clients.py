"""One cached boto3 client per service, created lazily so tests and local servers are in place first."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: boto3.session.Session | None = None


def _botocore_config() -> BotoConfig:
    # Standard retry mode retries throttling (RequestLimitExceeded, Throttling, SlowDown...),
    # 5xx answers and dropped connections with exponential backoff and jitter. The mode and the
    # attempt count are settings so the CLI can use adaptive mode on large sweeps.
    retries: Any = {
        "mode": os.environ.get("ROLEWARDEN_RETRY_MODE", "standard"),
        "max_attempts": int(os.environ.get("ROLEWARDEN_MAX_ATTEMPTS", "6")),
    }
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
    with _lock:
        return _clients.setdefault(service, made)


def reset() -> None:
    """Forget every client and the session (tests, or after the environment changed)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
    from rolewarden.aws import records

    records.reset_cache()
