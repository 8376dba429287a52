"""Durable records of what RoleWarden changed: policy rotations, remediations with the prior state.

Stored in the state table (``ROLEWARDEN_TABLE``: pk = resource, sk = "<kind>#<iso time>#<short id>")
or, when no table is configured (local runs), written to the log only. Records never expire by
default; idempotency items (if any) use the ``expiration`` TTL attribute.

The Recorder writes each record to the log and, when a state table is configured, to DynamoDB."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from rolewarden.aws.clients import session
from rolewarden.model.records import Record
from rolewarden.settings import current
from rolewarden.telemetry import Sink

_tables: dict[str, Any] = {}


def _table(name: str) -> Any:
    if name not in _tables:
        from rolewarden.aws.clients import _botocore_config

        _tables[name] = session().resource("dynamodb", config=_botocore_config()).Table(name)
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


class Recorder:
    """Writes records to the state table when one is configured, always to the log."""

    def __init__(self, sink: Sink, table: str | None = None) -> None:
        self.sink = sink
        self.table = table if table is not None else current().table or None
        self.written: list[Record] = []

    def record(self, resource: str, kind: str, data: dict[str, Any], now: datetime | None = None) -> Record:
        when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rec = Record(resource=resource, kind=kind, record_id=uuid.uuid4().hex[:12], time=when, data=data)
        self.sink.log(
            "INFO",
            f"record {kind} for {resource}",
            record={"resource": resource, "kind": kind, "id": rec.record_id, "time": when, "data": data},
        )
        if self.table:
            put(self.table, rec)
        self.written.append(rec)
        return rec

    def history(self, resource: str, kind: str | None = None) -> list[Record]:
        """Records of ``resource``, newest first across kinds (the table's sort key starts with the kind,
        so its order alone would group them); without a table, those written by this process."""
        if not self.table:
            found = [r for r in self.written if r.resource == resource and (kind is None or r.kind == kind)]
        else:
            found = query(self.table, resource, kind)
        return sorted(found, key=lambda r: (r.time, r.record_id), reverse=True)
