"""Scenario 4, bucket_change: ROLES managed roles, BUCKETS buckets each granting read to one role by tag
(``rolewarden:read = <role>``), the grant policies in place (one sweep). Then one bucket's tag changes to
name another role: the CloudTrail PutBucketTagging event goes through the template's rule and queue to
the real bucket-grants handler (with the function's environment: its state table receives the rotation
records). Counted: every AWS call of that invocation, DynamoDB included.

Then the account grows to 10x the buckets (the new ones carry no grant tags, as most buckets in an
account do not) and the same kind of change is made on another bucket. The goal: the same count.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

from bench import counting
from bench.common import ROOT, Context, Result

NAME = "bucket_change"
REQUIRES = "layers/core/rolewarden/capabilities/grants/reconcile.py"
CONSUMER = "BucketGrantsFunction"
CONFIG = "version: 1\nmanaged_path: /rolewarden/\n"


def sizes(small: bool) -> dict[str, int]:
    return {"buckets": 100, "roles": 20, "factor": 10} if small else {"buckets": 1000, "roles": 200, "factor": 10}


def bucket(index: int) -> str:
    return f"rw-bench-data-{index:05d}"


def role(index: int) -> str:
    return f"app-role-{index:03d}"


def tag_event(name: str) -> dict[str, Any]:
    sample = ROOT / "events" / "cloudtrail-s3-putbuckettagging.json"
    event = json.loads(sample.read_text()) if sample.exists() else {}
    detail = copy.deepcopy(event.get("detail", {}))
    detail.update({"eventSource": "s3.amazonaws.com", "eventName": "PutBucketTagging"})
    detail["requestParameters"] = {"bucketName": name, "Host": f"{name}.s3.us-east-1.amazonaws.com"}
    detail["resources"] = [{"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{name}"}]
    return {"source": "aws.s3", "detail-type": "AWS API Call via CloudTrail", "resources": [], "detail": detail}


def run(ctx: Context, buckets: int, roles: int, factor: int) -> Result:
    from rolewarden.aws.executor import Executor
    from rolewarden.capabilities import get
    from rolewarden.capabilities.base import Run
    from rolewarden.config import parse_config
    from rolewarden.model.targets import SWEEP
    from rolewarden.telemetry import Sink
    from rwlocal import world
    from rwlocal.pipeline import Pipeline, function_env, put_events

    result = Result(NAME, sizes={"buckets": buckets, "roles": roles, "grown_buckets": buckets * factor})
    config_path, stack = ctx.deploy("bucket-change.yaml", CONFIG)
    import boto3

    s3 = boto3.client("s3")
    for r in range(roles):
        world.create_role(role(r))
    for b in range(buckets):
        s3.create_bucket(Bucket=bucket(b))
        s3.put_bucket_tagging(
            Bucket=bucket(b), Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": role(b % roles)}]}
        )
    sink = Sink()
    config = parse_config(CONFIG, "<bench>")
    pipeline = Pipeline(stack, env_overrides={"ROLEWARDEN_CONFIG": str(config_path)})
    # the setup sweep runs as the deployed function would, with its state table: the table records every
    # bucket's grants, so the measured events pay no one-time backfill
    with function_env(stack.function_environment(CONSUMER), pipeline.env_overrides):
        get("bucket_grants").reconcile(Run(config=config, sink=sink, executor=Executor(sink=sink)), [SWEEP])
    consumer = pipeline.consumers[CONSUMER]
    log_path = ctx.handler_log_path
    per_size: dict[str, Counter[str]] = {}
    with ctx.handler_stdout():
        with function_env(stack.function_environment(CONSUMER), pipeline.env_overrides):
            consumer.handler()
        module = consumer._module
        original = module.lambda_handler
        for label, total, index in (("1x", buckets, 7), (f"{factor}x", buckets * factor, 8)):
            if total > buckets:
                for b in range(buckets, total):  # the grown account: buckets without grant tags
                    s3.create_bucket(Bucket=bucket(b))
            name = bucket(index)
            before, after = role(index % roles), role((index + 1) % roles)
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": after}]})
            calls: Counter[str] = Counter()
            module.lambda_handler = counting.counted(original, calls)
            put_events([tag_event(name)])
            stats = pipeline.drain([CONSUMER])
            module.lambda_handler = original
            if stats.failures:
                raise RuntimeError(f"the bucket-grants handler failed a record at {label}; see {log_path}")
            held = _holders(name)
            if held != {after}:
                raise RuntimeError(f"after the change {name} is granted to {sorted(held)}, not {after} (was {before})")
            per_size[label] = calls
            ctx.log(f"  {label} ({total} buckets): {sum(calls.values())} calls {dict(calls)}")
    one, grown = per_size["1x"], per_size[f"{factor}x"]
    result.figures = {
        "calls_at_1x": sum(one.values()),
        f"calls_at_{factor}x": sum(grown.values()),
        "reads_at_1x": counting.reads(one),
        "account_calls_at_1x": sum(n for op, n in one.items() if not op.startswith("dynamodb:")),
        "state_table_calls_at_1x": sum(n for op, n in one.items() if op.startswith("dynamodb:")),
        "writes_at_1x": counting.writes(one),
        "same_operations": dict(one) == dict(grown),
    }
    result.calls = {"1x": dict(sorted(one.items())), f"{factor}x": dict(sorted(grown.items()))}
    result.goal(
        f"calls for one bucket change, {factor}x buckets minus 1x", sum(grown.values()) - sum(one.values()), "==", 0
    )
    result.notes.append(
        "the change moves a bucket from one role to another, so two roles' grant policies rotate (a new default"
        " version each, with its record in the state table)."
    )
    return result


def _holders(bucket_name: str) -> set[str]:
    """Roles with an attached generated policy whose default version names the bucket, read back from IAM
    in one GetAccountAuthorizationDetails pass (moto's ListEntitiesForPolicy missed attachments here)."""
    import boto3

    pages = boto3.client("iam").get_paginator("get_account_authorization_details")
    attached: dict[str, set[str]] = {}
    naming: set[str] = set()
    for page in pages.paginate(Filter=["Role", "LocalManagedPolicy"]):
        for role_detail in page.get("RoleDetailList", []):
            for policy in role_detail.get("AttachedManagedPolicies", []):
                attached.setdefault(policy["PolicyArn"], set()).add(role_detail["RoleName"])
        for policy in page.get("Policies", []):
            default = next((v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
            if default is not None and f"arn:aws:s3:::{bucket_name}" in json.dumps(default["Document"]):
                naming.add(policy["Arn"])
    return {role for arn in naming for role in attached.get(arn, set())}
