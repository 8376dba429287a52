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

from rolewarden import account_runs, capabilities, delivery
from rolewarden.aws.executor import Executor
from rolewarden.batch import Continuation, RecordIn, split_records
from rolewarden.capabilities.base import Capability, Outcome, Run
from rolewarden.config import Config, load_config
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
            return delivery.refuse_everything(records, is_batch, refusal, sink, settings, self.capability)
        config = load_config(settings=settings)  # ConfigError propagates: nothing acts on a bad config
        account_runs.check_mode(config, settings)
        trigger = ",".join(sorted({r.event_id for r in records if r.event_id}))[:512]
        acting = [r for r in records if not r.error and not r.self_caused and r.targets]
        results = self._reconcile_accounts(acting, config, settings, sink, trigger)
        targets = dict.fromkeys((r.account, t) for r in acting for t in r.targets)

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
                outcome = Outcome.worst(results[id(record)])
            if outcome.status == "ok":
                continue
            summary["failed"] += 1
            if not is_batch:
                continue
            if delivery.dead_letter(record, outcome, sink, settings, self.capability):
                summary["dead_lettered"] += 1
            else:
                failures.append({"itemIdentifier": record.message_id or ""})
                delivery.retry_soon(record, sink, settings, self.capability, self.random())
        delivery.publish(sink, trigger, settings, self.capability)
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
                reasons = "; ".join(sorted({o.message for o in results.get(id(record), []) if o.status != "ok"}))
                raise RuntimeError(f"{summary['failed']} event failed: {reasons}")
            return summary
        return {"batchItemFailures": failures}

    # -- accounts ---------------------------------------------------------------------------------
    def _reconcile_accounts(
        self, records: list[RecordIn], config: Config, settings: Settings, sink: Sink, trigger: str
    ) -> dict[int, list[Outcome]]:
        """Each record's target outcomes (by ``id(record)``), reconciled account by account: records of one
        account together (batched reads never mix accounts), in that account's scope and config
        (``rolewarden.account_runs``). A central-mode schedule's sweep is fanned out, one sweep per account."""
        results: dict[int, list[Outcome]] = {}
        parents: dict[int, RecordIn] = {}  # an inline account sweep -> the scheduled record it came from
        groups: dict[str, list[RecordIn]] = {}
        # the sweep function fans the schedule out (or an event function with no sweep queue to hand it on to)
        fans_out_here = self.sweep or not settings.sweep_queue_url
        for record in records:
            if fans_out_here and SWEEP in record.targets and account_runs.fans_out(record, config):
                parts = self._fan_out(record, config, settings, sink)
                results[id(record)] = [parts] if isinstance(parts, Outcome) else []
                for part in parts if isinstance(parts, list) else []:
                    parents[id(part)] = record
                    groups.setdefault(part.account, []).append(part)
                continue
            groups.setdefault(account_runs.account_of(record.account, settings), []).append(record)
        for account, group in groups.items():
            where = account_runs.open_account(account, config, settings, sink, self.capability)
            if isinstance(where, Outcome):
                found = {id(r): [where] for r in group}
            else:
                found = self._in_scope(where, group, settings, sink, trigger)
            for record in group:
                parent = parents.get(id(record))
                results.setdefault(id(parent or record), []).extend(found[id(record)])
        return results

    def _in_scope(
        self, where: account_runs.InAccount, records: list[RecordIn], settings: Settings, sink: Sink, trigger: str
    ) -> dict[int, list[Outcome]]:
        """Reconcile one account's records in its scope (none in single mode: RoleWarden's own clients)."""
        if where.scope is None:
            return self._reconcile(records, where.config, settings, sink, trigger)
        from rolewarden.aws import clients

        sink.account = "" if where.scope.home else where.account
        try:
            with clients.acting_in(where.scope):
                return self._reconcile(records, where.config, settings, sink, trigger)
        finally:
            sink.account = ""

    def _fan_out(self, record: RecordIn, config: Config, settings: Settings, sink: Sink) -> list[RecordIn] | Outcome:
        """Send the account sweeps to the sweep queue (nothing left to run here: an empty list), or, without
        a sweep queue, return them as records to run in this invocation; an Outcome when that failed."""
        try:
            sweeps = account_runs.fan_out(record, config, settings, self.capability, sink)
            if settings.sweep_queue_url:
                from rolewarden.aws import sqs

                sqs.send_all(settings.sweep_queue_url, [s.body() for s in sweeps])
                return []
        except Exception as exc:  # noqa: BLE001 - the scheduled record is retried: nothing is lost
            return Outcome("retry", f"could not fan the sweep out to the accounts: {exc}")
        return [
            RecordIn(
                record.message_id,
                record.body,
                record.receive_count,
                s.sweep_id,
                [SWEEP],
                account=s.account,
                account_sweep=True,
            )
            for s in sweeps
        ]

    def _reconcile(
        self, records: list[RecordIn], config: Config, settings: Settings, sink: Sink, trigger: str
    ) -> dict[int, list[Outcome]]:
        """The records of one account, reconciled together: one batch of reads for all their targets."""
        executor = Executor(
            sink=sink,
            dry_run=config.dry_run,
            sleep=self.sleep,
            trigger=trigger,
            propagation_budget=settings.propagation_wait,
        )
        run = Run(config=config, sink=sink, executor=executor, trigger=trigger, clock=self.clock, settings=settings)
        targets = list(dict.fromkeys(t for r in records for t in r.targets))
        lifecycles = {t.id: t for r in records for t in r.targets if t.lifecycle is not None}
        targets = [lifecycles.get(t.id, t) if t.kind == "instance" else t for t in targets]
        capability = capabilities.get(self.capability)
        resources = [t for t in targets if t.kind != "sweep"]
        outcomes = capability.reconcile(run, resources) if resources else {}
        if resources:
            outcomes = self._retry_throttled(run, capability, resources, outcomes)
        sweep_outcomes = self._sweeps([r for r in records if SWEEP in r.targets], run, capability, sink)
        return {
            id(r): [sweep_outcomes[id(r)] if t == SWEEP else outcomes.get(t, Outcome()) for t in r.targets]
            for r in records
        }

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
            follow = Continuation(self.capability, record.event_id, part + 1, outcome.continuation, record.account)
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


def make_handler(capability: str, *, sweep: bool = False) -> Callable[[Any, Any], dict[str, Any]]:
    """Build the Lambda entry point with Powertools logging (correlation id = event id) and metrics:
    the event function's (``sweep=False``) or the sweep function's."""
    from rolewarden.powertools import wrap

    handler = Handler(capability, sweep=sweep)
    return wrap(handler, capability)


__all__ = ["ConfigError", "Handler", "make_handler"]
