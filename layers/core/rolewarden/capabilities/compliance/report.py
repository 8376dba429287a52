"""What role compliance tells: a finding per violation (with the remedy's fate), and grant-policy drift
handed to the grants capability as one message per role on the grants queue.

grant-policy-drift: compliance runs no grants code and writes no grant policy. For a role an event
named, whose grant policies the rule covers (enforce mode, not a dry run), it sends one EventBridge-shaped
message to the grants queue (``ROLEWARDEN_GRANTS_QUEUE_URL``, ``rolewarden.aws.compliance.drift``); the
grants capability re-publishes that role's grants from its state table. In report mode or a dry run it
records the finding only. Sweeps send nothing: the grants capability's own sweep checks every generated
policy against the bucket tags.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.errors import classify
from rolewarden.capabilities.base import Outcome, Run
from rolewarden.decide.compliance.judge import RoleDecision
from rolewarden.errors import RetryableError
from rolewarden.model.compliance import CAPABILITY_NAME
from rolewarden.model.findings import Finding

GRANTS_QUEUE_ENV = "ROLEWARDEN_GRANTS_QUEUE_URL"
DRIFT_RULE = "grant-policy-drift"


def report_decision(run: Run, decision: RoleDecision, verbose: bool, withheld: bool = False) -> None:
    """Log or emit the findings of one role's decision (``withheld``: the circuit breaker said no)."""
    resource = f"role/{decision.role}"
    if verbose and decision.verdict in ("out-of-scope", "compliant"):
        said = f"left alone: {decision.reason}" if decision.verdict == "out-of-scope" else "is compliant"
        run.sink.log(
            "INFO",
            f"role {decision.role} {said}",
            capability=CAPABILITY_NAME,
            resource=resource,
            verdict=decision.verdict,
        )
    if decision.verdict == "out-of-scope":
        return
    if decision.verdict == "unreadable":
        run.sink.finding(
            Finding(CAPABILITY_NAME, resource, "unreadable-policy", decision.reason, "ERROR"),
            metric="ComplianceFindings",
        )
        return
    for violation, mode in decision.violations:
        if mode == "enforce" and withheld:
            outcome = "not remediated: the circuit breaker is open (see its finding)"
        elif mode == "enforce":
            outcome = "would be remediated (dry run)" if run.executor.dry_run else "remediating"
        elif violation.remedy.kind == "report-only":  # nothing a remedy could change (e.g. the perimeter's gaps)
            outcome = "reported only"
        else:
            outcome = "reported only (rule in report mode)"
        run.sink.finding(
            Finding(
                CAPABILITY_NAME,
                resource,
                violation.rule,
                f"{violation.message}: {outcome}",
                "WARNING",
                details={
                    "mode": mode,
                    "remedy": violation.remedy.kind,
                    "dry_run": run.executor.dry_run,
                    "trigger": run.trigger,
                    **violation.details,
                },
            ),
            metric="ComplianceFindings",
        )


def report_grant_drift(run: Run, role: str, policies: tuple[str, ...], account: str, reason: str) -> Outcome:
    """One message for ``role`` on the grants queue (enforce mode, not a dry run) and one finding."""
    mode = run.config.rule_mode(DRIFT_RULE)
    if mode == "off" or not policies:
        return Outcome()
    queue = run.settings.grants_queue_url.strip()
    send = mode == "enforce" and not run.executor.dry_run
    if send and not queue:
        fate = f"not handed on: {GRANTS_QUEUE_ENV} is not set"
    elif send:
        fate = "handed to the bucket_grants capability (grants queue), which restores what the bucket tags call for"
    else:
        fate = "would be handed to the bucket_grants capability (" + (
            "dry run)" if run.executor.dry_run else "rule in report mode)"
        )
    outcome = Outcome()
    if send and queue:
        try:
            from rolewarden.aws.compliance import drift  # only a drift report sends (SQS)

            drift.report_grant_drift(queue, role, policies[0], reason, account)
        except (ClientError, BotoCoreError) as exc:
            mapped = classify(exc, f"sqs:SendMessage grant drift of role {role}")
            fate = f"not handed on: {mapped}"
            outcome = Outcome("retry" if isinstance(mapped, RetryableError) else "dead", str(mapped))
    run.sink.finding(
        Finding(
            CAPABILITY_NAME,
            f"role/{role}",
            DRIFT_RULE,
            f"grant policies {', '.join(policies)} to check against the bucket tags: {fate}",
            "WARNING",
            details={"mode": mode, "policies": list(policies), "reason": reason, "dry_run": run.executor.dry_run},
        ),
        metric="ComplianceFindings",
    )
    return outcome
