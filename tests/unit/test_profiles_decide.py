"""Decision table for instance profiles: pure, no network."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rolewarden.config import InstanceProfiles, ProfileRule
from rolewarden.decide.profiles import assignable, decide_instance, desired_profile, rule_matches
from rolewarden.model.instances import Association, InstanceView, ProfileInfo
from rolewarden.model.profiles import AssociateProfile, ReassociateProfile, ReplaceProfile

PATH = "/rolewarden/"
#: guard=(): the tag guard judged the role and it fails no rule (tests/unit/test_profile_guard.py covers the rest)
WEB = ProfileInfo(
    "web-server", "arn:aws:iam::123456789012:instance-profile/web-server", ("web-server",), (PATH,), guard=()
)
DATA = ProfileInfo(
    "data-worker",
    "arn:aws:iam::123456789012:instance-profile/data-worker",
    ("data",),
    ("/rolewarden/data/",),
    guard=(),
)
ADMIN = ProfileInfo("admin", "arn:aws:iam::123456789012:instance-profile/admin", ("admin",), ("/",))
EMPTY = ProfileInfo("empty", "arn:aws:iam::123456789012:instance-profile/empty", (), ())
OTHER_ARN = "arn:aws:iam::123456789012:instance-profile/other"
PROFILES = {"web-server": WEB, "data-worker": DATA, "admin": ADMIN, "empty": EMPTY, "missing": None}

RULES = InstanceProfiles(
    rules=[
        ProfileRule(match={"rolewarden:profile": "web"}, profile="web-server"),
        ProfileRule(match={"team": "data", "env": ["prod", "staging"]}, profile="data-worker"),
        ProfileRule(match={"rolewarden:profile": "admin"}, profile="admin"),
        ProfileRule(match={"rolewarden:profile": "empty"}, profile="empty"),
        ProfileRule(match={"rolewarden:profile": "missing"}, profile="missing"),
        ProfileRule(match={"any": "*"}, profile="web-server"),
    ]
)


@pytest.mark.parametrize(
    ("match", "tags", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, True),
        ({"a": "1"}, {"a": "2"}, False),
        ({"a": "1"}, {}, False),
        ({"a": ["1", "2"]}, {"a": "2"}, True),
        ({"a": ["1", "2"]}, {"a": "3"}, False),
        ({"a": "*"}, {"a": ""}, True),
        ({"a": "*"}, {"b": "x"}, False),
        ({"a": ["*"]}, {"a": "anything"}, True),
        ({"a": "1", "b": "2"}, {"a": "1"}, False),
        ({"a": "1", "b": "2"}, {"a": "1", "b": "2", "c": "3"}, True),
        ({"a": "Web"}, {"a": "web"}, False),
    ],
    ids=[
        "equal",
        "different-value",
        "missing-key",
        "list-any-of",
        "list-none",
        "star-any-value",
        "star-needs-key",
        "star-in-list",
        "all-keys-needed",
        "extra-tags-ok",
        "case-sensitive",
    ],
)
def test_rule_matches(match: dict, tags: dict, expected: bool) -> None:
    assert rule_matches(ProfileRule(match=match, profile="p"), tags) is expected


def test_first_matching_rule_wins_and_default_applies() -> None:
    tags = {"rolewarden:profile": "web", "team": "data", "env": "prod"}
    assert desired_profile(RULES, tags) == ("web-server", 0)
    assert desired_profile(RULES, {"team": "data", "env": "staging"}) == ("data-worker", 1)
    assert desired_profile(RULES, {"team": "data", "env": "dev"}) == (None, None)
    with_default = replace(RULES, default="data-worker")
    assert desired_profile(with_default, {"nothing": "here"}) == ("data-worker", None)


def view(state: str = "running", tags: dict | None = None, profile_arn: str | None = None) -> InstanceView:
    return InstanceView(
        "i-0123456789abcdef0", state, tags if tags is not None else {"rolewarden:profile": "web"}, profile_arn
    )


ASSOC_OTHER = Association("iip-assoc-1", "i-0123456789abcdef0", OTHER_ARN, "associated")
ASSOC_WEB = Association("iip-assoc-2", "i-0123456789abcdef0", WEB.arn, "associated")

CASES = [
    # id, view, association(known?), settings, expected verdict, expected action type
    ("not-found", None, None, RULES, "skip", None),
    ("terminated", view("terminated"), None, RULES, "skip", None),
    ("shutting-down", view("shutting-down"), None, RULES, "skip", None),
    ("stopping", view("stopping"), None, RULES, "skip", None),
    ("pending-waits", view("pending"), None, RULES, "wait", None),
    ("no-rule", view(tags={"team": "web"}), None, RULES, "unmanaged", None),
    ("nothing-attached", view(), None, RULES, "associate", AssociateProfile),
    ("stopped-nothing-attached", view("stopped"), None, RULES, "associate", AssociateProfile),
    ("desired-shown-attached", view(profile_arn=WEB.arn), None, RULES, "keep", None),
    ("other-shown-needs-confirm", view(profile_arn=OTHER_ARN), None, RULES, "confirm", None),
    ("desired-confirmed", view(profile_arn=OTHER_ARN), ASSOC_WEB, RULES, "keep", None),
    ("other-running-replace", view(profile_arn=OTHER_ARN), ASSOC_OTHER, RULES, "replace", ReplaceProfile),
    (
        "other-stopped-reassociate",
        view("stopped", profile_arn=OTHER_ARN),
        ASSOC_OTHER,
        RULES,
        "reassociate",
        ReassociateProfile,
    ),
    (
        "other-report-mode",
        view(profile_arn=OTHER_ARN),
        ASSOC_OTHER,
        replace(RULES, on_mismatch="report"),
        "report",
        None,
    ),
    ("role-outside-path-refused", view(tags={"rolewarden:profile": "admin"}), None, RULES, "refuse", None),
    ("profile-missing-refused", view(tags={"rolewarden:profile": "missing"}), None, RULES, "refuse", None),
    ("profile-without-role-refused", view(tags={"rolewarden:profile": "empty"}), None, RULES, "refuse", None),
    ("sub-path-is-managed", view(tags={"team": "data", "env": "prod"}), None, RULES, "associate", AssociateProfile),
    (
        "refusal-even-if-attached",
        view(tags={"rolewarden:profile": "admin"}, profile_arn=ADMIN.arn),
        None,
        RULES,
        "refuse",
        None,
    ),
    (
        "default-profile",
        view(tags={}),
        None,
        replace(RULES, default="web-server"),
        "associate",
        AssociateProfile,
    ),
    ("star-rule", view(tags={"any": "thing"}), None, RULES, "associate", AssociateProfile),
]


@pytest.mark.parametrize(("case", "v", "assoc", "settings", "verdict", "action"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(case, v, assoc, settings, verdict, action) -> None:
    known = assoc is not None or case in ("nothing-attached",)
    decision = decide_instance(settings, PATH, v, "i-0123456789abcdef0", PROFILES, assoc, association_known=known)
    assert decision.verdict == verdict, decision.reason
    if action is None:
        assert decision.actions == ()
    else:
        assert [type(a) for a in decision.actions] == [action]
        assert decision.actions[0].profile_arn == PROFILES[decision.desired].arn  # type: ignore[union-attr]


def test_replace_carries_association_and_previous_profile() -> None:
    decision = decide_instance(
        RULES, PATH, view(profile_arn=OTHER_ARN), "i-0123456789abcdef0", PROFILES, ASSOC_OTHER, association_known=True
    )
    (action,) = decision.actions
    assert isinstance(action, ReplaceProfile)
    assert action.association_id == "iip-assoc-1" and action.previous_arn == OTHER_ARN


@pytest.mark.parametrize(
    ("profile", "reason_part"),
    [(WEB, None), (None, "does not exist"), (EMPTY, "0 roles"), (ADMIN, "outside the managed path")],
    ids=["managed", "missing", "no-role", "outside-path"],
)
def test_assignable(profile: ProfileInfo | None, reason_part: str | None) -> None:
    reason = assignable(profile, PATH)
    if reason_part is None:
        assert reason is None
    else:
        assert reason is not None and reason_part in reason


def test_path_prefix_is_not_a_string_prefix_trap() -> None:
    """/rolewarden-evil/ must not count as under /rolewarden/ (the path ends with a slash)."""
    evil = ProfileInfo("evil", "arn:aws:iam::1:instance-profile/evil", ("evil",), ("/rolewarden-evil/",))
    assert assignable(evil, PATH) is not None
