"""Pure policy generation for bucket grants: tag parsing, rendering, packing, splitting, plans."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolewarden.config import parse_config
from rolewarden.decide.grants.catalog import level_table, resource_type
from rolewarden.decide.grants.decide import decide_role
from rolewarden.decide.grants.naming import parts_by_role, policy_description, policy_name, policy_owner
from rolewarden.decide.grants.render import MAX_POLICY_CHARS, pack, policy_size, read_back, render, trusted_grants
from rolewarden.decide.grants.tags import tag_grants
from rolewarden.errors import ConfigError
from rolewarden.model.grants import (
    AttachGrantPolicy,
    BucketGrant,
    BucketView,
    CreateGrantPolicy,
    DeleteGrantPolicy,
    RestoreGrantVersion,
    RotateGrantPolicy,
)
from rolewarden.model.iam import AttachedPolicy, IamSnapshot, ManagedPolicy, PolicyVersion, Role

ACCOUNT = "123456789012"
PATH = "/rolewarden/"
CONFIG = parse_config(
    """
version: 1
managed_path: /rolewarden/
bucket_grants:
  protected_buckets: ["*-audit-logs"]
  max_policies_per_role: 5
"""
)
LEVELS, _ = level_table(CONFIG)


def make_role(name: str, path: str, arn: str, attached: tuple[str, ...] = ()) -> Role:
    """A role of the IAM snapshot, from the fields the grants decision reads."""
    return Role(name, arn, path, attached=tuple(AttachedPolicy(a, a.rsplit("/", 1)[-1]) for a in attached))


def make_policy(
    name: str,
    arn: str,
    path: str,
    versions: tuple[PolicyVersion, ...],
    description: str = "",
    attached_roles: tuple[str, ...] = (),
) -> ManagedPolicy:
    """A generated policy of the IAM snapshot, every version read."""
    default = next((v.version_id for v in versions if v.is_default), "")
    return ManagedPolicy(arn, name, path, default, versions, description, attached_roles)


ROLES = {
    "web-server": make_role("web-server", PATH, f"arn:aws:iam::{ACCOUNT}:role{PATH}web-server"),
    "batch-worker": make_role("batch-worker", f"{PATH}jobs/", f"arn:aws:iam::{ACCOUNT}:role{PATH}jobs/batch-worker"),
    "outsider": make_role("outsider", "/other/", f"arn:aws:iam::{ACCOUNT}:role/other/outsider"),
}


def iam_view(policies: Mapping[str, ManagedPolicy] = {}, roles: Mapping[str, Role] = ROLES) -> IamSnapshot:
    """An IAM snapshot holding ``policies`` (given by name, held by ARN as IAM keys them)."""
    return IamSnapshot(
        roles=dict(roles), policies={p.arn: p for p in policies.values()}, partition="aws", account=ACCOUNT
    )


def policy(
    name: str, *documents: dict[str, Any], default: int | None = None, attached: tuple[str, ...] = ()
) -> ManagedPolicy:
    default = default or len(documents)
    versions = tuple(PolicyVersion(f"v{i}", i == default, d) for i, d in enumerate(documents, start=1))
    arn = f"arn:aws:iam::{ACCOUNT}:policy{PATH}{name}"
    return make_policy(name, arn, PATH, versions, attached_roles=attached)


def grant(bucket: str, *levels: str, key: str | None = None) -> BucketGrant:
    return BucketGrant(bucket, tuple(sorted(levels)), key)


# -- the action table ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        pytest.param("s3:ListBucket", "bucket", id="list-bucket-is-bucket-level"),
        pytest.param("s3:GetBucketLocation", "bucket", id="bucket-location"),
        pytest.param("s3:ListBucketMultipartUploads", "bucket", id="list-uploads-is-bucket-level"),
        pytest.param("s3:GetObject", "object", id="get-object"),
        pytest.param("s3:AbortMultipartUpload", "object", id="abort-upload-is-object-level"),
        pytest.param("s3:PutObject", "object", id="put-object"),
        pytest.param("s3:PutBucketPolicy", None, id="bucket-policy-writes-are-never-granted"),
        pytest.param("s3:PutObjectAcl", None, id="acl-writes-are-never-granted"),
    ],
)
def test_resource_type_table(action: str, expected: str | None) -> None:
    assert resource_type(action) == expected


# -- tags -> grants ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "granted", "refused"),
    [
        pytest.param("web-server", {"web-server"}, 0, id="one-role"),
        pytest.param("web-server  batch-worker\tweb-server", {"web-server", "batch-worker"}, 0, id="spaces-tabs-dups"),
        pytest.param("*", set(), 1, id="wildcard"),
        pytest.param("web-?", set(), 1, id="wildcard-question-mark"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:role/rolewarden/web-server", set(), 1, id="arn"),
        pytest.param("rolewarden/web-server", set(), 1, id="path"),
        pytest.param("/", set(), 1, id="bare-slash"),
        pytest.param("x" * 65, set(), 1, id="name-longer-than-64"),
        pytest.param("w" * 257, set(), 1, id="value-longer-than-256"),
        pytest.param("web\x00server", set(), 1, id="nul"),
        pytest.param("web\x1bserver", set(), 1, id="escape-character"),
        pytest.param('{"Effect":"Allow","Action":"*","Resource":"*"}', set(), 1, id="json-object"),
        pytest.param('web-server"]}', set(), 1, id="json-closing-fragment"),
        pytest.param("outsider", set(), 1, id="outside-managed-path"),
        pytest.param("ghost", set(), 1, id="unknown-role"),
        pytest.param("web-server * ghost", {"web-server"}, 2, id="good-next-to-bad"),
        pytest.param("", set(), 0, id="empty-value"),
    ],
)
def test_tag_values_are_parsed_as_untrusted_input(value: str, granted: set[str], refused: int) -> None:
    result = tag_grants(CONFIG, BucketView("data-lake", tags={"rolewarden:read": value}), ROLES)
    assert set(result.grants) == granted
    assert len(result.findings) == refused
    assert all(f.rule == "grant-refused" for f in result.findings)
    for finding in result.findings:  # what is logged is escaped and short
        assert len(finding.message) < 300 and "\x00" not in finding.message and "\x1b" not in finding.message


@pytest.mark.parametrize(
    ("bucket", "tags", "grants", "rule"),
    [
        pytest.param(
            BucketView("team-audit-logs", tags={"rolewarden:read": "web-server"}),
            None,
            {},
            "protected-bucket",
            id="protected",
        ),
        pytest.param(
            BucketView("data", tags={"rolewarden:admin": "web-server"}), None, {}, "unknown-level", id="unknown-level"
        ),
        pytest.param(BucketView("data", exists=False, tags={}), None, {}, None, id="deleted-bucket"),
        pytest.param(BucketView("data", tags={"team": "x"}), None, {}, None, id="no-grant-tags"),
        pytest.param(
            BucketView("data", tags={"rolewarden:read": "web-server", "rolewarden:write": "web-server"}),
            None,
            {"web-server": frozenset({"read", "write"})},
            None,
            id="two-levels",
        ),
    ],
)
def test_bucket_level_rules(bucket: BucketView, tags: None, grants: dict[str, Any], rule: str | None) -> None:
    result = tag_grants(CONFIG, bucket, ROLES)
    assert dict(result.grants) == grants
    assert [f.rule for f in result.findings] == ([rule] if rule else [])


@pytest.mark.parametrize(
    "action",
    [
        pytest.param("s3:PutObjectTagging", id="put-object-tagging"),
        pytest.param("s3:DeleteObjectTagging", id="delete-object-tagging"),
        pytest.param("s3:PutObjectVersionTagging", id="put-object-version-tagging"),
        pytest.param("s3:DeleteObjectVersionTagging", id="delete-object-version-tagging"),
        pytest.param("s3:PutObjectAcl", id="object-acl"),
        pytest.param("s3:PutBucketPolicy", id="bucket-policy"),
    ],
)
def test_permission_changing_actions_make_a_level_unusable(action: str) -> None:
    """Object tags feed s3:ExistingObjectTag conditions (ABAC): changing them changes who may read."""
    config = parse_config(f"version: 1\nbucket_grants:\n  levels:\n    tagger: [s3:GetObject, {action}]\n")
    usable, unknown = level_table(config)
    assert "tagger" not in usable and unknown["tagger"] == [action]
    assert resource_type(action) is None
    result = tag_grants(config, BucketView("data", tags={"rolewarden:tagger": "web-server"}), ROLES)
    assert result.grants == {}
    assert [f.rule for f in result.findings] == ["unknown-action"]
    assert "change who may access" in result.findings[0].message


@pytest.mark.parametrize(
    ("actions", "error"),
    [
        pytest.param("[s3:GetObject, s3:GetObjectVersion]", "without s3:ListBucketVersions", id="version-without-list"),
        pytest.param("[s3:GetObject, s3:GetObjectVersion, s3:ListBucketVersions]", None, id="version-with-list"),
        pytest.param("[s3:GetObject, s3:ListBucket]", None, id="no-versions-at-all"),
        pytest.param("[s3:ListBucketVersions]", None, id="list-versions-alone"),
    ],
)
def test_a_level_granting_object_versions_must_list_them(actions: str, error: str | None) -> None:
    text = f"version: 1\nbucket_grants:\n  levels:\n    history: {actions}\n"
    if error is None:
        assert "history" in parse_config(text).bucket_grants.levels
    else:
        with pytest.raises(ConfigError, match=error):
            parse_config(text)


def test_the_default_read_level_lists_the_versions_it_reads() -> None:
    read = LEVELS["read"]
    assert "s3:GetObjectVersion" in read.object and "s3:ListBucketVersions" in read.bucket


def test_a_level_naming_an_ungrantable_action_is_refused() -> None:
    config = parse_config("version: 1\nbucket_grants:\n  levels:\n    admin: [s3:PutBucketPolicy]\n")
    result = tag_grants(config, BucketView("data", tags={"rolewarden:admin": "web-server"}), ROLES)
    assert result.grants == {}
    assert [f.rule for f in result.findings] == ["unknown-action"]


# -- rendering -------------------------------------------------------------------------------------------
def test_render_groups_buckets_per_level_combination() -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    document = render(
        [grant("b-two", "read"), grant("a-one", "read"), grant("c-three", "read", "write", key=key)], LEVELS
    )
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadBuckets",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": ["arn:aws:s3:::a-one", "arn:aws:s3:::b-two"],
            },
            {
                "Sid": "ReadObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": ["arn:aws:s3:::a-one/*", "arn:aws:s3:::b-two/*"],
            },
            {
                "Sid": "ReadWriteBuckets",
                "Effect": "Allow",
                "Action": [
                    "s3:GetBucketLocation",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:ListBucketVersions",
                ],
                "Resource": ["arn:aws:s3:::c-three"],
            },
            {
                "Sid": "ReadWriteObjects",
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                ],
                "Resource": ["arn:aws:s3:::c-three/*"],
            },
            {
                "Sid": "Kms1",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key,
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::c-three", "arn:aws:s3:::c-three/*"]
                    }
                },
            },
        ],
    }


@pytest.mark.parametrize(
    ("text", "size"),
    [
        pytest.param('{"a": "b"}', 9, id="spaces-not-counted"),
        pytest.param('{\n  "a":\t"b"\n}', 9, id="newlines-and-tabs-not-counted"),
        pytest.param('{"a":"b"}', 9, id="compact"),
    ],
)
def test_policy_size_counts_non_whitespace(text: str, size: int) -> None:
    assert policy_size(text) == size


@pytest.mark.parametrize(
    ("count", "levels", "parts"),
    [
        pytest.param(1, ("read",), 1, id="one-bucket"),
        pytest.param(60, ("read",), 1, id="60-read-buckets-fit-one"),
        pytest.param(100, ("read", "write"), 2, id="100-read-write-buckets-need-two"),
        pytest.param(300, ("read", "write"), 4, id="300-read-write-buckets-need-four"),
    ],
)
def test_packing_splits_within_the_limit(count: int, levels: tuple[str, ...], parts: int) -> None:
    grants = [grant(f"analytics-bucket-{i:04d}", *levels) for i in range(count)]
    documents = pack(grants, LEVELS)
    assert documents is not None and len(documents) == parts
    named = set()
    for document in documents:
        assert policy_size(document) <= MAX_POLICY_CHARS
        named |= {r.split(":::")[1].removesuffix("/*") for s in document["Statement"] for r in s["Resource"]}
    assert named == {g.bucket for g in grants}


# -- naming ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "description", "attached", "roles", "owner"),
    [
        pytest.param("rolewarden-grants-web", "", (), {"web"}, ("web", 1), id="first-part"),
        pytest.param("rolewarden-grants-web-2", "", (), {"web"}, ("web", 2), id="second-part"),
        pytest.param("rolewarden-grants-web-2", "", (), {"web", "web-2"}, ("web-2", 1), id="role-named-web-2"),
        pytest.param("rolewarden-grants-web-2", "", ("web",), {"web", "web-2"}, ("web", 2), id="attachment-decides"),
        pytest.param(
            "rolewarden-grants-web-2", policy_description("web", 2), (), {"web-2"}, ("web", 2), id="description-decides"
        ),
        pytest.param("rolewarden-grants-gone", "", (), set(), ("gone", 1), id="orphan"),
    ],
)
def test_policy_owner(
    name: str, description: str, attached: tuple[str, ...], roles: set[str], owner: tuple[str, int]
) -> None:
    grant_policy = make_policy(name, f"arn:aws:iam::{ACCOUNT}:policy{PATH}{name}", PATH, (), description, attached)
    known = {r: make_role(r, PATH, f"arn:aws:iam::{ACCOUNT}:role{PATH}{r}") for r in roles}
    assert policy_owner(grant_policy, known) == owner


# -- plans ------------------------------------------------------------------------------------------------
def doc(*grants: BucketGrant) -> dict[str, Any]:
    return render(grants, LEVELS)


@pytest.mark.parametrize(
    ("wanted", "parts", "expected"),
    [
        pytest.param([grant("a-data", "read")], {}, [CreateGrantPolicy], id="first-grant-creates"),
        pytest.param(
            [grant("a-data", "read")],
            {1: policy("rolewarden-grants-web-server", doc(grant("a-data", "read")), attached=("web-server",))},
            [],
            id="unchanged-no-write",
        ),
        pytest.param(
            [grant("a-data", "read")],
            {1: policy("rolewarden-grants-web-server", doc(grant("a-data", "read")))},
            [AttachGrantPolicy],
            id="detached-by-hand-reattached",
        ),
        pytest.param(
            [grant("a-data", "read")],
            {1: policy("rolewarden-grants-web-server", doc(grant("a-data", "write")), attached=("web-server",))},
            [RotateGrantPolicy],
            id="changed-rotates",
        ),
        pytest.param(
            [grant("a-data", "read")],
            {
                1: policy(
                    "rolewarden-grants-web-server",
                    doc(grant("a-data", "write")),
                    doc(grant("a-data", "read")),
                    default=1,
                    attached=("web-server",),
                )
            },
            [RestoreGrantVersion],
            id="drifted-default-restored",
        ),
        pytest.param(
            [],
            {1: policy("rolewarden-grants-web-server", doc(grant("a-data", "read")), attached=("web-server",))},
            [DeleteGrantPolicy],
            id="revoked-deletes",
        ),
        pytest.param(
            [grant("a-data", "read")],
            {
                1: policy("rolewarden-grants-web-server", doc(grant("a-data", "read")), attached=("web-server",)),
                2: policy("rolewarden-grants-web-server-2", doc(grant("b-data", "read")), attached=("web-server",)),
            },
            [DeleteGrantPolicy],
            id="fewer-parts-delete-the-extra",
        ),
    ],
)
def test_decide_role(wanted: list[BucketGrant], parts: dict[int, ManagedPolicy], expected: list[type]) -> None:
    iam = iam_view({p.name: p for p in parts.values()})
    decision = decide_role(CONFIG, iam, "web-server", wanted, parts)
    assert [type(a) for a in decision.actions] == expected


def test_rotation_with_five_versions_deletes_the_oldest_non_default_first() -> None:
    documents = [doc(grant(f"bucket-{i}", "read")) for i in range(5)]
    current = policy("rolewarden-grants-web-server", *documents, default=1, attached=("web-server",))
    decision = decide_role(
        CONFIG, iam_view({current.name: current}), "web-server", [grant("new-data", "read")], {1: current}
    )
    (action,) = decision.actions
    assert isinstance(action, RotateGrantPolicy)
    assert action.delete_version == "v2", "v1 is the default: the oldest non-default is v2"
    assert action.previous_version == "v1"


def test_delete_removes_non_default_versions_and_detaches() -> None:
    current = policy(
        "rolewarden-grants-web-server",
        doc(grant("a-data", "read")),
        doc(grant("b-data", "read")),
        attached=("web-server",),
    )
    decision = decide_role(CONFIG, iam_view({current.name: current}), "web-server", [], {1: current})
    (action,) = decision.actions
    assert isinstance(action, DeleteGrantPolicy)
    assert action.delete_versions == ("v1",) and action.detach_from == ("web-server",)


@pytest.mark.parametrize(
    ("max_policies", "other_attached", "count", "rule"),
    [
        pytest.param(1, 0, 100, "grants-too-large", id="more-parts-than-max-policies"),
        pytest.param(5, 9, 100, "too-many-attached-policies", id="over-iam-10-attached"),
    ],
)
def test_grants_that_do_not_fit_are_refused_whole(
    max_policies: int, other_attached: int, count: int, rule: str
) -> None:
    config = replace(CONFIG, bucket_grants=replace(CONFIG.bucket_grants, max_policies_per_role=max_policies))
    others = tuple(f"arn:aws:iam::{ACCOUNT}:policy/other-{i}" for i in range(other_attached))
    roles = {**ROLES, "web-server": make_role("web-server", PATH, ROLES["web-server"].arn, others)}
    wanted = [grant(f"analytics-bucket-{i:04d}", "read", "write") for i in range(count)]
    decision = decide_role(config, iam_view(roles=roles), "web-server", wanted, {})
    assert decision.verdict == "refuse" and decision.actions == ()
    assert [f.rule for f in decision.findings] == [rule]


def test_a_name_another_role_owns_is_refused() -> None:
    roles = {**ROLES, "web-server-2": make_role("web-server-2", PATH, f"arn:aws:iam::{ACCOUNT}:role{PATH}web-server-2")}
    theirs = policy("rolewarden-grants-web-server-2", doc(grant("a-data", "read")), attached=("web-server-2",))
    wanted = [grant(f"analytics-bucket-{i:04d}", "read", "write") for i in range(100)]  # needs two parts
    decision = decide_role(CONFIG, iam_view({theirs.name: theirs}, roles), "web-server", wanted, {})
    assert [f.rule for f in decision.findings] == ["policy-name-collision"]


def test_role_outside_the_managed_path_gets_nothing_and_loses_its_policies() -> None:
    current = policy("rolewarden-grants-outsider", doc(grant("a-data", "read")))
    decision = decide_role(
        CONFIG, iam_view({current.name: current}), "outsider", [grant("a-data", "read")], {1: current}
    )
    assert [type(a) for a in decision.actions] == [DeleteGrantPolicy]


# -- read back (the carry-over that keeps one event's cost bounded) -------------------------------------------
def test_read_back_recovers_what_render_wrote() -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"
    grants = [grant("a-data", "read"), grant("b-data", "read", "write", key=key), grant("c-data", "write", key=key)]
    assert read_back([render(grants, LEVELS)], LEVELS) == {g.bucket: g for g in grants}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}, id="wide"
        ),
        pytest.param(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": [], "Resource": []}]}, id="deny"
        ),
        pytest.param({"Statement": []}, id="no-version"),
    ],
)
def test_hand_edited_documents_are_not_trusted(document: dict[str, Any]) -> None:
    parts = {1: policy("rolewarden-grants-web-server", document)}
    assert trusted_grants(parts, LEVELS) is None


def test_an_older_default_version_is_not_trusted() -> None:
    parts = {
        1: policy("rolewarden-grants-web-server", doc(grant("a-data", "read")), doc(grant("b-data", "read")), default=1)
    }
    assert trusted_grants(parts, LEVELS) is None


# -- properties -----------------------------------------------------------------------------------------------
bucket_names = st.from_regex(r"[a-z0-9][a-z0-9-]{2,40}[a-z0-9]", fullmatch=True)
level_sets = st.sets(st.sampled_from(["read", "write"]), min_size=1).map(lambda s: tuple(sorted(s)))
keys = st.one_of(st.none(), st.sampled_from([f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k{i}" for i in range(3)]))
grant_lists = st.dictionaries(bucket_names, st.tuples(level_sets, keys), max_size=150).map(
    lambda d: [BucketGrant(b, lv, k) for b, (lv, k) in d.items()]
)


@settings(max_examples=40, deadline=None)
@given(grant_lists, st.randoms())
def test_generation_is_deterministic_whatever_the_input_order(grants: list[BucketGrant], rnd: Any) -> None:
    shuffled = list(grants)
    rnd.shuffle(shuffled)
    first, second = pack(grants, LEVELS), pack(shuffled, LEVELS)
    assert json.dumps(first) == json.dumps(second)
    assert first is not None and all(policy_size(d) <= MAX_POLICY_CHARS for d in first)


def _apply(iam: IamSnapshot, role: str, actions: tuple[Any, ...]) -> IamSnapshot:
    """A tiny in-memory IAM: what the executor would leave behind."""
    policies = {p.name: p for p in iam.policies.values()}
    for action in actions:
        if isinstance(action, CreateGrantPolicy):
            policies[action.policy_name] = make_policy(
                action.policy_name,
                action.policy_arn,
                PATH,
                (PolicyVersion("v1", True, json.loads(action.document)),),
                action.description,
                (role,),
            )
        elif isinstance(action, RotateGrantPolicy):
            old = policies[action.policy_name]
            kept = [
                PolicyVersion(v.version_id, False, v.document)
                for v in old.versions
                if v.version_id != action.delete_version
            ]
            number = max(v.number for v in old.versions) + 1
            kept.append(PolicyVersion(f"v{number}", True, json.loads(action.document)))
            policies[action.policy_name] = make_policy(
                old.name, old.arn, PATH, tuple(kept), old.description, old.attached_roles
            )
        elif isinstance(action, DeleteGrantPolicy):
            del policies[action.policy_name]
        else:  # pragma: no cover - the plans in this test only create, rotate and delete
            raise AssertionError(action)
    return IamSnapshot(iam.roles, {p.arn: p for p in policies.values()}, iam.partition, iam.account)


@settings(max_examples=40, deadline=None)
@given(st.lists(grant_lists, min_size=1, max_size=4))
def test_applying_a_plan_twice_changes_nothing_the_second_time(history: list[list[BucketGrant]]) -> None:
    iam = iam_view()
    for wanted in history:
        decision = decide_role(CONFIG, iam, "web-server", wanted, parts_by_role(iam, PATH).get("web-server", {}))
        iam = _apply(iam, "web-server", decision.actions)
        again = decide_role(CONFIG, iam, "web-server", wanted, parts_by_role(iam, PATH).get("web-server", {}))
        assert again.actions == ()
        assert all(len(p.versions) <= 5 for p in iam.policies.values())
        parts = parts_by_role(iam, PATH).get("web-server", {})
        assert sorted(parts) == list(range(1, len(parts) + 1))
        assert all(parts[n].name == policy_name("web-server", n) for n in parts)
        if wanted:
            assert trusted_grants(parts, LEVELS) == {g.bucket: g for g in wanted}
