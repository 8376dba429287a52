"""RoleWarden's own record of grants, in the state table: the source of truth for rebuilding a role is
what RoleWarden last read from each bucket's tags, read with strongly consistent reads; IAM's read-back
is only a cache that is checked against it.

Items (pk / sk):
  grants#buckets      / <bucket>          what the bucket's tags grant: grants = {role: [levels]}, kms
  grants#role#<role>  / bucket#<bucket>   the same grant, indexed by role (one Query rebuilds a role)
  grants#role#<role>  / published         parts = {policy name: version} RoleWarden last made default
The bucket record and the role's ``published`` item also carry the writer's lease (``aws.leases``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client, scoped_key
from rolewarden.aws.errors import classify, code_of
from rolewarden.aws.leases import give_back, take
from rolewarden.model.grants import BucketGrant, Published, RoleRecord

BUCKETS_PK = "grants#buckets"


def _role_pk(role: str) -> str:
    return scoped_key(f"grants#role#{role}")


def _buckets_pk() -> str:
    """The partition of every bucket record of the account in scope (bucket names are global, but a
    bucket deleted in one account and made again in another must not inherit the first one's record)."""
    return scoped_key(BUCKETS_PK)


def _ddb(what: str, call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, f"dynamodb:{what}") from exc


def _grants_attr(grants: Mapping[str, BucketGrant]) -> str:
    return json.dumps({role: list(g.levels) for role, g in sorted(grants.items())}, separators=(",", ":"))


def _bucket_grants(bucket: str, item: Mapping[str, Any]) -> dict[str, BucketGrant] | None:
    if "grants" not in item:
        return None  # only a lease was ever taken on it
    kms = item.get("kms", {}).get("S") or None
    raw = json.loads(item["grants"]["S"])
    return {role: BucketGrant(bucket, tuple(levels), kms) for role, levels in raw.items()}


def _record_key(bucket: str) -> dict[str, Any]:
    return {"pk": {"S": _buckets_pk()}, "sk": {"S": bucket}}


def lease_bucket(table: str, bucket: str, owner: str, now: float, seconds: float) -> tuple[bool, Any]:
    """Take the bucket's lease and read its record in the same call: (taken, role -> grant or None)."""
    answer = take(table, _record_key(bucket), owner, now, seconds, old=True)
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
    give_back(table, _record_key(bucket), owner, sets)


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
    for item in _query(table, _buckets_pk()):
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
    return take(table, _published_key(role), owner, now, seconds, old=False) is not None


def release_role(table: str, role: str, owner: str, parts: Mapping[str, str] | None, now: float) -> None:
    """Record what RoleWarden made the default of each part (None: unchanged) and give the lease back."""
    sets: dict[str, Any] = {}
    if parts is not None:
        sets = {
            "parts": {"S": json.dumps(dict(sorted(parts.items())), separators=(",", ":"))},
            "time": {"N": str(now)},
        }
    give_back(table, _published_key(role), owner, sets)


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
