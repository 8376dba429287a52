"""Client-side pacing of the writes AWS throttles per account: one rate limiter per container for each
throttled write API (or class of APIs sharing a bucket), so a burst is spent at the bucket's refill rate
instead of hitting RequestLimitExceeded and backing off.

EC2 throttles each API per account and region with a token bucket (the EC2 developer guide's "Request
throttling for the Amazon EC2 API": capacity / refill per second). Every container of a function shares
the account's bucket, so each container's limiter gets ``1 / containers`` of it: capacity and refill
divided by ``ROLEWARDEN_PACE_CONTAINERS`` (the event source's ``ScalingConfig.MaximumConcurrency``, set
beside it in template.yaml). IAM publishes no rates: its rows are an assumption, conservative on purpose.

The limiter runs in botocore's ``before-send`` event, which fires for every attempt (botocore's retries
of a throttled call are paced too). A wait longer than ``ROLEWARDEN_PACE_MAX_WAIT`` seconds is not
slept: the call fails at once with a ``RequestLimitExceeded`` error of botocore's own shape, which
RoleWarden treats as throttling (the record is retried later, never lost), so no invocation sleeps past
its time budget.

Settings (environment, read by ``rolewarden.settings``): ``ROLEWARDEN_PACING`` (``on``/``off``, default
on), ``ROLEWARDEN_PACE_CONTAINERS`` (default 1), ``ROLEWARDEN_PACE_FACTOR`` (multiplies every rate: an
account with raised limits, or one that leaves part of its budget to other tools; default 1),
``ROLEWARDEN_PACE_MAX_WAIT`` (default 30).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from rolewarden.settings import Settings, current


@dataclass(frozen=True)
class Rate:
    """An account-wide token bucket: ``capacity`` requests at once, ``refill`` more per second."""

    capacity: float
    refill: float


#: The write buckets RoleWarden draws from: "service:Operation" -> the key of its bucket.
#: EC2's rows are the documented defaults; the IAM row is an ASSUMED rate (AWS publishes none).
RATES: dict[str, Rate] = {
    "ec2:AssociateIamInstanceProfile": Rate(100, 5),
    "ec2:DisassociateIamInstanceProfile": Rate(100, 5),
    "ec2:ModifyInstanceMetadataOptions": Rate(100, 5),
    "ec2:CreateTags": Rate(100, 10),
    "ec2:DeleteTags": Rate(100, 10),
    "ec2:mutating": Rate(50, 5),  # every other EC2 write (ReplaceIamInstanceProfileAssociation...)
    "iam:write": Rate(20, 5),  # assumed
}
_READ_PREFIXES = ("Describe", "Get", "List")  # reads: not paced (one batched read per batch)


def bucket_key(service: str, operation: str) -> str | None:
    """The pacing bucket of a call, or None when it is not paced (reads; services without one)."""
    if operation.startswith(_READ_PREFIXES) or service not in ("ec2", "iam"):
        return None
    if f"{service}:{operation}" in RATES:
        return f"{service}:{operation}"
    return "ec2:mutating" if service == "ec2" else "iam:write"


class PacingExceeded(ClientError):
    """The wait for a token would pass the allowed wait: throttling, answered without asking AWS."""


class RateLimiter:
    """A token bucket that waits instead of refusing. Starts full. ``acquire`` reserves a token (the
    balance may go below zero: callers queue in order) and sleeps until it is due. The clock and the
    sleep are injected, so tests step time without waiting."""

    def __init__(
        self,
        capacity: float,
        refill: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if refill <= 0:
            raise ValueError("refill must be positive")
        self.capacity = max(1.0, capacity)
        self.refill = refill
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.updated = clock()
        self.waited = 0.0  # total seconds slept (a figure for logs and the bench)
        self._lock = threading.Lock()

    def _reserve(self, max_wait: float) -> float | None:
        with self._lock:
            now = self.clock()
            if now > self.updated:
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill)
            self.updated = max(now, self.updated)
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.refill
            if wait > max_wait:
                return None
            self.tokens -= 1
            return wait

    def acquire(self, max_wait: float = math.inf) -> float:
        """Take one token, sleeping until it is due; the seconds slept. Raises ``TimeoutError`` (and
        takes nothing) when the token is due later than ``max_wait`` seconds from now."""
        wait = self._reserve(max_wait)
        if wait is None:
            raise TimeoutError(f"a token is due in more than {max_wait:g}s")
        if wait > 0:
            self.sleep(wait)
            with self._lock:
                self.waited += wait
        return wait


@dataclass(frozen=True)
class Pacing:
    """How this container paces its writes (from the pacing fields of ``rolewarden.settings.Settings``)."""

    enabled: bool = True
    containers: int = 1
    factor: float = 1.0
    max_wait: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> Pacing:
        return cls(settings.pacing, settings.pace_containers, settings.pace_factor, settings.pace_max_wait)

    def share(self, rate: Rate) -> Rate:
        """This container's part of an account-wide bucket."""
        return Rate(rate.capacity * self.factor / self.containers, rate.refill * self.factor / self.containers)


class Pacer:
    """The limiters of one container (process), created on first use; ``hook`` is the botocore
    ``before-send`` handler that paces every attempt of a throttled write."""

    def __init__(
        self,
        settings: Pacing,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def limiter(self, key: str) -> RateLimiter:
        with self._lock:
            found = self._limiters.get(key)
            if found is None:
                share = self.settings.share(RATES[key])
                found = self._limiters[key] = RateLimiter(share.capacity, share.refill, self.clock, self.sleep)
            return found

    def pace(self, service: str, operation: str) -> float:
        """Wait for a token of the call's bucket (seconds slept). Raises ``PacingExceeded`` when it is due
        later than the allowed wait."""
        key = bucket_key(service, operation)
        if key is None or not self.settings.enabled:
            return 0.0
        try:
            return self.limiter(key).acquire(self.settings.max_wait)
        except TimeoutError as exc:
            error: Any = {
                "Error": {
                    "Code": "RequestLimitExceeded",
                    "Message": f"RoleWarden's own pacing of {key}: {exc} (ROLEWARDEN_PACE_MAX_WAIT)",
                }
            }
            raise PacingExceeded(error, operation) from exc

    def hook(self, event_name: str = "", **_: Any) -> None:
        """``before-send.<service>.<Operation>``: fires before every attempt (retries included)."""
        parts = event_name.split(".")
        if len(parts) >= 3:
            self.pace(parts[1], parts[2])


_pacer: Pacer | None = None
_pacer_lock = threading.Lock()


def pacer() -> Pacer:
    """This container's pacer, from the settings at first use (``reset`` forgets it)."""
    global _pacer
    with _pacer_lock:
        if _pacer is None:
            _pacer = Pacer(Pacing.of(current()))
        return _pacer


def reset() -> None:
    global _pacer
    with _pacer_lock:
        _pacer = None
