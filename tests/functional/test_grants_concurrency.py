"""Grants under concurrency and lagging IAM reads (issue 10, defect 1): no grant lost, no revoke resurrected.

Real handlers (``rolewarden.runtime.Handler``) against the moto server over HTTP. Two things moto cannot
model are injected at the botocore level on RoleWarden's own clients, and only there:

* Concurrency: two invocations run in threads; a ``before-call`` hook pauses the first one just before
  its first IAM write until the second one has completed, then lets it go on (the interleaving of
  issue 10). Lambda runs BucketGrantsFunction in two containers, and the grant-policy-drift messages of
  the compliance function make it rewrite the same policies, so this interleaving happens in production.
* Eventual consistency: IAM is eventually consistent for seconds after a write, moto is not. After a
  RoleWarden write, GetAccountAuthorizationDetails (and GetPolicyVersion) answer with the response they
  gave before the write, for the next few calls (a ``before-call`` hook returning the stale response,
  so botocore never sends the request).

Failed records are redelivered the way SQS does it: the handler's batchItemFailures are invoked again,
with a higher receive count, until none fail. The end state is then compared with the tags, read from
IAM with the test's own client (not RoleWarden's, so no injected staleness).
"""

from __future__ import annotations

import copy
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rolewarden.aws import clients
from rolewarden.runtime import Handler
from rwlocal import world
from rwlocal.pipeline import FakeContext

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROLE = "web-server"
PATH = "/rolewarden/"
GRANT_ARN = f"arn:aws:iam::123456789012:policy{PATH}rolewarden-grants-{ROLE}"
CONFIG = """
version: 1
managed_path: /rolewarden/
bucket_grants:
  tag_prefix: "rolewarden:"
compliance:
  protected_roles: [break-glass]
"""
IAM_WRITES = frozenset(
    {
        "CreatePolicy",
        "CreatePolicyVersion",
        "DeletePolicyVersion",
        "SetDefaultPolicyVersion",
        "DeletePolicy",
        "AttachRolePolicy",
        "DetachRolePolicy",
    }
)
#: A wait that guards against a deadlock in the test itself; never an assertion on speed.
GUARD_SECONDS = 60


# -- world -----------------------------------------------------------------------------------------
@pytest.fixture
def world_ready(aws: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    write_config(CONFIG)
    monkeypatch.setenv("ROLEWARDEN_TABLE", world.create_state_table())
    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()
    world.create_role(ROLE)
    yield


def s3() -> Any:
    return boto3.client("s3")


def iam() -> Any:
    return boto3.client("iam")


def tag(bucket: str, role: str | None = ROLE, level: str = "read") -> None:
    """Create the bucket if needed and set (role) or remove (None) its grant tag."""
    if bucket not in {b["Name"] for b in s3().list_buckets()["Buckets"]}:
        s3().create_bucket(Bucket=bucket)
    if role is None:
        s3().delete_bucket_tagging(Bucket=bucket)
    else:
        s3().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": f"rolewarden:{level}", "Value": role}]})


def bucket_event(bucket: str, event_id: str) -> dict[str, Any]:
    text = (EVENTS / "cloudtrail-s3-putbuckettagging.json").read_text().replace("example-data", bucket)
    body = json.loads(text)
    body["id"] = event_id
    return dict(body)


def policy_event(event_id: str) -> dict[str, Any]:
    body = json.loads((EVENTS / "cloudtrail-iam-setdefaultpolicyversion.json").read_text())
    body["id"] = event_id
    return dict(body)


def granted(role: str = ROLE) -> set[str]:
    """Buckets the role's generated policies' default versions grant, read with the test's own client."""
    found: set[str] = set()
    for page in iam().get_paginator("list_policies").paginate(Scope="Local", PathPrefix=PATH):
        for policy in page["Policies"]:
            if policy["PolicyName"] != f"rolewarden-grants-{role}" and not policy["PolicyName"].startswith(
                f"rolewarden-grants-{role}-"
            ):
                continue
            document = iam().get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            for statement in document["PolicyVersion"]["Document"]["Statement"]:
                for resource in statement["Resource"] if isinstance(statement["Resource"], list) else []:
                    found.add(resource.removeprefix("arn:aws:s3:::").removesuffix("/*"))
    return found


def tagged_for(role: str = ROLE) -> set[str]:
    """What the tags say: the buckets whose grant tags name the role."""
    out = set()
    for bucket in s3().list_buckets()["Buckets"]:
        try:
            tags = s3().get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
        except s3().exceptions.ClientError:
            continue
        if any(t["Key"].startswith("rolewarden:") and role in t["Value"].split() for t in tags):
            out.add(bucket["Name"])
    return out


# -- delivery as SQS does it ------------------------------------------------------------------------
class Queue:
    """One invocation per call, plus SQS-style redelivery of the records an invocation failed."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, dict[str, Any], int]] = []  # (capability, event, receive count)
        self.invocations = 0

    def invoke(self, capability: str, *events: dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
        batch = world.as_sqs_event(*events, receive_count=receive_count)
        result: dict[str, Any] = Handler(capability)(batch, FakeContext(capability))
        self.invocations += 1
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for record, event in zip(batch["Records"], events, strict=True):
            if record["messageId"] in failed:
                self.pending.append((capability, event, receive_count + 1))
        return result

    def redeliver(self, rounds: int = 10) -> int:
        """Invoke every failed record again (one at a time, as SQS hands them back) until none fail."""
        redelivered = 0
        for _ in range(rounds):
            if not self.pending:
                return redelivered
            batch, self.pending = self.pending, []
            for capability, event, count in batch:
                redelivered += 1
                self.invoke(capability, event, receive_count=count)
        assert not self.pending, f"still failing after {rounds} redeliveries: {[e['id'] for _, e, _ in self.pending]}"
        return redelivered


# -- the interleaving ----------------------------------------------------------------------------------
class PauseFirstWrite:
    """Pauses the thread named ``first`` just before its first IAM write until ``resume`` is set."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.resume = threading.Event()
        self.paused = False

    def __call__(self, model: Any, **_: Any) -> None:
        if threading.current_thread().name != "first" or self.paused or model.name not in IAM_WRITES:
            return
        self.paused = True
        self.reached.set()
        assert self.resume.wait(GUARD_SECONDS), "the test never resumed the first invocation"


def interleave(queue: Queue, first: tuple[str, dict[str, Any]], second: tuple[str, dict[str, Any]]) -> bool:
    """Run ``first`` in a thread until its first IAM write, run ``second`` to completion, resume ``first``.
    True when the first invocation really paused before an IAM write."""
    pause = PauseFirstWrite()
    clients.add_hook("before-call.iam", pause)
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            queue.invoke(first[0], first[1])
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)
        finally:
            pause.reached.set()

    thread = threading.Thread(target=run_first, name="first")
    try:
        thread.start()
        assert pause.reached.wait(GUARD_SECONDS)
        queue.invoke(second[0], second[1])  # the "other container", to completion
    finally:
        pause.resume.set()
        thread.join(GUARD_SECONDS)
        clients.remove_hook("before-call.iam", pause)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    return pause.paused


def settle(queue: Queue, *buckets: str) -> None:
    """A warm start: grants for ``buckets`` as their tags say, one event each, nothing pending."""
    for index, bucket in enumerate(buckets):
        queue.invoke("bucket_grants", bucket_event(bucket, f"warm-{index}"))
    queue.redeliver()


def test_grant_and_grant_for_the_same_role_both_survive(world_ready: None) -> None:
    queue = Queue()
    tag("base-data")
    settle(queue, "base-data")
    assert granted() == {"base-data"}

    tag("first-data")
    tag("second-data")
    paused = interleave(
        queue,
        ("bucket_grants", bucket_event("first-data", "e-first")),
        ("bucket_grants", bucket_event("second-data", "e-second")),
    )
    assert paused, "the first invocation must reach an IAM write for the interleaving to mean anything"
    queue.redeliver()

    assert granted() == tagged_for() == {"base-data", "first-data", "second-data"}


def test_grant_and_revoke_for_the_same_role_revoke_stays_revoked(world_ready: None) -> None:
    queue = Queue()
    tag("base-data")
    tag("leaving-data")
    settle(queue, "base-data", "leaving-data")
    assert granted() == {"base-data", "leaving-data"}

    tag("joining-data")
    tag("leaving-data", None)
    paused = interleave(
        queue,
        ("bucket_grants", bucket_event("joining-data", "e-grant")),
        ("bucket_grants", bucket_event("leaving-data", "e-revoke")),
    )
    assert paused
    queue.redeliver()

    assert granted() == tagged_for() == {"base-data", "joining-data"}


def _drifted_world(queue: Queue) -> None:
    """web-server granted base-data and extra-data (v2), then someone sets the default back to v1."""
    tag("base-data")
    settle(queue, "base-data")
    tag("extra-data")
    settle(queue, "extra-data")
    assert granted() == {"base-data", "extra-data"}
    iam().set_default_policy_version(PolicyArn=GRANT_ARN, VersionId="v1")  # drift: extra-data is gone
    assert granted() == {"base-data"}
    tag("new-data")


@pytest.fixture
def drift_to_grants(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The grants queue that role compliance sends grant-policy drift to, and the grants function's route for
    those messages (to the role's target). Stand-in for the receiver route the grants capability adds to
    triggers.py: registered here only when triggers.py has no route for them yet."""
    from rolewarden import triggers
    from rolewarden.model.targets import Target

    url = str(boto3.client("sqs").create_queue(QueueName="rolewarden-bucket-grants-test")["QueueUrl"])
    monkeypatch.setenv("ROLEWARDEN_GRANTS_QUEUE_URL", url)
    routes = triggers.ROUTES["bucket_grants"]
    if not any(r.source == "rolewarden.compliance" for r in routes):
        receiver = triggers.Route(
            "rolewarden.compliance", "Grant Policy Drift", lambda env: [Target("role", str(env.detail["roleName"]))]
        )
        monkeypatch.setitem(triggers.ROUTES, "bucket_grants", [*routes, receiver])
    return url


def drift_message(queue: Queue, url: str, event_id: str) -> dict[str, Any]:
    """Role compliance handles the policy event: it writes nothing and sends one message to the grants queue."""
    queue.invoke("role_compliance", policy_event(event_id))
    (message,) = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    body: dict[str, Any] = json.loads(message["Body"])
    assert body["detail"]["roleName"] == ROLE and body["detail"]["policyArn"] == GRANT_ARN
    return body


@pytest.mark.parametrize("first", ["bucket-event", "drift-remedy"])
def test_bucket_event_and_grant_policy_drift_remedy_both_hold(
    world_ready: None, drift_to_grants: str, first: str
) -> None:
    """The drift remedy is the grants function handling compliance's drift message for the role."""
    queue = Queue()
    _drifted_world(queue)
    remedy = ("bucket_grants", drift_message(queue, drift_to_grants, "e-remedy"))
    bucket = ("bucket_grants", bucket_event("new-data", "e-bucket"))
    order = (bucket, remedy) if first == "bucket-event" else (remedy, bucket)
    paused = interleave(queue, *order)
    assert paused
    queue.redeliver()

    assert granted() == tagged_for() == {"base-data", "extra-data", "new-data"}


# -- IAM reads that lag writes ----------------------------------------------------------------------------
class LaggingIamReads:
    """After each RoleWarden IAM write, the next ``lag`` GetAccountAuthorizationDetails (and GetPolicyVersion)
    calls answer with the response IAM gave before the write. moto is strongly consistent; real IAM is
    not for seconds after a write, so this is injected at the botocore level and counted in calls, so the
    test is deterministic."""

    READS = ("GetAccountAuthorizationDetails", "GetPolicyVersion")

    def __init__(self, lag: int = 3) -> None:
        self.lag = lag
        self.last: dict[str, Any] = {}  # read operation -> (http response, parsed) last seen for real
        self.frozen: dict[str, Any] = {}
        self.remaining = 0
        self.stale_answers = 0
        self.served: set[int] = set()  # ids of the stale answers handed out (not recorded as fresh)

    def before(self, model: Any, **_: Any) -> Any:
        if model.name in IAM_WRITES:
            if self.remaining == 0:
                self.frozen = dict(self.last)  # the state before this burst of writes
            self.remaining = self.lag
            return None
        if model.name in self.READS and self.remaining > 0 and model.name in self.frozen:
            self.remaining -= 1
            self.stale_answers += 1
            http, parsed = self.frozen[model.name]
            answer = _as_sent(copy.deepcopy(parsed))
            self.served.add(id(answer))
            return http, answer
        return None

    def after(self, model: Any, http_response: Any, parsed: Any, **_: Any) -> None:
        if model.name in self.READS and id(parsed) not in self.served:
            self.last[model.name] = (http_response, copy.deepcopy(parsed))

    def __enter__(self) -> LaggingIamReads:
        clients.add_hook("before-call.iam", self.before)
        clients.add_hook("after-call.iam", self.after)
        return self

    def __exit__(self, *exc: object) -> None:
        clients.remove_hook("before-call.iam", self.before)
        clients.remove_hook("after-call.iam", self.after)


def _as_sent(value: Any) -> Any:
    """IAM sends policy documents URL-encoded; botocore's own after-call handler decodes them in place. A
    stale answer goes through that handler again, so its documents are put back the way IAM sends them."""
    if isinstance(value, list):
        return [_as_sent(item) for item in value]
    if isinstance(value, dict):
        return {
            key: urllib.parse.quote(json.dumps(item))
            if key in ("Document", "AssumeRolePolicyDocument", "PolicyDocument") and isinstance(item, dict)
            else _as_sent(item)
            for key, item in value.items()
        }
    return value


def test_lagging_iam_reads_lose_no_grant_and_resurrect_no_revoke(world_ready: None) -> None:
    queue = Queue()
    tag("alpha-data")
    tag("beta-data")
    settle(queue, "alpha-data", "beta-data")
    assert granted() == {"alpha-data", "beta-data"}

    with LaggingIamReads(lag=3) as lag:
        # A revoke, then (while IAM still shows the document before the revoke) a grant of another bucket.
        tag("alpha-data", None)
        queue.invoke("bucket_grants", bucket_event("alpha-data", "e-revoke"))
        tag("gamma-data")
        queue.invoke("bucket_grants", bucket_event("gamma-data", "e-grant"))
        # A grant, then (while IAM still shows the document before it) another grant.
        tag("delta-data")
        queue.invoke("bucket_grants", bucket_event("delta-data", "e-grant-2"))
        tag("omega-data")
        queue.invoke("bucket_grants", bucket_event("omega-data", "e-grant-3"))
        queue.redeliver()
        assert lag.stale_answers > 0, "the injected lag must have answered at least one read"

    assert granted() == tagged_for() == {"beta-data", "gamma-data", "delta-data", "omega-data"}


# -- the lease: released on every path, a dead writer's lease expires --------------------------------------
def _lease_items(table: str = "rolewarden-state") -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return [i for i in items if "lease_owner" in i]


def test_a_failed_iam_write_gives_the_leases_back_and_the_redelivery_completes(world_ready: None) -> None:
    """IAM answers the first CreatePolicy with ServiceFailure (moto cannot be made to fail one call: raised
    from a botocore before-call hook, so the error reaches RoleWarden as IAM's error shape would)."""
    from botocore.exceptions import ClientError

    failing = {"left": 1}

    def fail_create(model: Any, **_: Any) -> None:
        if model.name == "CreatePolicy" and failing["left"] > 0:
            failing["left"] -= 1
            raise ClientError({"Error": {"Code": "ServiceFailure", "Message": "injected"}}, "CreatePolicy")

    queue = Queue()
    tag("base-data")
    clients.add_hook("before-call.iam", fail_create)
    try:
        result = queue.invoke("bucket_grants", bucket_event("base-data", "e-fail"))
    finally:
        clients.remove_hook("before-call.iam", fail_create)
    assert len(result["batchItemFailures"]) == 1
    assert _lease_items() == [], "every lease is given back, even when the write failed"
    queue.redeliver()
    assert granted() == {"base-data"}


def test_a_held_lease_retries_and_an_expired_one_is_taken_over(world_ready: None) -> None:
    import time

    queue = Queue()
    tag("base-data")
    ddb = boto3.client("dynamodb")
    key = {"pk": {"S": f"grants#role#{ROLE}"}, "sk": {"S": "published"}}

    def lease(until: float) -> None:
        ddb.put_item(
            TableName="rolewarden-state",
            Item={**key, "lease_owner": {"S": "another-container"}, "lease_until": {"N": str(int(until))}},
        )

    lease(time.time() + 600)  # another container holds the role
    result = queue.invoke("bucket_grants", bucket_event("base-data", "e-held"))
    assert len(result["batchItemFailures"]) == 1 and granted() == set()

    lease(time.time() - 1)  # that container died; its lease expired
    queue.redeliver()
    assert granted() == {"base-data"}
    assert _lease_items() == []


def test_interleaving_and_lagging_reads_together(world_ready: None) -> None:
    """Both at once: two writers of one role interleaved while IAM's reads lag every write."""
    queue = Queue()
    tag("base-data")
    tag("leaving-data")
    settle(queue, "base-data", "leaving-data")

    tag("joining-data")
    tag("leaving-data", None)
    with LaggingIamReads(lag=3) as lag:
        paused = interleave(
            queue,
            ("bucket_grants", bucket_event("joining-data", "e-grant")),
            ("bucket_grants", bucket_event("leaving-data", "e-revoke")),
        )
        tag("later-data")
        queue.invoke("bucket_grants", bucket_event("later-data", "e-later"))
        queue.redeliver()
    assert paused and lag.stale_answers > 0
    assert granted() == tagged_for() == {"base-data", "joining-data", "later-data"}
