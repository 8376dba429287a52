"""``rolewarden explain`` for bucket grants: why a bucket's grants (or a role's) are as they are and what
RoleWarden would do, from the same reads and the same decisions as an event, in a dry run. Writes
nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rolewarden.aws.executor import Executor
from rolewarden.capabilities.base import Run
from rolewarden.capabilities.grants.observe import observe
from rolewarden.config import Config
from rolewarden.decide.grants.catalog import level_table
from rolewarden.decide.grants.decide import RoleDecision, holders
from rolewarden.decide.grants.naming import parts_by_role, policy_name
from rolewarden.decide.grants.plan import decide
from rolewarden.decide.grants.render import buckets_named, default_buckets, policy_size, read_back
from rolewarden.decide.grants.tags import shown, tag_grants
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.iam import ManagedPolicy
from rolewarden.model.targets import SWEEP, Target
from rolewarden.telemetry import Sink


def _statement_summary(statement: Mapping[str, Any]) -> str:
    actions = statement.get("Action", [])
    resources = statement.get("Resource", [])
    text = (
        f"{statement.get('Sid', '-')}: {statement.get('Effect', '?')} "
        f"{', '.join(actions if isinstance(actions, list) else [actions])} "
        f"on {', '.join(resources if isinstance(resources, list) else [resources])}"
    )
    condition = statement.get("Condition")
    if isinstance(condition, Mapping):
        scoped = sorted(buckets_named({"Statement": [{"Condition": condition}]}))
        text += f" (only through bucket(s) {', '.join(scoped)})"
    return text


def _documents_report(decision: RoleDecision) -> list[dict[str, Any]]:
    """The desired documents of a role, part by part: name, size, and each statement in one line."""
    return [
        {
            "policy": policy_name(decision.role, part),
            "characters": policy_size(document),
            "statements": [_statement_summary(s) for s in document.get("Statement", [])],
        }
        for part, document in enumerate(decision.documents, start=1)
    ]


def _decision_report(decision: RoleDecision, config: Config) -> dict[str, Any]:
    levels, _ = level_table(config)
    desired = read_back(decision.documents, levels) or {}
    report: dict[str, Any] = {
        "grants": [
            {"bucket": g.bucket, "levels": list(g.levels), **({"kms_key": g.kms_key} if g.kms_key else {})}
            for g in sorted(desired.values())
        ]
        or [{"bucket": b} for b in decision.buckets],
        "policy documents": _documents_report(decision),
        "decision": f"{decision.verdict}: {decision.reason}",
        "would do": [a.describe() for a in decision.actions] or "nothing",
    }
    if decision.findings:
        report["findings"] = [f"{f.rule}: {f.message}" for f in decision.findings]
    return report


def _current_policies(parts: Mapping[int, ManagedPolicy]) -> list[dict[str, Any]]:
    out = []
    for part in sorted(parts):
        policy = parts[part]
        default = policy.default
        out.append(
            {
                "policy": policy.arn,
                "default version": default.version_id if default else "(none)",
                "versions": sorted((v.version_id for v in policy.versions), key=lambda v: (len(v), v)),
                "buckets named": sorted(default_buckets(policy)),
                "attached to": list(policy.attached_roles) or "(nobody)",
            }
        )
    return out


def _dry_run(config: Config) -> Run:
    sink = Sink()
    return Run(
        config=config, sink=sink, executor=Executor(sink=sink, dry_run=True, trigger="explain"), trigger="explain"
    )


def explain(config: Config, bucket: str) -> dict[str, Any]:
    """Why a bucket's grants are as they are and what RoleWarden would do, from the same reads and the same
    decisions as a bucket event: the tags read, what each level grants to whom (and the refusals), whether
    the bucket is protected, its customer key, who holds it today, and per role the documents the grants
    produce and the actions that would follow. Reads: the bucket (tags, encryption), one IAM pass, and
    for a drifted role the buckets its policies name. Writes nothing."""
    prefix = config.bucket_grants.tag_prefix
    target = Target("bucket", bucket)
    snapshot = observe(_dry_run(config), [target])
    failure = snapshot.unreadable.get(bucket)
    if failure is not None:
        raise (RetryableError if failure.retryable else PermanentError)(failure.message)
    view = snapshot.buckets[bucket]
    report: dict[str, Any] = {"bucket": bucket}
    if not view.exists:
        report["exists"] = "no: the bucket does not exist (roles that still hold it lose it)"
    report["tags"] = dict(sorted(view.tags.items())) or "(none)"
    if config.is_protected_bucket(bucket):
        patterns = ", ".join(config.bucket_grants.protected_buckets)
        report["protected"] = f"yes: bucket_grants.protected_buckets ({patterns}) names it; its grant tags are ignored"
    else:
        report["protected"] = "no"
    keys = sorted(k for k in view.tags if k.startswith(prefix))
    if not keys:
        report["encryption"] = "not read (the bucket has no grant tags)"
    elif view.kms_key:
        report["encryption"] = f"SSE-KMS with customer key {view.kms_key}: grants add the key's actions for this bucket"
    elif view.kms_problem:
        report["encryption"] = view.kms_problem
    else:
        report["encryption"] = "no customer key (SSE-S3 or aws/s3): no KMS statement needed"

    plan = decide(snapshot, config, [target])
    if target in plan.failed:
        raise RetryableError(plan.failed[target].message)
    parsed = tag_grants(config, view, plan.iam.roles)
    usable, unknown = level_table(config)
    levels_report = []
    for key in keys:
        level = key[len(prefix) :]
        entry: dict[str, Any] = {"tag": f"{key}={view.tags[key]}", "level": level}
        if level in usable:
            entry["actions"] = sorted(config.bucket_grants.levels[level])
        elif level in unknown:
            entry["actions"] = f"unusable: {', '.join(unknown[level])} are not S3 actions RoleWarden grants"
        else:
            entry["actions"] = "unknown level (not in bucket_grants.levels)"
        entry["granted to"] = sorted(r for r, ls in parsed.grants.items() if level in ls) or "(nobody)"
        refused = [f.message for f in parsed.findings if f.details.get("tag") in (key, repr(key))]
        if refused:
            entry["refused"] = refused
        levels_report.append(entry)
    report["levels"] = levels_report
    other = [f"{f.rule}: {f.message}" for f in parsed.findings if "tag" not in f.details]
    if other:
        report["findings"] = other
    report["held today by"] = holders(plan.iam, config.managed_path, bucket) or "(nobody)"
    report["roles"] = {role: _decision_report(plan.decisions[role], config) for role in sorted(plan.decisions)}
    if not plan.decisions:
        report["roles"] = "(none: no role holds or is granted this bucket)"
    if config.dry_run:
        report["note"] = "dry_run is true: RoleWarden would only log this"
    return report


def explain_role(config: Config, role_name: str) -> dict[str, Any]:
    """The grants side of ``rolewarden explain role/NAME``: which buckets' tags name the role (and at which
    levels, or why they were refused), its generated policies today, the documents the tags call for and
    what RoleWarden would do. Reads every bucket's tags (ListBuckets + GetBucketTagging each, like a
    sweep) because any bucket may name the role."""
    plan = decide(observe(_dry_run(config), [SWEEP]), config, [SWEEP])
    refusals = [
        f"bucket {f.resource}: {f.message}"
        for f in plan.findings
        if f.rule == "grant-refused" and f.details.get("value") == shown(role_name)
    ]
    report: dict[str, Any] = {}
    decision = plan.decisions.get(role_name)
    parts = parts_by_role(plan.iam, config.managed_path).get(role_name, {})
    report["generated policies today"] = _current_policies(parts) or "(none)"
    if decision is None:
        report["granted by bucket tags"] = "(none)"
        report["would do"] = "nothing"
    else:
        body = _decision_report(decision, config)
        report["granted by bucket tags"] = body.pop("grants") if decision.buckets else "(none)"
        report.update(body)
    if refusals:
        report["refused grants naming it"] = refusals
    unreadable = [f"{f.resource}: {f.message}" for f in plan.findings if f.rule == "bucket-unreadable"]
    if unreadable:
        report["unreadable buckets"] = unreadable
    return report
