"""Rollback planning, PURE: the writes that turn a role's recorded permission state into another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rolewarden.model.documents import canonical_json


def restore_plan(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The writes that turn role state ``current`` into ``wanted`` (both from ``Role.state``).

    Steps, in a safe order (grant before revoke is not a concern: this restores a recorded state):
    ("trust", doc), ("put-boundary", arn), ("delete-boundary", None), ("attach", arn),
    ("detach", arn), ("put-inline", (name, doc)), ("delete-inline", name)."""
    steps: list[tuple[str, Any]] = []
    if canonical_json(current["trust_policy"]) != canonical_json(wanted["trust_policy"]):
        steps.append(("trust", wanted["trust_policy"]))
    if current.get("permissions_boundary") != wanted.get("permissions_boundary"):
        if wanted.get("permissions_boundary"):
            steps.append(("put-boundary", wanted["permissions_boundary"]))
        else:
            steps.append(("delete-boundary", None))
    have, want = set(current["attached_policies"]), set(wanted["attached_policies"])
    steps.extend(("attach", arn) for arn in sorted(want - have))
    steps.extend(("detach", arn) for arn in sorted(have - want))
    cur_inline, want_inline = current["inline_policies"], wanted["inline_policies"]
    for name, doc in sorted(want_inline.items()):
        if name not in cur_inline or canonical_json(cur_inline[name]) != canonical_json(doc):
            steps.append(("put-inline", (name, doc)))
    steps.extend(("delete-inline", name) for name in sorted(set(cur_inline) - set(want_inline)))
    return steps
