"""Play AWS's part locally: put events on moto's EventBridge so the template's own rules route them
to the stack's queues, then drain each queue into its real handler the way Lambda's SQS event source
does (batches, ReportBatchItemFailures, redelivery, redrive to the DLQ).

Two modes:
- ``Pipeline``: one poller, in-process, one batch at a time (``invoke_batch``/``drain``). By default a
  failed record is made visible again at once so a drain needs no waiting; ``honest_visibility=True``
  leaves it hidden for its visibility timeout (time-scaled), as SQS does.
- ``ParallelPipeline``: for each queue, as many poller *processes* as its event source's
  ``ScalingConfig.MaximumConcurrency`` in template.yaml; each imports the handler fresh (its own module
  state, its own clients), so invocations really overlap and their writes interleave. Failed records
  stay hidden for their visibility timeout (the queue's, or what the function set with
  ChangeMessageVisibility through the proxy), time-scaled; SQS counts receives and redrives to the DLQ.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import queue as queue_module
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from rwlocal.hostile import scale_visibility
from rwlocal.stack import ROOT, Stack

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class FakeContext:
    """The attributes of Lambda's context object that Powertools and RoleWarden read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    timeout_ms: int = 300_000  # the function's Timeout
    time_scale: float = 1.0  # simulated seconds pass 1/time_scale times faster than real ones
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = (time.monotonic() - self.started) / self.time_scale * 1000
        return max(0, int(self.timeout_ms - elapsed_ms))


@dataclass
class Consumer:
    """One function of the template and the queue it consumes."""

    logical_id: str
    queue_logical_id: str
    dlq_logical_id: str | None
    code_dir: Path
    handler_name: str
    batch_size: int = 10
    max_concurrency: int = 2  # ScalingConfig.MaximumConcurrency (AWS's minimum is 2)
    batching_window: float = 0.0  # MaximumBatchingWindowInSeconds
    timeout: int = 300  # the function's Timeout (seconds)
    _module: Any = None

    def handler(self) -> Handler:
        if self._module is None:
            path = self.code_dir / "app.py"
            spec = importlib.util.spec_from_file_location(f"rw_fn_{self.logical_id}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._module = module
        return getattr(self._module, self.handler_name)  # type: ignore[no-any-return]

    def runtime(self) -> Any:
        """The rolewarden.runtime.Handler behind the entry point (its last_sink, its sleep)."""
        return getattr(self.handler(), "handler")  # noqa: B009 - set by rolewarden.powertools.wrap


def consumers(template: dict[str, Any]) -> dict[str, Consumer]:
    """Every function with an SQS event, read from the template (one source of truth)."""
    found: dict[str, Consumer] = {}
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in props.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue_ref = event["Properties"]["Queue"]["Fn::GetAtt"]
            queue_id = queue_ref[0] if isinstance(queue_ref, list) else queue_ref.split(".")[0]
            redrive = resources[queue_id]["Properties"].get("RedrivePolicy", {})
            dlq_ref = redrive.get("deadLetterTargetArn", {}).get("Fn::GetAtt")
            dlq_id = (dlq_ref[0] if isinstance(dlq_ref, list) else dlq_ref.split(".")[0]) if dlq_ref else None
            _module, _, func = props["Handler"].partition(".")
            source = event["Properties"]
            timeout = props.get("Timeout", template.get("Globals", {}).get("Function", {}).get("Timeout", 300))
            found[logical_id] = Consumer(
                logical_id=logical_id,
                queue_logical_id=queue_id,
                dlq_logical_id=dlq_id,
                code_dir=ROOT / props["CodeUri"],
                handler_name=func,
                batch_size=int(source.get("BatchSize", 10)),
                max_concurrency=int(source.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
                batching_window=float(source.get("MaximumBatchingWindowInSeconds", 0)),
                timeout=int(timeout) if isinstance(timeout, int | str) and str(timeout).isdigit() else 300,
            )
    return found


def put_events(events: Iterable[dict[str, Any]]) -> int:
    """PutEvents on the default bus, 10 entries a request (the API's limit). Returns entries sent."""
    client = boto3.client("events")
    batch: list[dict[str, Any]] = []
    sent = 0

    def flush() -> None:
        nonlocal sent
        if not batch:
            return
        response = client.put_events(Entries=batch)
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents rejected entries: {response['Entries']}")
        sent += len(batch)
        batch.clear()

    for event in events:
        batch.append(
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event.get("detail", {})),
                "Resources": list(event.get("resources", [])),
                "Time": datetime.now(UTC),
            }
        )
        if len(batch) == 10:
            flush()
    flush()
    return sent


def fire_schedule(stack: Stack, rule_logical_id: str) -> None:
    """Send the Scheduled Event a rule's schedule would (see rwlocal.stack._pin_schedules)."""
    rule = boto3.client("events").describe_rule(Name=stack.physical(rule_logical_id))
    put_events([{"source": "aws.events", "detail-type": "Scheduled Event", "resources": [rule["Arn"]], "detail": {}}])


@contextmanager
def function_env(env: dict[str, str], overrides: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in {**env, **overrides}}
    os.environ.update(env)
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class DrainStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    batch_seconds: list[float] = field(default_factory=list)


class Pipeline:
    """Feeds the stack's queues to the real handlers. ``env_overrides`` replaces deployed settings that
    point inside Lambda (ROLEWARDEN_CONFIG=/opt/... becomes a local file)."""

    def __init__(
        self,
        stack: Stack,
        env_overrides: dict[str, str] | None = None,
        on_batch: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None,
        honest_visibility: bool = False,
        time_scale: float = 1.0,
    ) -> None:
        self.stack = stack
        self.honest_visibility = honest_visibility
        self.time_scale = time_scale
        self.consumers = consumers(stack.template)
        self.env_overrides = dict(env_overrides or {})
        self.on_batch = on_batch
        self.sqs = boto3.client("sqs")
        self._env: dict[str, dict[str, str]] = {}
        self._visibility: dict[str, int] = {}
        self.stats = DrainStats()

    def queue_url(self, logical_id: str) -> str:
        return self.stack.physical(logical_id)

    def depth(self, logical_id: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def dlq_messages(self, consumer_id: str) -> list[dict[str, Any]]:
        """Read (without deleting for good) what sits in a consumer's DLQ."""
        dlq = self.consumers[consumer_id].dlq_logical_id
        if dlq is None:
            return []
        messages: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(50):
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url(dlq), MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
            )
            batch = [m for m in got.get("Messages", []) if m["MessageId"] not in seen]
            if not batch:
                break
            for message in batch:
                seen.add(message["MessageId"])
                messages.append(dict(message))
        return messages

    def visibility_timeout(self, queue_logical_id: str) -> int:
        """The queue's own VisibilityTimeout (seconds, as deployed; read once)."""
        if queue_logical_id not in self._visibility:
            self._visibility[queue_logical_id] = queue_visibility(self.sqs, self.queue_url(queue_logical_id))
        return self._visibility[queue_logical_id]

    def invoke_batch(self, consumer_id: str, max_messages: int | None = None) -> int:
        """Receive one batch from the consumer's queue and invoke its handler. Returns records handled."""
        consumer = self.consumers[consumer_id]
        url = self.queue_url(consumer.queue_logical_id)
        extra: dict[str, Any] = {}
        if self.honest_visibility:
            extra["VisibilityTimeout"] = scale_visibility(
                self.visibility_timeout(consumer.queue_logical_id), self.time_scale
            )
        got = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, max_messages or consumer.batch_size),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            **extra,
        )
        messages = got.get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(url, messages)
        if consumer_id not in self._env:
            self._env[consumer_id] = self.stack.function_environment(consumer_id)
        started = time.perf_counter()
        context = FakeContext(
            self.stack.physical(consumer_id), timeout_ms=consumer.timeout * 1000, time_scale=self.time_scale
        )
        with function_env(self._env[consumer_id], self.env_overrides):
            try:
                response = consumer.handler()(event, context)
            except Exception as exc:  # noqa: BLE001 - Lambda fails the whole batch on an exception
                response = {
                    "batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages],
                    "error": repr(exc),
                }
        self.stats.batch_seconds.append(time.perf_counter() - started)
        self.stats.invocations += 1
        self.stats.records += len(messages)
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        self.stats.failures += len(failed)
        if self.on_batch is not None:
            self.on_batch(consumer_id, event, response or {})
        for message in messages:
            if message["MessageId"] in failed and self.honest_visibility:
                continue  # hidden until its visibility timeout (or the one the function set) ends
            if message["MessageId"] in failed:
                # Lambda leaves a failed message to reappear after its visibility timeout; locally it
                # reappears at once so a drain needs no waiting.
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def drain(self, consumer_ids: Iterable[str] | None = None, max_batches: int = 10_000) -> DrainStats:
        """Invoke handlers until every named queue is empty (or ``max_batches`` is reached)."""
        ids = list(consumer_ids or self.consumers)
        for _ in range(max_batches):
            handled = sum(self.invoke_batch(consumer_id) for consumer_id in ids)
            if handled == 0 and all(self.depth(self.consumers[c].queue_logical_id) == 0 for c in ids):
                break
            if handled == 0 and self.honest_visibility:
                time.sleep(0.05)  # records hidden by their visibility timeout: wait for them
        return self.stats


def queue_visibility(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    return int(attrs.get("VisibilityTimeout", 30))


def sqs_event(url: str, messages: Iterable[Any]) -> dict[str, Any]:
    """The event Lambda's SQS poller hands the function for these messages."""
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[-1]}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


# -- parallel pollers ---------------------------------------------------------------------------------
@dataclass
class PollerSpec:
    """What one poller process needs (picklable: it crosses a spawn)."""

    consumer_id: str
    index: int
    queue_url: str
    code_dir: str
    handler_name: str
    function_name: str
    batch_size: int
    batching_window: float  # simulated seconds
    timeout: int  # the function's Timeout, simulated seconds
    visibility: int  # the queue's VisibilityTimeout, simulated seconds
    sqs_endpoint: str  # the poller's own SQS calls (Lambda's poller is not RoleWarden: not faulted)
    env: dict[str, str]  # the function's environment, overrides applied (AWS_ENDPOINT_URL: the proxy)
    time_scale: float


@dataclass
class Invocation:
    """One handler invocation, as a poller process reported it."""

    consumer_id: str
    poller: str  # "<consumer>#<index>"
    pid: int
    started: float  # time.time() in the poller, real seconds
    ended: float
    records: int
    failed: list[str]
    receive_counts: list[int]
    message_ids: list[str] = field(default_factory=list)
    error: str = ""


def _poller_main(spec: PollerSpec, results: Any, stop: Any) -> None:
    """A poller process: Lambda's SQS event source for one concurrent container of a function."""
    import logging
    import types

    import botocore.endpoint

    os.environ.update(spec.env)
    scale = spec.time_scale
    # botocore's backoff and RoleWarden's own waits run on the same simulated clock as everything else
    botocore.endpoint.time = types.SimpleNamespace(  # type: ignore[attr-defined]
        sleep=lambda seconds: time.sleep(seconds * scale)
    )
    logging.getLogger("rolewarden").setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper())
    path = Path(spec.code_dir) / "app.py"
    module_spec = importlib.util.spec_from_file_location(f"rw_fn_{spec.consumer_id}_{spec.index}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    handler = getattr(module, spec.handler_name)
    runtime = getattr(handler, "handler", None)
    if runtime is not None and hasattr(runtime, "sleep"):
        runtime.sleep = lambda seconds: time.sleep(seconds * scale)
    sqs = boto3.session.Session().client("sqs", endpoint_url=spec.sqs_endpoint)
    visibility = scale_visibility(spec.visibility, scale)
    name = f"{spec.consumer_id}#{spec.index}"
    results.put(("ready", name, os.getpid()))
    while not stop.is_set():
        messages: list[Any] = []
        window_ends = time.monotonic() + spec.batching_window * scale
        while len(messages) < spec.batch_size:
            got = sqs.receive_message(
                QueueUrl=spec.queue_url,
                MaxNumberOfMessages=min(10, spec.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=visibility,
            ).get("Messages", [])
            messages.extend(got)
            if not got and (not messages or time.monotonic() >= window_ends):
                break
            if not got:
                time.sleep(0.01)
        if not messages:
            stop.wait(0.05)
            continue
        event = sqs_event(spec.queue_url, messages)
        context = FakeContext(spec.function_name, timeout_ms=spec.timeout * 1000, time_scale=scale)
        started = time.time()
        error = ""
        try:
            response = handler(event, context) or {}
        except Exception as exc:  # noqa: BLE001 - Lambda fails the whole batch on an exception
            response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
            error = repr(exc)
        ended = time.time()
        failed = [str(item.get("itemIdentifier")) for item in response.get("batchItemFailures", [])]
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=spec.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
        counts = [int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) for m in messages]
        results.put(
            (
                "invocation",
                Invocation(
                    spec.consumer_id,
                    name,
                    os.getpid(),
                    started,
                    ended,
                    len(messages),
                    failed,
                    counts,
                    [m["MessageId"] for m in messages],
                    error,
                ),
            )
        )


class ParallelPipeline:
    """Lambda's SQS event source with the template's concurrency: for each consumer queue,
    ``MaximumConcurrency`` poller processes (override with ``concurrency``). RoleWarden's clients in the
    pollers use ``env_overrides["AWS_ENDPOINT_URL"]`` (point it at a ``ChaosProxy`` to share its faults,
    buckets and lags between every poller); the pollers' own receives and deletes go to ``sqs_endpoint``.

    ``with ParallelPipeline(stack, overrides, time_scale=0.01) as pp: pp.wait_quiet(); pp.invocations``
    """

    def __init__(
        self,
        stack: Stack,
        env_overrides: dict[str, str] | None = None,
        *,
        time_scale: float = 1.0,
        consumer_ids: Iterable[str] | None = None,
        concurrency: dict[str, int] | None = None,
        sqs_endpoint: str | None = None,
    ) -> None:
        self.stack = stack
        self.consumers = consumers(stack.template)
        self.consumer_ids = list(consumer_ids or self.consumers)
        self.env_overrides = dict(env_overrides or {})
        self.time_scale = time_scale
        self.concurrency = dict(concurrency or {})
        self.sqs_endpoint = sqs_endpoint or os.environ.get("AWS_ENDPOINT_URL", "")
        self.sqs = boto3.client("sqs")
        self.invocations: list[Invocation] = []
        self.ready: list[str] = []
        self._ctx = multiprocessing.get_context("spawn")
        self._results: Any = None
        self._stop: Any = None
        self._processes: list[Any] = []
        self._collector: threading.Thread | None = None
        self._lock = threading.Lock()

    def specs(self) -> list[PollerSpec]:
        found = []
        for consumer_id in self.consumer_ids:
            consumer = self.consumers[consumer_id]
            url = self.stack.physical(consumer.queue_logical_id)
            env = {**self.stack.function_environment(consumer_id), **self.env_overrides}
            visibility = queue_visibility(self.sqs, url)
            for index in range(self.concurrency.get(consumer_id, consumer.max_concurrency)):
                found.append(
                    PollerSpec(
                        consumer_id=consumer_id,
                        index=index,
                        queue_url=url,
                        code_dir=str(consumer.code_dir),
                        handler_name=consumer.handler_name,
                        function_name=self.stack.physical(consumer_id),
                        batch_size=consumer.batch_size,
                        batching_window=consumer.batching_window,
                        timeout=consumer.timeout,
                        visibility=visibility,
                        sqs_endpoint=self.sqs_endpoint,
                        env=env,
                        time_scale=self.time_scale,
                    )
                )
        return found

    def start(self, ready_timeout: float = 120.0) -> ParallelPipeline:
        self._results = self._ctx.Queue()
        self._stop = self._ctx.Event()
        for spec in self.specs():
            process = self._ctx.Process(
                target=_poller_main, args=(spec, self._results, self._stop), name=f"poller-{spec.consumer_id}"
            )
            process.daemon = True
            process.start()
            self._processes.append(process)
        self._collector = threading.Thread(target=self._collect, name="poller-results", daemon=True)
        self._collector.start()
        deadline = time.monotonic() + ready_timeout
        while len(self.ready) < len(self._processes):
            if time.monotonic() > deadline or not all(p.is_alive() for p in self._processes):
                self.stop()
                raise RuntimeError(f"pollers did not start: {len(self.ready)} of {len(self._processes)} ready")
            time.sleep(0.05)
        return self

    def _collect(self) -> None:
        while True:
            try:
                item = self._results.get(timeout=0.2)
            except queue_module.Empty:
                if self._stop is None or (self._stop.is_set() and not any(p.is_alive() for p in self._processes)):
                    return
                continue
            except (EOFError, OSError):
                return
            with self._lock:
                if item[0] == "ready":
                    self.ready.append(item[1])
                else:
                    self.invocations.append(item[1])

    def depth(self, consumer_id: str) -> int:
        url = self.stack.physical(self.consumers[consumer_id].queue_logical_id)
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def quiet(self) -> bool:
        """Every queue empty: nothing visible, nothing in flight or hidden, nothing delayed."""
        return all(self.depth(c) == 0 for c in self.consumer_ids)

    def wait_quiet(self, timeout: float, poll: float = 0.2) -> bool:
        """Wait until the queues stay empty over two looks ``poll`` seconds apart. False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.quiet():
                time.sleep(poll)
                if self.quiet():
                    return True
            time.sleep(poll)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        if self._stop is not None:
            self._stop.set()
        for process in self._processes:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(5)
        if self._collector is not None:
            self._collector.join(5)
        self._processes.clear()

    def __enter__(self) -> ParallelPipeline:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
