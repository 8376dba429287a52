"""Role compliance end to end: the real handler (functions/role_compliance/app.py) against the moto
server over HTTP, fed with the real-shaped CloudTrail events of events/."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rwlocal import world as w
from rwlocal.configs import config_yaml
from rwlocal.scenes.compliance import ADMIN_ARN
from rwlocal.server import ACCOUNT_ID, LocalAws
from rwlocal.world import ensure_aws_managed_policy
from tests.functional.helpers import compliance_app, iam, invoke, load_app, sample, sink_of

ROLE = "web-server"
PATH = "/rolewarden/"
GRANT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:policy/rolewarden/rolewarden-grants-{ROLE}"
ADMIN_DOC = w.ADMIN_DOCUMENT
LOOSE_TRUST = w.LOOSE_TRUST
COMPLIANCE = config_yaml(compliance={"protected_roles": ["break-glass"]})


@pytest.fixture
def app(aws: LocalAws) -> Any:
    return compliance_app()


@pytest.fixture
def configure(write_config: Callable[..., Path]) -> Callable[..., Path]:
    """configure(rules={...}, **compliance) -> config path; every other key from COMPLIANCE."""

    def make(dry_run: bool = False, **compliance: Any) -> Path:
        rules = compliance.pop("rules", {})
        section = {"protected_roles": ["break-glass"], **compliance}
        if rules:
            section["rules"] = rules
        return write_config(COMPLIANCE, compliance=section, dry_run=dry_run)

    return make


@pytest.fixture
def table(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    """A state table with the template's key schema (pk/sk strings), named by ROLEWARDEN_TABLE."""
    monkeypatch.setenv("ROLEWARDEN_TABLE", w.create_state_table())
    return "rolewarden-state"


@pytest.fixture
def iam_calls() -> Iterator[Counter[str]]:
    """Counts the IAM API calls RoleWarden's client makes (botocore event hook; nothing is faked)."""
    from rolewarden.aws.clients import client

    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    events = client("iam").meta.events
    events.register("before-call.iam", count)
    yield counts
    events.unregister("before-call.iam", count)


def state(role: str) -> dict[str, Any]:
    """A role's permission state, read with a separate client."""
    client = iam()
    raw = client.get_role(RoleName=role)["Role"]
    attached = sorted(p["PolicyArn"] for p in client.list_attached_role_policies(RoleName=role)["AttachedPolicies"])
    inline = {
        name: client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in client.list_role_policies(RoleName=role)["PolicyNames"]
    }
    return {
        "attached": attached,
        "inline": inline,
        "trust": raw["AssumeRolePolicyDocument"],
        "boundary": (raw.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
    }


def local_policy(name: str, document: dict[str, Any], path: str = "/") -> str:
    return str(iam().create_policy(PolicyName=name, Path=path, PolicyDocument=json.dumps(document))["Policy"]["Arn"])


def event(name: str, **replace: str) -> dict[str, Any]:
    return sample(f"cloudtrail-iam-{name.lower()}.json", **replace)


def findings(app: Any) -> list[dict[str, Any]]:
    return [f.as_dict() for f in sink_of(app).findings]


def rules_found(app: Any) -> set[str]:
    return {f["rule"] for f in findings(app)}


# ------------------------------------------------------------------ each rule's remedy
def test_attach_admin_event_detaches_aws_managed_admin_and_records_the_prior_state(
    app: Any, configure: Callable[..., Path], table: str
) -> None:
    configure()
    ensure_aws_managed_policy()
    w.create_role(ROLE)
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)
    prior = state(ROLE)

    assert invoke(app, event("AttachRolePolicy"))["failed"] == 0

    assert state(ROLE)["attached"] == []
    assert {"no-admin-access", "no-privilege-escalation", "managed-policy-allowlist", "remediated"} <= rules_found(app)
    from rolewarden.operator import compliance

    (record,) = compliance.history(f"role/{ROLE}")
    assert record["kind"] == "remediation"
    assert record["prior"]["attached_policies"] == prior["attached"] == [ADMIN_ARN]
    assert record["prior"]["trust_policy"] == prior["trust"]
    assert record["trigger"] == sample("cloudtrail-iam-attachrolepolicy.json")["id"]
    assert {f["rule"] for f in record["findings"]} >= {"no-admin-access"}
    assert sink_of(app).counts["Remediated"] == 1


def test_partly_bad_inline_policy_keeps_its_good_statements(app: Any, configure: Callable[..., Path]) -> None:
    configure()  # no-inline-policies stays in report mode (the default)
    w.create_role(ROLE)
    good = [
        {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data/*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
    ]
    document = {
        "Version": "2012-10-17",
        "Statement": [good[0], {"Sid": "Oops", "Effect": "Allow", "Action": "iam:Put*", "Resource": "*"}, good[1]],
    }
    iam().put_role_policy(RoleName=ROLE, PolicyName="debug", PolicyDocument=json.dumps(document))

    invoke(app, event("PutRolePolicy"))

    assert state(ROLE)["inline"] == {"debug": {"Version": "2012-10-17", "Statement": good}}
    by_rule = {f["rule"]: f for f in findings(app)}
    assert by_rule["no-privilege-escalation"]["details"]["mode"] == "enforce"
    assert by_rule["no-inline-policies"]["details"]["mode"] == "report"


def test_inline_policy_with_only_bad_statements_is_deleted(app: Any, configure: Callable[..., Path]) -> None:
    configure()
    w.create_role(ROLE)
    iam().put_role_policy(RoleName=ROLE, PolicyName="debug", PolicyDocument=json.dumps(ADMIN_DOC))
    invoke(app, event("PutRolePolicy"))
    assert state(ROLE)["inline"] == {}


def test_no_inline_policies_in_enforce_mode_deletes_a_harmless_one(app: Any, configure: Callable[..., Path]) -> None:
    configure(rules={"no-inline-policies": "enforce"})
    w.create_role(ROLE)
    harmless = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam().put_role_policy(RoleName=ROLE, PolicyName="debug", PolicyDocument=json.dumps(harmless))
    invoke(app, event("PutRolePolicy"))
    assert state(ROLE)["inline"] == {}


def test_loose_trust_policy_is_replaced_by_the_ec2_only_one(app: Any, configure: Callable[..., Path]) -> None:
    configure()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    invoke(app, event("UpdateAssumeRolePolicy"))
    assert state(ROLE)["trust"] == w.EC2_TRUST


def test_create_role_event_puts_a_new_managed_role_in_order(app: Any, configure: Callable[..., Path]) -> None:
    boundary = local_policy(
        "rolewarden-boundary",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*", "ec2:Describe*"], "Resource": "*"}],
        },
    )
    configure(permissions_boundary=boundary)
    w.create_role(ROLE, trust=LOOSE_TRUST)
    invoke(app, event("CreateRole"))
    assert state(ROLE)["trust"] == w.EC2_TRUST
    assert state(ROLE)["boundary"] == boundary


@pytest.mark.parametrize("name", ["DeleteRolePermissionsBoundary", "PutRolePermissionsBoundary"])
def test_permissions_boundary_is_put_back(app: Any, configure: Callable[..., Path], name: str) -> None:
    allow_all_s3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    boundary = local_policy("rolewarden-boundary", allow_all_s3)
    other = local_policy("other-boundary", ADMIN_DOC)
    configure(permissions_boundary=boundary)
    w.create_role(ROLE)
    if name == "PutRolePermissionsBoundary":
        iam().put_role_permissions_boundary(RoleName=ROLE, PermissionsBoundary=other)
    invoke(app, event(name))
    assert state(ROLE)["boundary"] == boundary


def test_allowlist_in_enforce_mode_detaches_unlisted_policies_only(app: Any, configure: Callable[..., Path]) -> None:
    read_doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
    allowed = local_policy("approved-read", read_doc)
    unlisted = local_policy("someones-read", read_doc)
    configure(rules={"managed-policy-allowlist": "enforce"}, allowed_managed_policies=[allowed])
    w.create_role(ROLE)
    for arn in (allowed, unlisted):
        iam().attach_role_policy(RoleName=ROLE, PolicyArn=arn)
    invoke(app, event("AttachRolePolicy"))
    assert state(ROLE)["attached"] == [allowed]


def test_policy_version_event_fixes_every_managed_role_holding_the_policy(
    app: Any, configure: Callable[..., Path], iam_calls: Counter[str]
) -> None:
    configure()
    harmless = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    shared = local_policy("shared-tools", harmless)
    for name, path in (("app-a", PATH), ("app-b", "/rolewarden/team/"), ("outsider", "/other/")):
        w.create_role(name, path=path)
        iam().attach_role_policy(RoleName=name, PolicyArn=shared)
    iam().create_policy_version(PolicyArn=shared, PolicyDocument=json.dumps(ADMIN_DOC), SetAsDefault=True)

    invoke(app, event("CreatePolicyVersion", **{GRANT_ARN: shared}))

    assert state("app-a")["attached"] == state("app-b")["attached"] == []
    assert state("outsider")["attached"] == [shared]
    assert iam_calls["ListEntitiesForPolicy"] == 1
    assert iam_calls["GetPolicyVersion"] == 1  # one read of the new default version, for both roles


# ------------------------------------------------------------------ grant-policy-drift (delegated)
def _grant_world(aws: LocalAws) -> str:
    """web-server with the grant policy the bucket tags call for, made by the real bucket_grants handler."""
    w.create_role(ROLE)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data-lake")
    s3.put_bucket_tagging(Bucket="data-lake", Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": ROLE}]})
    grants_app = load_app("bucket_grants")
    invoke(grants_app, sample("scheduled-sweep.json"))
    policy = iam().get_policy(PolicyArn=GRANT_ARN)["Policy"]
    assert iam().list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"][0]["PolicyArn"] == GRANT_ARN
    return str(policy["DefaultVersionId"])


def _tamper(arn: str) -> None:
    iam().create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(ADMIN_DOC), SetAsDefault=True)


def _default_document(arn: str) -> dict[str, Any]:
    version = iam().get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return dict(iam().get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])


@pytest.fixture
def grants_queue(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    """The grants queue (a real SQS queue on the moto server), named by ROLEWARDEN_GRANTS_QUEUE_URL."""
    url = str(boto3.client("sqs").create_queue(QueueName="rolewarden-bucket-grants-test")["QueueUrl"])
    monkeypatch.setenv("ROLEWARDEN_GRANTS_QUEUE_URL", url)
    return url


def _messages(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not page:
            return found
        found.extend(json.loads(m["Body"]) for m in page)


IAM_READS = ("Get", "List")


def test_grant_policy_drift_becomes_one_message_on_the_grants_queue_and_no_iam_write(
    app: Any, aws: LocalAws, configure: Callable[..., Path], grants_queue: str, iam_calls: Counter[str]
) -> None:
    """Compliance runs no grants code: the drifted role is handed to the grants capability as one
    EventBridge-shaped message on the grants queue, and compliance writes nothing to IAM."""
    configure()
    _grant_world(aws)
    _tamper(GRANT_ARN)
    iam_calls.clear()

    result = invoke(app, event("CreatePolicyVersion"))

    assert result["failed"] == 0
    assert [c for c in iam_calls if not c.startswith(IAM_READS)] == []
    assert _default_document(GRANT_ARN) == ADMIN_DOC  # not restored here: the grants capability does it
    assert state(ROLE)["attached"] == [GRANT_ARN]  # RoleWarden's own policy is not detached either
    (message,) = _messages(grants_queue)
    assert set(message) == {
        "version",
        "id",
        "source",
        "detail-type",
        "account",
        "region",
        "time",
        "resources",
        "detail",
    }
    assert message["version"] == "0"
    assert message["source"] == "rolewarden.compliance"
    assert message["detail-type"] == "Grant Policy Drift"
    assert message["account"] == ACCOUNT_ID
    assert message["region"] == boto3.client("sqs").meta.region_name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", message["time"])
    assert str(uuid.UUID(message["id"])) == message["id"]
    assert message["resources"] == []
    assert message["detail"]["roleName"] == ROLE
    assert message["detail"]["policyArn"] == GRANT_ARN
    assert sample("cloudtrail-iam-createpolicyversion.json")["id"] in message["detail"]["reason"]
    (drift,) = [f for f in findings(app) if f["rule"] == "grant-policy-drift"]
    assert drift["resource"] == f"role/{ROLE}" and drift["details"]["mode"] == "enforce"


def test_grant_policy_drift_sends_nothing_in_a_dry_run(
    app: Any, aws: LocalAws, configure: Callable[..., Path], grants_queue: str
) -> None:
    configure()
    _grant_world(aws)
    _tamper(GRANT_ARN)
    configure(dry_run=True)
    invoke(app, event("CreatePolicyVersion"))
    assert _messages(grants_queue) == []
    (drift,) = [f for f in findings(app) if f["rule"] == "grant-policy-drift"]
    assert "dry run" in drift["message"]


def test_grant_policy_drift_without_a_grants_queue_is_reported_not_handed_on(
    app: Any, aws: LocalAws, configure: Callable[..., Path], iam_calls: Counter[str]
) -> None:
    configure()
    _grant_world(aws)
    _tamper(GRANT_ARN)
    iam_calls.clear()
    assert invoke(app, event("CreatePolicyVersion"))["failed"] == 0
    assert [c for c in iam_calls if not c.startswith(IAM_READS)] == []
    (drift,) = [f for f in findings(app) if f["rule"] == "grant-policy-drift"]
    assert "not handed on: ROLEWARDEN_GRANTS_QUEUE_URL is not set" in drift["message"]


def test_grant_policy_drift_that_cannot_be_sent_fails_the_record(
    app: Any, aws: LocalAws, configure: Callable[..., Path], grants_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grants queue does not exist (a deployment error): the record fails with the reason, for the DLQ."""
    configure()
    _grant_world(aws)
    _tamper(GRANT_ARN)
    monkeypatch.setenv("ROLEWARDEN_GRANTS_QUEUE_URL", grants_queue.replace("rolewarden-bucket-grants-test", "gone"))
    with pytest.raises(RuntimeError, match="1 event failed: sqs:SendMessage grant drift of role web-server failed"):
        invoke(app, event("CreatePolicyVersion"))
    (drift,) = [f for f in findings(app) if f["rule"] == "grant-policy-drift"]
    assert "not handed on: sqs:SendMessage grant drift of role web-server failed" in drift["message"]
    assert _messages(grants_queue) == []


def test_grant_policy_drift_in_report_mode_only_reports(
    app: Any, aws: LocalAws, configure: Callable[..., Path], grants_queue: str
) -> None:
    configure(rules={"grant-policy-drift": "report"})
    _grant_world(aws)
    _tamper(GRANT_ARN)
    invoke(app, event("SetDefaultPolicyVersion"))
    assert _default_document(GRANT_ARN) == ADMIN_DOC
    drift = [f for f in findings(app) if f["rule"] == "grant-policy-drift"]
    assert drift and drift[0]["details"]["mode"] == "report"
    assert _messages(grants_queue) == []


# ------------------------------------------------------------------ scope and safety
def test_roles_outside_scope_protected_service_linked_and_own_roles_are_untouched(
    app: Any, configure: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, iam_calls: Counter[str]
) -> None:
    configure()
    ensure_aws_managed_policy()
    own = w.create_role("rolewarden-exec", path=PATH)
    monkeypatch.setenv("ROLEWARDEN_SELF_ROLE_ARNS", f"arn:aws:iam::{ACCOUNT_ID}:role/x,{own}")
    w.create_role("legacy", path="/", trust=LOOSE_TRUST)
    w.create_role("break-glass", trust=LOOSE_TRUST)
    linked = iam().create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")["Role"]["RoleName"]
    names = ["legacy", "break-glass", "rolewarden-exec", linked]
    for name in names:
        iam().attach_role_policy(RoleName=name, PolicyArn=ADMIN_ARN)
    before = {name: state(name) for name in names}

    for name in names:
        invoke(app, event("AttachRolePolicy", **{ROLE: name}))

    assert {name: state(name) for name in names} == before
    assert findings(app) == []
    assert iam_calls["ListAttachedRolePolicies"] == 0  # only GetRole, to learn each role's path


def test_report_mode_changes_nothing_and_reports(app: Any, configure: Callable[..., Path]) -> None:
    configure(rules={"no-admin-access": "report", "no-privilege-escalation": "report", "trust-ec2-only": "report"})
    ensure_aws_managed_policy()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)
    before = state(ROLE)
    invoke(app, event("AttachRolePolicy"))
    assert state(ROLE) == before
    reported = {f["rule"]: f["details"]["mode"] for f in findings(app)}
    assert reported["no-admin-access"] == reported["trust-ec2-only"] == "report"
    assert "remediated" not in reported


def test_dry_run_changes_nothing_records_nothing_and_says_what_it_would_do(
    app: Any, configure: Callable[..., Path], table: str
) -> None:
    configure(dry_run=True)
    ensure_aws_managed_policy()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)
    before = state(ROLE)
    invoke(app, event("AttachRolePolicy"))
    assert state(ROLE) == before
    sink = sink_of(app)
    assert sink.counts["Planned"] == 2  # detach AdministratorAccess, replace the trust policy
    enforced = [f for f in findings(app) if f["details"]["mode"] == "enforce"]
    assert enforced and all("dry run" in f["message"] and f["details"]["dry_run"] for f in enforced)
    assert "remediated" not in rules_found(app)
    from rolewarden.operator import compliance

    assert compliance.history(f"role/{ROLE}") == []


def test_circuit_breaker_remediates_none_and_raises_the_alarm_metric(
    app: Any, configure: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    configure(circuit_breaker={"max_remediations": 2})
    ensure_aws_managed_policy()
    for i in range(3):
        w.create_role(f"app-{i}")
        iam().attach_role_policy(RoleName=f"app-{i}", PolicyArn=ADMIN_ARN)

    invoke(app, sample("scheduled-sweep.json"))

    assert all(state(f"app-{i}")["attached"] == [ADMIN_ARN] for i in range(3))
    (breaker,) = [f for f in findings(app) if f["rule"] == "circuit-breaker"]
    assert breaker["severity"] == "ERROR" and breaker["details"]["roles"] == ["app-0", "app-1", "app-2"]
    assert sink_of(app).counts["CircuitBreakerTripped"] == 1
    # The EMF document Powertools printed carries the metric the template's CircuitBreakerAlarm watches.
    from rwlocal.stack import load_template

    alarm = load_template()["Resources"]["CircuitBreakerAlarm"]["Properties"]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert alarm["MetricName"] in names
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "rolewarden"}]
    assert all(doc.get("service") == "rolewarden" for doc in emf)

    configure(circuit_breaker={"max_remediations": 3})
    invoke(app, sample("scheduled-sweep.json"))
    assert all(state(f"app-{i}")["attached"] == [] for i in range(3))


def test_self_caused_events_are_ignored_in_code(
    app: Any, configure: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    ensure_aws_managed_policy()
    w.create_role(ROLE)
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)
    caller = sample("cloudtrail-iam-attachrolepolicy.json")["detail"]["userIdentity"]["sessionContext"]
    monkeypatch.setenv("ROLEWARDEN_SELF_ROLE_ARNS", caller["sessionIssuer"]["arn"])

    invoke(app, event("AttachRolePolicy"))

    assert state(ROLE)["attached"] == [ADMIN_ARN]
    assert sink_of(app).counts["SelfCausedEventsIgnored"] == 1


def test_self_caused_events_are_filtered_by_the_template_pattern(aws: LocalAws, configure: Callable[..., Path]) -> None:
    from rwlocal import stack as st
    from rwlocal.pipeline import Pipeline, put_events

    path = configure()
    ensure_aws_managed_policy()
    stack = st.deploy()
    pipeline = Pipeline(stack, env_overrides={"ROLEWARDEN_CONFIG": str(path)})
    own = stack.function_role_arn("RoleComplianceFunction")
    w.create_role(ROLE)
    iam().attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)

    mine = event("AttachRolePolicy", **{f"arn:aws:iam::{ACCOUNT_ID}:role/platform-admin": own})
    put_events([mine])
    assert pipeline.depth("RoleComplianceQueue") == 0  # RoleWarden's own change: no message at all

    by_user = event("AttachRolePolicy")
    by_user["detail"]["userIdentity"] = {
        "type": "IAMUser",
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/bob",
        "userName": "bob",
        "accountId": ACCOUNT_ID,
    }
    put_events([event("AttachRolePolicy"), by_user])
    assert pipeline.depth("RoleComplianceQueue") == 2  # role sessions of others, and IAM users

    pipeline.drain(["RoleComplianceFunction"])
    assert state(ROLE)["attached"] == []
    assert pipeline.depth("RoleComplianceQueue") == 0
    assert pipeline.dlq_messages("RoleComplianceFunction") == []


# ------------------------------------------------------------------ sweep
def test_sweep_reads_everything_in_one_call_and_fixes_every_managed_role(
    app: Any, configure: Callable[..., Path], iam_calls: Counter[str]
) -> None:
    configure()
    ensure_aws_managed_policy()
    for i in range(6):
        w.create_role(f"fine-{i}")
    w.create_role("admin-attached")
    iam().attach_role_policy(RoleName="admin-attached", PolicyArn=ADMIN_ARN)
    w.create_role("loose-trust", trust=LOOSE_TRUST)
    w.create_role("inline-escalation")
    escalate = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}
    iam().put_role_policy(RoleName="inline-escalation", PolicyName="p", PolicyDocument=json.dumps(escalate))
    w.create_role("outsider", path="/", trust=LOOSE_TRUST)
    untouched = {name: state(name) for name in ["outsider", *(f"fine-{i}" for i in range(6))]}

    result = invoke(app, sample("scheduled-sweep.json"))

    assert result["failed"] == 0
    assert state("admin-attached")["attached"] == []
    assert state("loose-trust")["trust"] == w.EC2_TRUST
    assert state("inline-escalation")["inline"] == {}
    assert {name: state(name) for name in untouched} == untouched
    reads = {k: v for k, v in iam_calls.items() if k.startswith(("Get", "List"))}
    assert reads == {"GetAccountAuthorizationDetails": 1, "GetRolePolicy": 1}  # + the pre-write check
    # A second sweep finds nothing to do: converged.
    invoke(app, sample("scheduled-sweep.json"))
    assert rules_found(app) == set()


def test_sweep_follows_gaad_pages(app: Any, configure: Callable[..., Path]) -> None:
    """moto ignores MaxItems and never truncates, so the real paging shape is injected at the botocore
    level: the first answer comes back truncated with a Marker, and the paginator must ask again."""
    from rolewarden.aws.clients import client

    configure()
    w.create_role("first", trust=LOOSE_TRUST)
    seen: list[dict[str, Any]] = []

    def truncate(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetAccountAuthorizationDetails" and not seen:
            seen.append(dict(parsed))
            parsed["RoleDetailList"], parsed["IsTruncated"], parsed["Marker"] = [], True, "page-2"

    events = client("iam").meta.events
    events.register("after-call.iam.GetAccountAuthorizationDetails", truncate)
    try:
        invoke(app, sample("scheduled-sweep.json"))
    finally:
        events.unregister("after-call.iam.GetAccountAuthorizationDetails", truncate)
    assert seen, "the hook did not run"
    assert state("first")["trust"] == w.EC2_TRUST  # found on the second page


# ------------------------------------------------------------------ failures
def test_throttled_read_fails_the_record_for_redelivery(app: Any, configure: Callable[..., Path]) -> None:
    """moto does not throttle; botocore's own error path is driven with IAM's Throttling error shape."""
    from rolewarden.aws.clients import client

    configure()
    w.create_role(ROLE, trust=LOOSE_TRUST)

    def throttle(**_: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        body = {
            "Error": {"Code": "Throttling", "Message": "Rate exceeded", "Type": "Sender"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://iam.amazonaws.com/", 400, HTTPHeaders(), None), body

    events = client("iam").meta.events
    events.register("before-call.iam.GetRole", throttle)
    try:
        record = {
            "messageId": "m-1",
            "body": json.dumps(event("UpdateAssumeRolePolicy")),
            "attributes": {"ApproximateReceiveCount": "1"},
        }
        result = invoke(app, {"Records": [record]})
    finally:
        events.unregister("before-call.iam.GetRole", throttle)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert state(ROLE)["trust"] == LOOSE_TRUST


def test_events_for_roles_that_are_gone_are_done(app: Any, configure: Callable[..., Path]) -> None:
    configure()
    result = invoke(app, event("DeleteRolePolicy"))
    assert result["failed"] == 0 and findings(app) == []


def test_an_inline_policy_changed_between_read_and_write_is_not_overwritten(
    app: Any, configure: Callable[..., Path]
) -> None:
    """Someone edits the inline policy after RoleWarden read it: the pre-write check sees it and the
    record is retried (then re-read), rather than writing back a stale document."""
    from rolewarden.aws.clients import client

    configure()
    w.create_role(ROLE)
    mixed = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        ],
    }
    iam().put_role_policy(RoleName=ROLE, PolicyName="p", PolicyDocument=json.dumps(mixed))
    edited = {
        "Version": "2012-10-17",
        "Statement": [*mixed["Statement"], {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}],
    }
    calls: list[str] = []

    def edit_once(model: Any, **_: Any) -> None:
        calls.append(model.name)
        if calls.count("GetRolePolicy") == 2:  # the executor's pre-write read
            iam().put_role_policy(RoleName=ROLE, PolicyName="p", PolicyDocument=json.dumps(edited))

    events = client("iam").meta.events
    events.register("before-call.iam.GetRolePolicy", edit_once)
    try:
        record = {
            "messageId": "m-1",
            "body": json.dumps(event("PutRolePolicy", debug="p")),
            "attributes": {"ApproximateReceiveCount": "1"},
        }
        assert invoke(app, {"Records": [record]}) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
        assert state(ROLE)["inline"]["p"] == edited
        assert invoke(app, {"Records": [record]}) == {"batchItemFailures": []}  # redelivered: re-read
    finally:
        events.unregister("before-call.iam.GetRolePolicy", edit_once)
    assert state(ROLE)["inline"]["p"]["Statement"] == [edited["Statement"][0], edited["Statement"][2]]


# ------------------------------------------------------------------ history and rollback
def test_history_and_rollback_restore_a_remediated_role_exactly(
    app: Any, configure: Callable[..., Path], table: str
) -> None:
    from rolewarden.config import load_config
    from rolewarden.operator import compliance

    boundary = local_policy("rolewarden-boundary", ADMIN_DOC)
    old_boundary = local_policy("old-boundary", ADMIN_DOC)
    configure(permissions_boundary=boundary)
    ensure_aws_managed_policy()
    read_doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
    reader = local_policy("reader", read_doc)
    w.create_role(ROLE, trust=LOOSE_TRUST)
    client = iam()
    client.attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN_ARN)
    client.attach_role_policy(RoleName=ROLE, PolicyArn=reader)
    client.put_role_permissions_boundary(RoleName=ROLE, PermissionsBoundary=old_boundary)
    mixed = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Keep", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::d/*"},
            {"Sid": "Drop", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
        ],
    }
    client.put_role_policy(RoleName=ROLE, PolicyName="mixed", PolicyDocument=json.dumps(mixed))
    client.put_role_policy(RoleName=ROLE, PolicyName="admin", PolicyDocument=json.dumps(ADMIN_DOC))
    original = state(ROLE)

    invoke(app, event("AttachRolePolicy"))
    remediated = state(ROLE)
    assert remediated["attached"] == [reader]
    assert remediated["trust"] == w.EC2_TRUST and remediated["boundary"] == boundary
    assert set(remediated["inline"]) == {"mixed"}

    (record,) = compliance.history(f"role/{ROLE}")
    assert record["kind"] == "remediation" and record["time"]
    config = load_config()
    answer = compliance.rollback(ROLE, config=config)
    assert answer["restored_from"] == record["record_id"] and answer["verified"] is True
    assert state(ROLE) == original
    assert {v["rule"] for v in answer["violations_after"]} >= {"no-admin-access", "trust-ec2-only"}

    records = compliance.history(f"role/{ROLE}")
    assert [r["kind"] for r in records] == ["rollback", "remediation"]
    assert records[0]["restored_from"] == record["record_id"]
    # The rollback recorded what it replaced, so it can be undone to the remediated state.
    again = compliance.rollback(f"role/{ROLE}", records[0]["record_id"])
    assert again["verified"] and state(ROLE) == remediated

    with pytest.raises(Exception, match="no record nope"):
        compliance.rollback(ROLE, "nope")


def test_rollback_dry_run_lists_steps_and_changes_nothing(app: Any, configure: Callable[..., Path], table: str) -> None:
    from rolewarden.operator import compliance

    configure()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    invoke(app, event("UpdateAssumeRolePolicy"))
    answer = compliance.rollback(ROLE, dry_run=True)
    assert answer["steps"] == [{"step": "trust", "value": LOOSE_TRUST}]
    assert answer["record_id"] is None and state(ROLE)["trust"] == w.EC2_TRUST
    assert len(compliance.history(ROLE)) == 1


def test_rollback_refuses_a_role_outside_the_managed_path(
    app: Any, configure: Callable[..., Path], table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rolewarden.errors import PermanentError
    from rolewarden.operator import compliance

    configure()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    invoke(app, event("UpdateAssumeRolePolicy"))
    iam().delete_role(RoleName=ROLE)
    w.create_role(ROLE, path="/elsewhere/")  # same name, another path: not the recorded role
    with pytest.raises(PermanentError, match="refusing to roll back"):
        compliance.rollback(ROLE)


# ------------------------------------------------------------------ one remediator per role
def _count_trust_writes() -> Counter[str]:
    from rolewarden.aws.clients import client

    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        if model.name in ("UpdateAssumeRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy"):
            counts[model.name] += 1

    client("iam").meta.events.register("after-call.iam", count)  # a completed call, not one paused before it
    return counts


def test_two_concurrent_containers_remediate_a_role_once(
    aws: LocalAws, configure: Callable[..., Path], table: str
) -> None:
    """Duplicate UpdateAssumeRolePolicy events in two containers at once: the first (a thread) reads the
    loose trust policy, decides and is paused just before its IAM write; the second runs to completion
    meanwhile (it reads the same loose trust policy). The first holds the role's remediation lease, so
    the second writes nothing and its record is retried; the first then writes. The retried record
    reads the fixed role and writes nothing. Without the lease both write."""
    import threading

    from rolewarden.aws import clients, iam_snapshot

    configure()
    iam_snapshot.clear_caches()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    first, second = load_app("role_compliance"), load_app("role_compliance")
    writes = _count_trust_writes()
    reached, resume = threading.Event(), threading.Event()

    def pause_first_write(model: Any, **_: Any) -> None:
        if (
            threading.current_thread().name == "first"
            and model.name == "UpdateAssumeRolePolicy"
            and not reached.is_set()
        ):
            reached.set()
            assert resume.wait(30), "never resumed"

    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            results["first"] = invoke(first, w.as_sqs_event(event("UpdateAssumeRolePolicy")))
        except BaseException as exc:  # re-raised below
            errors.append(exc)
        finally:
            reached.set()

    clients.add_hook("before-call.iam", pause_first_write)
    thread = threading.Thread(target=run_first, name="first")
    try:
        thread.start()
        assert reached.wait(30)
        results["second"] = invoke(second, w.as_sqs_event(event("UpdateAssumeRolePolicy")))
        assert writes == {}, "the second container wrote while the first held the role"
    finally:
        resume.set()
        thread.join(30)
        clients.remove_hook("before-call.iam", pause_first_write)
    if errors:
        raise errors[0]
    assert results["first"] == {"batchItemFailures": []}
    assert len(results["second"]["batchItemFailures"]) == 1  # retried, not dropped
    assert writes == {"UpdateAssumeRolePolicy": 1}
    assert state(ROLE)["trust"] == w.EC2_TRUST
    assert invoke(second, w.as_sqs_event(event("UpdateAssumeRolePolicy"))) == {"batchItemFailures": []}
    assert writes == {"UpdateAssumeRolePolicy": 1}


def test_a_read_made_before_another_containers_remediation_does_not_write_again(
    aws: LocalAws, configure: Callable[..., Path], table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second container read the role before the first remediated it (or IAM's read lags that
    write): once it holds the lease, its read shows exactly the state that was just remediated, so it
    is retried rather than remediating a second time. Without the guard it writes twice."""
    from rolewarden.aws import iam_snapshot
    from rolewarden.capabilities.compliance import reconcile as capability

    configure()
    iam_snapshot.clear_caches()
    w.create_role(ROLE, trust=LOOSE_TRUST)
    late, early = load_app("role_compliance"), load_app("role_compliance")
    writes = _count_trust_writes()
    real_decide = capability.decide_role
    raced: list[dict[str, Any]] = []

    def decide_after_the_other(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # the early container remediates between this read and this decision
            raced.append({})
            raced[0] = invoke(early, w.as_sqs_event(event("UpdateAssumeRolePolicy")))
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(capability, "decide_role", decide_after_the_other)
    result = invoke(late, w.as_sqs_event(event("UpdateAssumeRolePolicy")))
    assert raced == [{"batchItemFailures": []}]
    assert len(result["batchItemFailures"]) == 1
    assert writes == {"UpdateAssumeRolePolicy": 1}
    assert state(ROLE)["trust"] == w.EC2_TRUST
    assert invoke(late, w.as_sqs_event(event("UpdateAssumeRolePolicy"))) == {"batchItemFailures": []}  # the redelivery
    assert writes == {"UpdateAssumeRolePolicy": 1}
