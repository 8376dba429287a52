"""Scenario 2, sweep_vs_custodian: INSTANCES tagged instances, MISSING of them without their profile.
``rolewarden apply --only profiles --yes`` against Cloud Custodian's ``set-instance-profile`` in a
pull-mode policy selecting the same instances by tag, on the same moto server, alternated ROUNDS times,
each run on a freshly reset and reseeded world. Both run as child processes (interpreter start
included), with their AWS calls counted by bench/callcount/sitecustomize.py.

The Custodian policy also filters ``IamInstanceProfile: absent``, as c7n's own example for the action
does. Without it Custodian 0.9.53 fails on moto: for instances that already hold a profile it reads
DescribeIamInstanceProfileAssociations once without following NextToken, moto pages at 100, and the
unseen associations make AssociateIamInstanceProfile answer IncorrectState. The filter makes Custodian
skip that read; RoleWarden instead checks every tagged instance's profile (it also fixes wrong ones).

Reading the counts: ``rolewarden apply`` plans with one sweep (dry run) and applies through a second
sweep whose executor carries out only the planned actions (``cli._execute``), so it makes two full
DescribeInstances passes where Custodian makes one; on moto each pass of 5,000 instances is most of a run.
"""

from __future__ import annotations

import os
import subprocess

from bench.common import (
    PROFILE_CONFIG,
    VENV_PY,
    WEB_TAGS,
    Child,
    Context,
    Result,
    custodian_policy,
    median,
    run_counted,
    seed_instances,
)
from bench.peers import ensure_custodian

NAME = "sweep_vs_custodian"
REQUIRES = None

POLICY = custodian_policy()  # pull mode

# Until `rolewarden apply` existed, the sweep ran through this stand-in: the same capability call the CLI
# makes, in a child process too.
STAND_IN = (
    "from rolewarden import capabilities, triggers\n"
    "from rolewarden.aws.executor import Executor\n"
    "from rolewarden.capabilities.base import Run\n"
    "from rolewarden.config import load_config\n"
    "from rolewarden.telemetry import Sink\n"
    "sink = Sink()\n"
    "run = Run(config=load_config(), sink=sink, executor=Executor(sink=sink), trigger='bench')\n"
    "capabilities.get('instance_profiles').reconcile(run, [triggers.SWEEP])\n"
)


def sizes(small: bool) -> dict[str, int]:
    return (
        {"instances": 250, "missing": 50, "rounds": 1} if small else {"instances": 5000, "missing": 1000, "rounds": 3}
    )


def rolewarden_command() -> tuple[list[str], str]:
    cli = VENV_PY.parent / "rolewarden"
    probe = subprocess.run([str(cli), "apply", "--help"], capture_output=True, text=True, check=False)
    if cli.exists() and probe.returncode == 0 and "--only" in probe.stdout:
        return [str(cli), "apply", "--only", "profiles", "--yes"], "rolewarden apply --only profiles --yes"
    return [str(VENV_PY), "-c", STAND_IN], "stand-in: capabilities.get('instance_profiles').reconcile(SWEEP)"


def _world(ctx: Context, instances: int, missing: int) -> list[str]:
    from rwlocal import world

    ctx.fresh()
    arn = world.create_profile("web-server")
    return seed_instances(instances, WEB_TAGS, with_profile=arn, missing=missing)


def _all_right(ids: list[str]) -> int:
    from rwlocal import world

    attached = world.attached_profiles()
    return sum(1 for i in ids if attached.get(i) == "web-server")


def run(ctx: Context, instances: int, missing: int, rounds: int) -> Result:
    result = Result(NAME, sizes={"instances": instances, "missing_profile": missing, "rounds": rounds})
    custodian = ensure_custodian(ctx.log)
    config = ctx.config_file("sweep.yaml", PROFILE_CONFIG)
    policy = ctx.config_file("custodian-policy.yml", POLICY)
    rw_argv, rw_label = rolewarden_command()
    c7n_argv = [
        str(custodian),
        "run",
        "-s",
        str(ctx.workdir / "custodian-out"),
        "--cache-period",
        "0",
        "--region",
        "us-east-1",
        str(policy),
    ]
    env = {**os.environ, "ROLEWARDEN_CONFIG": str(config), "NO_COLOR": "1"}
    runs: dict[str, list[Child]] = {"rolewarden": [], "custodian": []}
    correct: dict[str, list[bool]] = {"rolewarden": [], "custodian": []}
    for index in range(rounds):
        order = ["rolewarden", "custodian"] if index % 2 == 0 else ["custodian", "rolewarden"]
        for tool in order:
            ids = _world(ctx, instances, missing)
            child = run_counted(rw_argv if tool == "rolewarden" else c7n_argv, env)
            if child.returncode != 0:
                raise RuntimeError(f"{tool} exited {child.returncode}: {child.stderr[-2000:]}")
            right = _all_right(ids)
            runs[tool].append(child)
            correct[tool].append(right == instances)
            ctx.log(
                f"  round {index + 1} {tool}: {child.seconds:.1f}s, {sum(child.calls.values())} calls,"
                f" {right}/{instances} right"
            )
    rw_wall = median(c.seconds for c in runs["rolewarden"])
    c7n_wall = median(c.seconds for c in runs["custodian"])
    rw_cpu = median(c.cpu_seconds for c in runs["rolewarden"])
    c7n_cpu = median(c.cpu_seconds for c in runs["custodian"])
    ratio = c7n_wall / rw_wall
    result.sizes["rolewarden_command"] = rw_label
    result.figures = {
        "speedup_wall (custodian/rolewarden)": round(ratio, 2),
        "rolewarden_wall_s_median": round(rw_wall, 2),
        "custodian_wall_s_median": round(c7n_wall, 2),
        "rolewarden_wall_s_runs": [round(c.seconds, 2) for c in runs["rolewarden"]],
        "custodian_wall_s_runs": [round(c.seconds, 2) for c in runs["custodian"]],
        "rolewarden_own_cpu_s_median": round(rw_cpu, 2),
        "custodian_own_cpu_s_median": round(c7n_cpu, 2),
        "rolewarden_calls": sum(runs["rolewarden"][0].calls.values()),
        "custodian_calls": sum(runs["custodian"][0].calls.values()),
        "rolewarden_all_right": all(correct["rolewarden"]),
        "custodian_all_right": all(correct["custodian"]),
    }
    result.calls = {
        "rolewarden": dict(sorted(runs["rolewarden"][0].calls.items())),
        "custodian": dict(sorted(runs["custodian"][0].calls.items())),
    }
    for tool in runs:
        counts = {tuple(sorted(c.calls.items())) for c in runs[tool]}
        if len(counts) != 1:
            result.notes.append(f"{tool}'s call counts differed between rounds: {[dict(c) for c in counts]}")
    result.goal("RoleWarden faster than Custodian (wall, x)", round(ratio, 2), ">=", 3.0)
    result.goal("both end with every instance right", int(all(correct["rolewarden"] + correct["custodian"])), "==", 1)
    return result
