"""Scenario launch_burst_limited: LAUNCHES instances scale out through Auto Scaling with a launch lifecycle
hook; their "EC2 Instance-launch Lifecycle Action" events go through the template's EventBridge rule and
queue to the instance-profiles function, polled by as many poller processes as the event source's
MaximumConcurrency (rwlocal.pipeline.ParallelPipeline), in batches of the template's BatchSize. Every
AWS call of the function goes through the hostile proxy (rwlocal.proxy) with EC2's documented token
buckets shared by all pollers; the proxy answers the lifecycle-hook calls Auto Scaling would.

Before the burst, one launch on a quiet system measures ``single_launch_latency_s`` (event to CONTINUE).
Figures are in simulated seconds (``time_scale`` 1: real seconds). Only the lifecycle events are sent:
EC2's own state-change events for the same instances would add one DescribeInstances a batch and no
write (the instance is already right), see launch_burst.
"""

from __future__ import annotations

import time
import uuid

from bench.common import PROFILE_CONFIG, WEB_TAGS, Context, Result, percentile
from bench.limited import ASSOCIATE, Snapshot, harness_env, hostile_proxy, last_write_after, wait_until

NAME = "launch_burst_limited"
REQUIRES = None
CONSUMER = "InstanceProfilesFunction"
GOAL_RATIO = 1.2
GOAL_THROTTLED = 0.05
GOAL_CALLS = 1.02


def sizes(small: bool) -> dict[str, float]:
    return {"launches": 60, "time_scale": 0.05} if small else {"launches": 1000, "time_scale": 1.0}


def run(ctx: Context, launches: int, time_scale: float = 1.0) -> Result:
    from rwlocal import world
    from rwlocal.chaos import HOOK_GROUP, HOOK_NAME, lifecycle_event
    from rwlocal.pipeline import ParallelPipeline, consumers, put_events
    from rwlocal.throttling import EC2_BUCKETS, floor_seconds

    launches = int(launches)
    config, stack = ctx.deploy("launch-burst-limited.yaml", PROFILE_CONFIG)
    consumer = consumers(stack.template)[CONSUMER]
    result = Result(
        NAME,
        sizes={
            "launched_instances": launches,
            "time_scale": time_scale,
            "batch_size": consumer.batch_size,
            "batching_window_s": consumer.batching_window,
            "pollers": consumer.max_concurrency,
        },
    )
    world.create_profile("web-server")
    single = world.run_instances(1, WEB_TAGS)
    burst: list[str] = []
    while len(burst) < launches:
        burst += world.run_instances(min(250, launches - len(burst)), WEB_TAGS)
    with hostile_proxy(ctx.aws.port, time_scale) as proxy:
        overrides = harness_env(config, proxy, time_scale)
        with ParallelPipeline(stack, overrides, time_scale=time_scale, consumer_ids=[CONSUMER]) as pipeline:
            # one launch on a quiet system
            token = str(uuid.uuid4())
            proxy.hooks.register(single[0], HOOK_NAME, HOOK_GROUP, 3600.0, token=token)
            put_events([lifecycle_event(single[0], token)])
            wait_until(lambda: proxy.hooks.outcome_of(single[0]) is not None, timeout=120 * max(1.0, time_scale))
            quiet = proxy.hooks.outcome_of(single[0])
            pipeline.wait_quiet(60)
            time.sleep(max(1.0, 20 * time_scale))  # the buckets refill to full
            before = Snapshot.of(proxy)
            # the burst: every hook starts waiting, then Auto Scaling's events arrive
            tokens = {i: str(uuid.uuid4()) for i in burst}
            for instance_id, tok in tokens.items():
                proxy.hooks.register(instance_id, HOOK_NAME, HOOK_GROUP, 3600.0, token=tok)
            started_real = time.monotonic()
            started_wall = time.time()
            put_events(lifecycle_event(i, tok) for i, tok in tokens.items())
            done = wait_until(
                lambda: all(proxy.hooks.outcome_of(i) is not None for i in burst),
                timeout=(floor_seconds(launches, EC2_BUCKETS[ASSOCIATE]) * 3 + 300) * time_scale + 60,
                poll=0.5,
            )
            pipeline.wait_quiet(120)
            delta = Snapshot.of(proxy).since(before)
            invocations = [i for i in pipeline.invocations if i.started >= started_wall]
        last = last_write_after(proxy, ASSOCIATE, started_real)
    attached = world.attached_profiles(burst)
    right = sum(1 for i in burst if attached.get(i) == "web-server")
    outcomes = [proxy.hooks.outcome_of(i) for i in burst]
    waits = [o.waited for o in outcomes if o is not None]
    continued = sum(1 for o in outcomes if o is not None and o.result == "CONTINUE" and o.how == "completed")
    spec = EC2_BUCKETS[ASSOCIATE]
    floor = floor_seconds(launches, spec)
    seconds = (last / time_scale) if last is not None else float("nan")
    ec2_attempts = delta.attempts["ec2"]
    calls_total = sum(delta.attempts.values())
    result.figures = {
        "seconds_to_all_attached": round(seconds, 1),
        "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(seconds / floor, 3) if floor else None,
        "calls_total": calls_total,
        "ec2_calls_total": ec2_attempts,
        "calls_per_launched_instance": round(ec2_attempts / launches, 4),
        "all_calls_per_launched_instance": round(calls_total / launches, 4),
        "throttled_fraction": delta.throttled_fraction("ec2"),
        "hook_wait_p50_s": round(percentile(waits, 50), 1),
        "hook_wait_p99_s": round(percentile(waits, 99), 1),
        "single_launch_latency_s": round(quiet.waited, 2) if quiet is not None else None,
        "instances_right": right,
        "hooks_continued": continued,
        "invocations": len(invocations),
        "failed_records": sum(len(i.failed) for i in invocations),
        "all_hooks_ended": done,
    }
    result.calls = {"attempts_by_service": dict(sorted(delta.attempts.items())), "by_operation": delta.by_operation()}
    result.goal("seconds to all attached / floor", result.figures["ratio_to_floor"] or 0, "<=", GOAL_RATIO)
    result.goal("throttled fraction of EC2 calls", result.figures["throttled_fraction"], "<=", GOAL_THROTTLED)
    result.goal(
        "EC2 calls per launched instance (every attempt)",
        result.figures["calls_per_launched_instance"],
        "<=",
        GOAL_CALLS,
    )
    result.goal(
        "single launch latency, s (window + 2)",
        result.figures["single_launch_latency_s"] or float("inf"),
        "<=",
        consumer.batching_window + 2,
    )
    result.goal("launched instances with their profile", right, "==", launches)
    result.notes.append(
        f"floor: ({launches} - {spec.capacity:g}) / {spec.refill:g} per second, from AssociateIamInstanceProfile's"
        " documented bucket (EC2 developer guide, request throttling)."
    )
    result.notes.append(
        "calls_per_launched_instance counts EC2 attempts (throttled ones included). all_calls_per_launched_instance"
        " adds CompleteLifecycleAction (one per hooked instance, by necessity), the state-table and queue calls, and"
        " the tag guard's IAM reads of the desired profile once per warm container (GetInstanceProfile,"
        " ListAttachedRolePolicies, ListRolePolicies)."
    )
    return result
