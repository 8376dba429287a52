"""Applying one role's grants decision: its findings to the sink, a log line, then its actions in order
through the run's executor, stopping at the first that does not succeed."""

from __future__ import annotations

from rolewarden.capabilities.base import Outcome, Run
from rolewarden.decide.grants.decide import RoleDecision
from rolewarden.errors import PermanentError, RetryableError
from rolewarden.model.grants import CAPABILITY, ReadFailure

#: The metric a finding of each rule counts under ("Findings" for the others).
FINDING_METRICS = {
    "grant-refused": "GrantsRefused",
    "protected-bucket": "GrantsRefused",
    "unknown-level": "GrantsRefused",
    "unknown-action": "GrantsRefused",
    "grants-too-large": "GrantsTooLarge",
    "too-many-attached-policies": "GrantsTooLarge",
}


def outcome_of(error: RetryableError | PermanentError | ReadFailure) -> Outcome:
    """retry for a retryable error (or read failure), dead for a permanent one."""
    if isinstance(error, ReadFailure):
        return Outcome("retry" if error.retryable else "dead", error.message)
    return Outcome("retry" if isinstance(error, RetryableError) else "dead", str(error))


def apply_decision(run: Run, decision: RoleDecision) -> Outcome:
    """Carry out one role's decision; the outcome of its first failed or conflicting action, else ok."""
    for finding in decision.findings:
        run.sink.finding(finding, metric=FINDING_METRICS.get(finding.rule, "Findings"))
    run.sink.log(
        "INFO",
        f"role {decision.role}: {decision.verdict}: {decision.reason}",
        capability=CAPABILITY,
        resource=f"role/{decision.role}",
        verdict=decision.verdict,
        buckets=len(decision.buckets),
        policies=len(decision.documents),
        trigger=run.trigger,
    )
    for action in decision.actions:
        result = run.executor.execute_one(action)
        run.results.append(result)
        if result.status == "conflict":
            return Outcome("retry", result.error)
        if result.status == "failed":
            # Stop here: the remaining steps of a re-split assume this one happened.
            return Outcome("retry" if result.retryable else "dead", result.error)
    return Outcome()
