"""Durable records of what RoleWarden changed: policy rotations, remediations with the prior state.

Stored in the state table (``ROLEWARDEN_TABLE``: pk = resource, sk = "<kind>#<iso time>#<short id>")
or, when no table is configured (local runs), written to the log only. Records never expire by
default; idempotency items (if any) use the ``expiration`` TTL attribute."""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.conditions import Key

from rolewarden.aws.clients import session
from rolewarden.model.records import Record

_tables: dict[str, Any] = {}


def _table(name: str) -> Any:
    if name not in _tables:
        from rolewarden.aws.clients import botocore_config

        _tables[name] = session().resource("dynamodb", config=botocore_config()).Table(name)
    return _tables[name]


def put(table: str, record: Record) -> None:
    _table(table).put_item(
        Item={
            "pk": record.resource,
            "sk": record.sort_key,
            "kind": record.kind,
            "record_id": record.record_id,
            "time": record.time,
            "data": json.dumps(record.data, sort_keys=True, default=str),
        },
        ConditionExpression="attribute_not_exists(sk)",
    )


def query(table: str, resource: str, kind: str | None = None) -> list[Record]:
    condition: Any = Key("pk").eq(resource)
    if kind:
        condition = condition & Key("sk").begins_with(f"{kind}#")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ScanIndexForward": False}
    while True:
        page = _table(table).query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [
        Record(resource=i["pk"], kind=i["kind"], record_id=i["record_id"], time=i["time"], data=json.loads(i["data"]))
        for i in items
    ]


def reset_cache() -> None:
    _tables.clear()
