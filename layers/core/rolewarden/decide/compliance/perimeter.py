"""The instance-credential perimeter (issue 15), PURE: one compliance rule, declared in the rule registry.

On each managed role that EC2 may assume, RoleWarden keeps an inline policy (``PERIMETER_POLICY``) of two
Deny statements, the AWS data-perimeter pattern for EC2 instance credentials: deny a request signed with
the role's *instance* credentials (``ec2:SourceInstanceARN`` present, ``aws:ViaAWSService`` false) when
``aws:EC2InstanceSourceVPC`` differs from ``aws:SourceVpc`` (the VPC the request came through) or
``aws:EC2InstanceSourcePrivateIPv4`` differs from ``aws:VpcSourceIp`` (the address it came from).

``aws:SourceVpc`` and ``aws:VpcSourceIp`` exist only for requests that reach AWS through a VPC endpoint.
A request through a NAT gateway or the internet carries neither, so the comparison denies it: a deny on
every action would cut off an instance that calls a service without an endpoint. The statements therefore
name only the services the role's VPCs reach through endpoints (``compliance.instance_perimeter``), and
of those only the services the role's own policies allow. Every other service the role may call is
reported as not covered; a role whose endpoint services are not configured gets no statement at all,
only a report. The rule never widens a deny to a service that is not declared reachable through an
endpoint, so it never denies a call that the instances make today through their endpoints.
"""

from __future__ import annotations

from typing import Any

from rolewarden.decide.compliance.rule import Remedy, Rule, RuleContext, Violation, documents
from rolewarden.decide.compliance.trust import ec2_may_assume
from rolewarden.decide.policy import PolicyDocument
from rolewarden.model.compliance import GRANT_POLICY_PREFIX, is_grant_policy
from rolewarden.model.documents import canonical_json, load_document
from rolewarden.model.iam import Role

RULE_ID = "instance-credential-perimeter"
#: The inline policy RoleWarden owns on each role it puts the perimeter on.
PERIMETER_POLICY = "rolewarden-instance-perimeter"
#: The two comparisons of the pattern: (Sid suffix, instance key, request key as a policy variable).
COMPARISONS = (
    ("SourceVpc", "aws:EC2InstanceSourceVPC", "${aws:SourceVpc}"),
    ("PrivateIPv4", "aws:EC2InstanceSourcePrivateIPv4", "${aws:VpcSourceIp}"),
)
_ALL = "*"


def perimeter_document(services: tuple[str, ...]) -> dict[str, Any]:
    """The inline policy for the services (sorted, non-empty) the role's VPCs reach through endpoints."""
    actions = [f"{service}:*" for service in sorted(set(services))]
    statements = [
        {
            "Sid": f"RoleWardenInstanceCredentials{suffix}",
            "Effect": "Deny",
            "Action": actions,
            "Resource": "*",
            "Condition": {
                "StringNotEquals": {instance_key: request_variable},
                "Null": {"ec2:SourceInstanceARN": "false"},
                "BoolIfExists": {"aws:ViaAWSService": "false"},
            },
        }
        for suffix, instance_key, request_variable in COMPARISONS
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def allowed_services(role: Role, ctx: RuleContext) -> set[str]:
    """The service prefixes the role's policies allow (``*`` when an Allow is open-ended: ``*``, ``*:*``,
    a wildcard service, or NotAction). Its grant policies are S3 grants. The perimeter policy itself is
    not counted (it only denies)."""
    found: set[str] = set()
    for kind, name, document in documents(role, ctx):
        if kind == "inline" and name == PERIMETER_POLICY:
            continue
        found |= _services_of(document)
    if any(is_grant_policy(p.arn, ctx.managed_path) for p in role.attached) or any(
        p.name.startswith(GRANT_POLICY_PREFIX) for p in role.attached
    ):
        found.add("s3")
    return found


def _services_of(document: PolicyDocument) -> set[str]:
    found: set[str] = set()
    for statement in document.statements:
        if not statement.is_allow:
            continue
        if statement.not_actions is not None:
            found.add(_ALL)
            continue
        for action in statement.actions or ():
            service = action.partition(":")[0].lower()
            found.add(_ALL if (action.strip() in ("*", "*:*") or "*" in service or "?" in service) else service)
    return found


def desired_perimeter(role: Role, ctx: RuleContext) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(services to cover, services the role may call that cannot be covered, endpoint services configured)."""
    endpoint = ctx.config.compliance.instance_perimeter.services_for(role.name)
    used = allowed_services(role, ctx)
    if _ALL in used:
        covered = set(endpoint)
        uncovered = {_ALL}
    else:
        covered = used & set(endpoint)
        uncovered = used - set(endpoint)
    return tuple(sorted(covered)), tuple(sorted(uncovered)), endpoint


def has_perimeter(role: Role, ctx: RuleContext) -> bool | None:
    """Whether the role carries the perimeter it should (None: it is not a role EC2 may assume)."""
    if not ec2_may_assume(role.trust):
        return None
    covered, _uncovered, _endpoint = desired_perimeter(role, ctx)
    current = role.inline.get(PERIMETER_POLICY)
    return bool(covered) and current is not None and _same(current, perimeter_document(covered))


def _same(current: Any, wanted: dict[str, Any]) -> bool:
    """Whether the document in place is the one wanted (``documents`` parsed it already: it is readable)."""
    return canonical_json(load_document(current)) == canonical_json(wanted)


class InstanceCredentialPerimeter(Rule):
    id = RULE_ID
    checks = (
        "A managed role that EC2 may assume denies requests made with its instance credentials from outside the "
        "instance's VPC and address (aws:EC2InstanceSourceVPC vs aws:SourceVpc, aws:EC2InstanceSourcePrivateIPv4 "
        "vs aws:VpcSourceIp), for the services its VPCs reach through VPC endpoints."
    )
    remedy = f"Put the inline policy {PERIMETER_POLICY} with the two Deny statements (PutRolePolicy)."
    permissions = ("iam:GetRolePolicy", "iam:PutRolePolicy")

    def evaluate(self, role: Role, ctx: RuleContext) -> list[Violation]:
        if not ec2_may_assume(role.trust):
            return []
        covered, uncovered, endpoint = desired_perimeter(role, ctx)
        found: list[Violation] = []
        details = {"covered": list(covered), "not_covered": list(uncovered), "endpoint_services": list(endpoint)}
        if uncovered:
            what = "every service but " + ", ".join(covered) if uncovered == (_ALL,) else ", ".join(uncovered)
            why = (
                "no endpoint services are configured for it (compliance.instance_perimeter.endpoint_services)"
                if not endpoint
                else "its VPCs are not declared to reach them through VPC endpoints"
            )
            found.append(
                Violation(
                    self.id,
                    f"the perimeter cannot cover {what or 'any service'}: {why}; instance credentials copied off an "
                    "instance still work for those from anywhere",
                    Remedy("report-only"),
                    details,
                    mode="report",
                )
            )
        if not covered:
            return found
        wanted = perimeter_document(covered)
        current = role.inline.get(PERIMETER_POLICY)
        if current is not None and _same(current, wanted):
            return found
        state = "is missing" if current is None else "differs from the one its endpoint services call for"
        found.append(
            Violation(
                self.id,
                f"inline policy {PERIMETER_POLICY} {state} (services: {', '.join(covered)})",
                Remedy("put-inline", policy=PERIMETER_POLICY, document=canonical_json(wanted)),
                details,
            )
        )
        return found
