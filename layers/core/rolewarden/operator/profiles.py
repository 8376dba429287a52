"""`rolewarden explain`: why a resource is as it is and what RoleWarden would do, from the same reads
and the same decision functions the handlers use."""

from __future__ import annotations

from typing import Any

from rolewarden.aws import profiles as ec2
from rolewarden.capabilities.profiles.guard import lookup_profiles
from rolewarden.config import Config, ProfileRule
from rolewarden.decide.profiles import assignable, decide_instance, desired_profile
from rolewarden.model.instances import InstanceView


def _rule_verdict(rule: ProfileRule, tags: dict[str, str]) -> str:
    for key, wanted in rule.match.items():
        if key not in tags:
            return f"no: tag {key!r} is absent"
        value = tags[key]
        if wanted == "*" or (isinstance(wanted, list) and "*" in wanted):
            continue
        accepted = wanted if isinstance(wanted, list) else [wanted]
        if value not in accepted:
            return f"no: {key}={value!r} is not one of {accepted}"
    return "yes"


def explain_instance(config: Config, instance_id: str) -> dict[str, Any]:
    views = ec2.describe_instances([instance_id])
    view = views.get(instance_id)
    report: dict[str, Any] = {"instance": instance_id}
    if view is None:
        report["state"] = "not found"
        report["decision"] = "skip: the instance does not exist"
        return report
    tags = dict(view.tags)
    settings = config.instance_profiles
    report["state"] = view.state
    report["tags"] = tags or "(none)"
    report["rules"] = [
        {"rule": index, "match": dict(rule.match), "profile": rule.profile, "matches": _rule_verdict(rule, tags)}
        for index, rule in enumerate(settings.rules)
    ]
    name, index = desired_profile(settings, tags)
    if name is None:
        report["desired profile"] = "none (no rule matches and default is null)"
    else:
        source = f"rule {index}" if index is not None else "the default"
        report["desired profile"] = f"{name} (from {source})"
        info = lookup_profiles([name], config)[name]
        refusal = assignable(info, config.managed_path)
        report["assignable"] = "yes" if refusal is None else f"no: {refusal}"
        if info is not None and info.guard:
            rules = ", ".join(sorted({g.rule for g in info.guard}))
            report["guard"] = f"its role fails {rules}" + (
                f" (allowed: {settings.rules[index].reason})"
                if index is not None and settings.rules[index].allow_privileged
                else ": refused unless the rule says allow_privileged"
            )
        if info is not None:
            report["profile role"] = ", ".join(f"{p}{r}" for r, p in zip(info.role_names, info.role_paths, strict=True))
    association = ec2.describe_associations([instance_id]).get(instance_id)
    report["attached profile"] = association.profile_arn if association else "(none)"
    profiles = lookup_profiles([name], config) if name else {}
    decision = decide_instance(
        settings, config.managed_path, view, instance_id, profiles, association, association_known=True
    )
    report["decision"] = f"{decision.verdict}: {decision.reason}"
    report["metadata options"] = _metadata_options(view)
    md = decision.metadata
    report["imdsv2"] = (
        f"{md.verdict}: {md.reason}"
        if md is not None
        else f"not decided: RoleWarden does not act on this instance ({decision.verdict})"
    )
    role = _profile_role(config, association.profile_arn if association else None, name)
    if role is not None:
        report["perimeter"] = _perimeter(config, role)
    report["would do"] = [a.describe() for a in decision.actions] or "nothing"
    if config.dry_run:
        report["note"] = "dry_run is true: RoleWarden would only log this"
    return report


def _metadata_options(view: InstanceView) -> str:
    options = view.metadata
    if options is None:
        return "(not shown by DescribeInstances)"
    tokens = "IMDSv2 only" if options.http_tokens == "required" else "IMDSv1 and IMDSv2"
    return (
        f"HttpTokens {options.http_tokens} ({tokens}), hop limit {options.hop_limit}, "
        f"endpoint {options.http_endpoint}, state {options.state}"
    )


def _profile_role(config: Config, attached_arn: str | None, desired: str | None) -> str | None:
    """The role of the attached profile (else of the desired one): the role the instance's credentials are for."""
    name = attached_arn.rsplit("/", 1)[-1] if attached_arn else desired
    if not name:
        return None
    info = lookup_profiles([name], config).get(name)
    return info.role_names[0] if info is not None and info.role_names else None


def _perimeter(config: Config, role_name: str) -> str:
    """Whether the role carries the instance-credential perimeter (compliance rule instance-credential-perimeter)."""
    from rolewarden.decide.compliance.perimeter import PERIMETER_POLICY, RULE_ID, desired_perimeter, has_perimeter
    from rolewarden.decide.compliance.rule import RuleContext
    from rolewarden.operator.compliance import read_role

    role, policies = read_role(role_name)
    if role is None:
        return f"role {role_name}: not found"
    ctx = RuleContext(config, policies)
    mode = config.rule_mode(RULE_ID)
    try:
        present = has_perimeter(role, ctx)
        covered, uncovered, _endpoint = desired_perimeter(role, ctx)
    except ValueError as exc:
        return f"role {role_name}: a policy cannot be read: {exc}"
    if present is None:
        return f"role {role_name}: EC2 may not assume it; no perimeter applies"
    state = "yes" if present else ("partly or outdated" if PERIMETER_POLICY in role.inline else "no")
    gaps = f"; not covered: {', '.join(uncovered)}" if uncovered else ""
    return (
        f"role {role_name}: {state} (inline policy {PERIMETER_POLICY}; rule {RULE_ID}: {mode}; "
        f"services through endpoints: {', '.join(covered) or 'none configured'}{gaps})"
    )


def explain_role(config: Config, role_name: str) -> dict[str, Any]:
    """Scope, each compliance rule's mode and result, the grants naming the role and what would be done."""
    from rolewarden.operator import compliance

    return compliance.explain(config, role_name)


def explain_bucket(config: Config, bucket: str) -> dict[str, Any]:
    """Tags, levels and refusals, protection, encryption, the documents per role and what would be done."""
    from rolewarden.operator import grants

    return grants.explain(config, bucket)
