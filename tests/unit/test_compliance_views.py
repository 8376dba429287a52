"""The adapter between the one IAM snapshot (model.iam) and decide.compliance's views (removed when the
rules split lands, issue 11): a decision from model objects equals the decision from the views."""

from __future__ import annotations

from rolewarden.capabilities.compliance.views import decide_role, out_of_scope, views_of
from rolewarden.config import Config
from rolewarden.decide import compliance as c
from rolewarden.model.iam import AttachedPolicy, ManagedPolicy, PolicyVersion, Role

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
WIDE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
CONFIG = Config.model_validate({"version": 1, "managed_path": "/rolewarden/"})
ROLE = Role(
    "web",
    "arn:aws:iam::1:role/rolewarden/web",
    "/rolewarden/",
    TRUST,
    None,
    (AttachedPolicy(ADMIN, "AdministratorAccess"),),
    {"tools": WIDE},
    ("web",),
)
POLICIES = {ADMIN: ManagedPolicy(ADMIN, "AdministratorAccess", "/", "v2", (PolicyVersion("v2", True, WIDE),))}


def test_the_decision_from_model_objects_is_the_decision_from_views() -> None:
    role, policies = views_of(ROLE, POLICIES)
    assert role == c.RoleView(
        "web",
        ROLE.arn,
        "/rolewarden/",
        TRUST,
        None,
        (c.AttachedPolicy(ADMIN, "AdministratorAccess"),),
        {"tools": WIDE},
        ("web",),
    )
    assert dict(policies) == {ADMIN: c.ManagedPolicyView(ADMIN, "AdministratorAccess", "/", "v2", WIDE)}
    assert len(policies) == 1 and list(policies) == [ADMIN]
    decision = decide_role(ROLE, CONFIG, POLICIES)
    assert decision == c.decide_role(role, CONFIG, dict(policies))
    assert decision.verdict == "noncompliant" and decision.actions


def test_scope_is_judged_on_the_same_fields() -> None:
    outside = Role("x", "arn:aws:iam::1:role/other/x", "/other/")
    assert out_of_scope(outside, CONFIG) == c.out_of_scope(views_of(outside, {})[0], CONFIG)
    assert out_of_scope(ROLE, CONFIG, frozenset({ROLE.arn})) == "RoleWarden's own execution role"
