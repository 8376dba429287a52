"""Request throttling as AWS does it: one token bucket per API (or per class of API), shared by every
caller of the account and region, refilling at a fixed rate.

``EC2_BUCKETS`` is the table of the EC2 developer guide's "Request throttling for the Amazon EC2 API"
(bucket capacity / refill per second, the defaults an account can have raised; see
/work/shared/aws-notes.md section 9). IAM publishes no rates: ``IAM_ASSUMED_BUCKETS`` is an
*assumed*, deliberately conservative table, named as such. Both are plain data so the bench can
import them (``from rwlocal.throttling import EC2_BUCKETS, bucket_for``).

A ``TokenBucket`` takes its clock as an argument (simulated seconds), so tests drive it with an
injected clock and the chaos proxy with a time-scaled one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BucketSpec:
    """A request token bucket: ``capacity`` tokens, ``refill`` tokens added per second."""

    capacity: float
    refill: float
    source: str = "EC2 developer guide, request throttling"


#: EC2 request-rate buckets. Keys are API names, or a class: "non-mutating", "mutating",
#: "unfiltered-unpaginated" (Describe* calls with neither a filter nor MaxResults).
EC2_BUCKETS: dict[str, BucketSpec] = {
    "non-mutating": BucketSpec(100, 20),
    "unfiltered-unpaginated": BucketSpec(50, 10),
    "mutating": BucketSpec(50, 5),
    "AssociateIamInstanceProfile": BucketSpec(100, 5),
    "DisassociateIamInstanceProfile": BucketSpec(100, 5),
    "ModifyInstanceMetadataOptions": BucketSpec(100, 5),
    "CreateTags": BucketSpec(100, 10),
    "DeleteTags": BucketSpec(100, 10),
    "CreateLaunchTemplateVersion": BucketSpec(100, 5),
    "RunInstances": BucketSpec(5, 2),
}
#: Describe calls whose unfiltered, unpaginated form has the smaller bucket (the guide lists these).
EC2_UNFILTERED_LIMITED = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)
_IAM_ASSUMED = "assumed by RoleWarden's harness: AWS publishes no IAM rates; conservative on purpose"
#: IAM: ASSUMED rates (not published by AWS). Writes are the scarce ones; the full-account read
#: (GetAccountAuthorizationDetails) is heavy and gets a small bucket of its own.
IAM_ASSUMED_BUCKETS: dict[str, BucketSpec] = {
    "read": BucketSpec(40, 20, _IAM_ASSUMED),
    "write": BucketSpec(20, 5, _IAM_ASSUMED),
    "GetAccountAuthorizationDetails": BucketSpec(10, 2, _IAM_ASSUMED),
}
#: The throttling answer of each service: (HTTP status, error code, message).
THROTTLE_ERRORS: dict[str, tuple[int, str, str]] = {
    "ec2": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "iam": (400, "Throttling", "Rate exceeded"),
}
_READ_PREFIXES = ("Describe", "Get", "List")


def is_read(operation: str) -> bool:
    return operation.startswith(_READ_PREFIXES)


def bucket_for(service: str, operation: str, params: Mapping[str, object] | None = None) -> str | None:
    """The key of the bucket a request draws from (``"ec2:AssociateIamInstanceProfile"``,
    ``"ec2:non-mutating"``...), or None when the service is not throttled here. ``params`` are the
    request's query parameters (``Filter.1.Name``, ``MaxResults``...)."""
    params = params or {}
    if service == "ec2":
        if operation in EC2_BUCKETS:
            return f"ec2:{operation}"
        if is_read(operation):
            if operation in EC2_UNFILTERED_LIMITED and not any(
                key.startswith(("Filter.", "MaxResults")) for key in params
            ):
                return "ec2:unfiltered-unpaginated"
            return "ec2:non-mutating"
        return "ec2:mutating"
    if service == "iam":
        if operation in IAM_ASSUMED_BUCKETS:
            return f"iam:{operation}"
        return "iam:read" if is_read(operation) else "iam:write"
    return None


def spec_of(key: str) -> BucketSpec:
    service, _, name = key.partition(":")
    table = EC2_BUCKETS if service == "ec2" else IAM_ASSUMED_BUCKETS
    return table[name]


def floor_seconds(requests: int, spec: BucketSpec) -> float:
    """The least time ``requests`` calls can take from a full bucket: max(0, N - capacity) / refill."""
    return max(0.0, requests - spec.capacity) / spec.refill


class TokenBucket:
    """A token bucket on an injected clock (seconds). Starts full."""

    def __init__(self, spec: BucketSpec, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.clock = clock
        self.tokens = float(spec.capacity)
        self.updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        if now > self.updated:
            self.tokens = min(float(self.spec.capacity), self.tokens + (now - self.updated) * self.spec.refill)
        self.updated = now

    def take(self, tokens: float = 1.0) -> bool:
        """Spend ``tokens`` if the bucket holds them; False (nothing spent) means throttled."""
        with self._lock:
            self._refill()
            if self.tokens >= tokens:
                self.tokens -= tokens
                return True
            return False

    def available(self) -> float:
        with self._lock:
            self._refill()
            return self.tokens


class Buckets:
    """Every bucket of an account and region, created on first use. ``factor`` scales capacity and
    refill alike (1.0: AWS's defaults; 0.5: an account that shares its limits with other tools)."""

    def __init__(self, clock: Callable[[], float], factor: float = 1.0) -> None:
        self.clock = clock
        self.factor = factor
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, key: str) -> TokenBucket:
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                spec = spec_of(key)
                scaled = BucketSpec(max(1.0, spec.capacity * self.factor), spec.refill * self.factor, spec.source)
                found = self._buckets[key] = TokenBucket(scaled, self.clock)
            return found

    def admit(self, service: str, operation: str, params: Mapping[str, object] | None = None) -> str | None:
        """None when the request may go on; else the key of the empty bucket that throttles it."""
        key = bucket_for(service, operation, params)
        if key is None or self.bucket(key).take():
            return None
        return key
