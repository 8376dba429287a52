"""The operator's side of role compliance: ``explain`` (why a role is as it is and what would be done),
``history`` (a role's remediation and rollback records) and ``rollback`` (restore a recorded state).
All return plain data; the CLI's ``rolewarden explain|history|rollback role/NAME`` print it."""

from __future__ import annotations

from typing import Any

from rolewarden.aws import iam_snapshot
from rolewarden.aws.compliance.executors import apply_restore_step
from rolewarden.aws.recorder import Recorder
from rolewarden.capabilities.compliance.reconcile import RECORD_KIND, ROLLBACK_KIND
from rolewarden.config import Config
from rolewarden.decide.compliance.judge import decide_role
from rolewarden.decide.compliance.registry import registered_rules
from rolewarden.decide.compliance.rollback import restore_plan
from rolewarden.errors import PermanentError
from rolewarden.model.compliance import SERVICE_LINKED_PATH
from rolewarden.model.iam import AttachedPolicy, ManagedPolicy, Role
from rolewarden.settings import current as current_settings
from rolewarden.telemetry import Sink


def _resource(role: str) -> tuple[str, str]:
    name = role[len("role/") :] if role.startswith("role/") else role
    return name, f"role/{name}"


def read_role(name: str) -> tuple[Role | None, dict[str, ManagedPolicy]]:
    """A role's full state (any path) and its attached policies' default documents."""
    role = iam_snapshot.read_role(name)
    if role is None:
        return None, {}
    return role, iam_snapshot.read_policies(role.attached_arns)


def history(resource: str, *, table: str | None = None, sink: Sink | None = None) -> list[dict[str, Any]]:
    """The records of a role (``role/NAME`` or ``NAME``), newest first, as plain dicts:
    ``{"record_id", "kind", "time", "resource", "trigger", "findings", "actions", "restored_from", "prior"}``.
    Reads the state table (``table`` or ROLEWARDEN_TABLE); without one there is no history."""
    _name, key = _resource(resource)
    recorder = Recorder(sink or Sink(), table)
    out = []
    for rec in recorder.history(key):
        if rec.kind not in (RECORD_KIND, ROLLBACK_KIND):
            continue
        out.append(
            {
                "record_id": rec.record_id,
                "kind": rec.kind,
                "time": rec.time,
                "resource": rec.resource,
                "trigger": rec.data.get("trigger", ""),
                "findings": rec.data.get("findings", []),
                "actions": rec.data.get("actions", []),
                "restored_from": rec.data.get("restored_from"),
                "prior": rec.data.get("prior"),
            }
        )
    return out


def rollback(
    role_name: str,
    record_id: str | None = None,
    *,
    config: Config | None = None,
    dry_run: bool = False,
    table: str | None = None,
    sink: Sink | None = None,
) -> dict[str, Any]:
    """Restore the state a record holds (default: the newest remediation record of the role):
    attached managed policies, inline policies, trust policy and boundary, exactly.

    The rollback is itself recorded (kind ``rollback``, with the state it replaced), so it can be
    rolled back in turn. With ``config``, the answer lists the rules the restored state breaks: a
    rule in enforce mode puts the role back again at the next event or sweep unless the rule is set
    to report or the role is added to ``compliance.protected_roles``.

    Returns ``{"role", "restored_from", "record_id", "steps", "dry_run", "verified",
    "violations_after"}``. Raises PermanentError when there is nothing to restore or the role is out
    of scope, RetryableError on throttling and other transient AWS errors."""
    name, key = _resource(role_name)
    sink = sink or Sink()
    recorder = Recorder(sink, table)
    records = [r for r in recorder.history(key) if r.kind in (RECORD_KIND, ROLLBACK_KIND)]
    if record_id is None:
        chosen = next((r for r in records if r.kind == RECORD_KIND), None)
    else:
        chosen = next((r for r in records if r.record_id == record_id), None)
    if chosen is None or "prior" not in chosen.data:
        known = ", ".join(r.record_id for r in records) or "none"
        raise PermanentError(f"no record {record_id or '(latest remediation)'} for {key}; records: {known}", "NoRecord")
    wanted: dict[str, Any] = chosen.data["prior"]
    current, _policies = read_role(name)
    if current is None:
        raise PermanentError(f"role {name} does not exist; rollback restores policies, not roles", "NoSuchEntity")
    scope = config.managed_path if config is not None else current_settings().managed_path or wanted["path"]
    if (
        current.path != wanted.get("path")
        or current.path.startswith("/aws-service-role/")
        or not current.path.startswith(scope)
    ):
        raise PermanentError(
            f"refusing to roll back role {name}: its path {current.path} is not the recorded {wanted.get('path')} "
            f"under {scope}",
            "OutOfScope",
        )
    steps = restore_plan(current.state(), wanted)
    answer: dict[str, Any] = {
        "role": name,
        "restored_from": chosen.record_id,
        "record_id": None,
        "steps": [{"step": s, "value": v} for s, v in steps],
        "dry_run": dry_run,
        "verified": False,
        "violations_after": [],
    }
    if config is not None:
        restored = Role(
            name=name,
            arn=current.arn,
            path=current.path,
            trust=wanted["trust_policy"],
            boundary=wanted.get("permissions_boundary"),
            attached=tuple(AttachedPolicy(arn, arn.rsplit("/", 1)[-1]) for arn in wanted["attached_policies"]),
            inline=wanted["inline_policies"],
        )
        policies = iam_snapshot.read_policies(wanted["attached_policies"])
        decision = decide_role(restored, config, policies, current_settings().self_role_arns)
        answer["violations_after"] = [
            {"rule": v.rule, "mode": mode, "message": v.message} for v, mode in decision.violations
        ]
    if dry_run or not steps:
        answer["verified"] = not steps
        return answer
    rec = recorder.record(
        key,
        ROLLBACK_KIND,
        {
            "prior": current.state(),
            "restored_from": chosen.record_id,
            "actions": [f"{s} {v if s != 'put-inline' else v[0]}" for s, v in steps],
            "trigger": "rollback",
            "findings": [],
        },
    )
    answer["record_id"] = rec.record_id
    for step, value in steps:
        apply_restore_step(name, step, value)
    after, _ = read_role(name)
    answer["verified"] = after is not None and not restore_plan(after.state(), wanted)
    sink.log(
        "INFO",
        f"rolled back role {name} to record {chosen.record_id}",
        resource=key,
        **{"record_id": rec.record_id, "steps": len(steps), "verified": answer["verified"]},
    )
    return answer


def explain(config: Config, role_name: str) -> dict[str, Any]:
    """Why a role is as it is and what RoleWarden would do (``rolewarden explain role/NAME``), from the same
    reads and the same ``decide_role`` as the handler: its scope, each rule's mode and result, the bucket
    grants that name it with the documents they produce, and the actions that would follow. Writes nothing."""
    name, _key = _resource(role_name)
    role, policies = read_role(name)
    report: dict[str, Any] = {"role": name}
    if role is None:
        report["exists"] = "no: IAM has no role of that name"
        report["would do"] = "nothing"
        return report
    own = current_settings().self_role_arns
    report["arn"] = role.arn
    report["scope"] = {
        "path": role.path,
        "managed": "yes" if role.path.startswith(config.managed_path) else f"no: outside {config.managed_path}",
        "service-linked": "yes" if role.path.startswith(SERVICE_LINKED_PATH) else "no",
        "protected": "yes (compliance.protected_roles)" if name in config.compliance.protected_roles else "no",
        "RoleWarden's own": "yes (ROLEWARDEN_SELF_ROLE_ARNS)" if role.arn in own else "no",
    }
    report["permissions"] = {
        "trust policy": role.trust,
        "permissions boundary": role.boundary or "(none)",
        "attached policies": [p.arn for p in role.attached] or "(none)",
        "inline policies": sorted(role.inline) or "(none)",
    }
    decision = decide_role(role, config, policies, own)
    found: dict[str, list[str]] = {}
    for violation, _mode in decision.violations:
        found.setdefault(violation.rule, []).append(violation.message)
    rules = []
    for rule_id, rule in registered_rules().items():
        mode = config.rule_mode(rule_id)
        entry: dict[str, Any] = {"rule": rule_id, "mode": mode, "checks": rule.checks}
        if decision.verdict in ("out-of-scope", "unreadable"):
            entry["result"] = f"not evaluated: {decision.reason}"
        elif mode == "off":
            entry["result"] = "off"
        elif rule_id == "grant-policy-drift":
            entry["result"] = (
                f"checked by the grants code for {', '.join(decision.grant_policies)} (see grants below)"
                if decision.grant_policies
                else "pass: no grant policy attached"
            )
        elif rule_id in found:
            entry["result"] = "VIOLATED" + (" (remediated)" if mode == "enforce" else " (reported only)")
            entry["violations"] = found[rule_id]
        else:
            entry["result"] = "pass"
        rules.append(entry)
    verdict = decision.verdict + (f": {decision.reason}" if decision.reason else "")
    report["verdict"] = verdict
    report["rules"] = rules
    from rolewarden.operator import grants

    grant_report = grants.explain_role(config, name)
    report["grants"] = grant_report
    actions = [a.describe() for a in decision.actions]
    grant_actions = grant_report.get("would do")
    if isinstance(grant_actions, list):  # the bucket_grants capability's own sweep does these
        actions.extend(f"{a} (bucket grants)" for a in grant_actions)
    report["would do"] = actions or "nothing"
    if config.dry_run:
        report["note"] = "dry_run is true: RoleWarden would only log this"
    return report
