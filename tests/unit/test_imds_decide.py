"""Decision table for IMDSv2 with the attach (issue 15): pure, no network."""

from __future__ import annotations

from typing import Any

import pytest

from rolewarden.config import InstanceMetadata, InstanceProfiles, MetadataExemption, ProfileRule
from rolewarden.decide.profiles import decide_instance, decide_metadata
from rolewarden.model.instances import Association, InstanceView, MetadataOptions, ProfileInfo
from rolewarden.model.profiles import AssociateProfile, ReplaceProfile, SetMetadataOptions

PATH = "/rolewarden/"
WEB = ProfileInfo("web-server", "arn:aws:iam::1:instance-profile/web-server", ("web",), (PATH,), guard=())
ADMIN = ProfileInfo("admin", "arn:aws:iam::1:instance-profile/admin", ("admin",), ("/",))
OTHER = "arn:aws:iam::1:instance-profile/other"
PROFILES = {"web-server": WEB, "admin": ADMIN}
OPEN = MetadataOptions("optional", 1)
V2_HOP1 = MetadataOptions("required", 1)
V2_HOP2 = MetadataOptions("required", 2)
DISABLED = MetadataOptions("optional", 1, http_endpoint="disabled")
EXEMPT = MetadataExemption(match={"imds": ["v1", "legacy"]}, reason="agent 3.x reads IMDSv1")


def settings(mode: str = "enforce", hop: int = 2, exemptions: tuple[MetadataExemption, ...] = (EXEMPT,)) -> Any:
    return InstanceProfiles(
        rules=[
            ProfileRule(match={"app": "web"}, profile="web-server"),
            ProfileRule(match={"app": "admin"}, profile="admin"),
        ],
        metadata=InstanceMetadata(imdsv2=mode, hop_limit=hop, exemptions=list(exemptions)),  # type: ignore[arg-type]
    )


def view(tags: dict[str, str], md: MetadataOptions | None, state: str = "running", profile: str | None = None) -> Any:
    return InstanceView("i-1", state, tags, profile, md)


# (id, mode, hop limit, tags, metadata options, attached profile, profile verdict, metadata verdict, writes it)
TABLE = [
    ("enforce-new-instance-imdsv1", "enforce", 2, {"app": "web"}, OPEN, None, "associate", "require", True),
    ("enforce-kept-profile-imdsv1", "enforce", 2, {"app": "web"}, OPEN, WEB.arn, "keep", "require", True),
    ("enforce-right-already", "enforce", 2, {"app": "web"}, V2_HOP2, WEB.arn, "keep", "secure", False),
    ("enforce-other-hop-limit", "enforce", 2, {"app": "web"}, V2_HOP1, WEB.arn, "keep", "require", True),
    ("enforce-hop-1-configured", "enforce", 1, {"app": "web"}, V2_HOP1, WEB.arn, "keep", "secure", False),
    ("enforce-exempt-by-tag", "enforce", 2, {"app": "web", "imds": "legacy"}, OPEN, WEB.arn, "keep", "exempt", False),
    ("enforce-exempt-other-value", "enforce", 2, {"app": "web", "imds": "v2"}, OPEN, WEB.arn, "keep", "require", True),
    ("enforce-endpoint-disabled", "enforce", 2, {"app": "web"}, DISABLED, WEB.arn, "keep", "disabled", False),
    ("enforce-no-options-shown", "enforce", 2, {"app": "web"}, None, WEB.arn, "keep", "unknown", False),
    ("enforce-unmanaged-left-alone", "enforce", 2, {"app": "db"}, OPEN, None, "unmanaged", None, False),
    ("enforce-refused-left-alone", "enforce", 2, {"app": "admin"}, OPEN, None, "refuse", None, False),
    ("report-imdsv1-named", "report", 2, {"app": "web"}, OPEN, None, "associate", "imdsv1", False),
    ("report-hop-limit-named", "report", 2, {"app": "web"}, V2_HOP1, WEB.arn, "keep", "hop-limit", False),
    ("report-right", "report", 2, {"app": "web"}, V2_HOP2, WEB.arn, "keep", "secure", False),
    ("report-exempt", "report", 2, {"app": "web", "imds": "v1"}, OPEN, WEB.arn, "keep", "exempt", False),
    ("off-never-looks", "off", 2, {"app": "web"}, OPEN, WEB.arn, "keep", "off", False),
]


@pytest.mark.parametrize(
    ("mode", "hop", "tags", "md", "attached", "verdict", "md_verdict", "writes"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_metadata_decision_table(
    mode: str,
    hop: int,
    tags: dict[str, str],
    md: MetadataOptions | None,
    attached: str | None,
    verdict: str,
    md_verdict: str | None,
    writes: bool,
) -> None:
    decision = decide_instance(settings(mode, hop), PATH, view(tags, md, profile=attached), "i-1", PROFILES)
    assert decision.verdict == verdict
    assert (decision.metadata.verdict if decision.metadata else None) == md_verdict
    md_actions = [a for a in decision.actions if isinstance(a, SetMetadataOptions)]
    assert bool(md_actions) == writes
    if writes:
        (action,) = md_actions
        assert action.hop_limit == hop
        assert (action.previous_tokens, action.previous_hop_limit) == (md.http_tokens, md.hop_limit)  # type: ignore[union-attr]


def test_profile_write_comes_first_then_metadata_in_the_same_decision() -> None:
    decision = decide_instance(settings(), PATH, view({"app": "web"}, OPEN), "i-1", PROFILES)
    assert [type(a) for a in decision.actions] == [AssociateProfile, SetMetadataOptions]


def test_a_replaced_profile_also_gets_imdsv2() -> None:
    current = Association("iip-1", "i-1", OTHER, "associated")
    v = view({"app": "web"}, OPEN, profile=OTHER)
    decision = decide_instance(settings(), PATH, v, "i-1", PROFILES, current, association_known=True)
    assert [type(a) for a in decision.actions] == [ReplaceProfile, SetMetadataOptions]


def test_confirm_decides_the_metadata_only_once_the_association_is_read() -> None:
    """DescribeInstances shows another profile: the decision is taken again with the association, and only
    that second decision carries the metadata write (so it is never planned twice)."""
    decision = decide_instance(settings(), PATH, view({"app": "web"}, OPEN, profile=OTHER), "i-1", PROFILES)
    assert decision.verdict == "confirm"
    assert decision.metadata is None and decision.actions == ()


@pytest.mark.parametrize("state", ["pending", "stopping", "terminated", "shutting-down"])
def test_instances_that_cannot_be_acted_on_get_no_metadata_write(state: str) -> None:
    decision = decide_instance(settings(), PATH, view({"app": "web"}, OPEN, state=state), "i-1", PROFILES)
    assert decision.actions == () and decision.metadata is None


def test_stopped_instances_are_secured_too() -> None:
    """ModifyInstanceMetadataOptions works on stopped instances: their next start is already IMDSv2 only."""
    decision = decide_instance(settings(), PATH, view({"app": "web"}, OPEN, state="stopped"), "i-1", PROFILES)
    assert decision.metadata is not None and decision.metadata.verdict == "require"


def test_the_first_matching_exemption_is_quoted() -> None:
    second = MetadataExemption(match={"team": "*"}, reason="team-wide waiver")
    md, action = decide_metadata(
        InstanceMetadata(imdsv2="enforce", exemptions=[EXEMPT, second]), view({"team": "x"}, OPEN)
    )
    assert (md.verdict, md.exemption, action) == ("exempt", "team-wide waiver", None)


def test_deciding_twice_is_deterministic() -> None:
    a = decide_instance(settings(), PATH, view({"app": "web"}, OPEN), "i-1", PROFILES)
    b = decide_instance(settings(), PATH, view({"app": "web"}, OPEN), "i-1", PROFILES)
    assert a == b


@pytest.mark.parametrize(
    ("yaml_text", "error"),
    [
        ("imdsv2: required", "imdsv2"),
        ("hop_limit: 0", "hop_limit"),
        ("hop_limit: 65", "hop_limit"),
        ("exemptions: [{match: {a: b}}]", "reason"),
        ("exemptions: [{match: {}, reason: x}]", "match"),
        ("exemptions: [{match: {a: []}, reason: x}]", "empty list"),
        ("tokens: required", "unknown key"),
    ],
)
def test_bad_metadata_config_is_refused_with_the_key_path(yaml_text: str, error: str) -> None:
    from rolewarden.config import parse_config
    from rolewarden.errors import ConfigError

    text = "version: 1\ninstance_profiles:\n  metadata: {" + yaml_text.replace(": ", ": ", 1) + "}\n"
    if yaml_text.startswith("exemptions"):
        text = "version: 1\ninstance_profiles:\n  metadata:\n    " + yaml_text + "\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "rw.yaml")
    assert "instance_profiles.metadata" in str(exc.value) and error in str(exc.value)


def test_default_is_report_with_hop_limit_2() -> None:
    from rolewarden.config import parse_config

    md = parse_config("version: 1\n").instance_profiles.metadata
    assert (md.imdsv2, md.hop_limit, md.exemptions) == ("report", 2, [])
