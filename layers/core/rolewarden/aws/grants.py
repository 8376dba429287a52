"""The boto3 side of bucket grants: batched reads of buckets and IAM, and the executor functions.

Reads: ``read_bucket`` (GetBucketTagging, and GetBucketEncryption only for a bucket that carries grant
tags), ``list_buckets`` (ListBuckets, once per sweep) and ``read_iam`` (one paginated
GetAccountAuthorizationDetails for roles and local managed policies: every role, and every generated
policy with all its versions, documents and attachments, in one pass).

Writes happen only through the functions of ``EXECUTORS`` below; each re-checks that the
policy ARN is a generated policy under the managed path and that the role is under it (defence in depth
behind the function's IAM policy), and records every new default version with ``Recorder``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of, raise_instead
from rolewarden.aws.executor import Conflict, Executor, ExecutorFunction, Gone
from rolewarden.aws.recorder import Recorder
from rolewarden.decide.grants import (
    POLICY_PREFIX,
    AttachGrantPolicy,
    BucketGrant,
    BucketView,
    CreateGrantPolicy,
    DeleteGrantPolicy,
    DetachGrantPolicy,
    GrantAction,
    GrantPolicy,
    IamView,
    PolicyVersion,
    RestoreGrantVersion,
    RoleInfo,
    RotateGrantPolicy,
)
from rolewarden.errors import PermanentError
from rolewarden.model.actions import Action

_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_AWS_MANAGED_S3_KEYS = ("alias/aws/s3",)
_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):")


# -- reads ---------------------------------------------------------------------------------------
def _bucket_key(rules: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(customer key ARN, problem) from a bucket's default-encryption rules."""
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") not in ("aws:kms", "aws:kms:dsse"):
            continue
        key = str(default.get("KMSMasterKeyID") or "")
        if not key or key.endswith(_AWS_MANAGED_S3_KEYS):
            return None, None  # the AWS managed key aws/s3: its key policy already serves the account
        if _KMS_KEY_ARN_RE.match(key):
            return key, None
        return None, (
            f"the bucket's default encryption names KMS key {key[:100]!r} by id or alias; RoleWarden makes no "
            "KMS calls and grants keys by ARN only, so the grant does not include the key: set the key ARN"
        )
    return None, None


def read_bucket(name: str, tag_prefix: str) -> BucketView:
    """The bucket's tags (and its default customer key when it carries grant tags), read from S3 now."""
    s3 = client("s3")
    try:
        try:
            tag_set = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except ClientError as exc:
            if code_of(exc) == "NoSuchTagSet":
                tag_set = []
            elif code_of(exc) == "NoSuchBucket":
                return BucketView(name, exists=False)
            else:
                raise
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in tag_set}
        if not any(key.startswith(tag_prefix) for key in tags):
            return BucketView(name, tags=tags)
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"].get("Rules", [])
        except ClientError as exc:
            if code_of(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                rules = []
            elif code_of(exc) == "NoSuchBucket":
                return BucketView(name, exists=False)
            else:
                raise
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, f"s3 read of bucket {name}") from exc
    key, problem = _bucket_key(rules)
    return BucketView(name, tags=tags, kms_key=key, kms_problem=problem)


def list_buckets() -> list[str]:
    s3 = client("s3")
    try:
        if s3.can_paginate("list_buckets"):
            names = [b["Name"] for page in s3.get_paginator("list_buckets").paginate() for b in page.get("Buckets", [])]
        else:  # pragma: no cover - older botocore
            names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, "s3:ListBuckets") from exc
    return sorted(set(names))


def _document(raw: Any) -> dict[str, Any]:
    """Policy documents come back URL-encoded JSON from IAM (botocore usually decodes them to a dict)."""
    if isinstance(raw, dict):
        return raw
    text = urllib.parse.unquote(str(raw))
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _authorization_pages() -> Iterator[dict[str, Any]]:
    paginator = client("iam").get_paginator("get_account_authorization_details")
    yield from paginator.paginate(Filter=["Role", "LocalManagedPolicy"], PaginationConfig={"PageSize": 1000})


def read_iam(managed_path: str) -> IamView:
    """One pass of GetAccountAuthorizationDetails: every role, and every generated policy under the
    managed path with its versions (documents included) and the roles it is attached to."""
    roles: dict[str, RoleInfo] = {}
    raw_policies: list[dict[str, Any]] = []
    partition, account = "aws", ""
    try:
        for page in _authorization_pages():
            for raw in page.get("RoleDetailList", []):
                attached = tuple(p["PolicyArn"] for p in raw.get("AttachedManagedPolicies", []) or [])
                roles[raw["RoleName"]] = RoleInfo(raw["RoleName"], raw.get("Path", "/"), raw["Arn"], attached)
                match = _ARN_RE.match(raw["Arn"])
                if match:
                    partition, account = match.group(1), match.group(2)
            for raw in page.get("Policies", []):
                # moto 5.2 omits PolicyName from these entries (AWS sends it): the ARN's last segment is the name.
                name = str(raw.get("PolicyName") or str(raw.get("Arn", "")).rsplit("/", 1)[-1])
                if raw.get("Path") == managed_path and name.startswith(POLICY_PREFIX):
                    raw_policies.append({**raw, "PolicyName": name})
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, "iam:GetAccountAuthorizationDetails") from exc
    attached_to: dict[str, list[str]] = {}
    for role in roles.values():
        for arn in role.attached:
            attached_to.setdefault(arn, []).append(role.name)
    policies: dict[str, GrantPolicy] = {}
    for raw in raw_policies:
        versions = tuple(
            PolicyVersion(v["VersionId"], bool(v.get("IsDefaultVersion")), _document(v.get("Document")))
            for v in raw.get("PolicyVersionList", [])
        )
        policies[raw["PolicyName"]] = GrantPolicy(
            name=raw["PolicyName"],
            arn=raw["Arn"],
            path=raw["Path"],
            versions=versions,
            description=str(raw.get("Description") or ""),
            attached_roles=tuple(sorted(attached_to.get(raw["Arn"], []))),
        )
    return IamView(roles=roles, policies=policies, partition=partition, account=account)


# -- guards --------------------------------------------------------------------------------------
def _guard(action: GrantAction, *role_paths: str) -> None:
    """Refuse any write outside ``policy<managed path>rolewarden-grants-*`` and roles under the path."""
    forced = os.environ.get("ROLEWARDEN_MANAGED_PATH")
    if forced and forced != action.path:
        raise PermanentError(f"refusing {action.describe()}: path {action.path} is not the stack's {forced}")
    pattern = rf"^arn:aws[a-z-]*:iam::\d{{12}}:policy{re.escape(action.path)}{re.escape(POLICY_PREFIX)}[\w+=,.@-]+$"
    if not action.policy_name.startswith(POLICY_PREFIX) or not re.match(pattern, action.policy_arn, re.ASCII):
        raise PermanentError(f"refusing {action.describe()}: {action.policy_arn} is not a generated grant policy")
    for role_path in role_paths:
        if not role_path.startswith(action.path):
            raise PermanentError(f"refusing {action.describe()}: role path {role_path} is outside {action.path}")


def _record(ex: Executor, action: GrantAction, version: str, document_hash: str, **extra: Any) -> None:
    Recorder(ex.sink).record(
        f"policy/{action.policy_name}",
        "rotation",
        {
            "role": action.role,
            "policy": action.policy_arn,
            "version": version,
            "trigger": ex.trigger,
            "document_hash": document_hash,
            **extra,
        },
    )


def _attach(role: str, policy_arn: str) -> None:
    with raise_instead("NoSuchEntity", Gone(f"role {role} no longer exists")):
        client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)


def _detach(role: str, policy_arn: str) -> None:
    try:
        client("iam").detach_role_policy(RoleName=role, PolicyArn=policy_arn)
    except ClientError as exc:
        if code_of(exc) != "NoSuchEntity":  # not attached (any more): the goal is reached
            raise


# -- executor functions ----------------------------------------------------------------------------
def _apply_create(ex: Executor, action: CreateGrantPolicy) -> dict[str, Any]:
    _guard(action, action.role_path)
    try:
        created = client("iam").create_policy(
            PolicyName=action.policy_name,
            Path=action.path,
            PolicyDocument=action.document,
            Description=action.description,
        )["Policy"]
    except ClientError as exc:
        if code_of(exc) == "EntityAlreadyExists":
            raise Conflict(f"{action.policy_name} was created meanwhile") from exc
        raise
    arn = str(created["Arn"])
    _attach(action.role, arn)
    version = str(created.get("DefaultVersionId") or "v1")
    _record(ex, action, version, action.document_hash, created=True)
    return {"policy": arn, "version": version, "document_hash": action.document_hash, "role": action.role}


def _apply_rotate(ex: Executor, action: RotateGrantPolicy) -> dict[str, Any]:
    _guard(action)
    iam = client("iam")
    if action.delete_version:
        try:
            iam.delete_policy_version(PolicyArn=action.policy_arn, VersionId=action.delete_version)
        except ClientError as exc:
            if code_of(exc) == "DeleteConflict":  # it became the default meanwhile
                raise Conflict(f"{action.delete_version} of {action.policy_name} is the default now") from exc
            if code_of(exc) != "NoSuchEntity":
                raise
    try:
        version = iam.create_policy_version(
            PolicyArn=action.policy_arn, PolicyDocument=action.document, SetAsDefault=True
        )["PolicyVersion"]["VersionId"]
    except ClientError as exc:
        if code_of(exc) in ("LimitExceeded", "NoSuchEntity"):
            raise Conflict(f"{action.policy_name} changed meanwhile ({code_of(exc)})") from exc
        raise
    _record(
        ex,
        action,
        str(version),
        action.document_hash,
        previous_version=action.previous_version,
        deleted_version=action.delete_version,
    )
    return {
        "policy": action.policy_arn,
        "version": version,
        "previous_version": action.previous_version,
        "deleted_version": action.delete_version,
        "document_hash": action.document_hash,
        "role": action.role,
    }


def _apply_restore(ex: Executor, action: RestoreGrantVersion) -> dict[str, Any]:
    _guard(action)
    with raise_instead("NoSuchEntity", Conflict(f"{action.version_id} of {action.policy_name} is gone")):
        client("iam").set_default_policy_version(PolicyArn=action.policy_arn, VersionId=action.version_id)
    _record(
        ex, action, action.version_id, action.document_hash, previous_version=action.previous_version, restored=True
    )
    return {"policy": action.policy_arn, "version": action.version_id, "previous_version": action.previous_version}


def _apply_attach(ex: Executor, action: AttachGrantPolicy) -> dict[str, Any]:
    _guard(action, action.role_path)
    _attach(action.role, action.policy_arn)
    return {"policy": action.policy_arn, "role": action.role}


def _apply_detach(ex: Executor, action: DetachGrantPolicy) -> dict[str, Any]:
    _guard(action, action.from_role_path)
    _detach(action.from_role, action.policy_arn)
    return {"policy": action.policy_arn, "detached_from": action.from_role}


def _apply_delete(ex: Executor, action: DeleteGrantPolicy) -> dict[str, Any]:
    _guard(action)
    iam = client("iam")
    for role in action.detach_from:
        _detach(role, action.policy_arn)
    for version in action.delete_versions:
        try:
            iam.delete_policy_version(PolicyArn=action.policy_arn, VersionId=version)
        except ClientError as exc:
            if code_of(exc) == "DeleteConflict":
                raise Conflict(f"{version} of {action.policy_name} became the default") from exc
            if code_of(exc) != "NoSuchEntity":
                raise
    try:
        iam.delete_policy(PolicyArn=action.policy_arn)
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            raise Gone(f"{action.policy_name} is already deleted") from exc
        if code_of(exc) == "DeleteConflict":
            raise Conflict(f"{action.policy_name} gained an attachment or a version meanwhile") from exc
        raise
    Recorder(ex.sink).record(
        f"policy/{action.policy_name}",
        "deletion",
        {"role": action.role, "policy": action.policy_arn, "trigger": ex.trigger, "versions": action.delete_versions},
    )
    return {"policy": action.policy_arn, "detached_from": list(action.detach_from), "role": action.role}


# -- RoleWarden's own record of grants (the state table) ---------------------------------------------
# The source of truth for rebuilding a role is what RoleWarden last read from each bucket's tags, kept
# in the state table and read with strongly consistent reads; IAM's read-back is only a cache that is
# checked against it. Items (pk / sk):
#   grants#buckets      / <bucket>          what the bucket's tags grant: grants = {role: [levels]}, kms
#   grants#role#<role>  / bucket#<bucket>   the same grant, indexed by role (one Query rebuilds a role)
#   grants#role#<role>  / published         parts = {policy name: version} RoleWarden last made default
# The bucket record and the role's ``published`` item also carry the writer's lease (lease_owner,
# lease_until in epoch seconds): taking a lease is one conditional UpdateItem that fails while another
# unexpired lease is on the item, and giving it back is the same UpdateItem that writes the new record,
# conditioned on still owning it. So a lease costs no call of its own. (lease_until is not the table's
# TTL attribute: a record must not expire.)
BUCKETS_PK = "grants#buckets"
_FREE = "attribute_not_exists(lease_until) OR lease_until < :now"


def _role_pk(role: str) -> str:
    return f"grants#role#{role}"


@dataclass(frozen=True)
class Published:
    """What RoleWarden last made the default of each of a role's generated policies, and when."""

    parts: Mapping[str, str]  # policy name -> version id
    time: float


@dataclass(frozen=True)
class RoleRecord:
    grants: Mapping[str, BucketGrant]  # bucket -> grant, as recorded from the buckets' tags
    published: Published | None


def _ddb(what: str, call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, f"dynamodb:{what}") from exc


def _take(table: str, key: Mapping[str, Any], owner: str, now: float, seconds: float, old: bool) -> Any:
    """The conditional UpdateItem that takes a lease; None when another unexpired lease holds the item."""
    try:
        return client("dynamodb").update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET lease_owner = :owner, lease_until = :until",
            ConditionExpression=_FREE,
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":until": {"N": str(int(now + seconds) + 1)},
                ":now": {"N": str(int(now))},
            },
            ReturnValues="ALL_OLD" if old else "NONE",
        )
    except ClientError as exc:
        if code_of(exc) == "ConditionalCheckFailedException":
            return None
        raise classify(exc, "dynamodb:UpdateItem (lease)") from exc
    except BotoCoreError as exc:
        raise classify(exc, "dynamodb:UpdateItem (lease)") from exc


def _give_back(table: str, key: Mapping[str, Any], owner: str, sets: Mapping[str, Any]) -> None:
    """Write ``sets`` and drop the lease in one UpdateItem, only while ``owner`` still holds it. A lease that
    expired and was taken over is left to its new holder (and nothing is written)."""
    names = {f"#a{i}": name for i, name in enumerate(sets)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(sets.values())}
    values[":owner"] = {"S": owner}
    assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(sets)))
    expression = (f"SET {assignments} " if sets else "") + "REMOVE lease_owner, lease_until"
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": "lease_owner = :owner",
        "ExpressionAttributeValues": values,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    try:
        client("dynamodb").update_item(**kwargs)
    except ClientError as exc:
        if code_of(exc) != "ConditionalCheckFailedException":
            raise classify(exc, "dynamodb:UpdateItem (lease)") from exc
    except BotoCoreError as exc:
        raise classify(exc, "dynamodb:UpdateItem (lease)") from exc


def _grants_attr(grants: Mapping[str, BucketGrant]) -> str:
    return json.dumps({role: list(g.levels) for role, g in sorted(grants.items())}, separators=(",", ":"))


def _bucket_grants(bucket: str, item: Mapping[str, Any]) -> dict[str, BucketGrant] | None:
    if "grants" not in item:
        return None  # only a lease was ever taken on it
    kms = item.get("kms", {}).get("S") or None
    raw = json.loads(item["grants"]["S"])
    return {role: BucketGrant(bucket, tuple(levels), kms) for role, levels in raw.items()}


def _record_key(bucket: str) -> dict[str, Any]:
    return {"pk": {"S": BUCKETS_PK}, "sk": {"S": bucket}}


def lease_bucket(table: str, bucket: str, owner: str, now: float, seconds: float) -> tuple[bool, Any]:
    """Take the bucket's lease and read its record in the same call: (taken, role -> grant or None)."""
    answer = _take(table, _record_key(bucket), owner, now, seconds, old=True)
    if answer is None:
        return False, None
    return True, _bucket_grants(bucket, answer.get("Attributes", {}))


def release_bucket(
    table: str, bucket: str, owner: str, grants: Mapping[str, BucketGrant] | None, now: float, gone: bool = False
) -> None:
    """Record what ``bucket``'s tags grant (None: record nothing) and give its lease back, in one call. A
    bucket that no longer exists (``gone``) and grants nothing is forgotten: its record is deleted."""
    if gone and grants is not None and not grants:
        try:
            client("dynamodb").delete_item(
                TableName=table,
                Key=_record_key(bucket),
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if code_of(exc) != "ConditionalCheckFailedException":
                raise classify(exc, "dynamodb:DeleteItem") from exc
        except BotoCoreError as exc:
            raise classify(exc, "dynamodb:DeleteItem") from exc
        return
    sets: dict[str, Any] = {}
    if grants is not None:
        kms = next((g.kms_key for g in grants.values() if g.kms_key), None)
        sets = {"grants": {"S": _grants_attr(grants)}, "time": {"N": str(now)}, "kms": {"S": kms or ""}}
    _give_back(table, _record_key(bucket), owner, sets)


def record_role_items(
    table: str, bucket: str, before: Mapping[str, BucketGrant], grants: Mapping[str, BucketGrant], drop: set[str]
) -> None:
    """The per-role index of one bucket: put the roles whose grant changed, delete the roles it no longer
    grants (and ``drop``: roles IAM shows holding it, whose item may predate the table's bucket record).
    The caller holds the bucket's lease."""
    ddb = client("dynamodb")
    for role, grant in sorted(grants.items()):
        if before.get(role) == grant:
            continue
        item = {"pk": {"S": _role_pk(role)}, "sk": {"S": f"bucket#{bucket}"}, "levels": {"S": json.dumps(grant.levels)}}
        if grant.kms_key:
            item["kms"] = {"S": grant.kms_key}
        _ddb("PutItem", ddb.put_item, TableName=table, Item=item)
    for role in sorted((set(before) | drop) - set(grants)):
        _ddb(
            "DeleteItem",
            ddb.delete_item,
            TableName=table,
            Key={"pk": {"S": _role_pk(role)}, "sk": {"S": f"bucket#{bucket}"}},
        )


def recorded_buckets(table: str) -> dict[str, dict[str, BucketGrant]]:
    """Every recorded bucket: bucket -> role -> grant (one paginated, strongly consistent Query)."""
    out: dict[str, dict[str, BucketGrant]] = {}
    for item in _query(table, BUCKETS_PK):
        grants = _bucket_grants(item["sk"]["S"], item)
        if grants is not None:
            out[item["sk"]["S"]] = grants
    return out


def _query(table: str, pk: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "ConsistentRead": True,
    }
    while True:
        page = _ddb("Query", client("dynamodb").query, **kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _published_key(role: str) -> dict[str, Any]:
    return {"pk": {"S": _role_pk(role)}, "sk": {"S": "published"}}


def lease_role(table: str, role: str, owner: str, now: float, seconds: float) -> bool:
    return _take(table, _published_key(role), owner, now, seconds, old=False) is not None


def release_role(table: str, role: str, owner: str, parts: Mapping[str, str] | None, now: float) -> None:
    """Record what RoleWarden made the default of each part (None: unchanged) and give the lease back."""
    sets: dict[str, Any] = {}
    if parts is not None:
        sets = {
            "parts": {"S": json.dumps(dict(sorted(parts.items())), separators=(",", ":"))},
            "time": {"N": str(now)},
        }
    _give_back(table, _published_key(role), owner, sets)


def role_record(table: str, role: str) -> RoleRecord:
    """A role's recorded grants and what RoleWarden last published for it: one strongly consistent Query."""
    grants: dict[str, BucketGrant] = {}
    published: Published | None = None
    for item in _query(table, _role_pk(role)):
        sk = item["sk"]["S"]
        if sk.startswith("bucket#"):
            bucket = sk[len("bucket#") :]
            kms = item.get("kms", {}).get("S") or None
            grants[bucket] = BucketGrant(bucket, tuple(json.loads(item["levels"]["S"])), kms)
        elif sk == "published" and "parts" in item:
            published = Published(json.loads(item["parts"]["S"]), float(item["time"]["N"]))
    return RoleRecord(grants, published)


# -- the declared executor table (rolewarden.aws.executor finds it through EXECUTOR_MODULES) ----------
#: The function that carries out each action type of this capability.
EXECUTORS: dict[type[Action], ExecutorFunction] = {
    CreateGrantPolicy: _apply_create,
    RotateGrantPolicy: _apply_rotate,
    RestoreGrantVersion: _apply_restore,
    AttachGrantPolicy: _apply_attach,
    DetachGrantPolicy: _apply_detach,
    DeleteGrantPolicy: _apply_delete,
}
#: The metric each action counts when it is applied.
METRICS: dict[type[Action], str] = {
    CreateGrantPolicy: "GrantPolicyCreated",
    RotateGrantPolicy: "PolicyRotated",
    RestoreGrantVersion: "PolicyRestored",
    AttachGrantPolicy: "GrantPolicyAttached",
    DetachGrantPolicy: "GrantPolicyDetached",
    DeleteGrantPolicy: "GrantPolicyDeleted",
}
