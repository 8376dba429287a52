"""The grants decision for a set of targets from one GrantsSnapshot (pure), and the read-back's refusals:
decision tables over a small world, no network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolewarden.config import parse_config
from rolewarden.decide.grants.catalog import level_table
from rolewarden.decide.grants.decide import RoleDecision, decide_role, holders, lagging, published_after
from rolewarden.decide.grants.naming import policy_description, policy_name
from rolewarden.decide.grants.plan import buckets_needed, decide
from rolewarden.decide.grants.render import buckets_named, pack, read_back, render, trusted_grants
from rolewarden.model.grants import (
    BucketGrant,
    BucketView,
    DetachGrantPolicy,
    GrantsSnapshot,
    Published,
    ReadFailure,
    RoleRecord,
    RotateGrantPolicy,
)
from rolewarden.model.iam import AttachedPolicy, IamSnapshot, ManagedPolicy, PolicyVersion, Role
from rolewarden.model.targets import SWEEP, Target

ACCOUNT = "123456789012"
PATH = "/rolewarden/"
CONFIG = parse_config("version: 1\nmanaged_path: /rolewarden/\nbucket_grants:\n  tag_prefix: 'rolewarden:'\n")
LEVELS, _ = level_table(CONFIG)
ROLES = {
    name: Role(name, f"arn:aws:iam::{ACCOUNT}:role{path}{name}", path)
    for name, path in (("web-server", PATH), ("batch-worker", PATH), ("outsider", "/other/"))
}


def arn(name: str, path: str = PATH) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy{path}{name}"


def generated(
    role: str, *grants: BucketGrant, part: int = 1, attached: tuple[str, ...] | None = None, **kw: Any
) -> ManagedPolicy:
    """A generated policy holding exactly what RoleWarden renders for ``grants`` (v1, the default)."""
    name = policy_name(role, part)
    documents = pack(grants, LEVELS) or []
    document = kw.get("document", documents[0] if documents else {})
    return ManagedPolicy(
        arn(name, kw.get("path", PATH)),
        name,
        kw.get("path", PATH),
        "v1",
        (PolicyVersion("v1", True, document),),
        policy_description(role, part),
        (role,) if attached is None else attached,
    )


def snapshot(
    *policies: ManagedPolicy,
    buckets: dict[str, dict[str, str]] | None = None,
    unreadable: tuple[str, ...] = (),
    listed: tuple[str, ...] | None = None,
) -> GrantsSnapshot:
    roles = {
        name: Role(
            role.name,
            role.arn,
            role.path,
            attached=tuple(AttachedPolicy(p.arn, p.name) for p in policies if name in p.attached_roles),
        )
        for name, role in ROLES.items()
    }
    iam = IamSnapshot(roles=roles, policies={p.arn: p for p in policies}, account=ACCOUNT)
    views = {name: BucketView(name, tags=tags) for name, tags in (buckets or {}).items()}
    failures = {name: ReadFailure(True, f"throttled reading {name}") for name in unreadable}
    return GrantsSnapshot(iam, views, failures, listed)


def grant(bucket: str, *levels: str) -> BucketGrant:
    return BucketGrant(bucket, tuple(sorted(levels or ("read",))))


READ = {"rolewarden:read": "web-server"}


# -- bucket, role and policy targets ------------------------------------------------------------------------
def test_a_bucket_target_decides_the_roles_its_tags_name() -> None:
    target = Target("bucket", "a-data")
    plan = decide(snapshot(buckets={"a-data": READ}), CONFIG, [target])
    assert plan.roles_of == {target: {"web-server"}} and plan.failed == {} and plan.buckets_read == 1
    assert [type(a).__name__ for a in plan.decisions["web-server"].actions] == ["CreateGrantPolicy"]


def test_a_bucket_target_keeps_the_roles_other_buckets_from_a_trusted_read_back() -> None:
    held = generated("web-server", grant("old-data"))
    state = snapshot(held, buckets={"a-data": READ})
    target = Target("bucket", "a-data")
    assert buckets_needed(state, CONFIG, [target]) == set()  # the read-back is trusted: no extra read
    plan = decide(state, CONFIG, [target])
    decision = plan.decisions["web-server"]
    assert set(buckets_named(decision.documents[0])) == {"a-data", "old-data"}
    assert [type(a) for a in decision.actions] == [RotateGrantPolicy]


def test_a_bucket_that_lost_its_tags_is_dropped_from_its_holders() -> None:
    held = generated("web-server", grant("a-data"), grant("b-data"))
    plan = decide(snapshot(held, buckets={"a-data": {}}), CONFIG, [Target("bucket", "a-data")])
    assert plan.decisions["web-server"].buckets == ("b-data",)


@pytest.mark.parametrize(
    ("unreadable", "message"),
    [
        pytest.param(("a-data",), "throttled reading a-data", id="unreadable"),
        pytest.param((), "bucket a-data not read", id="not-observed"),
    ],
)
def test_a_bucket_target_that_was_not_read_fails(unreadable: tuple[str, ...], message: str) -> None:
    target = Target("bucket", "a-data")
    plan = decide(snapshot(unreadable=unreadable), CONFIG, [target])
    assert plan.failed[target] == ReadFailure(True, message) and plan.decisions == {}


def test_a_policy_target_that_is_not_a_generated_policy_concerns_nothing() -> None:
    other = ManagedPolicy(arn("admin-access"), "admin-access", PATH, "v1", (), "", ("web-server",))
    target = Target("policy", other.arn)
    state = snapshot(other)
    assert buckets_needed(state, CONFIG, [target]) == set()
    plan = decide(state, CONFIG, [target])
    assert plan.decisions == {} and plan.roles_of == {} and plan.failed == {}


def test_a_policy_target_rereads_every_bucket_its_policies_name() -> None:
    held = generated("web-server", grant("a-data"), grant("b-data"))
    target = Target("policy", held.arn)
    state = snapshot(held)
    assert buckets_needed(state, CONFIG, [target]) == {"a-data", "b-data"}
    plan = decide(snapshot(held, buckets={"a-data": READ, "b-data": {}}), CONFIG, [target])
    assert plan.roles_of == {target: {"web-server"}}
    assert plan.decisions["web-server"].buckets == ("a-data",)


def test_a_role_whose_named_bucket_cannot_be_read_fails_and_is_left_alone() -> None:
    held = generated("web-server", grant("a-data"), grant("b-data"))
    target = Target("role", "web-server")
    plan = decide(snapshot(held, buckets={"a-data": READ}, unreadable=("b-data",)), CONFIG, [target])
    assert plan.failed == {target: ReadFailure(True, "throttled reading b-data")} and plan.decisions == {}


def test_buckets_needed_is_nothing_for_a_sweep() -> None:
    assert buckets_needed(snapshot(generated("web-server", grant("a-data"))), CONFIG, [SWEEP]) == set()


# -- sweeps -------------------------------------------------------------------------------------------------
def test_a_sweep_keeps_an_unreadable_bucket_from_a_trusted_read_back() -> None:
    held = generated("web-server", grant("a-data"), grant("b-data"))
    state = snapshot(held, buckets={"a-data": READ}, unreadable=("b-data",), listed=("a-data", "b-data"))
    plan = decide(state, CONFIG, [SWEEP])
    assert plan.decisions["web-server"].verdict == "keep"
    assert plan.decisions["web-server"].buckets == ("a-data", "b-data")
    assert [(f.rule, f.resource) for f in plan.findings] == [("bucket-unreadable", "b-data")]
    assert plan.roles_of == {SWEEP: {"web-server"}}


def test_a_sweep_leaves_a_role_alone_when_an_unreadable_bucket_cannot_be_read_back() -> None:
    """The role's default version names the unreadable bucket, but a newer version (a hand edit) exists:
    its read-back is not trusted, so the sweep cannot tell what to keep and decides nothing for it."""
    rendered = render([grant("b-data")], LEVELS)
    edited = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    name = policy_name("web-server", 1)
    untrusted = ManagedPolicy(
        arn(name),
        name,
        PATH,
        "v1",
        (PolicyVersion("v1", True, rendered), PolicyVersion("v2", False, edited)),
        policy_description("web-server", 1),
        ("web-server",),
    )
    state = snapshot(untrusted, buckets={"a-data": READ}, unreadable=("b-data",), listed=("a-data", "b-data"))
    plan = decide(state, CONFIG, [SWEEP])
    assert "web-server" not in plan.decisions
    trusted = generated("web-server", grant("b-data"))
    assert (
        "web-server" in decide(snapshot(trusted, unreadable=("b-data",), listed=("b-data",)), CONFIG, [SWEEP]).decisions
    )


# -- the per-role decision's remaining cases -------------------------------------------------------------------
def test_a_policy_also_attached_outside_the_managed_path_is_reported_not_detached() -> None:
    held = generated("web-server", grant("a-data"), attached=("web-server", "outsider", "batch-worker"))
    state = snapshot(held)
    decision = decide_role(CONFIG, state.iam, "web-server", [grant("a-data")], {1: held})
    assert [(type(a), a.from_role) for a in decision.actions if isinstance(a, DetachGrantPolicy)] == [
        (DetachGrantPolicy, "batch-worker")
    ]
    assert [(f.rule, f.details["role"]) for f in decision.findings] == [("grant-policy-attached-outside", "outsider")]


def test_a_policy_no_longer_wanted_but_attached_outside_is_left_in_place() -> None:
    held = generated("web-server", grant("a-data"), attached=("web-server", "outsider"))
    decision = decide_role(CONFIG, snapshot(held).iam, "web-server", [], {1: held})
    assert decision.verdict == "keep" and decision.actions == ()
    assert [f.rule for f in decision.findings] == ["grant-policy-attached-outside"]


def test_holders_are_the_roles_whose_default_versions_name_the_bucket() -> None:
    state = snapshot(generated("web-server", grant("a-data")), generated("batch-worker", grant("b-data")))
    assert holders(state.iam, PATH, "a-data") == ["web-server"]
    assert holders(state.iam, PATH, "c-data") == []


def test_lagging_reads_and_published_versions() -> None:
    held = generated("web-server", grant("a-data"))
    iam = snapshot(held).iam
    record = RoleRecord({}, Published({held.name: "v2"}, time=1000.0))
    assert lagging(record, iam, PATH, now=1010.0, window=300.0) == (
        f"IAM does not show {held.name} v2 yet (RoleWarden published it 10 s ago)"
    )
    assert lagging(record, iam, PATH, now=2000.0, window=300.0) is None  # believed: a human changed it
    assert lagging(RoleRecord({}, Published({held.name: "v1"}, 1000.0)), iam, PATH, 1010.0, 300.0) is None
    assert lagging(RoleRecord({}, None), iam, PATH, 1010.0, 300.0) is None
    decision = RoleDecision("web-server", "change", "", documents=({}, {}))
    rotate = RotateGrantPolicy("web-server", held.name, held.arn, PATH, "{}", "h", "v1")
    other = RotateGrantPolicy("web-server", "rolewarden-grants-other", arn("x"), PATH, "{}", "h", "v1")
    applied = [(rotate, {"version": "v2"}), (other, {"version": "v9"}), (rotate, {})]
    assert published_after("web-server", decision, {1: held}, applied) == {held.name: "v2"}


# -- the read-back refuses anything render does not write --------------------------------------------------------
S3 = "arn:aws:s3:::a-data"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"


def _doc(*statements: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"Version": "2012-10-17", "Statement": {}}, id="statement-not-a-list"),
        pytest.param(_doc("Allow"), id="statement-not-an-object"),
        pytest.param(_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": [S3]}), id="action-not-a-list"),
        pytest.param(_doc({"Effect": "Allow", "Action": [1], "Resource": [S3]}), id="action-not-text"),
        pytest.param(
            _doc({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [KEY], "Condition": {}}),
            id="kms-resource-not-one-key",
        ),
        pytest.param(
            _doc({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY, "Condition": "x"}),
            id="kms-condition-not-an-object",
        ),
        pytest.param(
            _doc(
                {
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": KEY,
                    "Condition": {"StringLike": {"kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::*"]}},
                }
            ),
            id="kms-scoped-to-a-wildcard",
        ),
        pytest.param(_doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": S3 + "/*"}), id="resource-text"),
        pytest.param(_doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}), id="resource-star"),
        pytest.param(_doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [S3 + "/*"]}), id="no-level"),
    ],
)
def test_read_back_refuses_what_render_does_not_write(document: dict[str, Any]) -> None:
    assert read_back([document], LEVELS) is None


def test_buckets_named_tolerates_hand_edits() -> None:
    document = _doc(
        "not a statement",
        {"Resource": S3},
        {
            "Resource": ["*", 7],
            "Condition": {"StringLike": {"k": [S3.replace("a-data", "b-data") + "/*"]}, "Bool": "x"},
        },
        {"Resource": [], "Condition": "not an object"},
    )
    assert buckets_named(document) == {"a-data", "b-data"}
    assert buckets_named({"Statement": {"Resource": S3}}) == {"a-data"}


def test_parts_that_are_not_numbered_one_to_n_are_not_trusted() -> None:
    assert trusted_grants({2: generated("web-server", grant("a-data"), part=2)}, LEVELS) is None
    assert trusted_grants({}, LEVELS) == {}


def test_a_level_with_only_object_actions_renders_no_bucket_statement() -> None:
    config = parse_config(
        "version: 1\nbucket_grants:\n  levels:\n    fetch: [s3:GetObject]\n    peek: [s3:GetBucketLocation]\n"
    )
    levels, _ = level_table(config)
    document = render(
        [BucketGrant("a-data", ("fetch",)), BucketGrant("b-data", ("peek",)), BucketGrant("c", ("x",))], levels
    )
    assert [(s["Sid"], s["Resource"]) for s in document["Statement"]] == [
        ("FetchObjects", ["arn:aws:s3:::a-data/*"]),
        ("PeekBuckets", ["arn:aws:s3:::b-data"]),
    ]
    assert json.loads(json.dumps(document)) == document
