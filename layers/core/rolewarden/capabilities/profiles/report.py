"""What the instance-profiles capability reports about each decision: findings (a refused profile, a
mismatch left alone, an instance that still answers IMDSv1) and the log line of a decision without action."""

from __future__ import annotations

from rolewarden.capabilities.base import Run
from rolewarden.decide.profiles import ProfileDecision
from rolewarden.model.findings import Finding
from rolewarden.model.instances import InstanceView
from rolewarden.model.profiles import CAPABILITY as CAPABILITY_NAME


def report(run: Run, decision: ProfileDecision, view: InstanceView | None) -> None:
    """The decision's finding (refused, mismatched, IMDSv1 open) or, when it has no action, its log line."""
    _report_metadata(run, decision, view)
    fields = {
        "capability": CAPABILITY_NAME,
        "resource": decision.instance_id,
        "verdict": decision.verdict,
        "desired_profile": decision.desired,
        "rule_index": decision.rule_index,
        "current_profile_arn": decision.current_arn,
        "metadata": decision.metadata.verdict if decision.metadata else None,
        "trigger": run.trigger,
    }
    if decision.verdict == "refuse":
        tags = dict(view.tags) if view is not None else {}
        details: dict[str, object] = {"tags": tags, "profile": decision.desired}
        rule_id = "profile-outside-managed-set"
        if decision.guard:
            rule_id = "profile-role-not-compliant"
            details.update(
                rules=sorted({g.rule for g in decision.guard}),
                violations=[{"rule": g.rule, "message": g.message} for g in decision.guard],
                asked_by=dict(decision.asked_by),
                config_rule=(
                    f"instance_profiles.rules.{decision.rule_index}"
                    if decision.rule_index is not None
                    else "instance_profiles.default"
                ),
            )
        run.sink.finding(
            Finding(CAPABILITY_NAME, decision.instance_id, rule_id, decision.reason, details=details),
            metric="Refused",
        )
    elif decision.verdict == "report":
        run.sink.finding(
            Finding(
                CAPABILITY_NAME,
                decision.instance_id,
                "profile-mismatch",
                decision.reason,
                details={"profile": decision.desired, "current": decision.current_arn},
            ),
            metric="Mismatched",
        )
    elif not decision.actions:
        run.sink.log("INFO", f"{decision.instance_id}: {decision.verdict}: {decision.reason}", **fields)


def _report_metadata(run: Run, decision: ProfileDecision, view: InstanceView | None) -> None:
    """Report mode names each managed instance that still answers IMDSv1 (issue 15)."""
    md = decision.metadata
    if md is None or md.verdict not in ("imdsv1", "hop-limit"):
        return
    options = view.metadata if view is not None else None
    run.sink.finding(
        Finding(
            CAPABILITY_NAME,
            decision.instance_id,
            "imdsv1-open" if md.verdict == "imdsv1" else "imds-hop-limit",
            f"{decision.instance_id}: {md.reason}",
            details={
                "http_tokens": options.http_tokens if options else None,
                "hop_limit": options.hop_limit if options else None,
                "configured_hop_limit": run.config.instance_profiles.metadata.hop_limit,
                "profile": decision.desired,
                "tags": dict(view.tags) if view is not None else {},
            },
        ),
        metric="Imdsv1Open" if md.verdict == "imdsv1" else "ImdsHopLimit",
    )
