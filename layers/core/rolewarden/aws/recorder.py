"""The Recorder: every record goes to the log and, when a state table is configured, to DynamoDB
(``rolewarden.aws.records``, imported only then: most invocations record nothing). A record made while
acting in a member account (``aws.clients.acting_in``) names the account: its resource key carries the
account id (``scoped_key``: two accounts' roles of one name never share a history) and its data says it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from rolewarden.aws.clients import current_account, scoped_key
from rolewarden.model.records import Record
from rolewarden.settings import current
from rolewarden.telemetry import Sink


class Recorder:
    """Writes records to the state table when one is configured, always to the log."""

    def __init__(self, sink: Sink, table: str | None = None, *, per_account: bool = True) -> None:
        self.sink = sink
        self.table = table if table is not None else current().table or None
        self.written: list[Record] = []
        #: False: the records are the deployment's, not an account's (the circuit breaker's trips and
        #: resets): their key is the same in every scope; the data still names the account a record came from.
        self.per_account = per_account

    def record(self, resource: str, kind: str, data: dict[str, Any], now: datetime | None = None) -> Record:
        when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        resource = self._key(resource)
        account = current_account()
        if account is not None:
            data = {**data, "account": account}
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
        resource = self._key(resource)
        if not self.table:
            found = [r for r in self.written if r.resource == resource and (kind is None or r.kind == kind)]
        else:
            from rolewarden.aws import records as store

            found = store.query(self.table, resource, kind)
        return sorted(found, key=lambda r: (r.time, r.record_id), reverse=True)

    def _key(self, resource: str) -> str:
        return scoped_key(resource) if self.per_account else resource
