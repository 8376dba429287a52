"""Scenario custodian_event_mode: the same LAUNCHES launches as launch_burst_limited, handled by Cloud
Custodian's ``ec2-instance-state`` mode (events: running) with ``set-instance-profile``, run locally the
way its Lambda runs: the policy collection built once per container, then ``policy.push(event,
context)`` for each event (c7n.handler.dispatch_event's work; the event mode resolves the instance with
DescribeInstances, filters, runs the action). A CloudWatch Events rule invokes Custodian's function
once per event; CONTAINERS warm containers (processes, the same concurrency as RoleWarden's pollers)
share the events. Every AWS call goes through the same hostile proxy with EC2's documented token
buckets; attempts are counted there (botocore's retries included). Custodian does not complete
lifecycle hooks: its launches are plain state-change events.
"""

from __future__ import annotations

import json
import time

from bench.common import WEB_TAGS, Context, Result
from bench.limited import ASSOCIATE, Snapshot, hostile_proxy, last_write_after, run_custodian_event_mode
from bench.peers import C7N_PYTHON, ensure_custodian

NAME = "custodian_event_mode"
REQUIRES = None


def sizes(small: bool) -> dict[str, float]:
    return {"launches": 60, "time_scale": 0.05} if small else {"launches": 1000, "time_scale": 1.0}


def run(ctx: Context, launches: int, time_scale: float = 1.0, containers: int = 5) -> Result:
    from rwlocal import world
    from rwlocal.throttling import EC2_BUCKETS, floor_seconds

    launches = int(launches)
    ensure_custodian(ctx.log)
    ctx.fresh()
    result = Result(NAME, sizes={"launched_instances": launches, "time_scale": time_scale, "containers": containers})
    world.create_profile("web-server")
    burst: list[str] = []
    while len(burst) < launches:
        burst += world.run_instances(min(250, launches - len(burst)), WEB_TAGS)
    events = [world.state_change_event(i, "running") for i in burst]
    with hostile_proxy(ctx.aws.port, time_scale) as proxy:
        before = Snapshot.of(proxy)
        started_real = time.monotonic()
        procs = run_custodian_event_mode(C7N_PYTHON, ctx.workdir, events, proxy.endpoint, containers, time_scale)
        ended_real = time.monotonic()
        delta = Snapshot.of(proxy).since(before)
        last = last_write_after(proxy, ASSOCIATE, started_real)
    failed_invocations = 0
    for proc in procs:
        if proc.returncode != 0:
            raise RuntimeError(f"custodian driver exited {proc.returncode}: {proc.stderr[-2000:]}")
        failed_invocations += int(json.loads(proc.stdout.strip().splitlines()[-1])["failed"])
    attached = world.attached_profiles(burst)
    right = sum(1 for i in burst if attached.get(i) == "web-server")
    floor = floor_seconds(launches, EC2_BUCKETS[ASSOCIATE])
    seconds = last / time_scale if last is not None else float("nan")
    calls_total = sum(delta.attempts.values())
    result.figures = {
        "seconds_to_all_attached": round(seconds, 1) if right == launches else None,
        "seconds_to_last_attach": round(seconds, 1),
        "seconds_to_all_events_handled": round((ended_real - started_real) / time_scale, 1),
        "floor_seconds": round(floor, 1),
        "calls_total": calls_total,
        "ec2_calls_total": delta.attempts["ec2"],
        "calls_per_launched_instance": round(delta.attempts["ec2"] / launches, 4),
        "throttled_fraction": delta.throttled_fraction("ec2"),
        "instances_right": right,
        "failed_invocations": failed_invocations,
    }
    result.calls = {"attempts_by_service": dict(sorted(delta.attempts.items())), "by_operation": delta.by_operation()}
    result.goal("launched instances with their profile", right, "==", launches)
    result.notes.append(
        "A failed invocation (botocore gave up on RequestLimitExceeded) is counted, not retried: Lambda would retry"
        " an asynchronous invocation twice more, each retry a new attempt against the same bucket."
    )
    return result
