"""Scenario 1, launch_burst: in an account that already holds EXISTING instances, LAUNCHES instances
start with tags; their state-change events go through the template's EventBridge rule and SQS queue to
the real handler in batches of 10, as Lambda's SQS event source delivers them (rwlocal.pipeline).

Counted: every AWS call the handler makes (its module's clients), not the local poller's
ReceiveMessage/DeleteMessage, which are Lambda's side. One event per instance, the "running" state
change; EC2 also sends "pending" first, which RoleWarden answers with a read and no write (see notes).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench import counting
from bench.common import PROFILE_CONFIG, WEB_TAGS, Context, Result, percentile, seed_instances

NAME = "launch_burst"
REQUIRES = None
CONSUMER = "InstanceProfilesFunction"


def sizes(small: bool) -> dict[str, int]:
    return {"existing": 200, "launches": 100} if small else {"existing": 5000, "launches": 1000}


def run(ctx: Context, existing: int, launches: int) -> Result:
    from rwlocal import world
    from rwlocal.pipeline import Pipeline, put_events

    result = Result(NAME, sizes={"existing_instances": existing, "launched_instances": launches, "batch_size": 10})
    config, stack = ctx.deploy("launch-burst.yaml", PROFILE_CONFIG)
    world.create_profile("web-server")
    # The account's other instances belong to another team: no rule matches them.
    seed_instances(existing, {"team": "batch", "env": "prod"})
    log_path = ctx.handler_log_path
    pipeline = Pipeline(
        stack,
        env_overrides={"ROLEWARDEN_CONFIG": str(config), "ROLEWARDEN_PROPAGATION_WAIT": "0"},
    )
    consumer = pipeline.consumers[CONSUMER]
    calls: Counter[str] = Counter()
    with ctx.handler_stdout():
        # The handler module is imported (its Powertools Logger binds to stdout) inside the redirect, so
        # its JSON log lines and EMF metrics go to a file as they would go to CloudWatch.
        module = _load(pipeline, consumer)
        module.lambda_handler = counting.counted(module.lambda_handler, calls)
        launched = seed_instances(launches, WEB_TAGS, chunk=250)
        started = time.perf_counter()
        put_events(world.state_change_event(i, "running") for i in launched)
        stats = pipeline.drain([CONSUMER])
        wall = time.perf_counter() - started
    attached = world.attached_profiles()
    correct = sum(1 for i in launched if attached.get(i) == "web-server")
    total = sum(calls.values())
    per_instance = total / launches
    batches = stats.batch_seconds
    result.figures = {
        "calls_per_launched_instance": round(per_instance, 4),
        "calls_total": total,
        "wall_seconds": round(wall, 2),
        "invocations": stats.invocations,
        "records": stats.records,
        "failed_records": stats.failures,
        "batch_p50_ms": round(percentile(batches, 50) * 1000, 1),
        "batch_p99_ms": round(percentile(batches, 99) * 1000, 1),
        "launched_with_profile": f"{correct}/{launches}",
    }
    result.calls = dict(sorted(calls.items()))
    result.goal("AWS calls per launched instance", round(per_instance, 4), "<=", 1.1)
    result.goal("launched instances with their profile", correct, "==", launches)
    floor_reads = -(-launches // 10)
    result.notes.append(
        f"floor: {launches} associations + 1 DescribeInstances per batch of 10 ="
        f" {(launches + floor_reads) / launches:.3f}"
        " calls an instance; RoleWarden also reads each desired profile and its role's policies once per warm"
        " container for the tag guard (GetInstanceProfile, ListAttachedRolePolicies, ListRolePolicies, cached 60 s)."
    )
    result.notes.append(
        "EC2 sends a 'pending' state change before 'running'; the rule forwards both. RoleWarden answers a pending"
        " instance with 'wait' after a DescribeInstances, so with both events a launch costs about 0.1 more reads."
    )
    result.notes.append(f"handler log lines: {log_path}")
    return result


def _load(pipeline: Any, consumer: Any) -> Any:
    """Import the consumer's app.py with the function's environment, as Lambda's init phase would."""
    from rwlocal.pipeline import function_env

    env = pipeline.stack.function_environment(consumer.logical_id)
    with function_env(env, pipeline.env_overrides):
        consumer.handler()
    return consumer._module
