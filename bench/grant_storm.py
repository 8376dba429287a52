"""Scenario grant_storm: CHANGES bucket tag changes naming ROLES managed roles arrive within a minute
(simulated), spread over BUCKETS buckets (several changes per bucket: only the last one stands). Their
CloudTrail events go through the template's rule and queue to the bucket-grants function, polled in
parallel (rwlocal.pipeline.ParallelPipeline at the event source's MaximumConcurrency), every IAM call
through the hostile proxy with IAM's ASSUMED token buckets (rwlocal.throttling.IAM_ASSUMED_BUCKETS:
AWS publishes no IAM rates).

Converged: each role's generated grant policies allow exactly what the final bucket tags say (the chaos
suite's oracle, rwlocal.chaos._granted_actions). ``limit_exceeded_errors`` counts IAM answers with the
error code LimitExceeded (moto enforces the 5-versions-per-policy limit), read at the proxy.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from bench.bucket_change import tag_event
from bench.common import Context, Result
from bench.limited import Snapshot, harness_env, hostile_proxy, wait_until

NAME = "grant_storm"
REQUIRES = "layers/core/rolewarden/capabilities/grants/reconcile.py"
CONSUMER = "BucketGrantsFunction"
CONFIG = "version: 1\nmanaged_path: /rolewarden/\n"


def sizes(small: bool) -> dict[str, Any]:
    if small:
        return {"changes": 20, "roles": 4, "buckets": 8, "time_scale": 0.05}
    return {"changes": 200, "roles": 20, "buckets": 50, "time_scale": 1.0}


class ErrorCodes:
    """Counts the error codes of upstream answers the proxy forwards (bench instrumentation: wraps the
    proxy module's HTTP connection class; the answers are passed on unchanged)."""

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()

    def install(self) -> Any:
        import http.client
        import types

        from rwlocal import proxy as proxy_module

        codes = self.codes

        class Counting(http.client.HTTPConnection):
            def getresponse(self) -> Any:
                response = super().getresponse()
                payload = response.read()
                if response.status >= 400:
                    for code in (b"LimitExceeded", b"EntityAlreadyExists", b"NoSuchEntity", b"DeleteConflict"):
                        if b"<Code>" + code + b"</Code>" in payload:
                            codes[code.decode()] += 1
                response.read = lambda *args: payload  # type: ignore[method-assign]
                return response

        original = proxy_module.http
        proxy_module.http = types.SimpleNamespace(client=types.SimpleNamespace(HTTPConnection=Counting))  # type: ignore[assignment]
        return original


def run(ctx: Context, changes: int, roles: int, buckets: int = 50, time_scale: float = 1.0) -> Result:
    import boto3

    from rwlocal import proxy as proxy_module
    from rwlocal import world
    from rwlocal.chaos import _granted_actions, expected_grants
    from rwlocal.pipeline import ParallelPipeline, consumers, put_events

    changes, roles, buckets = int(changes), int(roles), int(buckets)
    config, stack = ctx.deploy("grant-storm.yaml", CONFIG)
    consumer = consumers(stack.template)[CONSUMER]
    result = Result(
        NAME,
        sizes={
            "changes": changes,
            "roles": roles,
            "buckets": buckets,
            "time_scale": time_scale,
            "pollers": consumer.max_concurrency,
            "batch_size": consumer.batch_size,
        },
    )
    names = [f"app-{n:02d}" for n in range(roles)]
    for name in names:
        world.create_role(name, "/rolewarden/")
    s3 = boto3.client("s3")
    bucket_names = [f"storm-bucket-{n:03d}" for n in range(buckets)]
    for name in bucket_names:
        s3.create_bucket(Bucket=name)
    rng = random.Random(13)
    # every role is named at least once; each change names 1-3 readers and 0-1 writer
    plan: list[tuple[str, dict[str, str]]] = []
    for index in range(changes):
        readers = {names[index % roles], *rng.sample(names, k=rng.randint(0, 2))}
        writers = set(rng.sample(names, k=rng.randint(0, 1)))
        tags = {"rolewarden:read": " ".join(sorted(readers))}
        if writers:
            tags["rolewarden:write"] = " ".join(sorted(writers))
        plan.append((bucket_names[rng.randrange(buckets)], tags))
    final: dict[str, dict[str, str]] = {}
    errors = ErrorCodes()
    original_http = errors.install()
    try:
        with hostile_proxy(ctx.aws.port, time_scale) as proxy:
            overrides = harness_env(config, proxy, time_scale)
            with ParallelPipeline(stack, overrides, time_scale=time_scale, consumer_ids=[CONSUMER]) as pipeline:
                before = Snapshot.of(proxy)
                started_real = time.monotonic()
                waves = 10  # the changes arrive over one simulated minute
                per_wave = -(-changes // waves)
                for wave in range(waves):
                    chunk = plan[wave * per_wave : (wave + 1) * per_wave]
                    for bucket, tags in chunk:
                        s3.put_bucket_tagging(
                            Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
                        )
                        final[bucket] = tags
                    put_events(tag_event(bucket) for bucket, _ in chunk)
                    due = started_real + (wave + 1) * 6 * time_scale
                    time.sleep(max(0.0, due - time.monotonic()))

                def converged() -> int:
                    return sum(1 for role in names if _granted_actions(role)[0] == expected_grants(role, final))

                wait_until(lambda: pipeline.quiet() and converged() == roles, timeout=900 * time_scale + 120, poll=1.0)
                pipeline.wait_quiet(60)
                delta = Snapshot.of(proxy).since(before)
                with proxy.stats.lock:
                    iam_writes = [t for t, name in proxy.stats.write_times if name.startswith("iam:")]
                    targets = Counter(proxy.stats.write_targets)
                invocations = list(pipeline.invocations)
    finally:
        proxy_module.http = original_http  # type: ignore[assignment]
    right = converged_roles = sum(1 for role in names if _granted_actions(role)[0] == expected_grants(role, final))
    last = max((t for t in iam_writes if t >= started_real), default=started_real)
    versions_by_role: Counter[str] = Counter()
    policies_by_role: Counter[str] = Counter()
    for (name, target), n in targets.items():
        owner = next((r for r in sorted(names, key=len, reverse=True) if f"rolewarden-grants-{r}" in target), None)
        if owner is None:
            continue
        if name == "iam:CreatePolicyVersion":
            versions_by_role[owner] += n
        elif name == "iam:CreatePolicy":
            policies_by_role[owner] += n
    result.figures = {
        "roles_converged": right,
        "seconds_to_converge": round((last - started_real) / time_scale, 1),
        "max_versions_created_per_role": max(versions_by_role.values(), default=0),
        "max_policies_created_per_role": max(policies_by_role.values(), default=0),
        "limit_exceeded_errors": errors.codes["LimitExceeded"],
        "iam_throttled_fraction": delta.throttled_fraction("iam"),
        "iam_calls_total": delta.attempts["iam"],
        "calls_total": sum(delta.attempts.values()),
        "invocations": len(invocations),
        "failed_records": sum(len(i.failed) for i in invocations),
        "other_iam_errors": dict(errors.codes - Counter({"LimitExceeded": errors.codes["LimitExceeded"]})),
    }
    result.calls = {"attempts_by_service": dict(sorted(delta.attempts.items())), "by_operation": delta.by_operation()}
    result.goal("roles converged to exactly their tags", converged_roles, "==", roles)
    result.goal(
        "CreatePolicyVersion calls for the busiest role", result.figures["max_versions_created_per_role"], "<=", 3
    )
    result.goal("LimitExceeded errors", result.figures["limit_exceeded_errors"], "==", 0)
    result.notes.append(
        "seconds_to_converge: from the first change to the last effective IAM write (simulated seconds); the"
        " changes themselves arrive over the first 60 s. IAM's rates are assumed (AWS publishes none)."
    )
    return result
