"""The circuit breaker's items in the state table (low-level DynamoDB client: thread-safe, one per process).

Items under ``pk = "circuit-breaker#state"``:

- ``sk = "window#<start epoch>"``: the window's counter ``n`` (``ADD``, conditional on ``n < limit`` and on
  the window not being ``closed`` by a trip), ``expiration`` for DynamoDB's TTL.
- ``sk = "tripped"``: the flag every container reads with ``ConsistentRead`` before it remediates
  anything; ``until`` is checked by the reader (TTL deletes lazily).

Trips and resets are also kept as records (``rolewarden.aws.records``, resource ``circuit-breaker``).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import CONDITION_FAILED, classify, code_of, or_none
from rolewarden.errors import RetryableError
from rolewarden.model.breaker import Trip, Window

PK = "circuit-breaker#state"
TRIPPED_SK = "tripped"
#: DynamoDB answers that mean "try again" but are not in aws.errors' table.
_RETRYABLE = frozenset(
    {"ProvisionedThroughputExceededException", "RequestLimitExceeded", "TransactionConflictException"}
)


def _fail(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError) and code_of(exc) in _RETRYABLE:
        return RetryableError(f"{what} failed: {code_of(exc)}", code_of(exc))
    return classify(exc, what)


def _key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": PK}, "sk": {"S": sk}}


#: The attributes every write of a window item sets besides its own (names, then values).
_WINDOW_NAMES = {"#exp": "expiration", "#start": "window_start", "#end": "window_end"}


def _window_values(window: Window) -> dict[str, Any]:
    return {
        ":exp": {"N": str(window.expiry())},
        ":start": {"N": str(window.start)},
        ":end": {"N": str(window.end)},
    }


def take_slot(table: str, window: Window, limit: int) -> bool:
    """Atomically count one remediation in ``window``; False (nothing counted) when the window is full or
    closed by a trip."""
    taken = or_none(
        lambda: client("dynamodb").update_item(
            TableName=table,
            Key=_key(window.key),
            UpdateExpression="ADD #n :one SET #exp = :exp, #start = :start, #end = :end",
            ConditionExpression="(attribute_not_exists(#n) OR #n < :limit) AND attribute_not_exists(#closed)",
            ExpressionAttributeNames={"#n": "n", **_WINDOW_NAMES, "#closed": "closed"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)}, **_window_values(window)},
        ),
        CONDITION_FAILED,
        lambda exc: _fail(exc, "taking a circuit-breaker slot (dynamodb:UpdateItem)"),
    )
    return taken is not None


def close_window(table: str, window: Window) -> None:
    """No more slots in ``window`` (a trip): containers that read the flag before it was set stop too."""
    try:
        client("dynamodb").update_item(
            TableName=table,
            Key=_key(window.key),
            UpdateExpression="SET #closed = :true, #exp = :exp, #start = :start, #end = :end",
            ExpressionAttributeNames={"#closed": "closed", **_WINDOW_NAMES},
            ExpressionAttributeValues={":true": {"BOOL": True}, **_window_values(window)},
        )
    except (ClientError, BotoCoreError) as exc:
        raise _fail(exc, "closing the circuit-breaker window (dynamodb:UpdateItem)") from exc


def read_window(table: str, window: Window) -> tuple[int, bool]:
    """(remediations counted, closed by a trip) of ``window``, read consistently."""
    try:
        item = client("dynamodb").get_item(TableName=table, Key=_key(window.key), ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _fail(exc, "reading the circuit-breaker window (dynamodb:GetItem)") from exc
    if not item:
        return 0, False
    return int(item.get("n", {}).get("N", "0")), bool(item.get("closed", {}).get("BOOL", False))


def read_trip(table: str) -> Trip | None:
    """The tripped flag, read with ConsistentRead (a trip by any container is seen at once); None if none
    was ever set or it was reset. The caller checks ``in_force``: an expired flag may linger until TTL."""
    try:
        item = client("dynamodb").get_item(TableName=table, Key=_key(TRIPPED_SK), ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError) as exc:
        raise _fail(exc, "reading the circuit-breaker flag (dynamodb:GetItem)") from exc
    if not item or "data" not in item:
        return None
    return Trip.from_dict(json.loads(item["data"]["S"]))


def put_trip(table: str, trip: Trip) -> bool:
    """Set the flag unless one is already in force. True: this call tripped the breaker (and raises its
    finding); False: another container had tripped it first."""
    tripped = or_none(
        lambda: client("dynamodb").put_item(
            TableName=table,
            Item={
                **_key(TRIPPED_SK),
                "until": {"N": repr(trip.until)},
                "expiration": {"N": str(int(trip.until) + 1)},
                "data": {"S": json.dumps(trip.as_dict(), sort_keys=True)},
            },
            ConditionExpression="attribute_not_exists(pk) OR #until <= :now",
            ExpressionAttributeNames={"#until": "until"},
            ExpressionAttributeValues={":now": {"N": repr(trip.tripped_at)}},
        ),
        CONDITION_FAILED,
        lambda exc: _fail(exc, "setting the circuit-breaker flag (dynamodb:PutItem)"),
    )
    return tripped is not None


def reset(table: str, window: Window) -> tuple[Trip | None, int]:
    """Clear the flag and the current window's count (and its closed mark). Returns what was there."""
    ddb = client("dynamodb")
    try:
        old = ddb.delete_item(TableName=table, Key=_key(TRIPPED_SK), ReturnValues="ALL_OLD").get("Attributes")
        counted = ddb.update_item(
            TableName=table,
            Key=_key(window.key),
            UpdateExpression="SET #n = :zero, #exp = :exp, #start = :start, #end = :end REMOVE #closed",
            ExpressionAttributeNames={"#n": "n", "#closed": "closed", **_WINDOW_NAMES},
            ExpressionAttributeValues={":zero": {"N": "0"}, **_window_values(window)},
            ReturnValues="UPDATED_OLD",
        ).get("Attributes", {})
    except (ClientError, BotoCoreError) as exc:
        raise _fail(exc, "resetting the circuit breaker (dynamodb:DeleteItem/UpdateItem)") from exc
    trip = Trip.from_dict(json.loads(old["data"]["S"])) if old and "data" in old else None
    return trip, int(counted.get("n", {}).get("N", "0"))
