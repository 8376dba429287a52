"""What becomes of a record once its outcome is known, and of an invocation's findings: a record that
cannot succeed goes to the DLQ with its reason (``dead_letter``), a failed one comes back after a short
backoff by receive count (``retry_soon``), a global capability outside its home region refuses every
record (``refuse_everything``), and the findings go to the findings topic and, optionally, to Security
Hub (``publish``)."""

from __future__ import annotations

from typing import Any

from rolewarden.batch import HOOK_RETRY_DELAY, RecordIn, retry_delay
from rolewarden.capabilities.base import Outcome
from rolewarden.errors import ConfigError
from rolewarden.settings import Settings
from rolewarden.telemetry import Sink


def retry_soon(record: RecordIn, sink: Sink, settings: Settings, capability: str, jitter: float) -> None:
    """Bring a failed record back after a short backoff instead of the queue's visibility timeout."""
    queue_url = settings.queue_url
    if not queue_url or not record.receipt_handle:
        return
    delay = retry_delay(
        record.receive_count,
        base=settings.retry_base,
        cap=settings.retry_cap,
        jitter=jitter,
    )
    if any(t.lifecycle is not None for t in record.targets):
        # A record holding a lifecycle hook comes back within the margin the heartbeat decision
        # assumes (decide.profiles.hook_needs_heartbeat), whatever its receive count: a longer wait
        # could outlast the hook's heartbeat timeout, and the instance would take the default result.
        delay = min(delay, HOOK_RETRY_DELAY)
    from rolewarden.aws import sqs

    try:
        sqs.retry_in(queue_url, record.receipt_handle, delay)
    except Exception as exc:  # noqa: BLE001 - the record still comes back, after the queue's visibility timeout
        sink.log("WARNING", f"could not shorten the retry delay: {exc}", message_id=record.message_id)
        return
    sink.log(
        "INFO",
        f"record retried in {delay} s",
        message_id=record.message_id,
        receive_count=record.receive_count,
        retry_in=delay,
        capability=capability,
    )


def refuse_everything(
    records: list[RecordIn], is_batch: bool, reason: str, sink: Sink, settings: Settings, capability: str
) -> dict[str, Any]:
    """Outside the home region a global capability writes nothing: every record goes to the DLQ with
    the reason (nothing is lost; the DLQ alarm says the stack is misconfigured)."""
    sink.log("ERROR", reason, capability=capability)
    sink.metric("RefusedOutsideHomeRegion", len(records))
    if not is_batch:
        raise ConfigError(reason)
    failures = []
    for record in records:
        if not dead_letter(record, Outcome("dead", reason), sink, settings, capability):
            failures.append({"itemIdentifier": record.message_id or ""})
    return {"batchItemFailures": failures}


def publish(sink: Sink, trigger: str, settings: Settings, capability: str) -> None:
    """Send this invocation's findings to the findings topic (one message), when one is configured, and to
    Security Hub when ``ROLEWARDEN_SECURITY_HUB`` is on. Both are best effort: the findings are in the log."""
    topic = settings.findings_topic
    if topic and sink.findings:
        from rolewarden.aws import sns

        try:
            sns.publish_findings(topic, capability, [f.as_dict() for f in sink.findings], trigger)
        except Exception as exc:  # noqa: BLE001 - the findings are in the log; publishing is best effort
            sink.log("ERROR", f"could not publish findings to SNS: {exc}", topic=topic)
    if settings.security_hub and sink.findings:
        _to_security_hub(sink, settings)


def _to_security_hub(sink: Sink, settings: Settings) -> None:
    """ASFF through BatchImportFindings from RoleWarden's own account (the importer; see decide.asff), each
    finding filed with the account it is about in its resource ARN and product fields."""
    from datetime import UTC, datetime

    from rolewarden import account_runs
    from rolewarden.aws import securityhub
    from rolewarden.decide.asff import AsffContext, to_asff

    try:
        importer = account_runs.home_account(settings)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        asff = [
            to_asff(f, AsffContext(f.account or importer, importer, settings.region or "us-east-1", now))
            for f in sink.findings
        ]
        result = securityhub.import_findings(asff)
    except Exception as exc:  # noqa: BLE001 - best effort, as the topic
        sink.log("ERROR", f"could not import findings into Security Hub: {exc}")
        return
    for failed in result.failed:
        sink.log("ERROR", f"Security Hub refused finding {failed.id}: {failed.code}: {failed.message}")
    sink.metric("SecurityHubImported", result.imported)


def dead_letter(record: RecordIn, outcome: Outcome, sink: Sink, settings: Settings, capability: str) -> bool:
    """Send a record to the DLQ with its reason when retrying cannot help (malformed, permanent)
    or this was its last allowed receive. False: leave it to SQS redelivery and the redrive policy."""
    dlq_url = settings.dlq_url
    max_receive = settings.max_receive
    last_try = outcome.status == "dead" or record.receive_count >= max_receive
    if not dlq_url or not last_try or record.message_id is None:
        return False
    from rolewarden.aws import sqs

    try:
        sqs.send_dead_letter(
            dlq_url,
            record.body,
            reason=outcome.message,
            capability=capability,
            receive_count=record.receive_count,
            message_id=record.message_id,
        )
    except Exception as exc:  # noqa: BLE001 - any failure here leaves the record to the redrive policy
        sink.log("ERROR", f"could not send record to the DLQ: {exc}", message_id=record.message_id)
        return False
    sink.log(
        "WARNING",
        f"record sent to the DLQ: {outcome.message}",
        message_id=record.message_id,
        capability=capability,
        receive_count=record.receive_count,
    )
    sink.metric("DeadLettered")
    return True
