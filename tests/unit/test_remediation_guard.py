"""The remediation guard's notion of "the same change": which part of a role an action changes, not how
(a read that lags part of another invocation's writes can decide a different document for that part)
nor which rules asked for it (their order is not part of the change)."""

from __future__ import annotations

from rolewarden.aws.compliance.leases import action_fingerprint
from rolewarden.model.compliance import DetachManagedPolicy, ReplaceTrustPolicy, RewriteInlinePolicy

BASE = {"role_name": "app", "role_path": "/rolewarden/", "scope": "/rolewarden/"}


def test_the_same_part_decided_from_different_reads_is_the_same_change() -> None:
    one = ReplaceTrustPolicy(**BASE, rules=("trust-ec2-only",), document='{"a": 1}')
    two = ReplaceTrustPolicy(**BASE, rules=("trust-ec2-only", "no-admin-access"), document='{"b": 2}')
    assert action_fingerprint(one) == action_fingerprint(two)


def test_different_parts_are_different_changes() -> None:
    trust = ReplaceTrustPolicy(**BASE, rules=("trust-ec2-only",), document="{}")
    other_role = ReplaceTrustPolicy(**{**BASE, "role_name": "other"}, rules=("trust-ec2-only",), document="{}")
    detach_a = DetachManagedPolicy(**BASE, rules=("no-admin-access",), policy_arn="arn:aws:iam::aws:policy/A")
    detach_b = DetachManagedPolicy(**BASE, rules=("no-admin-access",), policy_arn="arn:aws:iam::aws:policy/B")
    inline = RewriteInlinePolicy(
        **BASE, rules=("no-admin-access",), policy_name="p", document="{}", expected="{}", removed=(0,)
    )
    prints = {action_fingerprint(a) for a in (trust, other_role, detach_a, detach_b, inline)}
    assert len(prints) == 5
