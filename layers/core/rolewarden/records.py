"""Durable records of what RoleWarden changed: policy rotations, remediations with the prior state.

Stored in the state table (``ROLEWARDEN_TABLE``: pk = resource, sk = "<kind>#<iso time>#<short id>")
or, when no table is configured (local runs), written to the log only. Records never expire by
default; idempotency items (if any) use the ``expiration`` TTL attribute.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rolewarden.settings import current
from rolewarden.telemetry import Sink


def document_hash(document: Any) -> str:
    """A stable hash of a policy document (sorted keys, no whitespace)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Record:
    resource: str  # e.g. "role/web-server", "policy/rolewarden-grants-web-server"
    kind: str  # e.g. "rotation", "remediation", "rollback"
    record_id: str
    time: str
    data: dict[str, Any]

    @property
    def sort_key(self) -> str:
        return f"{self.kind}#{self.time}#{self.record_id}"


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
            from rolewarden.aws import records as store

            store.put(self.table, rec)
        self.written.append(rec)
        return rec

    def history(self, resource: str, kind: str | None = None) -> list[Record]:
        """Records of ``resource``, newest first across kinds (the table's sort key starts with the kind,
        so its order alone would group them); without a table, those written by this process."""
        if not self.table:
            found = [r for r in self.written if r.resource == resource and (kind is None or r.kind == kind)]
        else:
            from rolewarden.aws import records as store

            found = store.query(self.table, resource, kind)
        return sorted(found, key=lambda r: (r.time, r.record_id), reverse=True)
