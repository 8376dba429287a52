"""A record: what RoleWarden did to one resource and why (a rotation, a remediation, a rollback), as
kept in the state table and in the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
