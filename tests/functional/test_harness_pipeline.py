"""The local Lambda poller, made as hostile as the real one: parallel pollers per queue (as many as the
event source's ScalingConfig.MaximumConcurrency in template.yaml, each a process with its own module
state) whose invocations really overlap, and failed records hidden for their visibility timeout (the
queue's, or the one the function set with ChangeMessageVisibility), time-scaled, with SQS's receive
counts and redrive. The handlers here are small stand-ins written per test (what they do is the
point: block on a barrier, fail, set visibility); the pipeline around them is the real one."""

from __future__ import annotations

import math
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3

from rwlocal import stack as st
from rwlocal.hostile import Hostility
from rwlocal.pipeline import ParallelPipeline, Pipeline
from rwlocal.proxy import ChaosProxy

CONSUMER = "BucketGrantsFunction"
QUEUE = "BucketGrantsQueue"


def _handler(tmp_path: Path, code: str) -> Path:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(textwrap.dedent(code))
    return folder


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


BARRIER = """
    import os, pathlib, time
    STATE = {"calls": 0}  # module state: one per poller process
    def lambda_handler(event, context):
        STATE["calls"] += 1
        folder = pathlib.Path(os.environ["BARRIER_DIR"])
        (folder / f"{os.getpid()}-{STATE['calls']}").write_text("")
        deadline = time.monotonic() + 60
        while len(list(folder.iterdir())) < 2:  # wait until another invocation is running too
            if time.monotonic() > deadline:
                return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
            time.sleep(0.02)
        return {"batchItemFailures": []}
"""


def test_pollers_follow_the_template_and_two_invocations_overlap(aws: Any, tmp_path: Path) -> None:
    """The first invocation blocks until a second one runs: it can only succeed if two pollers
    (processes) run the handler at the same time."""
    stack = st.deploy()
    template_concurrency = stack.template["Resources"][CONSUMER]["Properties"]["Events"]
    (source,) = [e["Properties"] for e in template_concurrency.values() if e["Type"] == "SQS"]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    pipeline = ParallelPipeline(stack, {"BARRIER_DIR": str(barrier)}, consumer_ids=[CONSUMER])
    pipeline.consumers[CONSUMER].code_dir = _handler(tmp_path, BARRIER)
    url = stack.physical(QUEUE)
    sqs = boto3.client("sqs")
    with pipeline:
        assert len(pipeline.ready) == source["ScalingConfig"]["MaximumConcurrency"]
        sqs.send_message(QueueUrl=url, MessageBody="first")
        assert _wait_for(lambda: any(barrier.iterdir()), 60), "no poller took the first message"
        sqs.send_message(QueueUrl=url, MessageBody="second")  # the first poller is busy: another takes it
        assert pipeline.wait_quiet(timeout=90)
    first, second = sorted(pipeline.invocations, key=lambda i: i.started)
    assert first.failed == [] and second.failed == []  # neither waited in vain
    assert first.pid != second.pid
    assert second.started < first.ended  # they overlapped


FAIL_ALWAYS = """
    def lambda_handler(event, context):
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
"""


def _hidden_for_ms(queue_url: str) -> list[float]:
    """How long moto will still hide each message of the queue (ms; read from the in-process moto server's
    state, so no assertion here depends on how long anything took)."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].get_queue(queue_url.rsplit("/", 1)[-1])
    now = unix_time_millis()
    return [message.visible_at - now for message in queue._messages]


def test_a_failed_record_stays_hidden_for_the_queues_visibility_timeout(aws: Any, tmp_path: Path) -> None:
    stack = st.deploy()
    scale = 0.002  # the queue's 1,800 s become 4 real seconds
    seen: list[int] = []
    pipeline = Pipeline(
        stack,
        honest_visibility=True,
        time_scale=scale,
        on_batch=lambda _c, event, _r: seen.extend(
            int(r["attributes"]["ApproximateReceiveCount"]) for r in event["Records"]
        ),
    )
    pipeline.consumers[CONSUMER].code_dir = _handler(tmp_path, FAIL_ALWAYS)
    url = stack.physical(QUEUE)
    hidden_ms = math.ceil(pipeline.visibility_timeout(QUEUE) * scale) * 1000
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody="x")
    assert pipeline.invoke_batch(CONSUMER) == 1
    (left,) = _hidden_for_ms(url)
    assert hidden_ms - 1000 < left <= hidden_ms  # hidden for the queue's (scaled) timeout, not made visible
    assert pipeline.depth(QUEUE) == 1  # and not lost
    assert _wait_for(lambda: pipeline.invoke_batch(CONSUMER) == 1, 60)
    assert seen == [1, 2]  # SQS counted the receives


SET_VISIBILITY = """
    import os, boto3
    def lambda_handler(event, context):
        sqs = boto3.client("sqs")  # through AWS_ENDPOINT_URL: the proxy, which scales the timeout
        failed = []
        for record in event["Records"]:
            if record["attributes"]["ApproximateReceiveCount"] == "1":
                sqs.change_message_visibility(
                    QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=record["receiptHandle"], VisibilityTimeout=300
                )
                failed.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failed}
"""


def test_the_visibility_the_function_sets_is_honoured_not_the_queues(aws: Any, tmp_path: Path) -> None:
    """The queue hides a failed record 1,800 s; the function sets 300 s, which the proxy scales like every
    other wait; the record is hidden for that, then received again."""
    stack = st.deploy()
    scale = 0.01
    url = stack.physical(QUEUE)
    hostility = Hostility(time_scale=scale, buckets=False, iam_lag=0, ec2_lag=0)
    with ChaosProxy(aws.port, hostility=hostility) as proxy:
        pipeline = Pipeline(
            stack,
            {"AWS_ENDPOINT_URL": proxy.endpoint, "QUEUE_URL": url},
            honest_visibility=True,
            time_scale=scale,
        )
        pipeline.consumers[CONSUMER].code_dir = _handler(tmp_path, SET_VISIBILITY)
        boto3.client("sqs").send_message(QueueUrl=url, MessageBody="x")
        assert pipeline.invoke_batch(CONSUMER) == 1
        (left,) = _hidden_for_ms(url)
        assert 2000 < left <= 3000  # 300 s scaled, not the queue's 1,800 s (18,000 ms)
        assert proxy.stats.visibility_set == {300: 1}
        assert _wait_for(lambda: pipeline.invoke_batch(CONSUMER) == 1, 60)
        assert pipeline.depth(QUEUE) == 0  # the second receive succeeded and was deleted


def test_parallel_pollers_honour_the_visibility_the_function_sets(aws: Any, tmp_path: Path) -> None:
    """The same through poller processes: each process's function calls go through the shared proxy."""
    stack = st.deploy()
    scale = 0.01
    url = stack.physical(QUEUE)
    hostility = Hostility(time_scale=scale, buckets=False, iam_lag=0, ec2_lag=0)
    with ChaosProxy(aws.port, hostility=hostility) as proxy:
        pipeline = ParallelPipeline(
            stack, {"AWS_ENDPOINT_URL": proxy.endpoint, "QUEUE_URL": url}, time_scale=scale, consumer_ids=[CONSUMER]
        )
        pipeline.consumers[CONSUMER].code_dir = _handler(tmp_path, SET_VISIBILITY)
        with pipeline:
            boto3.client("sqs").send_message(QueueUrl=url, MessageBody="x")
            assert pipeline.wait_quiet(timeout=120)
        assert proxy.stats.visibility_set == {300: 1}
    assert sorted(c for i in pipeline.invocations for c in i.receive_counts) == [1, 2]


def test_parallel_pollers_redrive_a_record_that_keeps_failing(aws: Any, tmp_path: Path) -> None:
    stack = st.deploy()
    max_receive = int(stack.template["Parameters"]["MaxReceiveCount"]["Default"])
    pipeline = ParallelPipeline(stack, time_scale=0.0005, consumer_ids=[CONSUMER])
    pipeline.consumers[CONSUMER].code_dir = _handler(tmp_path, FAIL_ALWAYS)
    dlq = stack.physical(pipeline.consumers[CONSUMER].dlq_logical_id or "")
    with pipeline:
        boto3.client("sqs").send_message(QueueUrl=stack.physical(QUEUE), MessageBody="x")
        assert pipeline.wait_quiet(timeout=120)
    counts = sorted(c for i in pipeline.invocations for c in i.receive_counts)
    assert counts == list(range(1, max_receive + 1))
    moved = boto3.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in moved] == ["x"]
