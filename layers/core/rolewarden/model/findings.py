"""Findings: what RoleWarden refused, could not do, or saw wrong; one shape for every capability."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["INFO", "WARNING", "ERROR"]


@dataclass(frozen=True)
class Finding:
    """Something a person should know: a refusal, a drift, a remediation. One structured log line each."""

    capability: str
    resource: str
    rule: str
    message: str
    severity: Severity = "WARNING"
    details: Mapping[str, Any] = field(default_factory=dict)
    #: The account the finding is about ("": RoleWarden's own, in single mode).
    account: str = ""

    @classmethod
    def on_account(
        cls, capability: str, account: str, rule: str, message: str, severity: Severity = "WARNING", **details: Any
    ) -> Finding:
        """A finding about a whole account (resource ``account/<id>``; the details name it first)."""
        return cls(capability, f"account/{account}", rule, message, severity, {"account": account, **details}, account)

    def as_dict(self) -> dict[str, Any]:
        found = {
            "capability": self.capability,
            "resource": self.resource,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "details": dict(self.details),
        }
        return {**found, "account": self.account} if self.account else found
