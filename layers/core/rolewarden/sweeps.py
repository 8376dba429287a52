"""At most one run of each scheduled sweep.

A sweep reads the whole account, so a duplicate delivery of the same Scheduled Event (EventBridge
delivers at least once, and SQS may redeliver) is worth skipping. Powertools idempotency, keyed on
the event id and stored in the state table (pk ``idempotency#<capability>``, TTL on ``expiration``),
runs it once; a concurrent duplicate gets ``IdempotencyAlreadyInProgressError`` and is retried later,
when it finds the sweep done. Per-instance, per-bucket and per-role events are not deduplicated this
way: their handling converges by re-reading state, and a duplicate costs one batched read, less than
the two DynamoDB calls per record idempotency would add.

A sweep that spends its time budget continues in a new invocation from a continuation message (see
``rolewarden.runtime``). Each part has its own key, ``<scheduled event id>`` for the first and
``<scheduled event id>#part-<n>`` for the next ones: a redelivered part is skipped like a duplicate
sweep, while the continuation of a finished part is new work, not a duplicate. The continuation of a
part is sent inside its idempotent run, so a part is recorded done only once its continuation is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rolewarden.capabilities.base import Outcome
from rolewarden.settings import current
from rolewarden.telemetry import Sink

#: How long a finished sweep's record keeps duplicates away (a sweep runs hourly by default).
SWEEP_DEDUP_SECONDS = 6 * 3600


class _SweepFailed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def part_key(sweep_id: str, part: int) -> str:
    """The idempotency key of one part of a sweep (the first part keeps the Scheduled Event's id)."""
    return sweep_id if part <= 1 else f"{sweep_id}#part-{part}"


def run_sweep_once(
    capability: str, event_id: str, sweep: Callable[[], Outcome], sink: Sink, context: Any = None
) -> Outcome:
    """Run ``sweep`` once per ``event_id`` (a part key); its ok outcome (with its continuation, if any)
    is what this call returns, and a duplicate returns a plain ok."""
    table = current().table
    if not table or not event_id:
        return sweep()
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    from rolewarden.aws.clients import client

    persistence = DynamoDBPersistenceLayer(
        table_name=table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=f"idempotency#{capability}",
        boto3_client=client("dynamodb"),
    )
    config = IdempotencyConfig(
        event_key_jmespath="id", expires_after_seconds=SWEEP_DEDUP_SECONDS, raise_on_no_idempotency_key=True
    )
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)
    ran: list[Outcome] = []

    def once(scheduled_event: dict[str, str]) -> dict[str, str]:
        outcome = sweep()
        ran.append(outcome)
        if outcome.status != "ok":
            raise _SweepFailed(outcome)  # not stored: a later delivery runs the sweep again
        return {"status": "ok"}

    # Powertools' decorator is untyped; the function it returns takes and returns what ``once`` does (the
    # idempotency key's prefix is the function's name, so it keeps the name ``once``).
    run_idempotent: Callable[..., dict[str, str]] = idempotent_function(
        once, data_keyword_argument="scheduled_event", persistence_store=persistence, config=config
    )

    try:
        run_idempotent(scheduled_event={"id": event_id})
    except IdempotencyAlreadyInProgressError:
        sink.log("INFO", f"sweep {event_id} is already running elsewhere; retrying later", capability=capability)
        return Outcome("retry", "the same sweep is in progress in another invocation")
    except _SweepFailed as failed:
        return failed.outcome
    if not ran:
        sink.log("INFO", f"sweep {event_id} already done; duplicate delivery skipped", capability=capability)
        sink.metric("DuplicateSweepsSkipped")
        return Outcome()
    return ran[0]
