"""Scenario sweep_limited: sweep_vs_custodian with EC2's documented token buckets on. INSTANCES tagged
instances, MISSING of them without their profile; ``rolewarden apply --only profiles --yes`` and Cloud
Custodian's pull-mode ``set-instance-profile`` policy (sweep_vs_custodian.POLICY), alternated ROUNDS
times, each on a freshly reset and reseeded world, both as child processes whose every AWS call goes
through the hostile proxy (token buckets, no random faults, no lags). Wall time from spawn to exit
(interpreter start included), in simulated seconds (``time_scale`` 1: real seconds). The floor is the
association bucket's: max(0, MISSING - capacity) / refill. The unthrottled ``sweep_vs_custodian``
stays as the reference.
"""

from __future__ import annotations

import os

from bench.common import PROFILE_CONFIG, Child, Context, Result, median, run_counted
from bench.limited import ASSOCIATE, Snapshot, hostile_proxy
from bench.peers import ensure_custodian
from bench.sweep_vs_custodian import POLICY, _all_right, _world, rolewarden_command

NAME = "sweep_limited"
REQUIRES = None
GOAL_RATIO = 1.2
GOAL_SPEEDUP = 1.5


def sizes(small: bool) -> dict[str, float]:
    if small:
        return {"instances": 120, "missing": 40, "rounds": 1, "time_scale": 0.05}
    return {"instances": 5000, "missing": 1000, "rounds": 3, "time_scale": 1.0}


def run(ctx: Context, instances: int, missing: int, rounds: int, time_scale: float = 1.0) -> Result:
    from rwlocal.throttling import EC2_BUCKETS, floor_seconds

    instances, missing, rounds = int(instances), int(missing), int(rounds)
    result = Result(
        NAME, sizes={"instances": instances, "missing_profile": missing, "rounds": rounds, "time_scale": time_scale}
    )
    custodian = ensure_custodian(ctx.log)
    config = ctx.config_file("sweep-limited.yaml", PROFILE_CONFIG)
    policy = ctx.config_file("custodian-policy-limited.yml", POLICY)
    rw_argv, rw_label = rolewarden_command()
    c7n_argv = [str(custodian), "run", "-s", str(ctx.workdir / "custodian-out-limited"), "--cache-period", "0"]
    c7n_argv += ["--region", "us-east-1", str(policy)]
    runs: dict[str, list[Child]] = {"rolewarden": [], "custodian": []}
    attempts: dict[str, list[Snapshot]] = {"rolewarden": [], "custodian": []}
    right: dict[str, list[int]] = {"rolewarden": [], "custodian": []}
    for index in range(rounds):
        order = ["rolewarden", "custodian"] if index % 2 == 0 else ["custodian", "rolewarden"]
        for tool in order:
            ids = _world(ctx, instances, missing)
            with hostile_proxy(ctx.aws.port, time_scale) as proxy:
                env = {
                    **os.environ,
                    "ROLEWARDEN_CONFIG": str(config),
                    "NO_COLOR": "1",
                    "AWS_ENDPOINT_URL": proxy.endpoint,
                    "RW_BENCH_TIME_SCALE": repr(time_scale),
                    "ROLEWARDEN_PACING": "on",
                    "ROLEWARDEN_PACE_FACTOR": repr(1.0 / time_scale),
                }
                before = Snapshot.of(proxy)
                child = run_counted(rw_argv if tool == "rolewarden" else c7n_argv, env)
                delta = Snapshot.of(proxy).since(before)
            if child.returncode != 0:
                raise RuntimeError(f"{tool} exited {child.returncode}: {child.stderr[-2000:]}")
            runs[tool].append(child)
            attempts[tool].append(delta)
            right[tool].append(_all_right(ids))
            ctx.log(
                f"  round {index + 1} {tool}: {child.seconds / time_scale:.1f}s, {sum(delta.attempts.values())}"
                f" attempts, {delta.throttled('ec2')} throttled, {right[tool][-1]}/{instances} right"
            )
    floor = floor_seconds(missing, EC2_BUCKETS[ASSOCIATE])
    rw = median(c.seconds for c in runs["rolewarden"]) / time_scale
    c7n = median(c.seconds for c in runs["custodian"]) / time_scale
    result.sizes["rolewarden_command"] = rw_label
    result.figures = {
        "rolewarden_seconds_median": round(rw, 1),
        "custodian_seconds_median": round(c7n, 1),
        "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(rw / floor, 3) if floor else None,
        "speedup_vs_custodian": round(c7n / rw, 2),
        "rolewarden_seconds_runs": [round(c.seconds / time_scale, 1) for c in runs["rolewarden"]],
        "custodian_seconds_runs": [round(c.seconds / time_scale, 1) for c in runs["custodian"]],
        "rolewarden_attempts": sum(attempts["rolewarden"][0].attempts.values()),
        "custodian_attempts": sum(attempts["custodian"][0].attempts.values()),
        "rolewarden_throttled_fraction": attempts["rolewarden"][0].throttled_fraction("ec2"),
        "custodian_throttled_fraction": attempts["custodian"][0].throttled_fraction("ec2"),
        # every round's, in order (the figures above and the calls below are the first round's)
        "rolewarden_attempts_runs": [sum(d.attempts.values()) for d in attempts["rolewarden"]],
        "custodian_attempts_runs": [sum(d.attempts.values()) for d in attempts["custodian"]],
        "rolewarden_throttled_runs": [d.throttled("ec2") for d in attempts["rolewarden"]],
        "custodian_throttled_runs": [d.throttled("ec2") for d in attempts["custodian"]],
        "rolewarden_instances_right": min(right["rolewarden"]),
        "custodian_instances_right": min(right["custodian"]),
    }
    result.calls = {
        "rolewarden": attempts["rolewarden"][0].by_operation(),
        "custodian": attempts["custodian"][0].by_operation(),
        "rolewarden_calls_counted_in_process": dict(sorted(runs["rolewarden"][0].calls.items())),
        "custodian_calls_counted_in_process": dict(sorted(runs["custodian"][0].calls.items())),
    }
    if floor:
        result.goal("RoleWarden's sweep / floor", result.figures["ratio_to_floor"], "<=", GOAL_RATIO)
    result.goal("RoleWarden faster than Custodian (x)", result.figures["speedup_vs_custodian"], ">=", GOAL_SPEEDUP)
    result.goal("RoleWarden ends with every instance right", min(right["rolewarden"]), "==", instances)
    result.notes.append(
        "Wall time includes the interpreter's start and every DescribeInstances page of the account, which moto"
        " serves far slower than EC2 (see sweep_vs_custodian); the floor counts only the associations."
    )
    return result
