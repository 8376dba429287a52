"""The Lambda side: turn an SQS batch (or one raw EventBridge event) into targets, reconcile them
together with batched reads, and answer with ReportBatchItemFailures.

Per record: malformed -> sent to the DLQ with its reason and acknowledged (retrying cannot help);
retryable failure -> reported in batchItemFailures so SQS redelivers it, and on its last allowed
receive sent to the DLQ with its reason; ok -> acknowledged. A bad record never holds back the
good records of its batch.

(Powertools' BatchProcessor handles records one at a time; RoleWarden reads AWS once per batch,
so it builds the partial-batch response itself, in the shape Lambda expects.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rolewarden import capabilities
from rolewarden.apply import Executor
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.config import load_config
from rolewarden.environment import self_role_arns
from rolewarden.errors import ConfigError, MalformedEvent
from rolewarden.observe import Sink
from rolewarden.sweeps import run_sweep_once
from rolewarden.triggers import SWEEP, Target, caller_role_arn, parse_envelope, route


@dataclass
class RecordIn:
    message_id: str | None
    body: str
    receive_count: int = 1
    event_id: str = ""
    targets: list[Target] = field(default_factory=list)
    error: str = ""
    self_caused: bool = False


def _records(event: Any, capability: str) -> tuple[list[RecordIn], bool]:
    """Split the Lambda event into records; True when it is an SQS batch."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        out = []
        for raw in event["Records"]:
            message_id = raw.get("messageId") if isinstance(raw, dict) else None
            body = raw.get("body", "") if isinstance(raw, dict) else ""
            attrs = raw.get("attributes", {}) if isinstance(raw, dict) else {}
            count = int(attrs.get("ApproximateReceiveCount", "1") or 1) if isinstance(attrs, dict) else 1
            record = RecordIn(message_id=str(message_id) if message_id else None, body=str(body), receive_count=count)
            _route(record, capability)
            out.append(record)
        return out, True
    record = RecordIn(message_id=None, body=json.dumps(event, default=str))
    _route(record, capability, parsed=event)
    return [record], False


def _route(record: RecordIn, capability: str, parsed: Any = None) -> None:
    try:
        if parsed is None:
            try:
                parsed = json.loads(record.body)
            except ValueError as exc:
                raise MalformedEvent(f"the body is not JSON: {exc}") from exc
        envelope = parse_envelope(parsed)
        record.event_id = envelope.id
        caller = caller_role_arn(envelope)
        if caller and caller in self_role_arns():
            # RoleWarden's own change: the EventBridge pattern filters these out; this is the second guard.
            record.self_caused = True
            return
        record.targets = route(capability, envelope)
    except MalformedEvent as exc:
        record.error = str(exc)


class Handler:
    """The callable behind ``functions/<name>/app.py``'s ``lambda_handler``."""

    def __init__(self, capability: str, sink_factory: Callable[[], Sink] | None = None) -> None:
        self.capability = capability
        self.sink_factory = sink_factory or Sink
        self.sleep: Callable[[float], None] = time.sleep
        self.last_sink: Sink | None = None
        self.context: Any = None

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        sink = self.sink_factory()
        self.last_sink = sink
        self.context = context
        return self.handle(event, sink)

    def handle(self, event: Any, sink: Sink) -> dict[str, Any]:
        records, is_batch = _records(event, self.capability)
        config = load_config()  # ConfigError propagates: nothing acts on a bad config
        trigger = ",".join(sorted({r.event_id for r in records if r.event_id}))[:512]
        executor = Executor(
            sink=sink,
            dry_run=config.dry_run,
            sleep=self.sleep,
            trigger=trigger,
            propagation_budget=float(os.environ.get("ROLEWARDEN_PROPAGATION_WAIT", "30")),
        )
        run = Run(config=config, sink=sink, executor=executor, trigger=trigger)

        good = [r for r in records if not r.error]
        targets = list(dict.fromkeys(t for r in good for t in r.targets))
        lifecycles = {t.id: t for r in good for t in r.targets if t.lifecycle is not None}
        targets = [lifecycles.get(t.id, t) if t.kind == "instance" else t for t in targets]
        capability = capabilities.get(self.capability)
        resources = [t for t in targets if t.kind != "sweep"]
        outcomes = capability.reconcile(run, resources) if resources else {}
        sweep_events = [r.event_id for r in good if SWEEP in r.targets]
        if sweep_events:
            # several Scheduled Events in one batch need one sweep; it runs once per event id
            outcomes[SWEEP] = run_sweep_once(
                self.capability,
                sweep_events[0],
                lambda: capability.reconcile(run, [SWEEP]).get(SWEEP, Outcome()),
                sink,
                self.context,
            )

        failures: list[dict[str, str]] = []
        summary = {"records": len(records), "targets": len(targets), "failed": 0, "dead_lettered": 0}
        for record in records:
            if record.error:
                sink.log(
                    "ERROR",
                    f"malformed record: {record.error}",
                    message_id=record.message_id,
                    body_preview=record.body[:300],
                    capability=self.capability,
                )
                sink.metric("MalformedEvents")
                outcome = Outcome("dead", f"malformed: {record.error}")
            elif record.self_caused:
                sink.log(
                    "INFO",
                    "ignored an event caused by RoleWarden itself",
                    message_id=record.message_id,
                    event_id=record.event_id,
                    capability=self.capability,
                )
                sink.metric("SelfCausedEventsIgnored")
                outcome = Outcome()
            elif not record.targets:
                sink.log(
                    "INFO",
                    "event concerns nothing RoleWarden manages",
                    message_id=record.message_id,
                    event_id=record.event_id,
                    capability=self.capability,
                )
                outcome = Outcome()
            else:
                outcome = Outcome.worst([outcomes.get(t, Outcome()) for t in record.targets])
            if outcome.status == "ok":
                continue
            summary["failed"] += 1
            if not is_batch:
                continue
            if self._dead_letter(record, outcome, sink):
                summary["dead_lettered"] += 1
            else:
                failures.append({"itemIdentifier": record.message_id or ""})
        self._publish(sink, trigger)
        sink.log(
            "INFO",
            f"{self.capability}: {summary['records']} records, {summary['targets']} targets, "
            f"{summary['failed']} failed",
            capability=self.capability,
            **summary,
        )
        if not is_batch:
            record = records[0]
            if record.error:
                raise MalformedEvent(record.error)
            if summary["failed"]:
                reasons = "; ".join(
                    sorted(
                        {outcomes[t].message for t in record.targets if t in outcomes and outcomes[t].status != "ok"}
                    )
                )
                raise RuntimeError(f"{summary['failed']} event failed: {reasons}")
            return summary
        return {"batchItemFailures": failures}

    def _publish(self, sink: Sink, trigger: str) -> None:
        """Send this invocation's findings to the findings topic (one message), when one is configured."""
        topic = os.environ.get("ROLEWARDEN_FINDINGS_TOPIC")
        if not topic or not sink.findings:
            return
        from rolewarden.aws import sns

        try:
            sns.publish_findings(topic, self.capability, [f.as_dict() for f in sink.findings], trigger)
        except Exception as exc:  # noqa: BLE001 - the findings are in the log; publishing is best effort
            sink.log("ERROR", f"could not publish findings to SNS: {exc}", topic=topic)

    def _dead_letter(self, record: RecordIn, outcome: Outcome, sink: Sink) -> bool:
        """Send a record to the DLQ with its reason when retrying cannot help (malformed, permanent)
        or this was its last allowed receive. False: leave it to SQS redelivery and the redrive policy."""
        dlq_url = os.environ.get("ROLEWARDEN_DLQ_URL")
        max_receive = int(os.environ.get("ROLEWARDEN_MAX_RECEIVE", "5"))
        last_try = outcome.status == "dead" or record.receive_count >= max_receive
        if not dlq_url or not last_try or record.message_id is None:
            return False
        from rolewarden.aws import sqs

        try:
            sqs.send_dead_letter(
                dlq_url,
                record.body,
                reason=outcome.message,
                capability=self.capability,
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
            capability=self.capability,
            receive_count=record.receive_count,
        )
        sink.metric("DeadLettered")
        return True


def make_handler(capability: str) -> Callable[[Any, Any], dict[str, Any]]:
    """Build the Lambda entry point with Powertools logging (correlation id = event id) and metrics."""
    from rolewarden.powertools import wrap

    handler = Handler(capability)
    return wrap(handler, capability)


__all__ = ["ConfigError", "Handler", "make_handler"]
