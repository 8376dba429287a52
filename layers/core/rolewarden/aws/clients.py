"""One cached boto3 client per service, created lazily so tests and local servers are in place first;
and the account a block of code acts in (issue 14).

``client(service)`` answers RoleWarden's own client, unless code runs inside ``acting_in(scope)`` for a
member account and ``service`` is one RoleWarden acts on there (``MEMBER_SERVICES``, exactly what
member.yaml's execution role grants): then the scope's client, with the member's credentials. Every
other service (the state table, the queues, the findings topic, Security Hub, Organizations, STS) is
RoleWarden's own and stays in its own account. The scope is a ``ContextVar``: RoleWarden runs no threads
of its own, so the scope of a reconcile is the scope of every call it makes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import boto3
from botocore.config import Config as BotoConfig

from rolewarden.aws import pacing
from rolewarden.settings import current

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: boto3.session.Session | None = None
#: (event name, handler) pairs registered on every client, e.g. call counters and fault injection.
_hooks: list[tuple[str, Any]] = []
#: Clients made elsewhere (a member account's, ``aws.accounts``) that get the hooks too, present and future;
#: held weakly: a member's client replaced when its credentials are renewed is not kept alive here.
_adopted: weakref.WeakSet[Any] = weakref.WeakSet()
#: services whose writes are paced client-side (rolewarden.aws.pacing)
PACED_SERVICES = frozenset({"ec2", "iam"})
#: The services RoleWarden acts on in a member account (member.yaml's ExecutionRole grants exactly these;
#: tests/unit/test_member_template.py checks the two agree).
MEMBER_SERVICES = frozenset({"autoscaling", "ec2", "iam", "s3"})


class AccountScope(Protocol):
    """Where a block of code acts: ``account``, and its clients of ``MEMBER_SERVICES``."""

    @property
    def account(self) -> str: ...

    @property
    def home(self) -> bool: ...

    def client(self, service: str) -> Any: ...


_scope: ContextVar[AccountScope | None] = ContextVar("rolewarden_account_scope", default=None)


@contextmanager
def acting_in(scope: AccountScope | None) -> Iterator[None]:
    """Make ``client`` answer ``scope``'s clients for the block (None: RoleWarden's own account)."""
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def current_account() -> str | None:
    """The account the code acts in now; None: RoleWarden's own (not named)."""
    scope = _scope.get()
    return scope.account if scope is not None else None


def scoped_key(key: str) -> str:
    """A state-table key of the account in scope: a member account's keys carry its id, so two accounts'
    roles of one name never share a record; RoleWarden's own account keeps the keys it always had."""
    scope = _scope.get()
    return key if scope is None or scope.home else f"account#{scope.account}#{key}"


def botocore_config() -> BotoConfig:
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
    """The client for ``service`` in the account in scope (see the module's docstring)."""
    scope = _scope.get()
    if scope is not None and not scope.home and service in MEMBER_SERVICES:
        return scope.client(service)
    return home_client(service)


def home_client(service: str) -> Any:
    """RoleWarden's own shared client for ``service`` (honours AWS_ENDPOINT_URL, region and credential chain)."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    made = session().client(service, config=botocore_config())  # type: ignore[call-overload]
    if service in PACED_SERVICES:
        # every attempt of a throttled write waits for this container's share of the account's bucket
        made.meta.events.register(f"before-send.{service}", pacing.pacer().hook)
    for event_name, handler in _hooks:
        made.meta.events.register(event_name, handler)
    with _lock:
        return _clients.setdefault(service, made)


def adopt(made: Any) -> Any:
    """Give a client made elsewhere (a member account's) every hook, now and as they come and go."""
    with _lock:
        _adopted.add(made)
        hooks = list(_hooks)
    for event_name, handler in hooks:
        made.meta.events.register(event_name, handler)
    return made


def add_hook(event_name: str, handler: Any) -> None:
    """Register a botocore event handler on every client, present and future (counters, fault injection)."""
    with _lock:
        _hooks.append((event_name, handler))
        existing = [*_clients.values(), *_adopted]
    for made in existing:
        made.meta.events.register(event_name, handler)


def remove_hook(event_name: str, handler: Any) -> None:
    with _lock:
        if (event_name, handler) in _hooks:
            _hooks.remove((event_name, handler))
        existing = [*_clients.values(), *_adopted]
    for made in existing:
        made.meta.events.unregister(event_name, handler)


def reset() -> None:
    """Forget every client and the session (tests, or after the environment changed)."""
    global _session
    with _lock:
        _clients.clear()
        _adopted.clear()
        _session = None
    pacing.reset()
    from rolewarden.aws import records

    records.reset_cache()
