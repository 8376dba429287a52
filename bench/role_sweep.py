"""Scenario 3, role_sweep: ROLES managed roles under /rolewarden/, 10% out of compliance (a third each:
no permissions boundary, an inline admin policy, a trust policy that also lets Lambda assume the role),
the rest compliant (EC2 trust, the boundary, one attached customer policy). One sweep of the
role-compliance capability (what its scheduled rule runs), remediation on, in this process with every
AWS call counted. ``max_remediations_per_run`` is raised above the non-compliant count so the circuit
breaker (default 25) lets the sweep remediate; a second sweep then checks that it converged.

Decision time is the capability's pure ``decide`` step over every role (timed by wrapping it), divided by
the number of roles.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from bench import counting
from bench.common import Context, Result

NAME = "role_sweep"
REQUIRES = "layers/core/rolewarden/capabilities/compliance/__init__.py"

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
LAMBDA_TOO = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}
APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::app-assets/*"}],
}
BOUNDARY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "logs:*", "cloudwatch:PutMetricData"], "Resource": "*"}],
}
ADMIN_INLINE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def sizes(small: bool) -> dict[str, int]:
    return {"roles": 100} if small else {"roles": 2000}


def _config(boundary_arn: str, limit: int) -> str:
    return (
        "version: 1\nmanaged_path: /rolewarden/\ncompliance:\n"
        f"  permissions_boundary: {boundary_arn}\n  max_remediations_per_run: {limit}\n"
    )


def seed(roles: int) -> tuple[str, dict[str, str]]:
    """Create the roles; returns (boundary ARN, role name -> what is wrong with it or "")."""
    import boto3

    iam = boto3.client("iam")
    boundary = iam.create_policy(PolicyName="rw-bench-boundary", Path="/", PolicyDocument=json.dumps(BOUNDARY))
    boundary_arn = boundary["Policy"]["Arn"]
    app = iam.create_policy(PolicyName="rw-bench-app-read", Path="/", PolicyDocument=json.dumps(APP_POLICY))
    wrong: dict[str, str] = {}
    kinds = ("no-boundary", "inline-admin", "trust-lambda")
    for index in range(roles):
        name = f"svc-{index:05d}"
        kind = kinds[(index // 10) % 3] if index % 10 == 0 else ""
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "Path": "/rolewarden/",
            "AssumeRolePolicyDocument": json.dumps(LAMBDA_TOO if kind == "trust-lambda" else EC2_TRUST),
        }
        if kind != "no-boundary":
            kwargs["PermissionsBoundary"] = boundary_arn
        iam.create_role(**kwargs)
        iam.attach_role_policy(RoleName=name, PolicyArn=app["Policy"]["Arn"])
        if kind == "inline-admin":
            iam.put_role_policy(RoleName=name, PolicyName="admin", PolicyDocument=json.dumps(ADMIN_INLINE))
        wrong[name] = kind
    return boundary_arn, wrong


def run(ctx: Context, roles: int) -> Result:
    from rolewarden.aws.executor import Executor
    from rolewarden.capabilities import get
    from rolewarden.capabilities.base import Run
    from rolewarden.config import parse_config
    from rolewarden.model.targets import SWEEP
    from rolewarden.telemetry import Sink

    result = Result(NAME, sizes={"roles": roles, "noncompliant": roles // 10})
    ctx.fresh()
    boundary_arn, wrong = seed(roles)
    config = parse_config(_config(boundary_arn, roles), "<bench>")
    capability: Any = get("role_compliance")
    from rolewarden.capabilities.compliance import reconcile as steps  # observe and decide, as reconcile calls them

    decide_seconds: list[float] = []
    decided: list[int] = []
    original = steps.decide
    original_observe = steps.observe
    observe_calls: list[Counter[str]] = []

    def counted_observe(run: Any, targets: Any) -> Any:
        with counting.counting() as calls:
            seen = original_observe(run, targets)
        observe_calls.append(calls)
        return seen

    def timed_decide(run: Any, seen: Any) -> Any:
        started = time.perf_counter()
        decisions = original(run, seen)
        decide_seconds.append(time.perf_counter() - started)
        decided.append(len(decisions))
        return decisions

    sweeps: list[tuple[Counter[str], float, Sink]] = []
    steps.decide = timed_decide  # type: ignore[assignment]
    steps.observe = counted_observe  # type: ignore[assignment]
    try:
        for _ in range(2):
            sink = Sink()
            run = Run(config=config, sink=sink, executor=Executor(sink=sink, propagation_budget=0), trigger="bench")
            with counting.counting() as calls:
                started = time.perf_counter()
                capability.reconcile(run, [SWEEP])
                wall = time.perf_counter() - started
            sweeps.append((calls, wall, sink))
    finally:
        steps.decide = original  # type: ignore[assignment]
        steps.observe = original_observe  # type: ignore[assignment]
    first, wall, sink = sweeps[0]
    second = sweeps[1][0]
    noncompliant = sum(1 for kind in wrong.values() if kind)
    observe_reads = counting.reads(observe_calls[0])
    result.figures = {
        "observe_read_calls": observe_reads,
        "read_calls_total": counting.reads(first),
        "write_calls": counting.writes(first),
        "wall_seconds": round(wall, 2),
        "decision_us_per_role": round(decide_seconds[0] / max(1, decided[0]) * 1e6, 1),
        "roles_decided": decided[0],
        "noncompliant_seeded": noncompliant,
        "second_sweep_reads": counting.reads(second),
        "second_sweep_writes": counting.writes(second),
    }
    result.calls = {"first_sweep": dict(sorted(first.items())), "second_sweep": dict(sorted(second.items()))}
    result.goal("IAM reads to observe every role (paginated, not per role)", observe_reads, "<=", 3)
    result.goal("second sweep writes (converged)", counting.writes(second), "==", 0)
    result.notes.append(
        "moto ignores MaxItems on GetAccountAuthorizationDetails (one page); AWS pages at up to 1,000 items, so"
        f" {roles} roles plus the account's managed policies take a few pages there: still a constant, not per role."
    )
    return result
