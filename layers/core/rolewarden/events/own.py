"""Typed models of the scheduled sweep and of RoleWarden's own events (see ``rolewarden.events``)."""

from __future__ import annotations

from dataclasses import dataclass

from rolewarden.errors import MalformedEvent
from rolewarden.events.fields import POLICY_ARN_RE, ROLE_NAME_RE, EnvelopeFields, matching


@dataclass(frozen=True)
class ScheduledSweep:
    """Scheduled Event (aws.events): a sweep of everything; the route needs no field of it."""

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> ScheduledSweep:
        return cls()


@dataclass(frozen=True)
class GrantPolicyDrift:
    """Grant Policy Drift (rolewarden.compliance, on the grants queue): a grant policy drifted from what
    the state table says; its role's grants are re-published."""

    role_name: str
    policy_arn: str
    reason: str

    @classmethod
    def from_envelope(cls, env: EnvelopeFields) -> GrantPolicyDrift:
        detail = env.detail
        role = matching(detail, "roleName", "detail", ROLE_NAME_RE, "an IAM role name")
        arn = matching(detail, "policyArn", "detail", POLICY_ARN_RE, "an IAM policy ARN")
        reason = detail.get("reason", "")
        if not isinstance(reason, str):
            raise MalformedEvent(f"detail.reason must be a string, got {type(reason).__name__}")
        return cls(role, arn, reason)
