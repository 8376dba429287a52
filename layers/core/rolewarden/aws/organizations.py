"""What AWS Organizations says of the accounts RoleWarden may act in (issue 14): the organization's id,
its active accounts, and an account's ancestors (its OUs and the root).

Read from RoleWarden's own account (the central account: the management account or a delegated
administrator may call these read APIs), cached per container for ``CACHE_SECONDS``: Organizations
throttles its APIs hard (a few calls a second per account), and the account list changes rarely. A
cached answer can be up to ``CACHE_SECONDS`` old: an account just removed from the organization is
refused at the latest that much later (its member stack and the bus policy refuse it sooner).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import home_client
from rolewarden.aws.errors import classify

CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class Organization:
    id: str
    #: The ids of the organization's ACTIVE accounts (suspended and closing ones are left out).
    accounts: frozenset[str]


class OrganizationReader:
    """The organization as one container sees it: read once, kept ``ttl`` seconds."""

    def __init__(self, *, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._organization: tuple[float, Organization] | None = None
        self._ancestors: dict[str, tuple[float, tuple[str, ...]]] = {}

    def organization(self) -> Organization:
        """DescribeOrganization and ListAccounts (paginated), cached. Raises a classified error."""
        now = self.clock()
        with self._lock:
            if self._organization is not None and now < self._organization[0]:
                return self._organization[1]
        orgs = home_client("organizations")
        try:
            org_id = str(orgs.describe_organization()["Organization"]["Id"])
            accounts = frozenset(
                str(a["Id"])
                for page in orgs.get_paginator("list_accounts").paginate()
                for a in page["Accounts"]
                if a.get("Status", "ACTIVE") == "ACTIVE"
            )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "organizations:ListAccounts") from exc
        found = Organization(org_id, accounts)
        with self._lock:
            self._organization = (now + self.ttl, found)
        return found

    def ancestors(self, account: str) -> tuple[str, ...]:
        """Every OU above ``account`` and the root (ListParents up the tree), nearest first, cached."""
        now = self.clock()
        with self._lock:
            cached = self._ancestors.get(account)
            if cached is not None and now < cached[0]:
                return cached[1]
        orgs = home_client("organizations")
        chain: list[str] = []
        child = account
        try:
            while True:
                (parent,) = orgs.list_parents(ChildId=child)["Parents"]  # an account or OU has exactly one
                chain.append(str(parent["Id"]))
                if parent["Type"] == "ROOT":
                    break
                child = str(parent["Id"])
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, f"organizations:ListParents {child}") from exc
        with self._lock:
            self._ancestors[account] = (now + self.ttl, tuple(chain))
        return tuple(chain)


_reader: OrganizationReader | None = None


def reader() -> OrganizationReader:
    """This container's reader."""
    global _reader
    if _reader is None:
        _reader = OrganizationReader()
    return _reader


def reset() -> None:
    global _reader
    _reader = None
