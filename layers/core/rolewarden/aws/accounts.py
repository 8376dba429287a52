"""Clients that act in a member account (issue 14): the member's execution role assumed through STS, its
credentials cached per account until five minutes before they expire, and one client per account and
service, built with the shared client config and hooks of ``aws.clients`` and paced per account (the
token buckets are per account and region). An account whose role is missing or refuses RoleWarden is one
``AccountUnavailable``: callers turn it into one finding and do not retry it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws import clients, pacing
from rolewarden.aws.errors import classify, code_of, message_of
from rolewarden.errors import PermanentError
from rolewarden.model.findings import Finding
from rolewarden.settings import current

#: Credentials are renewed this long before they expire, so no call starts with a nearly expired session.
REFRESH_MARGIN = 300.0
#: How long an unavailable account stays unavailable before AssumeRole is tried again (no retry loop).
UNAVAILABLE_FOR = 300.0
SESSION_NAME = "RoleWarden"
SESSION_SECONDS = 3600  # member.yaml's MaxSessionDuration
#: STS's answers for a role that does not exist or does not trust the caller (AWS answers AccessDenied
#: for both), and for a region where the member has STS turned off.
UNAVAILABLE_CODES = frozenset({"AccessDenied", "AccessDeniedException", "NoSuchEntity", "RegionDisabledException"})
UNAVAILABLE_RULE = "account-unavailable"


class AccountUnavailable(PermanentError):
    """RoleWarden cannot act in ``account``: its execution role is missing or does not let RoleWarden in."""

    def __init__(self, account: str, role_arn: str, code: str, message: str) -> None:
        super().__init__(f"cannot assume {role_arn}: {code}: {message}", code)
        self.account = account
        self.role_arn = role_arn

    @property
    def explanation(self) -> str:
        """What is wrong and what to do, in one line (the finding's message, the CLI's error)."""
        return f"account {self.account} is unavailable: {self}; deploy member.yaml there (or exclude the account)"

    def finding(self, capability: str) -> Finding:
        return Finding.on_account(
            capability, self.account, UNAVAILABLE_RULE, self.explanation, "ERROR", role=self.role_arn, code=self.code
        )


@dataclass(frozen=True)
class AccountScope:
    """``aws.clients.AccountScope`` for one account: its clients come from ``sessions`` (assumed role)."""

    sessions: AccountSessions
    account: str

    @property
    def home(self) -> bool:
        """RoleWarden's own account: its own clients and credentials."""
        return self.account == self.sessions.home_account

    def client(self, service: str) -> Any:
        return self.sessions.client(self.account, service)


@dataclass(frozen=True)
class AccountCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float  # epoch seconds


class AccountSessions:
    """The per-account client factory of one container. ``home_account`` (RoleWarden's own) is served by
    the shared clients of ``aws.clients``, with RoleWarden's own credentials."""

    def __init__(
        self,
        role_name: str,
        *,
        home_account: str | None = None,
        partition: str = "aws",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.role_name = role_name
        self.home_account = home_account
        self.partition = partition
        self.clock = clock
        self._lock = threading.Lock()
        self._credentials: dict[str, AccountCredentials] = {}
        self._unavailable: dict[str, tuple[float, AccountUnavailable]] = {}
        self._clients: dict[tuple[str, str], tuple[AccountCredentials, Any]] = {}
        self._pacers: dict[str, pacing.Pacer] = {}

    def role_arn(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{account}:role/{self.role_name}"

    def credentials(self, account: str) -> AccountCredentials:
        """The account's credentials, assumed again only within ``REFRESH_MARGIN`` of their expiry."""
        now = self.clock()
        with self._lock:
            found = self._credentials.get(account)
            if found is not None and now < found.expiration - REFRESH_MARGIN:
                return found
            failed = self._unavailable.get(account)
            if failed is not None and now < failed[0]:
                raise failed[1]
        made = self._assume(account, now)
        with self._lock:
            self._credentials[account] = made
        return made

    def _assume(self, account: str, now: float) -> AccountCredentials:
        role_arn = self.role_arn(account)
        try:
            answer = clients.home_client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=SESSION_SECONDS
            )
        except ClientError as exc:
            if code_of(exc) in UNAVAILABLE_CODES:
                error = AccountUnavailable(account, role_arn, code_of(exc), message_of(exc))
                with self._lock:
                    self._unavailable[account] = (now + UNAVAILABLE_FOR, error)
                raise error from exc
            raise classify(exc, f"sts:AssumeRole {role_arn}") from exc
        except BotoCoreError as exc:  # no answer at all (a dropped connection): retryable, as classify says
            raise classify(exc, f"sts:AssumeRole {role_arn}") from exc
        given = answer["Credentials"]
        return AccountCredentials(
            given["AccessKeyId"], given["SecretAccessKey"], given["SessionToken"], given["Expiration"].timestamp()
        )

    def client(self, account: str, service: str) -> Any:
        """A client of ``service`` acting in ``account`` (raises ``AccountUnavailable``)."""
        if account == self.home_account:
            return clients.home_client(service)
        credentials = self.credentials(account)
        with self._lock:
            cached = self._clients.get((account, service))
            if cached is not None and cached[0] is credentials:
                return cached[1]
        made = clients.session().client(  # type: ignore[call-overload]
            service,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            config=clients.botocore_config(),
        )
        if service in clients.PACED_SERVICES:
            made.meta.events.register(f"before-send.{service}", self._pacer(account).hook)
        clients.adopt(made)  # the shared hooks (call counters, fault injection), present and future
        with self._lock:
            self._clients[(account, service)] = (credentials, made)
        return made

    def scope(self, account: str) -> AccountScope:
        """The scope that makes ``aws.clients.client`` act in ``account`` (``clients.acting_in``)."""
        return AccountScope(self, account)

    def _pacer(self, account: str) -> pacing.Pacer:
        with self._lock:
            found = self._pacers.get(account)
            if found is None:
                found = self._pacers[account] = pacing.Pacer(pacing.Pacing.of(current()))
            return found

    def forget(self) -> None:
        """Drop every cached credential, failure, client and pacer (tests; a changed environment)."""
        with self._lock:
            self._credentials.clear()
            self._unavailable.clear()
            self._clients.clear()
            self._pacers.clear()
