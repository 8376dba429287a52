"""The Lambda side: turn an SQS batch (or one raw EventBridge event) into targets, reconcile them
together with batched reads, and answer with ReportBatchItemFailures.

Per record: malformed -> sent to the DLQ with its reason and acknowledged (retrying cannot help);
retryable failure -> reported in batchItemFailures so SQS redelivers it, and on its last allowed
receive sent to the DLQ with its reason; ok -> acknowledged. A bad record never holds back the
good records of its batch.

A failed record is made visible again after a short backoff by receive count
(ChangeMessageVisibility on its receipt handle: ``min(cap, base * 2**(receive_count - 1))`` plus
jitter), instead of waiting out the queue's visibility timeout; it reaches the DLQ after the redrive
count as before.

Sweeps run in invocations of their own (the ``sweep`` handler, fed by the capability's sweep queue,
which the schedule rule targets): an event function hands a Scheduled Event on to the sweep queue.
A sweep gets a time budget (the Lambda context's remaining time minus a margin, as ``Run.deadline``);
when the capability's sweep stops on budget and returns ``Outcome(continuation=cursor)``, the runtime
sends a continuation message (capability, sweep id, part number, cursor) to the sweep queue, and the
next invocation resumes there (``Run.cursor``). A timeout never fails an event record, because events
and sweeps never share an invocation.

(Powertools' BatchProcessor handles records one at a time; RoleWarden reads AWS once per batch,
so it builds the partial-batch response itself, in the shape Lambda expects.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from rolewarden import capabilities
from rolewarden.aws.executor import Executor
from rolewarden.batch import HOOK_RETRY_DELAY, Continuation, RecordIn, retry_delay, split_records
from rolewarden.capabilities.base import Capability, Outcome, Run
from rolewarden.config import load_config
from rolewarden.errors import ConfigError, MalformedEvent
from rolewarden.model.targets import SWEEP, Target
from rolewarden.settings import Settings, current
from rolewarden.sweeps import part_key, run_sweep_once
from rolewarden.telemetry import Sink

#: First pause before a throttled target is reconciled again inside the invocation (then doubled).
THROTTLE_PAUSE = 2.0


def _throttled(outcome: Outcome | None) -> bool:
    """A retry whose cause is AWS throttling (the classified error names the throttling code)."""
    if outcome is None or outcome.status != "retry":
        return False
    from rolewarden.aws.errors import THROTTLING_CODES

    return any(f": {code}:" in outcome.message or f"({code})" in outcome.message for code in THROTTLING_CODES)


class Handler:
    """The callable behind ``functions/<name>/app.py``'s ``lambda_handler`` (``sweep=False``) and
    ``sweep_handler`` (``sweep=True``)."""

    def __init__(self, capability: str, sink_factory: Callable[[], Sink] | None = None, *, sweep: bool = False) -> None:
        self.capability = capability
        self.sweep = sweep
        self.sink_factory = sink_factory or Sink
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic
        self.random: Callable[[], float] = random.random
        self.last_sink: Sink | None = None
        self.context: Any = None

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        sink = self.sink_factory()
        self.last_sink = sink
        self.context = context
        return self.handle(event, sink)

    def handle(self, event: Any, sink: Sink) -> dict[str, Any]:
        settings = current()
        records, is_batch = split_records(event, self.capability, settings)
        refusal = settings.outside_home_region(self.capability)
        if refusal is not None:
            return self._refuse_everything(records, is_batch, refusal, sink, settings)
        config = load_config(settings=settings)  # ConfigError propagates: nothing acts on a bad config
        trigger = ",".join(sorted({r.event_id for r in records if r.event_id}))[:512]
        executor = Executor(
            sink=sink,
            dry_run=config.dry_run,
            sleep=self.sleep,
            trigger=trigger,
            propagation_budget=settings.propagation_wait,
        )
        run = Run(config=config, sink=sink, executor=executor, trigger=trigger, clock=self.clock, settings=settings)

        good = [r for r in records if not r.error]
        targets = list(dict.fromkeys(t for r in good for t in r.targets))
        lifecycles = {t.id: t for r in good for t in r.targets if t.lifecycle is not None}
        targets = [lifecycles.get(t.id, t) if t.kind == "instance" else t for t in targets]
        capability = capabilities.get(self.capability)
        resources = [t for t in targets if t.kind != "sweep"]
        outcomes = capability.reconcile(run, resources) if resources else {}
        if resources:
            outcomes = self._retry_throttled(run, capability, resources, outcomes)
        sweep_outcomes = self._sweeps([r for r in good if SWEEP in r.targets], run, capability, sink)

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
            elif record.self_caused or not record.targets:
                sink.log(
                    "INFO",
                    "ignored an event caused by RoleWarden itself"
                    if record.self_caused
                    else "event concerns nothing RoleWarden manages",
                    message_id=record.message_id,
                    event_id=record.event_id,
                    capability=self.capability,
                )
                if record.self_caused:
                    sink.metric("SelfCausedEventsIgnored")
                outcome = Outcome()
            else:
                outcome = Outcome.worst(
                    [sweep_outcomes[id(record)] if t == SWEEP else outcomes.get(t, Outcome()) for t in record.targets]
                )
                if SWEEP in record.targets:
                    outcomes[SWEEP] = outcome
            if outcome.status == "ok":
                continue
            summary["failed"] += 1
            if not is_batch:
                continue
            if self._dead_letter(record, outcome, sink, settings):
                summary["dead_lettered"] += 1
            else:
                failures.append({"itemIdentifier": record.message_id or ""})
                self._retry_soon(record, sink, settings)
        self._publish(sink, trigger, settings)
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

    # -- sweeps -----------------------------------------------------------------------------------
    def _sweeps(self, records: list[RecordIn], run: Run, capability: Capability, sink: Sink) -> dict[int, Outcome]:
        """The outcome of each sweep record (by ``id(record)``): handed on to the sweep queue by an event
        function, run part by part by a sweep function (or inline where no sweep queue is configured)."""
        out: dict[int, Outcome] = {}
        sweep_queue = run.settings.sweep_queue_url
        done: dict[str, Outcome] = {}
        for record in records:
            if not self.sweep and sweep_queue and record.continuation is None:
                out[id(record)] = self._hand_on(record, sweep_queue, sink)
                continue
            part = record.continuation.part if record.continuation else 1
            key = part_key(record.event_id, part)
            if key not in done:  # several deliveries of one part in a batch: one run
                done[key] = self._sweep_part(record, part, key, run, capability, sink, sweep_queue)
            out[id(record)] = done[key]
        return out

    def _hand_on(self, record: RecordIn, sweep_queue: str, sink: Sink) -> Outcome:
        """An event function never sweeps: the Scheduled Event goes to the sweep function's queue."""
        from rolewarden.aws import sqs

        try:
            sqs.send(sweep_queue, record.body)
        except Exception as exc:  # noqa: BLE001 - any failure: the record is retried, nothing is lost
            return Outcome("retry", f"could not hand the sweep on to the sweep queue: {exc}")
        sink.log("INFO", "sweep handed on to the sweep queue", event_id=record.event_id, capability=self.capability)
        return Outcome()

    def _retry_throttled(
        self, run: Run, capability: Capability, resources: list[Target], outcomes: dict[Target, Outcome]
    ) -> dict[Target, Outcome]:
        """Targets that failed only because AWS throttled (after botocore's own retries) are reconciled
        again inside this invocation, after a pause that lets the account's token buckets refill, while
        the invocation's remaining time allows (``ROLEWARDEN_THROTTLE_WAIT`` seconds of pauses at most,
        and never past the remaining time minus ``ROLEWARDEN_SWEEP_MARGIN``). Only what is still
        throttled after that fails its record. Decisions are re-read each time, so a retry can never
        apply a stale plan."""
        budget = run.settings.throttle_wait
        delay, waited = THROTTLE_PAUSE, 0.0
        while True:
            throttled = [t for t in resources if _throttled(outcomes.get(t))]
            if not throttled or waited + delay > budget:
                return outcomes
            remaining = self._budget(run.settings)
            if remaining is not None and remaining < delay + THROTTLE_PAUSE * 4:
                return outcomes
            run.sink.log(
                "INFO",
                f"{len(throttled)} target(s) throttled; reconciling them again in {delay:.0f} s",
                capability=self.capability,
                targets=len(throttled),
            )
            run.sink.metric("ThrottledRetries")
            self.sleep(delay)
            waited += delay
            delay *= 2
            outcomes = {**outcomes, **capability.reconcile(run, throttled)}

    def _budget(self, settings: Settings) -> float | None:
        """Seconds this invocation may sweep: the context's remaining time minus a margin (for the
        continuation message, the findings and the response). None: unbounded (no Lambda context)."""
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return None
        seconds = float(remaining()) / 1000
        margin = settings.sweep_margin
        return max(0.0, seconds - min(margin, seconds / 2))

    def _sweep_part(
        self, record: RecordIn, part: int, key: str, run: Run, capability: Capability, sink: Sink, sweep_queue: str
    ) -> Outcome:
        max_parts = run.settings.sweep_max_parts
        if part > max_parts:
            sink.metric("SweepsAbandoned")
            return Outcome("dead", f"sweep {record.event_id} is still unfinished after {max_parts} parts")
        cursor = record.continuation.cursor if record.continuation else None

        def one_part() -> Outcome:
            budget = self._budget(run.settings)
            run.deadline = None if budget is None else run.clock() + budget
            run.cursor = cursor
            try:
                outcome = capability.reconcile(run, [SWEEP]).get(SWEEP, Outcome())
            finally:
                run.deadline, run.cursor = None, None
            if outcome.status != "ok" or outcome.continuation is None:
                if outcome.status == "ok" and part > 1:
                    sink.log("INFO", f"sweep {record.event_id} done in {part} parts", capability=self.capability)
                return outcome
            if outcome.continuation == cursor:
                sink.metric("SweepsAbandoned")
                return Outcome("dead", f"sweep {record.event_id} part {part} made no progress from its cursor")
            if not sweep_queue:
                return Outcome("retry", "the sweep spent its budget and no sweep queue is configured to continue it")
            follow = Continuation(self.capability, record.event_id, part + 1, outcome.continuation)
            from rolewarden.aws import sqs

            try:
                sqs.send(sweep_queue, follow.body())
            except Exception as exc:  # noqa: BLE001 - the part is not recorded as done, and is retried
                return Outcome("retry", f"could not queue the continuation of sweep {record.event_id}: {exc}")
            queued = f"sweep {record.event_id} part {part} spent its budget; part {part + 1} queued"
            sink.log("INFO", queued, capability=self.capability, sweep_id=record.event_id, part=part)
            sink.metric("SweepContinued")
            return outcome

        return run_sweep_once(self.capability, key, one_part, sink, self.context)

    # -- failures ---------------------------------------------------------------------------------
    def _retry_soon(self, record: RecordIn, sink: Sink, settings: Settings) -> None:
        """Bring a failed record back after a short backoff instead of the queue's visibility timeout."""
        queue_url = settings.queue_url
        if not queue_url or not record.receipt_handle:
            return
        delay = retry_delay(
            record.receive_count,
            base=settings.retry_base,
            cap=settings.retry_cap,
            jitter=self.random(),
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
            capability=self.capability,
        )

    def _refuse_everything(
        self, records: list[RecordIn], is_batch: bool, reason: str, sink: Sink, settings: Settings
    ) -> dict[str, Any]:
        """Outside the home region a global capability writes nothing: every record goes to the DLQ with
        the reason (nothing is lost; the DLQ alarm says the stack is misconfigured)."""
        sink.log("ERROR", reason, capability=self.capability)
        sink.metric("RefusedOutsideHomeRegion", len(records))
        if not is_batch:
            raise ConfigError(reason)
        failures = []
        for record in records:
            if not self._dead_letter(record, Outcome("dead", reason), sink, settings):
                failures.append({"itemIdentifier": record.message_id or ""})
        return {"batchItemFailures": failures}

    def _publish(self, sink: Sink, trigger: str, settings: Settings) -> None:
        """Send this invocation's findings to the findings topic (one message), when one is configured."""
        topic = settings.findings_topic
        if not topic or not sink.findings:
            return
        from rolewarden.aws import sns

        try:
            sns.publish_findings(topic, self.capability, [f.as_dict() for f in sink.findings], trigger)
        except Exception as exc:  # noqa: BLE001 - the findings are in the log; publishing is best effort
            sink.log("ERROR", f"could not publish findings to SNS: {exc}", topic=topic)

    def _dead_letter(self, record: RecordIn, outcome: Outcome, sink: Sink, settings: Settings) -> bool:
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


def make_handler(capability: str, *, sweep: bool = False) -> Callable[[Any, Any], dict[str, Any]]:
    """Build the Lambda entry point with Powertools logging (correlation id = event id) and metrics:
    the event function's (``sweep=False``) or the sweep function's."""
    from rolewarden.powertools import wrap

    handler = Handler(capability, sweep=sweep)
    return wrap(handler, capability)


__all__ = ["ConfigError", "Handler", "make_handler"]
