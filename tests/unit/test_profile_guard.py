"""The tag guard (issue 16), pure: a profile whose role fails a guard rule is refused unless the config
rule naming it says allow_privileged with a reason; plus the launch-retry and heartbeat tables (issue 10,
defect 4) and the profile-event routes (defect 7)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rolewarden.config import Config, InstanceProfiles, ProfileRule, parse_config
from rolewarden.decide import profiles as p
from rolewarden.decide.compliance import registry as c
from rolewarden.errors import ConfigError
from rolewarden.model.compliance import single_version_policy
from rolewarden.model.iam import AttachedPolicy, Role
from rolewarden.model.instances import GuardFinding, InstanceView, ProfileInfo
from rolewarden.model.profiles import AssociateProfile
from rolewarden.model.targets import Target
from rolewarden.triggers import IAM_PROFILE_EVENTS, parse_envelope, route

ROOT = Path(__file__).resolve().parents[2]
PATH = "/rolewarden/"
BOUNDARY = "arn:aws:iam::123456789012:policy/rolewarden-boundary"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
ADMIN_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# PassRole to any role plus a service that runs the caller's code with it (the classic EC2 path): PassRole
# alone is no escalation (issue 12 removed that false positive)
PASS_ANY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}],
}
READ_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
POLICIES = {ADMIN_ARN: single_version_policy(ADMIN_ARN, ADMIN_DOC)}


def config(boundary: str | None = None, **rule: Any) -> Config:
    profile_rule = {"match": {"rolewarden:profile": "admin"}, "profile": "ops", **rule}
    return Config.from_data(
        {
            "version": 1,
            "instance_profiles": {"rules": [profile_rule]},
            "compliance": {"permissions_boundary": boundary},
        }
    )


def role(attached: tuple[str, ...] = (), inline: dict[str, Any] | None = None, boundary: str | None = None) -> Role:
    return Role(
        name="ops",
        arn="arn:aws:iam::123456789012:role/rolewarden/ops",
        path=PATH,
        trust={},
        boundary=boundary,
        attached=tuple(AttachedPolicy(a, a.rsplit("/", 1)[-1]) for a in attached),
        inline=inline or {},
    )


def profile(guard: tuple[GuardFinding, ...] | None) -> ProfileInfo:
    return ProfileInfo("ops", "arn:aws:iam::123456789012:instance-profile/ops", ("ops",), (PATH,), guard=guard)


INSTANCE = InstanceView("i-0123456789abcdef0", "running", {"rolewarden:profile": "admin"})

# (id, role, boundary configured, rule overrides, verdict, rules named in the refusal)
CASES = [
    # "*" covers iam:PassRole too: an admin role fails both content rules
    ("admin-role", role(attached=(ADMIN_ARN,)), None, {}, "refuse", {"no-admin-access", "no-privilege-escalation"}),
    (
        "admin-inline",
        role(inline={"all": ADMIN_DOC}),
        None,
        {},
        "refuse",
        {"no-admin-access", "no-privilege-escalation"},
    ),
    ("escalation-role", role(inline={"pass": PASS_ANY}), None, {}, "refuse", {"no-privilege-escalation"}),
    ("boundary-missing", role(inline={"read": READ_S3}), BOUNDARY, {}, "refuse", {"permissions-boundary"}),
    ("boundary-present", role(inline={"read": READ_S3}, boundary=BOUNDARY), BOUNDARY, {}, "associate", set()),
    ("no-boundary-configured", role(inline={"read": READ_S3}), None, {}, "associate", set()),
    ("compliant", role(inline={"read": READ_S3}), None, {}, "associate", set()),
    (
        "explicit-allow-with-reason",
        role(attached=(ADMIN_ARN,)),
        None,
        {"allow_privileged": True, "reason": "break-glass hosts, ticket SEC-42"},
        "associate",
        set(),
    ),
]


@pytest.mark.parametrize(("case", "r", "boundary", "rule", "verdict", "rules"), CASES, ids=[c[0] for c in CASES])
def test_refusal_decision_table(
    case: str, r: Role, boundary: str | None, rule: dict[str, Any], verdict: str, rules: set[str]
) -> None:
    cfg = config(boundary, **rule)
    guard = p.judge_role(r, POLICIES, cfg)
    decision = p.decide_instance(
        cfg.instance_profiles, PATH, INSTANCE, INSTANCE.instance_id, {"ops": profile(guard)}, None, True
    )
    assert decision.verdict == verdict, decision.reason
    if verdict == "refuse":
        assert {g.rule for g in decision.guard} == rules
        for rule_id in rules:
            assert rule_id in decision.reason
        assert "rolewarden:profile=admin" in decision.reason  # the tag that asked for it
        assert "instance_profiles.rules.0" in decision.reason
        assert decision.asked_by == (("rolewarden:profile", "admin"),)
        assert decision.actions == ()
    else:
        assert [type(a) for a in decision.actions] == [AssociateProfile]
    if case == "explicit-allow-with-reason":
        assert "no-admin-access" in {g.rule for g in decision.guard}  # still named, and allowed
        assert "SEC-42" in decision.reason


def test_a_role_that_was_not_judged_is_refused() -> None:
    cfg = config()
    decision = p.decide_instance(cfg.instance_profiles, PATH, INSTANCE, INSTANCE.instance_id, {"ops": profile(None)})
    assert decision.verdict == "refuse" and "not checked" in decision.reason


def test_allow_privileged_on_another_rule_does_not_cover_this_one() -> None:
    cfg = Config.from_data(
        {
            "version": 1,
            "instance_profiles": {
                "rules": [
                    {"match": {"rolewarden:profile": "admin"}, "profile": "ops"},
                    {"match": {"rolewarden:profile": "ops"}, "profile": "ops", "allow_privileged": True, "reason": "x"},
                ]
            },
        }
    )
    guard = p.judge_role(role(attached=(ADMIN_ARN,)), POLICIES, cfg)
    decision = p.decide_instance(cfg.instance_profiles, PATH, INSTANCE, INSTANCE.instance_id, {"ops": profile(guard)})
    assert decision.verdict == "refuse"
    assert p.profile_refusal(profile(guard), cfg) is None  # for a holder report, some rule allows it


def test_the_default_profile_can_never_be_privileged() -> None:
    settings = InstanceProfiles(default="ops")
    guard = (GuardFinding("no-admin-access", "admin"),)
    plain = InstanceView("i-0123456789abcdef0", "running", {})
    decision = p.decide_instance(settings, PATH, plain, plain.instance_id, {"ops": profile(guard)})
    assert decision.verdict == "refuse" and "instance_profiles.default" in decision.reason


def test_unreadable_policy_and_unregistered_rule_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config()
    missing_doc = role(attached=("arn:aws:iam::123456789012:policy/unread",))
    assert {g.rule for g in p.judge_role(missing_doc, {}, cfg)} >= {"no-admin-access"}
    registry = {k: v for k, v in c.registered_rules().items() if k != "no-privilege-escalation"}
    monkeypatch.setattr(c, "registered_rules", lambda: registry)
    found = p.judge_role(role(), {}, cfg)
    assert [g.rule for g in found] == ["no-privilege-escalation"] and "not registered" in found[0].message


def test_the_guard_calls_the_compliance_registry_not_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another engineer owns the rules: the guard must follow whatever the registered rule decides."""
    seen: list[str] = []
    real = c.registered_rules()

    class Spy:
        def __init__(self, rule_id: str) -> None:
            self.rule_id = rule_id

        def evaluate(self, r: Role, ctx: Any) -> list[Any]:
            seen.append(self.rule_id)
            return real[self.rule_id].evaluate(r, ctx)

    monkeypatch.setattr(c, "registered_rules", lambda: {k: Spy(k) for k in real})
    p.judge_role(role(), {}, config(BOUNDARY))
    assert seen == ["no-admin-access", "no-privilege-escalation", "permissions-boundary"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"allow_privileged": True}, "needs a non-empty 'reason'"),
        ({"allow_privileged": True, "reason": "   "}, "needs a non-empty 'reason'"),
        ({"reason": "because"}, "only read with allow_privileged: true"),
        ({"allow_privileged": "yes", "reason": "x"}, "allow_privileged"),
    ],
    ids=["no-reason", "blank-reason", "reason-without-allow", "not-a-bool"],
)
def test_allow_privileged_is_validated(rule: dict[str, Any], message: str) -> None:
    text = json.dumps({"version": 1, "instance_profiles": {"rules": [{"match": {"k": "v"}, "profile": "ops", **rule}]}})
    with pytest.raises(ConfigError) as error:
        parse_config(text, "cfg.yaml")
    assert "cfg.yaml" in str(error.value) and "instance_profiles.rules.0" in str(error.value)
    assert message in str(error.value)


def test_the_shipped_config_maps_no_tag_to_an_administrative_profile() -> None:
    shipped = parse_config((ROOT / "config" / "rolewarden.yaml").read_text(), "config/rolewarden.yaml")
    names = [r.profile for r in shipped.instance_profiles.rules] + [shipped.instance_profiles.default or ""]
    assert not [n for n in names if any(word in n.lower() for word in ("admin", "break-glass", "breakglass", "root"))]
    assert not any(r.allow_privileged for r in shipped.instance_profiles.rules)
    assert "break-glass" in (ROOT / "config" / "rolewarden.yaml").read_text()  # the comment says why


# -- launches EC2 does not show yet, hook heartbeats ---------------------------------------------------
@pytest.mark.parametrize(
    ("is_hook", "age", "retried"),
    [
        (True, None, True),
        (True, 5.0, True),
        (True, 3600.0, True),
        (False, 5.0, True),
        (False, p.LAUNCH_GRACE_SECONDS - 1, True),
        (False, p.LAUNCH_GRACE_SECONDS + 1, False),
        (False, None, False),
    ],
    ids=["hook-unknown-age", "hook-young", "hook-old", "launch-young", "launch-at-grace", "launch-old", "tag-event"],
)
def test_missing_instance_is_retried_only_for_hooks_and_young_launches(
    is_hook: bool, age: float | None, retried: bool
) -> None:
    assert p.missing_instance_is_retried(is_hook, age) is retried


@pytest.mark.parametrize(
    ("age", "beat"),
    [(None, True), (0.0, False), (p.MIN_HEARTBEAT_TIMEOUT - p.RETRY_MARGIN_SECONDS - 1, False), (30.0, True)],
    ids=["unknown", "fresh", "just-below", "past-the-smallest-timeout"],
)
def test_a_hook_gets_a_heartbeat_when_a_retry_could_outlast_its_timeout(age: float | None, beat: bool) -> None:
    assert p.hook_needs_heartbeat(age) is beat


# -- routes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(IAM_PROFILE_EVENTS))
def test_profile_role_changes_route_to_the_instance_profiles_capability(name: str) -> None:
    event = json.loads((ROOT / "events" / f"cloudtrail-iam-{name.lower()}.json").read_text())
    envelope = parse_envelope(event)
    assert route("instance_profiles", envelope) == [Target("profile", "web-server")]
    assert route("role_compliance", envelope) == []
    event["detail"]["errorCode"] = "NoSuchEntity"
    assert route("instance_profiles", parse_envelope(event)) == []


def test_launch_events_carry_their_time() -> None:
    event = json.loads((ROOT / "events" / "asg-lifecycle-launching.json").read_text())
    (target,) = route("instance_profiles", parse_envelope(event))
    expected = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
    assert target.lifecycle is not None and target.launched_at == expected
    assert parse_envelope({**event, "time": "yesterday"}).epoch is None
    tags = json.loads((ROOT / "events" / "tag-change-instance.json").read_text())
    assert route("instance_profiles", parse_envelope(tags))[0].launched_at is None


def test_rule_keys_are_reported_even_when_the_instance_lacks_a_star_value() -> None:
    rule = ProfileRule(match={"rolewarden:profile": "*"}, profile="ops")
    assert p.asking_tags(rule, {"rolewarden:profile": "anything"}) == (("rolewarden:profile", "anything"),)
