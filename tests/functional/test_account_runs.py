"""The runtime in central mode (issue 14), in-process against the moto server over real HTTP: an organization
in moto's default account (the central one) with two member accounts, the instance-profiles handler fed
events that name each account. moto keeps one state per account id and STS AssumeRole into another
account's role acts there. moto does not check that the execution role exists or trusts the caller (the
unavailable account is injected at the botocore level, in STS's shape) and its Organizations answers
ListParents like AWS. The stacks and the forwarding end to end are tests/functional/test_central_end_to_end.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rolewarden.aws import clients, organizations
from rolewarden.runtime import Handler
from rolewarden.telemetry import Sink
from rwlocal import configs
from rwlocal import world as w
from rwlocal.multiaccount import create_organization, in_account, launch
from rwlocal.server import LocalAws

CENTRAL = "123456789012"  # moto's default account
OUTSIDER = "999999999999"


@pytest.fixture
def org(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    organization = create_organization()
    members = [organization.add_account(f"member-{i}") for i in range(2)]
    monkeypatch.setenv("ROLEWARDEN_MODE", "central")
    monkeypatch.setenv("ROLEWARDEN_ACCOUNT_ID", CENTRAL)
    return {"id": organization.id, "a": members[0], "b": members[1], "root": organization.root}


def _config(write_config: Callable[..., Path], org: dict[str, Any], **accounts: Any) -> None:
    text = configs.config_yaml(
        instance_profiles={"rules": [configs.WEB_RULE]},
        accounts={"mode": "central", "organization_id": org["id"], **accounts},
    )
    write_config(text)


def _attached(account: str) -> dict[str, str]:
    with in_account(account):
        return w.attached_profiles()


def _event(account: str, instance: str) -> dict[str, Any]:
    return {**w.state_change_event(instance), "id": f"ev-{account}", "account": account, "region": "us-east-1"}


def _handle(event: dict[str, Any], *, sweep: bool = False) -> tuple[dict[str, Any], Sink]:
    handler = Handler("instance_profiles", sweep=sweep)
    answer = handler(event)
    assert handler.last_sink is not None
    return answer, handler.last_sink


def test_a_launch_in_a_member_gets_its_profile_there_and_nowhere_else(
    org: dict[str, Any], write_config: Callable[..., Path]
) -> None:
    _config(write_config, org)
    a, b = org["a"], org["b"]
    in_a, in_b = launch(a), launch(b)
    answer, sink = _handle(w.as_sqs_event(_event(a, in_a)))
    assert answer == {"batchItemFailures": []}
    assert _attached(a) == {in_a: "web-server"}
    assert _attached(b) == {} and _attached(CENTRAL) == {}  # B's instance waits for its own event
    # the findings of the member's instance (IMDSv1 still open: imdsv2 reports by default) name the member
    assert [(f.resource, f.account) for f in sink.findings] == [(in_a, a)]
    assert sink.findings[0].as_dict()["account"] == a
    answer, sink = _handle(w.as_sqs_event(_event(b, in_b)))
    assert _attached(b) == {in_b: "web-server"} and _attached(a) == {in_a: "web-server"}
    assert [f.account for f in sink.findings] == [b]


def test_an_event_from_outside_the_organization_is_refused_with_one_finding(
    org: dict[str, Any], write_config: Callable[..., Path]
) -> None:
    _config(write_config, org)
    instance = launch(OUTSIDER)
    answer, sink = _handle(w.as_sqs_event(_event(OUTSIDER, instance), _event(OUTSIDER, instance)))
    assert answer == {"batchItemFailures": []}  # acknowledged: retrying cannot admit it
    assert _attached(OUTSIDER) == {}
    (finding,) = sink.findings
    assert (finding.rule, finding.account, finding.resource) == (
        "account-not-admitted",
        OUTSIDER,
        f"account/{OUTSIDER}",
    )
    assert f"not an active account of organization {org['id']}" in finding.message


def test_include_ous_admits_the_accounts_of_an_ou_and_refuses_the_rest(
    org: dict[str, Any], write_config: Callable[..., Path]
) -> None:
    orgs = boto3.client("organizations")
    ou = orgs.create_organizational_unit(ParentId=org["root"], Name="workloads")["OrganizationalUnit"]["Id"]
    orgs.move_account(AccountId=org["a"], SourceParentId=org["root"], DestinationParentId=ou)
    _config(write_config, org, include_ous=[ou])
    in_a, in_b = launch(org["a"]), launch(org["b"])
    _, sink = _handle(w.as_sqs_event(_event(org["a"], in_a), _event(org["b"], in_b)))
    assert _attached(org["a"]) == {in_a: "web-server"} and _attached(org["b"]) == {}
    (finding,) = [f for f in sink.findings if f.rule == "account-not-admitted"]
    assert finding.account == org["b"] and "in none of accounts.include_ous" in finding.message
    assert organizations.reader().ancestors(org["a"]) == (ou, org["root"])


def _sts_refuses(account: str) -> Callable[..., Any]:
    def refuse(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        arn = kwargs["params"]["body"]["RoleArn"]
        if f"::{account}:" not in arn:
            return None
        parsed = {
            "Error": {"Type": "Sender", "Code": "AccessDenied", "Message": f"not authorized to assume {arn}"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse("http://localhost/", 403, HTTPHeaders(), None), parsed

    return refuse


def test_an_account_without_its_execution_role_is_one_finding_and_its_records_go_to_the_dlq(
    org: dict[str, Any], write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(write_config, org)
    dlq = boto3.client("sqs").create_queue(QueueName="dlq")["QueueUrl"]
    monkeypatch.setenv("ROLEWARDEN_DLQ_URL", dlq)
    in_a, in_b = launch(org["a"]), launch(org["b"])
    refuse = _sts_refuses(org["b"])  # moto assumes any role: STS's answer for a missing role, injected
    clients.add_hook("before-call.sts.AssumeRole", refuse)
    try:
        answer, sink = _handle(w.as_sqs_event(_event(org["a"], in_a), _event(org["b"], in_b), _event(org["b"], in_b)))
    finally:
        clients.remove_hook("before-call.sts.AssumeRole", refuse)
    assert answer == {"batchItemFailures": []}  # no retry loop: B's records went to the DLQ
    assert _attached(org["a"]) == {in_a: "web-server"} and _attached(org["b"]) == {}
    (finding,) = [f for f in sink.findings if f.rule != "imdsv1-open"]  # one for the account, not one per record
    assert (finding.rule, finding.account) == ("account-unavailable", org["b"])
    dead = boto3.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    reasons = [m["MessageAttributes"]["rolewarden-reason"]["StringValue"] for m in dead["Messages"]]
    assert len(reasons) == 2 and all("AccessDenied" in r for r in reasons)


def test_the_schedules_sweep_covers_every_admitted_account(
    org: dict[str, Any], write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(write_config, org, exclude_accounts=[org["b"]])
    instances = {account: launch(account) for account in (CENTRAL, org["a"], org["b"])}
    sweep = {**w.sweep_event(), "id": "sched-1", "account": CENTRAL, "region": "us-east-1"}
    # the sweep function with its sweep queue: one account sweep message per admitted account
    queue = boto3.client("sqs").create_queue(QueueName="sweeps")["QueueUrl"]
    monkeypatch.setenv("ROLEWARDEN_SWEEP_QUEUE_URL", queue)
    answer, _ = _handle(w.as_sqs_event(sweep), sweep=True)
    assert answer == {"batchItemFailures": []}
    sent = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    parts = sorted(json.loads(m["Body"])["rolewarden-account-sweep"]["account"] for m in sent)
    assert parts == sorted([CENTRAL, org["a"]])  # B is excluded by the config
    assert all(not _attached(account) for account in instances)  # fanning out changes nothing
    # each account's sweep, as the sweep function receives it
    answer, _ = _handle({"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in sent]}, sweep=True)
    assert answer == {"batchItemFailures": []}
    assert _attached(CENTRAL) == {instances[CENTRAL]: "web-server"}
    assert _attached(org["a"]) == {instances[org["a"]]: "web-server"}
    assert _attached(org["b"]) == {}


def test_without_a_sweep_queue_the_account_sweeps_run_in_the_invocation(
    org: dict[str, Any], write_config: Callable[..., Path]
) -> None:
    _config(write_config, org)
    instances = {account: launch(account) for account in (CENTRAL, org["a"], org["b"])}
    _handle({**w.sweep_event(), "id": "sched-2", "account": CENTRAL, "region": "us-east-1"})
    assert {account: _attached(account) for account in instances} == {
        account: {instance: "web-server"} for account, instance in instances.items()
    }


def test_with_security_hub_on_the_findings_are_also_imported_from_the_central_account(
    org: dict[str, Any], write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(write_config, org)
    monkeypatch.setenv("ROLEWARDEN_SECURITY_HUB", "on")
    boto3.client("securityhub").enable_security_hub()
    instance = launch(org["a"])
    _, sink = _handle(w.as_sqs_event(_event(org["a"], instance), _event(OUTSIDER, instance)))
    assert sorted(f.rule for f in sink.findings) == ["account-not-admitted", "imdsv1-open"]
    pages = boto3.client("securityhub").get_paginator("get_findings").paginate()
    imported = {f["ProductFields"]["rolewarden/rule"]: f for page in pages for f in page["Findings"]}
    assert sorted(imported) == ["account-not-admitted", "imdsv1-open"]
    on_instance = imported["imdsv1-open"]
    assert on_instance["AwsAccountId"] == CENTRAL  # the importer, as AWS requires with the default product
    assert on_instance["ProductFields"]["rolewarden/account"] == org["a"]
    assert on_instance["Resources"][0]["Id"] == f"arn:aws:ec2:us-east-1:{org['a']}:instance/{instance}"
    assert imported["account-not-admitted"]["Resources"][0]["Id"] == f"AWS::::Account:{OUTSIDER}"
    assert sink.counts["SecurityHubImported"] == 2


def test_organizations_out_of_reach_retries_the_records_instead_of_guessing(
    org: dict[str, Any], write_config: Callable[..., Path]
) -> None:
    """A dropped connection to Organizations (injected at botocore's send, as the network would drop it; botocore
    retries it first) fails the records for redelivery: the account is neither admitted nor refused on a guess."""
    from botocore.exceptions import EndpointConnectionError

    _config(write_config, org)
    instance = launch(org["a"])

    def drop(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://organizations.us-east-1.amazonaws.com")

    clients.add_hook("before-send.organizations", drop)
    try:
        answer, sink = _handle(w.as_sqs_event(_event(org["a"], instance)))
    finally:
        clients.remove_hook("before-send.organizations", drop)
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == ["msg-0"]
    assert _attached(org["a"]) == {} and not sink.findings
    assert any("cannot tell whether RoleWarden may act in account" in r["message"] for r in sink.records)
