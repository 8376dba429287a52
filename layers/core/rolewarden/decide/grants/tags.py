"""Bucket tags -> grants: parse one bucket's ``<tag_prefix><level>`` tags (untrusted input) into the
roles it grants at which levels, with a finding for every refusal, and group parsed buckets by role.
PURE."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rolewarden.config import ROLE_NAME_RE, Config
from rolewarden.decide.grants.catalog import PERMISSION_CHANGING_ACTIONS, level_table
from rolewarden.model.findings import Finding
from rolewarden.model.grants import CAPABILITY, BucketGrant, BucketView
from rolewarden.model.iam import Role

#: S3 caps a tag value at 256 characters; anything longer did not come from S3 and is refused whole.
MAX_TAG_VALUE = 256


def shown(value: str) -> str:
    """A refused value as it may appear in a log line: repr (control characters escaped), truncated."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refusal(name: str, roles: Mapping[str, Role], managed_path: str) -> str | None:
    """None when ``name`` may be granted, else why not."""
    if "*" in name or "?" in name:
        return "wildcards are never granted"
    if name.lower().startswith("arn:"):
        return "ARNs are not accepted; name the role"
    if "/" in name:
        return "paths are not accepted; name the role"
    if not ROLE_NAME_RE.match(name):
        return "not a valid IAM role name"
    role = roles.get(name)
    if role is None:
        return "no such role"
    if not role.path.startswith(managed_path):
        return f"the role's path {role.path} is outside the managed path {managed_path}"
    return None


def _why_refused(actions: Sequence[str]) -> str:
    changing = [a for a in actions if a in PERMISSION_CHANGING_ACTIONS]
    return f": {', '.join(changing)} would let the grantee change who may access the data" if changing else ""


@dataclass(frozen=True)
class TagGrants:
    """What one bucket's tags grant: role -> levels, and the refusals found on the way."""

    bucket: str
    grants: Mapping[str, frozenset[str]]
    kms_key: str | None = None
    findings: tuple[Finding, ...] = ()


def _finding(bucket: str, rule: str, message: str, **details: Any) -> Finding:
    return Finding(CAPABILITY, bucket, rule, message, details={"bucket": bucket, **details})


def tag_grants(config: Config, bucket: BucketView, roles: Mapping[str, Role]) -> TagGrants:
    """Parse one bucket's grant tags. Untrusted input: anything but an existing managed role's name is
    refused with a finding and never reaches a document."""
    settings = config.bucket_grants
    prefix = settings.tag_prefix
    keys = sorted(k for k in bucket.tags if k.startswith(prefix))
    if not bucket.exists or not keys:
        return TagGrants(bucket.name, {})
    if config.is_protected_bucket(bucket.name):
        finding = _finding(
            bucket.name,
            "protected-bucket",
            f"bucket {bucket.name} is protected (bucket_grants.protected_buckets); its grant tags are ignored",
            tags={k: shown(bucket.tags[k]) for k in keys},
        )
        return TagGrants(bucket.name, {}, findings=(finding,))
    usable, unknown = level_table(config)
    grants: dict[str, set[str]] = {}
    findings: list[Finding] = []
    for key in keys:
        level, value = key[len(prefix) :], bucket.tags[key]
        if level in unknown:
            findings.append(
                _finding(
                    bucket.name,
                    "unknown-action",
                    f"level {level!r} names S3 actions RoleWarden does not grant ({', '.join(unknown[level])}"
                    f"{_why_refused(unknown[level])}); tag {key} is ignored",
                    tag=key,
                )
            )
            continue
        if level not in usable:
            findings.append(
                _finding(
                    bucket.name,
                    "unknown-level",
                    f"tag {shown(key)}: level {shown(level)} is not in bucket_grants.levels",
                    tag=shown(key),
                )
            )
            continue
        if len(value) > MAX_TAG_VALUE:
            findings.append(
                _finding(
                    bucket.name,
                    "grant-refused",
                    f"tag {key}: the value has {len(value)} characters (S3 allows {MAX_TAG_VALUE}); refused whole",
                    tag=key,
                    value=shown(value),
                )
            )
            continue
        for name in dict.fromkeys(value.split()):
            reason = refusal(name, roles, config.managed_path)
            if reason is not None:
                findings.append(
                    _finding(
                        bucket.name,
                        "grant-refused",
                        f"tag {key}: {shown(name)} refused: {reason}",
                        tag=key,
                        value=shown(name),
                        reason=reason,
                    )
                )
                continue
            grants.setdefault(name, set()).add(level)
    kms_key = bucket.kms_key
    if grants and bucket.kms_problem:
        findings.append(
            _finding(bucket.name, "kms-key-unresolved", bucket.kms_problem, roles=sorted(grants)),
        )
    return TagGrants(bucket.name, {r: frozenset(ls) for r, ls in grants.items()}, kms_key, tuple(findings))


def grants_for(role: str, buckets: Iterable[TagGrants]) -> dict[str, BucketGrant]:
    """bucket -> grant of ``role`` in the parsed buckets."""
    out: dict[str, BucketGrant] = {}
    for tg in buckets:
        levels = tg.grants.get(role)
        if levels:
            out[tg.bucket] = BucketGrant(tg.bucket, tuple(sorted(levels)), tg.kms_key)
    return out


def grants_by_role(buckets: Iterable[TagGrants]) -> dict[str, dict[str, BucketGrant]]:
    """role -> bucket -> grant over the parsed buckets."""
    out: dict[str, dict[str, BucketGrant]] = {}
    for tg in buckets:
        for role, levels in tg.grants.items():
            out.setdefault(role, {})[tg.bucket] = BucketGrant(tg.bucket, tuple(sorted(levels)), tg.kms_key)
    return out


def grants_for_bucket(parsed: TagGrants) -> dict[str, BucketGrant]:
    """role -> grant for one bucket's parsed tags."""
    return {
        role: BucketGrant(parsed.bucket, tuple(sorted(levels)), parsed.kms_key)
        for role, levels in parsed.grants.items()
        if levels
    }
