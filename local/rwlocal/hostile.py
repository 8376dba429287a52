"""The parts of real AWS that moto is too kind to model, as state the fault proxy shares between every
poller process: a simulated clock, IAM reads that lag writes, DescribeInstances that misses a fresh
instance, and Auto Scaling lifecycle hooks (moto has no CompleteLifecycleAction).

Everything runs on ``SimClock``: simulated seconds = real seconds / ``time_scale``. A 5-second IAM lag at
``time_scale=0.01`` lasts 50 ms of real time, as RoleWarden's own (scaled) waits do.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SimClock:
    """Simulated seconds since the clock was made: real elapsed seconds divided by ``time_scale``."""

    def __init__(self, time_scale: float = 1.0, real: Callable[[], float] = time.monotonic) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._real = real
        self._start = real()

    def __call__(self) -> float:
        return (self._real() - self._start) / self.time_scale


def scale_visibility(seconds: float, time_scale: float) -> int:
    """A visibility timeout in simulated seconds as the whole real seconds moto can keep: 0 stays 0
    (visible at once), anything else is scaled and rounded up to at least 1 s (moto counts whole
    seconds, so a timeout shorter than 1 s of real time is held 1 s)."""
    if seconds <= 0:
        return 0
    return max(1, math.ceil(seconds * time_scale))


@dataclass
class Hostility:
    """The real-AWS conditions the proxy adds on top of the random faults of ``FaultPlan``. Durations in
    simulated seconds."""

    time_scale: float = 1.0
    buckets: bool = True  # token-bucket throttling per API (rwlocal.throttling)
    bucket_factor: float = 1.0  # scales every bucket's capacity and refill (1.0 = AWS's defaults)
    iam_lag: float = 5.0  # after an IAM write, reads may get the answer recorded before it, for this long
    iam_stale: float = 0.5  # share of the reads inside the lag window answered stale
    ec2_lag: float = 5.0  # DescribeInstances misses an instance for this long after its launch
    scale_visibility: bool = True  # rewrite VisibilityTimeout in SQS requests by time_scale
    seed: int = 11


# -- IAM eventual consistency -------------------------------------------------------------------------
@dataclass
class _Answer:
    at: float
    status: int
    headers: list[tuple[str, str]]
    payload: bytes


class IamLag:
    """Reads may lag writes: within ``lag`` seconds after an IAM write, a read may be answered with the
    last answer to the same request recorded *before* that write (what a lagging endpoint still
    holds). After the window every read is answered fresh. Keyed by the request body (action and
    parameters), so only a request seen before the write can be answered stale. An answer is stale by
    at most ``lag``: it stands for the state until the first write after it was recorded, and once that
    write is ``lag`` seconds old the answer is never given again (a read minutes after a write to a
    role sees it, as on AWS, however recently some other IAM write happened)."""

    def __init__(self, clock: Callable[[], float], lag: float, stale_share: float, draw: Callable[[], float]) -> None:
        self.clock = clock
        self.lag = lag
        self.stale_share = stale_share
        self.draw = draw
        self.last_write = -math.inf
        self._answers: dict[bytes, _Answer] = {}
        self._writes: deque[float] = deque()  # the writes of the last ``lag`` seconds, oldest first
        self._older_write = -math.inf  # the latest write that is over ``lag`` seconds old
        self._lock = threading.Lock()

    def wrote(self) -> None:
        with self._lock:
            self.last_write = self.clock()
            self._writes.append(self.last_write)
            self._prune(self.last_write)

    def _prune(self, now: float) -> None:
        while self._writes and now - self._writes[0] >= self.lag:
            self._older_write = self._writes.popleft()

    def stale(self, key: bytes) -> _Answer | None:
        """The stale answer to give this read, or None to answer it fresh."""
        if self.lag <= 0:
            return None
        with self._lock:
            now = self.clock()
            if now - self.last_write >= self.lag:
                return None
            answer = self._answers.get(key)
            if answer is None or answer.at >= self.last_write:
                return None
            self._prune(now)
            if self._older_write > answer.at:
                # the first write after the answer, which ended the state it shows, is over ``lag`` old
                return None
        return answer if self.draw() < self.stale_share else None

    def record(self, key: bytes, status: int, headers: list[tuple[str, str]], payload: bytes, asked_at: float) -> None:
        """Remember a fresh answer (only a 2xx one). ``asked_at`` is when the read was sent: an answer to a
        read that raced a write is dated before that write."""
        if not 200 <= status < 300:
            return
        with self._lock:
            self._answers[key] = _Answer(asked_at, status, headers, payload)


# -- EC2 eventual consistency -------------------------------------------------------------------------
class Ec2Lag:
    """DescribeInstances does not show an instance for ``lag`` seconds after its launch: asked by id it
    answers ``InvalidInstanceID.NotFound``, asked by filter (or for all) the instance is simply absent."""

    def __init__(self, clock: Callable[[], float], lag: float) -> None:
        self.clock = clock
        self.lag = lag
        self._launched: dict[str, float] = {}
        self._lock = threading.Lock()

    def launched(self, instance_ids: list[str], at: float | None = None) -> None:
        when = self.clock() if at is None else at
        with self._lock:
            for instance_id in instance_ids:
                self._launched[instance_id] = when

    def hidden(self) -> set[str]:
        if self.lag <= 0:
            return set()
        now = self.clock()
        with self._lock:
            return {i for i, at in self._launched.items() if now - at < self.lag}


# -- EC2 association ids ------------------------------------------------------------------------------
class Associations:
    """EC2's association ids as AWS hands them out, over moto's kinder model.

    On AWS, ReplaceIamInstanceProfileAssociation answers with a *new* association id and the one it named
    stops being the instance's active association: a second Replace (or a Disassociate) naming the old id
    fails with ``IncorrectState`` "The association iip-assoc-... is not the active association" (aws-notes
    section 3). moto keeps the same id and accepts the second Replace, so two containers that read the same
    association both "succeed". This registry gives every successful Replace a fresh alias of moto's id,
    maps aliases to moto's id in requests and moto's id to the active alias in answers, and says when a
    request names a superseded id. ``lock`` serialises the check and the write (AWS does that atomically).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._real: dict[str, str] = {}  # alias -> moto's association id
        self._active: dict[str, str] = {}  # moto's id -> its active alias
        self._superseded: set[str] = set()  # aliases no longer active (replaced or disassociated)

    def real(self, given: str) -> str:
        return self._real.get(given, given)

    def active_alias(self, real: str) -> str:
        return self._active.get(real, real)

    def superseded(self, given: str) -> bool:
        """True when ``given`` once named an association that a Replace or Disassociate has since ended."""
        return given in self._superseded

    def associated(self, real: str) -> None:
        """moto answered an AssociateIamInstanceProfile with ``real``: it is its own alias."""
        self._active[real] = real
        self._superseded.discard(real)

    def replaced(self, given: str) -> str:
        """A Replace naming the active ``given`` succeeded: the fresh alias that now names it."""
        real = self.real(given)
        alias = "iip-assoc-" + uuid.uuid4().hex[:17]
        self._superseded.add(given)
        self._real[alias] = real
        self._active[real] = alias
        return alias

    def disassociated(self, given: str) -> None:
        self._superseded.add(given)
        self._active.pop(self.real(given), None)


# -- Auto Scaling lifecycle hooks ---------------------------------------------------------------------
#: Auto Scaling's cap on a hook's total wait: 100 x HeartbeatTimeout or 48 hours, whichever is smaller.
GLOBAL_TIMEOUT_FACTOR = 100
GLOBAL_TIMEOUT_MAX = 172_800.0


@dataclass
class Hook:
    instance_id: str
    hook: str
    group: str
    token: str
    heartbeat_timeout: float
    default_result: str = "ABANDON"
    started: float = 0.0
    deadline: float = 0.0
    heartbeats: int = 0


@dataclass
class HookOutcome:
    instance_id: str
    hook: str
    group: str
    result: str
    how: str  # "completed" (by a CompleteLifecycleAction) or "expired" (heartbeat timeout: default result)
    at: float
    waited: float
    heartbeats: int
    observed: Any = None  # what ``on_complete`` saw when the hook was completed (e.g. the attached profile)


@dataclass
class HookRegistry:
    """Pending lifecycle actions, answered as Auto Scaling answers CompleteLifecycleAction and
    RecordLifecycleActionHeartbeat; a hook not completed within its heartbeat timeout (extended by each
    heartbeat, capped by the global timeout) ends with its default result."""

    clock: Callable[[], float]
    on_complete: Callable[[Hook, str], Any] | None = None
    pending: dict[str, Hook] = field(default_factory=dict)  # token -> hook
    outcomes: list[HookOutcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(
        self,
        instance_id: str,
        hook: str = "rolewarden-launch",
        group: str = "web-asg",
        heartbeat_timeout: float = 3600.0,
        default_result: str = "ABANDON",
        token: str | None = None,
    ) -> Hook:
        now = self.clock()
        made = Hook(
            instance_id=instance_id,
            hook=hook,
            group=group,
            token=token or str(uuid.uuid4()),
            heartbeat_timeout=heartbeat_timeout,
            default_result=default_result,
            started=now,
            deadline=now + heartbeat_timeout,
        )
        with self._lock:
            self.pending[made.token] = made
        return made

    def expire_due(self) -> list[HookOutcome]:
        now = self.clock()
        ended = []
        with self._lock:
            for token, hook in list(self.pending.items()):
                if now >= hook.deadline:
                    del self.pending[token]
                    outcome = HookOutcome(
                        hook.instance_id,
                        hook.hook,
                        hook.group,
                        hook.default_result,
                        "expired",
                        hook.deadline,
                        hook.deadline - hook.started,
                        hook.heartbeats,
                    )
                    self.outcomes.append(outcome)
                    ended.append(outcome)
        return ended

    def _find(self, params: dict[str, str]) -> Hook | None:
        token = params.get("LifecycleActionToken")
        instance_id = params.get("InstanceId")
        for hook in self.pending.values():
            if hook.group != params.get("AutoScalingGroupName") or hook.hook != params.get("LifecycleHookName"):
                continue
            if (token and hook.token == token) or (not token and instance_id and hook.instance_id == instance_id):
                return hook
        return None

    def answer(self, operation: str, params: dict[str, str]) -> tuple[int, str, str] | None:
        """Apply one call. None: success; else (status, error code, message) as Auto Scaling answers."""
        self.expire_due()
        if not params.get("AutoScalingGroupName") or not params.get("LifecycleHookName"):
            return 400, "ValidationError", "AutoScalingGroupName and LifecycleHookName are required"
        if not params.get("LifecycleActionToken") and not params.get("InstanceId"):
            return 400, "ValidationError", "Either LifecycleActionToken or InstanceId must be specified"
        what = params.get("InstanceId") or params.get("LifecycleActionToken")
        missing = (400, "ValidationError", f"No active Lifecycle Action found with instance ID {what}")
        if operation == "RecordLifecycleActionHeartbeat":
            with self._lock:
                hook = self._find(params)
                if hook is None:
                    return missing
                cap = hook.started + min(GLOBAL_TIMEOUT_FACTOR * hook.heartbeat_timeout, GLOBAL_TIMEOUT_MAX)
                hook.deadline = min(self.clock() + hook.heartbeat_timeout, cap)
                hook.heartbeats += 1
            return None
        result = params.get("LifecycleActionResult", "")
        if result not in ("CONTINUE", "ABANDON"):
            return 400, "ValidationError", f"Invalid value '{result}' for LifecycleActionResult"
        with self._lock:
            hook = self._find(params)
            if hook is None:
                return missing
            del self.pending[hook.token]
        observed = self.on_complete(hook, result) if self.on_complete is not None else None
        now = self.clock()
        with self._lock:
            self.outcomes.append(
                HookOutcome(
                    hook.instance_id,
                    hook.hook,
                    hook.group,
                    result,
                    "completed",
                    now,
                    now - hook.started,
                    hook.heartbeats,
                    observed,
                )
            )
        return None

    def outcome_of(self, instance_id: str) -> HookOutcome | None:
        with self._lock:
            return next((o for o in self.outcomes if o.instance_id == instance_id), None)
