"""Leases in the state table: a writer's claim on one item (a bucket's record, a role's published
versions, a role's remediation), held for a few seconds while it writes.

Taking a lease is one conditional UpdateItem that fails while another unexpired lease is on the item;
giving it back is the same UpdateItem that writes the new record, conditioned on still owning it. So a
lease costs no call of its own. The lease attributes are ``lease_owner`` and ``lease_until`` (epoch
seconds; not the table's TTL attribute: a record must not expire).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rolewarden.aws.clients import client
from rolewarden.aws.errors import CONDITION_FAILED, or_none

_FREE = "attribute_not_exists(lease_until) OR lease_until < :now"


def take(table: str, key: Mapping[str, Any], owner: str, now: float, seconds: float, old: bool) -> Any:
    """Take the lease on the item ``key`` for ``owner`` until ``now + seconds``: the UpdateItem's answer
    (with the item's attributes before the call when ``old``), or None when another unexpired lease
    holds the item. Other errors are classified (retryable or permanent)."""
    return or_none(
        lambda: client("dynamodb").update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET lease_owner = :owner, lease_until = :until",
            ConditionExpression=_FREE,
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":until": {"N": str(int(now + seconds) + 1)},
                ":now": {"N": str(int(now))},
            },
            ReturnValues="ALL_OLD" if old else "NONE",
        ),
        CONDITION_FAILED,
        "dynamodb:UpdateItem (lease)",
    )


def give_back(table: str, key: Mapping[str, Any], owner: str, sets: Mapping[str, Any]) -> None:
    """Write ``sets`` (attribute name -> DynamoDB value) and drop the lease in one UpdateItem, only while
    ``owner`` still holds it. A lease that expired and was taken over is left to its new holder (and
    nothing is written)."""
    names = {f"#a{i}": name for i, name in enumerate(sets)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(sets.values())}
    values[":owner"] = {"S": owner}
    assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(sets)))
    expression = (f"SET {assignments} " if sets else "") + "REMOVE lease_owner, lease_until"
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": "lease_owner = :owner",
        "ExpressionAttributeValues": values,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    or_none(lambda: client("dynamodb").update_item(**kwargs), CONDITION_FAILED, "dynamodb:UpdateItem (lease)")
