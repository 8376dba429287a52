"""S3 grants from bucket tags: PURE policy arithmetic (no boto3, no environment, no clock).

A bucket tag ``<tag_prefix><level>`` lists the managed roles granted ``level`` on that bucket. This
module turns observed state (bucket tags and encryption, the managed roles, the generated policies
and their versions) into each role's desired policy documents and the plan of actions that gets
IAM there.

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
not enforce it, so it is counted here). A role whose grants need more than ``max_policies_per_role``
documents, or more attachments than IAM's 10 per role, is refused as a whole: its current versions
stay, and a finding says why. A partial set that silently drops a bucket is never produced.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rolewarden.config import ROLE_NAME_RE, Config
from rolewarden.model.actions import Action
from rolewarden.model.findings import Finding

CAPABILITY = "bucket_grants"
POLICY_PREFIX = "rolewarden-grants-"
#: IAM: a customer managed policy document holds at most 6,144 characters, whitespace not counted.
MAX_POLICY_CHARS = 6144
#: IAM keeps at most 5 versions of a managed policy.
MAX_VERSIONS = 5
#: IAM's default quota of managed policies attached to one role.
MAX_ATTACHED_POLICIES = 10
#: S3 caps a tag value at 256 characters; anything longer did not come from S3 and is refused whole.
MAX_TAG_VALUE = 256
KMS_CONTEXT_KEY = "kms:EncryptionContext:aws:s3:arn"
POLICY_VERSION = "2012-10-17"
_DESCRIPTION_RE = re.compile(r"^RoleWarden S3 grants for role ([\w+=,.@-]{1,64}), part (\d{1,2})$", re.ASCII)
_S3_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/\*)?$")
_BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

# -- which S3 actions apply to the bucket ARN and which to bucket/* ------------------------------
# From the Service Authorization Reference ("Actions defined by Amazon S3", resource type column).
# Only data access and read-only bucket configuration are listed: actions that change a bucket's or
# an object's permissions (PutBucketPolicy, PutObjectAcl, DeleteBucket...) are deliberately absent,
# so a level naming one is refused with a finding instead of being granted through a tag.
BUCKET_LEVEL_ACTIONS = frozenset(
    {
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:ListBucketMultipartUploads",
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetBucketTagging",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketPolicy",
        "s3:GetBucketLogging",
        "s3:GetBucketNotification",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketWebsite",
        "s3:GetEncryptionConfiguration",
        "s3:GetLifecycleConfiguration",
        "s3:GetReplicationConfiguration",
        "s3:GetAccelerateConfiguration",
    }
)
OBJECT_LEVEL_ACTIONS = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAttributes",
        "s3:GetObjectVersionAttributes",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectAcl",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
        "s3:GetObjectTorrent",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:AbortMultipartUpload",
        "s3:RestoreObject",
    }
)
#: Object tags are an authorization input (s3:ExistingObjectTag conditions in bucket and IAM policies, ABAC):
#: whoever may change them may change who can read the object. They are refused like the other
#: permission-changing actions (a level naming one is unusable and reported, never granted).
PERMISSION_CHANGING_ACTIONS = frozenset(
    {
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
        "s3:PutObjectAcl",
        "s3:PutObjectVersionAcl",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketAcl",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketTagging",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
    }
)
assert not PERMISSION_CHANGING_ACTIONS & (BUCKET_LEVEL_ACTIONS | OBJECT_LEVEL_ACTIONS)
_DECRYPT = ("kms:Decrypt",)
_ENCRYPT = ("kms:Decrypt", "kms:GenerateDataKey")  # multipart uploads also need Decrypt
#: What an S3 action needs from the bucket's customer key when the bucket is SSE-KMS encrypted.
KMS_FOR_ACTION: Mapping[str, tuple[str, ...]] = {
    "s3:GetObject": _DECRYPT,
    "s3:GetObjectVersion": _DECRYPT,
    "s3:GetObjectTorrent": _DECRYPT,
    "s3:RestoreObject": _DECRYPT,
    "s3:PutObject": _ENCRYPT,
}


def resource_type(action: str) -> Literal["bucket", "object"] | None:
    if action in BUCKET_LEVEL_ACTIONS:
        return "bucket"
    if action in OBJECT_LEVEL_ACTIONS:
        return "object"
    return None


@dataclass(frozen=True)
class LevelActions:
    bucket: frozenset[str]
    object: frozenset[str]
    kms: frozenset[str]


def level_table(config: Config) -> tuple[dict[str, LevelActions], dict[str, list[str]]]:
    """Each usable level's actions split by resource type, and the unknown actions of unusable levels."""
    usable: dict[str, LevelActions] = {}
    unknown: dict[str, list[str]] = {}
    for level, actions in config.bucket_grants.levels.items():
        bad = sorted(a for a in actions if resource_type(a) is None)
        if bad:
            unknown[level] = bad
            continue
        usable[level] = LevelActions(
            bucket=frozenset(a for a in actions if resource_type(a) == "bucket"),
            object=frozenset(a for a in actions if resource_type(a) == "object"),
            kms=frozenset(k for a in actions for k in KMS_FOR_ACTION.get(a, ())),
        )
    return usable, unknown


# -- observed state ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketView:
    """A bucket as S3 shows it now. ``kms_key`` is the ARN of its default customer key, if any."""

    name: str
    exists: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    kms_key: str | None = None
    kms_problem: str | None = None


@dataclass(frozen=True)
class RoleInfo:
    name: str
    path: str
    arn: str
    attached: tuple[str, ...] = ()  # ARNs of every managed policy attached to the role


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    is_default: bool
    document: Mapping[str, Any]

    @property
    def number(self) -> int:
        digits = self.version_id.lstrip("v")
        return int(digits) if digits.isdigit() else 0


@dataclass(frozen=True)
class GrantPolicy:
    """A generated policy (name starts with ``rolewarden-grants-``, path is the managed path)."""

    name: str
    arn: str
    path: str
    versions: tuple[PolicyVersion, ...]
    description: str = ""
    attached_roles: tuple[str, ...] = ()

    @property
    def default(self) -> PolicyVersion | None:
        return next((v for v in self.versions if v.is_default), None)

    @property
    def newest(self) -> PolicyVersion | None:
        return max(self.versions, key=lambda v: v.number, default=None)

    @property
    def oldest_non_default(self) -> PolicyVersion | None:
        return min((v for v in self.versions if not v.is_default), key=lambda v: v.number, default=None)


@dataclass(frozen=True)
class IamView:
    """What one GetAccountAuthorizationDetails pass shows: every role, every generated policy."""

    roles: Mapping[str, RoleInfo]
    policies: Mapping[str, GrantPolicy]  # by policy name
    partition: str = "aws"
    account: str = ""


# -- naming -----------------------------------------------------------------------------------
def policy_name(role: str, part: int) -> str:
    return f"{POLICY_PREFIX}{role}" if part == 1 else f"{POLICY_PREFIX}{role}-{part}"


def policy_description(role: str, part: int) -> str:
    return f"RoleWarden S3 grants for role {role}, part {part}"


def policy_owner(policy: GrantPolicy, roles: Mapping[str, RoleInfo]) -> tuple[str, int]:
    """(role, part) of a generated policy. ``web-2`` may be role web-2 part 1 or role web part 2, so the
    description written at creation decides; without one, the attached or existing role does."""
    match = _DESCRIPTION_RE.match(policy.description)
    if match and policy_name(match.group(1), int(match.group(2))) == policy.name:
        return match.group(1), int(match.group(2))
    rest = policy.name[len(POLICY_PREFIX) :]
    candidates = [(rest, 1)]
    numbered = re.match(r"^(.+)-(\d{1,2})$", rest)
    if numbered and int(numbered.group(2)) >= 2:
        candidates.append((numbered.group(1), int(numbered.group(2))))
    for role, part in candidates:
        if role in policy.attached_roles:
            return role, part
    for role, part in candidates:
        if role in roles:
            return role, part
    return candidates[0]


def parts_by_role(iam: IamView) -> dict[str, dict[int, GrantPolicy]]:
    owned: dict[str, dict[int, GrantPolicy]] = {}
    for policy in iam.policies.values():
        role, part = policy_owner(policy, iam.roles)
        owned.setdefault(role, {})[part] = policy
    return owned


# -- tags -> grants ---------------------------------------------------------------------------
def _shown(value: str) -> str:
    """A refused value as it may appear in a log line: repr (control characters escaped), truncated."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refusal(name: str, roles: Mapping[str, RoleInfo], managed_path: str) -> str | None:
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


def tag_grants(config: Config, bucket: BucketView, roles: Mapping[str, RoleInfo]) -> TagGrants:
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
            tags={k: _shown(bucket.tags[k]) for k in keys},
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
                    f"tag {_shown(key)}: level {_shown(level)} is not in bucket_grants.levels",
                    tag=_shown(key),
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
                    value=_shown(value),
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
                        f"tag {key}: {_shown(name)} refused: {reason}",
                        tag=key,
                        value=_shown(name),
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


@dataclass(frozen=True, order=True)
class BucketGrant:
    """One bucket in one role's grants: the levels (sorted) and the bucket's customer key, if any."""

    bucket: str
    levels: tuple[str, ...]
    kms_key: str | None = None


def grants_for(role: str, buckets: Iterable[TagGrants]) -> dict[str, BucketGrant]:
    out: dict[str, BucketGrant] = {}
    for tg in buckets:
        levels = tg.grants.get(role)
        if levels:
            out[tg.bucket] = BucketGrant(tg.bucket, tuple(sorted(levels)), tg.kms_key)
    return out


def grants_by_role(buckets: Iterable[TagGrants]) -> dict[str, dict[str, BucketGrant]]:
    out: dict[str, dict[str, BucketGrant]] = {}
    for tg in buckets:
        for role, levels in tg.grants.items():
            out.setdefault(role, {})[tg.bucket] = BucketGrant(tg.bucket, tuple(sorted(levels)), tg.kms_key)
    return out


# -- documents ----------------------------------------------------------------------------------
def document_text(document: Mapping[str, Any]) -> str:
    """The exact text RoleWarden sends to IAM: no whitespace at all."""
    return json.dumps(document, separators=(",", ":"))


def policy_size(document: Mapping[str, Any] | str) -> int:
    """Characters IAM counts against the 6,144 limit: the document without whitespace."""
    text = document if isinstance(document, str) else document_text(document)
    return sum(1 for ch in text if not ch.isspace())


def canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def buckets_named(document: Mapping[str, Any]) -> set[str]:
    """Every bucket a document names (resources and KMS conditions); tolerant of hand-edited documents."""
    found: set[str] = set()
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    for statement in _as_list(statements):
        if not isinstance(statement, Mapping):
            continue
        values = list(_as_list(statement.get("Resource", [])))
        conditions = statement.get("Condition")
        for condition in conditions.values() if isinstance(conditions, Mapping) else []:
            if isinstance(condition, Mapping):
                for item in condition.values():
                    values.extend(_as_list(item))
        for value in values:
            match = _S3_ARN_RE.match(value) if isinstance(value, str) else None
            if match:
                found.add(match.group(1))
    return found


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
    parts: Mapping[int, GrantPolicy], levels: Mapping[str, LevelActions], partition: str = "aws"
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
    if rendered is None or [canonical(d) for d in rendered] != [canonical(d) for d in documents]:
        return None
    return grants


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GrantAction(Action):
    capability: ClassVar[str] = CAPABILITY
    role: str
    policy_name: str
    policy_arn: str
    path: str  # the managed path: the executor refuses any ARN outside it

    @property
    def resource(self) -> str:
        return self.policy_arn


@dataclass(frozen=True)
class CreateGrantPolicy(GrantAction):
    """CreatePolicy (version v1 is the default) and AttachRolePolicy to the role."""

    verb: ClassVar[str] = "create-grant-policy"
    role_path: str
    document: str
    description: str
    document_hash: str

    def describe(self) -> str:
        return f"create {self.policy_name} (v1, document {self.document_hash}) and attach it to role {self.role}"


@dataclass(frozen=True)
class RotateGrantPolicy(GrantAction):
    """CreatePolicyVersion as default; first DeleteVersion of the oldest non-default when 5 exist."""

    verb: ClassVar[str] = "rotate-grant-policy"
    document: str
    document_hash: str
    previous_version: str
    delete_version: str | None = None

    def describe(self) -> str:
        pruned = f", deleting {self.delete_version} first" if self.delete_version else ""
        return (
            f"rotate {self.policy_name} of role {self.role} to a new default version "
            f"(document {self.document_hash}, replacing {self.previous_version}{pruned})"
        )


@dataclass(frozen=True)
class RestoreGrantVersion(GrantAction):
    """SetDefaultPolicyVersion back to the newest version, which already holds the desired document."""

    verb: ClassVar[str] = "restore-grant-version"
    version_id: str
    previous_version: str
    document_hash: str

    def describe(self) -> str:
        return (
            f"restore {self.policy_name} of role {self.role} to {self.version_id} (default was {self.previous_version})"
        )


@dataclass(frozen=True)
class AttachGrantPolicy(GrantAction):
    verb: ClassVar[str] = "attach-grant-policy"
    role_path: str

    def describe(self) -> str:
        return f"attach {self.policy_name} to role {self.role}"


@dataclass(frozen=True)
class DetachGrantPolicy(GrantAction):
    """Detach a role's generated policy from another managed role it was attached to by hand."""

    verb: ClassVar[str] = "detach-grant-policy"
    from_role: str
    from_role_path: str

    def describe(self) -> str:
        return f"detach {self.policy_name} (role {self.role}'s grants) from role {self.from_role}"


@dataclass(frozen=True)
class DeleteGrantPolicy(GrantAction):
    """Detach from every managed role, delete the non-default versions, then the policy."""

    verb: ClassVar[str] = "delete-grant-policy"
    detach_from: tuple[str, ...]
    delete_versions: tuple[str, ...]

    def describe(self) -> str:
        return f"delete {self.policy_name} of role {self.role} (detach from {list(self.detach_from)})"


GRANT_ACTIONS: tuple[type[GrantAction], ...] = (
    CreateGrantPolicy,
    RotateGrantPolicy,
    RestoreGrantVersion,
    AttachGrantPolicy,
    DetachGrantPolicy,
    DeleteGrantPolicy,
)


# -- deciding one role ----------------------------------------------------------------------------
Verdict = Literal["keep", "change", "refuse", "remove"]


@dataclass(frozen=True)
class RoleDecision:
    role: str
    verdict: Verdict
    reason: str
    actions: tuple[Action, ...] = ()
    findings: tuple[Finding, ...] = ()
    documents: tuple[Mapping[str, Any], ...] = ()
    buckets: tuple[str, ...] = ()


def _policy_arn(iam: IamView, path: str, name: str) -> str:
    return f"arn:{iam.partition}:iam::{iam.account}:policy{path}{name}"


def _hash(text: str) -> str:
    """Same value as rolewarden.records.document_hash of the parsed document."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _delete(role: str, policy: GrantPolicy, iam: IamView, path: str) -> tuple[Action | None, Finding | None]:
    outside = [r for r in policy.attached_roles if r not in iam.roles or not iam.roles[r].path.startswith(path)]
    if outside:
        return None, Finding(
            CAPABILITY,
            policy.name,
            "grant-policy-attached-outside",
            f"{policy.name} is attached to role(s) outside {path} ({', '.join(sorted(outside))}); "
            "RoleWarden cannot detach it there, so it is left in place",
            details={"policy": policy.arn, "roles": sorted(outside)},
        )
    return DeleteGrantPolicy(
        role=role,
        policy_name=policy.name,
        policy_arn=policy.arn,
        path=path,
        detach_from=tuple(sorted(policy.attached_roles)),
        delete_versions=tuple(
            v.version_id for v in sorted(policy.versions, key=lambda v: v.number) if not v.is_default
        ),
    ), None


def decide_role(
    config: Config,
    iam: IamView,
    role_name: str,
    grants: Iterable[BucketGrant],
    parts: Mapping[int, GrantPolicy],
) -> RoleDecision:
    """Everything that makes ``role_name``'s generated policies grant exactly ``grants``."""
    path = config.managed_path
    levels, _unknown = level_table(config)
    role = iam.roles.get(role_name)
    wanted = sorted(set(grants)) if role is not None and role.path.startswith(path) else []
    findings: list[Finding] = []
    if not wanted:
        actions: list[Action] = []
        for part in sorted(parts):
            action, finding = _delete(role_name, parts[part], iam, path)
            actions.extend([action] if action else [])
            findings.extend([finding] if finding else [])
        if not actions:
            return RoleDecision(role_name, "keep", "no bucket grants to the role", findings=tuple(findings))
        return RoleDecision(
            role_name, "remove", "no bucket grants to the role any more", tuple(actions), tuple(findings)
        )
    assert role is not None
    buckets = tuple(g.bucket for g in wanted)

    def refuse(rule: str, message: str, **details: Any) -> RoleDecision:
        finding = Finding(CAPABILITY, f"role/{role_name}", rule, message, severity="ERROR", details=details)
        return RoleDecision(role_name, "refuse", message, findings=(finding,), buckets=buckets)

    documents = pack(wanted, levels, iam.partition)
    limit = config.bucket_grants.max_policies_per_role
    if documents is None or len(documents) > limit:
        needed = "more than one policy per bucket" if documents is None else f"{len(documents)} policies"
        return refuse(
            "grants-too-large",
            f"role {role_name}: grants on {len(wanted)} buckets need {needed}, more than max_policies_per_role "
            f"({limit}) at {MAX_POLICY_CHARS} characters each; the current versions are kept",
            buckets=len(wanted),
            policies_needed=len(documents) if documents else None,
            max_policies_per_role=limit,
        )
    own_arns = {p.arn for p in parts.values()}
    others = [arn for arn in role.attached if arn not in own_arns]
    if len(others) + len(documents) > MAX_ATTACHED_POLICIES:
        return refuse(
            "too-many-attached-policies",
            f"role {role_name} has {len(others)} other managed policies attached; {len(documents)} grant "
            f"policies would exceed IAM's {MAX_ATTACHED_POLICIES} per role; the current versions are kept",
            other_policies=len(others),
            policies_needed=len(documents),
        )
    for part in range(1, len(documents) + 1):
        name = policy_name(role_name, part)
        existing = iam.policies.get(name)
        if existing is not None and policy_owner(existing, iam.roles) != (role_name, part):
            return refuse(
                "policy-name-collision",
                f"role {role_name} needs {name}, which belongs to role {policy_owner(existing, iam.roles)[0]}",
                policy=name,
            )

    creates: list[Action] = []
    attaches: list[Action] = []
    versions: list[Action] = []
    detaches: list[Action] = []
    deletes: list[Action] = []
    for part, document in enumerate(documents, start=1):
        name = policy_name(role_name, part)
        text = document_text(document)
        digest = _hash(canonical(document))
        policy = parts.get(part)
        common = {"role": role_name, "policy_name": name, "path": path}
        if policy is None:
            creates.append(
                CreateGrantPolicy(
                    **common,
                    policy_arn=_policy_arn(iam, path, name),
                    role_path=role.path,
                    document=text,
                    description=policy_description(role_name, part),
                    document_hash=digest,
                )
            )
            continue
        common["policy_arn"] = policy.arn
        default, newest = policy.default, policy.newest
        if default is None or canonical(default.document) != canonical(document):
            previous = default.version_id if default else ""
            if newest is not None and newest is not default and canonical(newest.document) == canonical(document):
                versions.append(
                    RestoreGrantVersion(
                        **common, version_id=newest.version_id, previous_version=previous, document_hash=digest
                    )
                )
            else:
                prune = policy.oldest_non_default if len(policy.versions) >= MAX_VERSIONS else None
                versions.append(
                    RotateGrantPolicy(
                        **common,
                        document=text,
                        document_hash=digest,
                        previous_version=previous,
                        delete_version=prune.version_id if prune else None,
                    )
                )
        if role_name not in policy.attached_roles:
            attaches.append(AttachGrantPolicy(**common, role_path=role.path))
        for other in sorted(set(policy.attached_roles) - {role_name}):
            info = iam.roles.get(other)
            if info is not None and info.path.startswith(path):
                detaches.append(DetachGrantPolicy(**common, from_role=other, from_role_path=info.path))
            else:
                findings.append(
                    Finding(
                        CAPABILITY,
                        name,
                        "grant-policy-attached-outside",
                        f"{name} is also attached to role {other}, outside {path}; RoleWarden cannot detach it",
                        details={"policy": policy.arn, "role": other},
                    )
                )
    for part in sorted(p for p in parts if p > len(documents)):
        action, finding = _delete(role_name, parts[part], iam, path)
        deletes.extend([action] if action else [])
        findings.extend([finding] if finding else [])
    # Order: new parts first, then rotations, then removals: during a re-split a bucket is briefly held
    # by two parts, never by none.
    planned = tuple(creates + attaches + versions + detaches + deletes)
    verdict: Verdict = "change" if planned else "keep"
    reason = f"{len(planned)} change(s) to {len(documents)} policies" if planned else "the policies are up to date"
    return RoleDecision(role_name, verdict, reason, planned, tuple(findings), tuple(documents), buckets)


def is_bucket_name(value: str) -> bool:
    return bool(_BUCKET_NAME_RE.match(value))
