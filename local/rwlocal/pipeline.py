"""Play AWS's part locally: put events on moto's EventBridge so the template's own rules route them
to the stack's queues, then drain each queue into its real handler, in-process, the way Lambda's SQS
event source does (batches of up to 10, ReportBatchItemFailures, redelivery, redrive to the DLQ)."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from rwlocal.stack import ROOT, Stack

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class FakeContext:
    """The attributes of Lambda's context object that Powertools and RoleWarden read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Consumer:
    """One function of the template and the queue it consumes."""

    logical_id: str
    queue_logical_id: str
    dlq_logical_id: str | None
    code_dir: Path
    handler_name: str
    batch_size: int = 10
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
            found[logical_id] = Consumer(
                logical_id=logical_id,
                queue_logical_id=queue_id,
                dlq_logical_id=dlq_id,
                code_dir=ROOT / props["CodeUri"],
                handler_name=func,
                batch_size=int(event["Properties"].get("BatchSize", 10)),
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
    ) -> None:
        self.stack = stack
        self.consumers = consumers(stack.template)
        self.env_overrides = dict(env_overrides or {})
        self.on_batch = on_batch
        self.sqs = boto3.client("sqs")
        self._env: dict[str, dict[str, str]] = {}
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

    def invoke_batch(self, consumer_id: str, max_messages: int | None = None) -> int:
        """Receive one batch from the consumer's queue and invoke its handler. Returns records handled."""
        import time

        consumer = self.consumers[consumer_id]
        url = self.queue_url(consumer.queue_logical_id)
        got = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max_messages or consumer.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = got.get("Messages", [])
        if not messages:
            return 0
        queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[-1]}"
        event = {
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
        if consumer_id not in self._env:
            self._env[consumer_id] = self.stack.function_environment(consumer_id)
        started = time.perf_counter()
        with function_env(self._env[consumer_id], self.env_overrides):
            try:
                response = consumer.handler()(event, FakeContext(self.stack.physical(consumer_id)))
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
        return self.stats
