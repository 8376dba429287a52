"""One remediator per role: the remediation lease in the state table and what it records.

Two containers handling duplicate events for one role both read it non-compliant and would both
write (two UpdateAssumeRolePolicy, two DetachRolePolicy...). A role's remediation runs under a lease
in the state table (pk ``compliance#role#<role>``, sk ``remediation``), taken and given back with the
same conditional UpdateItems as the grants leases (``rolewarden.aws.grants``), so it costs two calls
per remediated role and nothing for a compliant one. Giving it back records which parts of the role
the applied actions changed (the trust policy, one inline policy, one attachment...), and when: the
same part decided again within a short window, from a read made before those writes or lagging them
(IAM reads are eventually consistent, each read on its own, so a read can be stale in one part of the
role and fresh in another), is not changed twice; the record is retried and decides from a fresh read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from rolewarden.aws.clients import scoped_key
from rolewarden.aws.leases import give_back, take
from rolewarden.model.actions import Action

#: The fields that say *which part* of a role an action changes (not how, nor which rule asked for it):
#: a read that lags part of another invocation's writes may decide a different document for the same
#: part, and that part was changed moments ago all the same.
_PART_FIELDS = ("action", "resource", "policy_name", "policy_arn", "profile_name")


def _remediation_key(role: str) -> dict[str, Any]:
    return {"pk": {"S": scoped_key(f"compliance#role#{role}")}, "sk": {"S": "remediation"}}


def action_fingerprint(action: Action) -> str:
    """A short, stable digest of the part of a role one remediation action changes."""
    described = action.as_dict()
    part = {key: described[key] for key in _PART_FIELDS if key in described}
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:24]


def lease_remediation(
    table: str, role: str, owner: str, now: float, seconds: float
) -> tuple[bool, frozenset[str], float]:
    """Take the role's remediation lease: (taken, fingerprints of the actions last applied, when)."""
    old = take(table, _remediation_key(role), owner, now, seconds, old=True)
    if old is None:
        return False, frozenset(), 0.0
    item = old.get("Attributes", {})
    applied = frozenset(json.loads(item.get("applied", {}).get("S", "[]")))
    return True, applied, float(item.get("applied_at", {}).get("N", "0"))


def release_remediation(table: str, role: str, owner: str, applied: Iterable[str] | None, now: float) -> None:
    """Give the lease back; with ``applied``, record the fingerprints of the actions just applied."""
    sets: dict[str, Any] = {}
    if applied is not None:
        sets = {"applied": {"S": json.dumps(sorted(applied))}, "applied_at": {"N": str(now)}}
    give_back(table, _remediation_key(role), owner, sets)
