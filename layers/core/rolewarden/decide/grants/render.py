"""Grants -> policy documents and back: rendering a role's grants into compact, self-describing
documents, sizing them as IAM counts, packing them into parts, and reading RoleWarden-shaped documents
back into grants (trusted only when they are exactly what would be rendered). PURE.

Document shape (compact and self-describing, so a document can be read back into grants):

* one S3 statement pair per *combination of levels* a set of buckets grants: bucket-level actions on
  ``arn:aws:s3:::b`` and object-level actions on ``arn:aws:s3:::b/*``; buckets with the same
  combination share the statement (a bucket granted read and write appears twice, not four times);
* one KMS statement per (customer key, KMS action set) for SSE-KMS buckets, scoped with the
  ``kms:EncryptionContext:aws:s3:arn`` condition to the buckets that use the key. That is least
  privilege (the key only works through those buckets) and keeps the bucket -> key link readable;
* statements, actions and resources sorted; the serialisation is ``json.dumps`` with no whitespace.

Splitting: the role's grants (sorted by bucket) are packed greedily into ``rolewarden-grants-<role>``,
``-2``, ``-3``... each at most 6,144 non-whitespace characters (IAM's managed-policy limit; moto does
not enforce it, so it is counted here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rolewarden.decide.grants.catalog import LevelActions
from rolewarden.decide.policy import named_values
from rolewarden.model.documents import canonical_json
from rolewarden.model.grants import BucketGrant
from rolewarden.model.iam import ManagedPolicy

#: IAM: a customer managed policy document holds at most 6,144 characters, whitespace not counted.
MAX_POLICY_CHARS = 6144
KMS_CONTEXT_KEY = "kms:EncryptionContext:aws:s3:arn"
POLICY_VERSION = "2012-10-17"
_S3_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/\*)?$")


def document_text(document: Mapping[str, Any]) -> str:
    """The exact text RoleWarden sends to IAM: no whitespace at all."""
    return json.dumps(document, separators=(",", ":"))


def policy_size(document: Mapping[str, Any] | str) -> int:
    """Characters IAM counts against the 6,144 limit: the document without whitespace."""
    text = document if isinstance(document, str) else document_text(document)
    return sum(1 for ch in text if not ch.isspace())


def _sid(levels: Sequence[str], suffix: str, used: set[str]) -> str:
    base = "".join(part[:1].upper() + part[1:] for level in levels for part in re.split(r"[-_]", level) if part)
    sid, n = base + suffix, 2
    while sid in used:
        sid, n = f"{base}{suffix}{n}", n + 1
    used.add(sid)
    return sid


def render(grants: Sequence[BucketGrant], levels: Mapping[str, LevelActions], partition: str = "aws") -> dict[str, Any]:
    """One policy document for ``grants`` (deterministic for a given set, whatever its order)."""
    arn = f"arn:{partition}:s3:::"
    by_combo: dict[tuple[str, ...], list[str]] = {}
    kms_groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for grant in sorted(set(grants)):
        combo = tuple(sorted(lv for lv in grant.levels if lv in levels))
        if not combo:
            continue
        by_combo.setdefault(combo, []).append(grant.bucket)
        kms = sorted({k for lv in combo for k in levels[lv].kms})
        if grant.kms_key and kms:
            kms_groups.setdefault((tuple(kms), grant.kms_key), []).append(grant.bucket)
    statements: list[dict[str, Any]] = []
    used: set[str] = set()
    for combo in sorted(by_combo):
        buckets = by_combo[combo]
        bucket_actions = sorted({a for lv in combo for a in levels[lv].bucket})
        object_actions = sorted({a for lv in combo for a in levels[lv].object})
        if bucket_actions:
            statements.append(
                {
                    "Sid": _sid(combo, "Buckets", used),
                    "Effect": "Allow",
                    "Action": bucket_actions,
                    "Resource": [arn + b for b in buckets],
                }
            )
        if object_actions:
            statements.append(
                {
                    "Sid": _sid(combo, "Objects", used),
                    "Effect": "Allow",
                    "Action": object_actions,
                    "Resource": [f"{arn}{b}/*" for b in buckets],
                }
            )
    for index, (kms_actions, key) in enumerate(sorted(kms_groups), start=1):
        buckets = kms_groups[(kms_actions, key)]
        statements.append(
            {
                "Sid": f"Kms{index}",
                "Effect": "Allow",
                "Action": list(kms_actions),
                "Resource": key,
                "Condition": {"StringLike": {KMS_CONTEXT_KEY: [s for b in buckets for s in (arn + b, f"{arn}{b}/*")]}},
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def pack(
    grants: Iterable[BucketGrant], levels: Mapping[str, LevelActions], partition: str = "aws"
) -> list[dict[str, Any]] | None:
    """Split the grants (sorted by bucket) greedily into documents within MAX_POLICY_CHARS.
    None when one bucket alone does not fit (cannot happen with S3's 63-character names)."""
    ordered = sorted(set(grants))
    parts: list[list[BucketGrant]] = []
    current: list[BucketGrant] = []
    for grant in ordered:
        trial = [*current, grant]
        if policy_size(render(trial, levels, partition)) <= MAX_POLICY_CHARS:
            current = trial
            continue
        if not current:
            return None
        parts.append(current)
        current = [grant]
        if policy_size(render(current, levels, partition)) > MAX_POLICY_CHARS:
            return None
    if current:
        parts.append(current)
    return [render(part, levels, partition) for part in parts]


def buckets_named(document: Mapping[str, Any]) -> set[str]:
    """Every bucket a document names (resources and KMS conditions); tolerant of hand-edited documents."""
    return {match.group(1) for value in named_values(document) if (match := _S3_ARN_RE.match(value))}


def read_back(
    documents: Sequence[Mapping[str, Any]], levels: Mapping[str, LevelActions]
) -> dict[str, BucketGrant] | None:
    """The grants that RoleWarden-shaped ``documents`` express, or None when a statement is not of the
    shapes ``render`` writes (a hand edit). A level is read back when all its actions are present."""
    bucket_actions: dict[str, set[str]] = {}
    object_actions: dict[str, set[str]] = {}
    keys: dict[str, str] = {}
    for document in documents:
        statements = document.get("Statement")
        if document.get("Version") != POLICY_VERSION or not isinstance(statements, list):
            return None
        for statement in statements:
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                return None
            actions, resource = statement.get("Action"), statement.get("Resource")
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                return None
            if "Condition" in statement:  # a KMS statement
                condition = statement["Condition"]
                arns = condition.get("StringLike", {}).get(KMS_CONTEXT_KEY) if isinstance(condition, Mapping) else None
                if not isinstance(resource, str) or not isinstance(arns, list):
                    return None
                for value in arns:
                    match = _S3_ARN_RE.match(value) if isinstance(value, str) else None
                    if match is None:
                        return None
                    keys[match.group(1)] = resource
                continue
            if not isinstance(resource, list):
                return None
            for value in resource:
                match = _S3_ARN_RE.match(value) if isinstance(value, str) else None
                if match is None:
                    return None
                target = object_actions if match.group(2) else bucket_actions
                target.setdefault(match.group(1), set()).update(actions)
    out: dict[str, BucketGrant] = {}
    for bucket in sorted(set(bucket_actions) | set(object_actions)):
        have_b, have_o = bucket_actions.get(bucket, set()), object_actions.get(bucket, set())
        found = tuple(sorted(lv for lv, la in levels.items() if la.bucket <= have_b and la.object <= have_o))
        if not found:
            return None
        out[bucket] = BucketGrant(bucket, found, keys.get(bucket))
    return out


def trusted_grants(
    parts: Mapping[int, ManagedPolicy], levels: Mapping[str, LevelActions], partition: str = "aws"
) -> dict[str, BucketGrant] | None:
    """A role's grants read from its generated policies, when they can be trusted: every part's default
    version is its newest one, and the documents are exactly what RoleWarden renders for the grants they
    express under today's config. None otherwise (drift, a hand edit, a config change): the caller then
    re-reads the buckets those policies name."""
    if not parts:
        return {}
    if sorted(parts) != list(range(1, len(parts) + 1)):
        return None
    documents: list[Mapping[str, Any]] = []
    for part in sorted(parts):
        default, newest = parts[part].default, parts[part].newest
        if default is None or newest is None or default.version_id != newest.version_id:
            return None
        documents.append(default.document)
    grants = read_back(documents, levels)
    if grants is None:
        return None
    rendered = pack(grants.values(), levels, partition)
    if rendered is None or [canonical_json(d) for d in rendered] != [canonical_json(d) for d in documents]:
        return None
    return grants


def default_buckets(policy: ManagedPolicy) -> set[str]:
    """The buckets a policy's default version names."""
    default = policy.default
    return buckets_named(default.document) if default is not None else set()
