"""The local Lambda poller, made as hostile as the real one: parallel pollers per queue (as many as the
event source's ScalingConfig.MaximumConcurrency in template.yaml, each a process with its own module
state) whose invocations really overlap, and failed records hidden for their visibility timeout (the
queue's, or the one the function set with ChangeMessageVisibility), time-scaled, with SQS's receive
counts and redrive. The handlers here are small stand-ins written per test (what they do is the
point: block on a barrier, fail, set visibility); the pipeline around them is the real one."""

from __future__ import annotations

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


def test_a_failed_record_stays_hidden_for_the_queues_visibility_timeout(aws: Any, tmp_path: Path) -> None:
    stack = st.deploy()
    scale = 0.002  # the queue's 1,800 s become a few real seconds
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
    assert pipeline.visibility_timeout(QUEUE) * scale >= 2  # long enough for the next line to run first
    boto3.client("sqs").send_message(QueueUrl=stack.physical(QUEUE), MessageBody="x")
    assert pipeline.invoke_batch(CONSUMER) == 1
    assert pipeline.invoke_batch(CONSUMER) == 0  # failed, so hidden: not received again at once
    assert pipeline.depth(QUEUE) == 1  # but not lost
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
                    QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=record["receiptHandle"], VisibilityTimeout=100
                )
                failed.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failed}
"""


def test_the_visibility_the_function_sets_is_honoured_not_the_queues(aws: Any, tmp_path: Path) -> None:
    """The queue hides a failed record 1,800 s (18 s real at this scale); the function sets 100 s
    (1 s real). The record comes back in time only if the function's setting is honoured."""
    stack = st.deploy()
    scale = 0.01
    url = stack.physical(QUEUE)
    with ChaosProxy(aws.port, hostility=Hostility(time_scale=scale, buckets=False, iam_lag=0, ec2_lag=0)) as proxy:
        pipeline = ParallelPipeline(
            stack,
            {"AWS_ENDPOINT_URL": proxy.endpoint, "QUEUE_URL": url},
            time_scale=scale,
            consumer_ids=[CONSUMER],
            concurrency={CONSUMER: 1},
        )
        pipeline.consumers[CONSUMER].code_dir = _handler(tmp_path, SET_VISIBILITY)
        with pipeline:
            boto3.client("sqs").send_message(QueueUrl=url, MessageBody="x")
            assert pipeline.wait_quiet(timeout=12), "the record waited for the queue's timeout, not the function's"
        assert proxy.stats.injected["visibility-scaled:ChangeMessageVisibility"] == 1
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
