"""The records of one invocation: an SQS batch (or one raw EventBridge event) split into records, each
routed to the targets it names (``triggers``), with the sweep continuation messages and the retry timing
of a failed record. ``rolewarden.runtime`` reconciles the targets and answers for each record.

A continuation message carries where a sweep resumes: capability, sweep id, part number (2, 3, ...),
the capability's opaque cursor and the account the sweep acts in. An account sweep message (central
mode) starts one account's sweep: the schedule's sweep is fanned out as one message per admitted account.
Both are RoleWarden's own messages on its sweep queue, which only its functions may send to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rolewarden.accounts_config import ACCOUNT_ID_RE
from rolewarden.errors import MalformedEvent
from rolewarden.model.instances import RETRY_MARGIN_SECONDS
from rolewarden.model.targets import SWEEP, Target
from rolewarden.settings import Settings
from rolewarden.triggers import caller_role_arn, parse_envelope, route

#: The key of a continuation message's body.
CONTINUATION = "rolewarden-continuation"
#: The key of an account sweep message's body.
ACCOUNT_SWEEP = "rolewarden-account-sweep"


@dataclass(frozen=True)
class Continuation:
    """Where a sweep resumes: part ``part`` (2, 3, ...) of the sweep started by ``sweep_id``."""

    capability: str
    sweep_id: str
    part: int
    cursor: str
    #: The account the sweep acts in ("": RoleWarden's own).
    account: str = ""

    def body(self) -> str:
        fields = {"capability": self.capability, "sweep_id": self.sweep_id, "part": self.part, "cursor": self.cursor}
        return json.dumps({CONTINUATION: {**fields, **({"account": self.account} if self.account else {})}})


@dataclass(frozen=True)
class AccountSweep:
    """The start of one account's part of sweep ``sweep_id`` (central mode's fan-out)."""

    capability: str
    sweep_id: str
    account: str

    def body(self) -> str:
        return json.dumps(
            {ACCOUNT_SWEEP: {"capability": self.capability, "sweep_id": self.sweep_id, "account": self.account}}
        )


def _account_of(raw: dict[str, Any], required: bool) -> str:
    account = raw.get("account", "")
    if not isinstance(account, str) or (account and not ACCOUNT_ID_RE.match(account)) or (required and not account):
        raise MalformedEvent("account must be a 12-digit account id")
    return account


def parse_account_sweep(data: Any, capability: str) -> AccountSweep | None:
    """The account sweep a message body starts; None when it is not one. Raises MalformedEvent."""
    if not isinstance(data, dict) or ACCOUNT_SWEEP not in data:
        return None
    raw = data[ACCOUNT_SWEEP]
    if not isinstance(raw, dict):
        raise MalformedEvent(f"{ACCOUNT_SWEEP} must be an object")
    if raw.get("capability") != capability:
        raise MalformedEvent(f"an account sweep of {raw.get('capability')!r} reached the {capability} sweep")
    sweep_id = raw.get("sweep_id")
    if not isinstance(sweep_id, str) or not sweep_id or len(sweep_id) > 256:
        raise MalformedEvent("account sweep sweep_id must be a non-empty string")
    return AccountSweep(capability, sweep_id, _account_of(raw, required=True))


def parse_continuation(data: Any, capability: str) -> Continuation | None:
    """The continuation a message body carries; None when it is not one. Raises MalformedEvent."""
    if not isinstance(data, dict) or CONTINUATION not in data:
        return None
    raw = data[CONTINUATION]
    if not isinstance(raw, dict):
        raise MalformedEvent(f"{CONTINUATION} must be an object")
    cap, sweep_id, part, cursor = (raw.get(k) for k in ("capability", "sweep_id", "part", "cursor"))
    if cap != capability:
        raise MalformedEvent(f"a continuation of {cap!r} reached the {capability} sweep")
    if not isinstance(sweep_id, str) or not sweep_id or len(sweep_id) > 256:
        raise MalformedEvent("continuation sweep_id must be a non-empty string")
    if not isinstance(part, int) or isinstance(part, bool) or part < 2:
        raise MalformedEvent("continuation part must be an integer >= 2")
    if not isinstance(cursor, str) or not cursor or len(cursor) > 200_000:
        raise MalformedEvent("continuation cursor must be a non-empty string")
    return Continuation(cap, sweep_id, part, cursor, _account_of(raw, required=False))


#: The longest a failed record that holds a launch lifecycle hook is hidden before its retry: within the
#: margin the profiles capability assumes when it decides whether to heartbeat the hook (one source of
#: truth), leaving a quarter of it for the poller to deliver the record again (batching window, polling).
HOOK_RETRY_DELAY = int(RETRY_MARGIN_SECONDS * 3 / 4)


def retry_delay(receive_count: int, *, base: float, cap: float, jitter: float) -> int:
    """Seconds until a failed record is retried: exponential by receive count, capped, plus jitter in
    [0, base) (``jitter`` in [0, 1)) so records that failed together do not come back together."""
    exponent = max(0, min(receive_count - 1, 30))
    delay = min(cap, base * 2**exponent) + jitter * base
    return max(1, min(int(delay), 43_200))  # SQS allows 0 to 12 hours


@dataclass
class RecordIn:
    message_id: str | None
    body: str
    receive_count: int = 1
    event_id: str = ""
    targets: list[Target] = field(default_factory=list)
    error: str = ""
    self_caused: bool = False
    receipt_handle: str | None = None
    continuation: Continuation | None = None
    #: The account the record's event comes from (EventBridge's ``account``; "" when the body names none).
    account: str = ""
    #: An account sweep message (central mode): this account's part of a fanned-out sweep.
    account_sweep: bool = False


def _execution_role(caller: str, settings: Settings) -> bool:
    """Central mode: the caller is RoleWarden's execution role in a member account (member.yaml's, path /)."""
    return settings.mode == "central" and caller.split(":", 5)[-1] == f"role/{settings.execution_role}"


def split_records(event: Any, capability: str, settings: Settings) -> tuple[list[RecordIn], bool]:
    """Split the Lambda event into records; True when it is an SQS batch."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        out = []
        for raw in event["Records"]:
            message_id = raw.get("messageId") if isinstance(raw, dict) else None
            body = raw.get("body", "") if isinstance(raw, dict) else ""
            attrs = raw.get("attributes", {}) if isinstance(raw, dict) else {}
            count = int(attrs.get("ApproximateReceiveCount", "1") or 1) if isinstance(attrs, dict) else 1
            handle = raw.get("receiptHandle") if isinstance(raw, dict) else None
            record = RecordIn(
                message_id=str(message_id) if message_id else None,
                body=str(body),
                receive_count=count,
                receipt_handle=str(handle) if handle else None,
            )
            _route(record, capability, settings)
            out.append(record)
        return out, True
    record = RecordIn(message_id=None, body=json.dumps(event, default=str))
    _route(record, capability, settings, parsed=event)
    return [record], False


def _route(record: RecordIn, capability: str, settings: Settings, parsed: Any = None) -> None:
    try:
        if parsed is None:
            try:
                parsed = json.loads(record.body)
            except ValueError as exc:
                raise MalformedEvent(f"the body is not JSON: {exc}") from exc
        continuation = parse_continuation(parsed, capability)
        if continuation is not None:
            record.continuation = continuation
            record.event_id, record.account = continuation.sweep_id, continuation.account
            record.targets = [SWEEP]
            return
        account_sweep = parse_account_sweep(parsed, capability)
        if account_sweep is not None:
            record.event_id, record.account = account_sweep.sweep_id, account_sweep.account
            record.account_sweep = True
            record.targets = [SWEEP]
            return
        envelope = parse_envelope(parsed)
        record.event_id, record.account = envelope.id, envelope.account
        caller = caller_role_arn(envelope)
        if caller and (caller in settings.self_role_arns or _execution_role(caller, settings)):
            # RoleWarden's own change: the EventBridge pattern (member.yaml's forwarding rules in central
            # mode) filters these out; this is the second guard.
            record.self_caused = True
            return
        record.targets = route(capability, envelope)
    except MalformedEvent as exc:
        record.error = str(exc)
