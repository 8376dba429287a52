"""The account a record acts in (issue 14), without AWS: which services follow the account in scope, the
state keys of a member, the account carried by records, continuations, account sweeps and findings, and
the stack/config agreement checked before anything acts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from rolewarden import account_runs
from rolewarden.aws import clients
from rolewarden.batch import ACCOUNT_SWEEP, AccountSweep, Continuation, split_records
from rolewarden.config import parse_config
from rolewarden.errors import ConfigError
from rolewarden.model.findings import Finding
from rolewarden.model.targets import SWEEP
from rolewarden.settings import Settings
from rolewarden.telemetry import Sink

A, B = "111111111111", "222222222222"
ORG = "o-rolewarden01"


@dataclass
class FakeScope:
    account: str
    home: bool = False
    asked: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        self.asked.append(service)
        return f"{self.account}:{service}"


def test_member_services_follow_the_scope_and_rolewardens_own_stay_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "home_client", lambda service: f"home:{service}")
    scope = FakeScope(A)
    with clients.acting_in(scope):
        assert [clients.client(s) for s in ("ec2", "iam", "s3", "autoscaling")] == [
            f"{A}:ec2",
            f"{A}:iam",
            f"{A}:s3",
            f"{A}:autoscaling",
        ]
        # the state table, the queues, the topic, STS and Organizations are RoleWarden's own
        assert [clients.client(s) for s in ("dynamodb", "sqs", "sns", "sts", "organizations")] == [
            "home:dynamodb",
            "home:sqs",
            "home:sns",
            "home:sts",
            "home:organizations",
        ]
        assert clients.current_account() == A
    assert clients.client("ec2") == "home:ec2"
    assert clients.current_account() is None
    assert scope.asked == ["ec2", "iam", "s3", "autoscaling"]


def test_the_home_accounts_scope_uses_rolewardens_own_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "home_client", lambda service: f"home:{service}")
    with clients.acting_in(FakeScope(A, home=True)):
        assert clients.client("ec2") == "home:ec2"
        assert clients.scoped_key("grants#role#app") == "grants#role#app"


def test_scopes_nest_and_unwind_even_on_error() -> None:
    with pytest.raises(RuntimeError), clients.acting_in(FakeScope(A)):
        with clients.acting_in(FakeScope(B)):
            assert clients.current_account() == B
        assert clients.current_account() == A
        raise RuntimeError("boom")
    assert clients.current_account() is None


def test_a_members_state_keys_carry_its_account_and_the_home_keys_are_unchanged() -> None:
    assert clients.scoped_key("compliance#role#app") == "compliance#role#app"
    with clients.acting_in(FakeScope(A)):
        assert clients.scoped_key("compliance#role#app") == f"account#{A}#compliance#role#app"
    with clients.acting_in(FakeScope(B)):
        assert clients.scoped_key("compliance#role#app") != f"account#{A}#compliance#role#app"


# -- records ---------------------------------------------------------------------------------------------
def _sqs(*bodies: Any) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": b if isinstance(b, str) else json.dumps(b), "attributes": {}}
            for i, b in enumerate(bodies)
        ]
    }


def _ec2_event(account: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"e-{account}",
        "source": "aws.ec2",
        "detail-type": "EC2 Instance State-change Notification",
        "account": account,
        "region": "us-east-1",
        "time": "2026-11-29T12:00:00Z",
        "resources": [],
        "detail": {"instance-id": "i-0123456789abcdef0", "state": "running"},
    }


def test_a_record_acts_in_the_account_its_event_names() -> None:
    records, _ = split_records(_sqs(_ec2_event(A), _ec2_event(B)), "instance_profiles", Settings())
    assert [(r.account, r.error) for r in records] == [(A, ""), (B, "")]


def test_an_account_sweep_and_a_continuation_keep_their_account() -> None:
    sweep = AccountSweep("instance_profiles", "sched-1#" + A, A)
    follow = Continuation("instance_profiles", "sched-1#" + A, 2, "cursor-1", A)
    home_follow = Continuation("instance_profiles", "sched-1", 2, "cursor-1")
    records, _ = split_records(_sqs(sweep.body(), follow.body(), home_follow.body()), "instance_profiles", Settings())
    first, second, third = records
    assert (first.account, first.account_sweep, first.targets, first.event_id) == (A, True, [SWEEP], "sched-1#" + A)
    assert (second.account, second.continuation) == (A, follow)
    assert (third.account, json.loads(home_follow.body())["rolewarden-continuation"].get("account")) == ("", None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"capability": "bucket_grants", "sweep_id": "s", "account": A}, "reached the instance_profiles sweep"),
        ({"capability": "instance_profiles", "sweep_id": "s", "account": "12345"}, "12-digit account id"),
        ({"capability": "instance_profiles", "sweep_id": "s"}, "12-digit account id"),
        ({"capability": "instance_profiles", "sweep_id": "", "account": A}, "sweep_id must be"),
        ("not an object", "must be an object"),
    ],
)
def test_a_malformed_account_sweep_is_refused_with_its_reason(raw: Any, reason: str) -> None:
    (record,) = split_records(_sqs({ACCOUNT_SWEEP: raw}), "instance_profiles", Settings())[0]
    assert reason in record.error and not record.targets


# -- findings -------------------------------------------------------------------------------------------
def test_a_finding_names_its_account_only_when_it_has_one() -> None:
    plain = Finding("profiles", "i-1", "rule", "message")
    assert "account" not in plain.as_dict()
    sink = Sink()
    sink.account = A
    sink.finding(plain)
    sink.finding(Finding("profiles", "i-2", "rule", "message", account=B))
    assert [f.account for f in sink.findings] == [A, B]
    assert sink.findings[0].as_dict()["account"] == A
    assert Finding.on_account("grants", B, "account-not-admitted", "no").account == B


# -- the stack and the config agree ---------------------------------------------------------------------
CENTRAL = f"version: 1\naccounts: {{mode: central, organization_id: {ORG}}}\n"


def test_the_stack_mode_and_the_config_mode_must_agree() -> None:
    central = parse_config(CENTRAL)
    single = parse_config("version: 1")
    account_runs.check_mode(single, Settings())
    account_runs.check_mode(central, Settings(mode="central"))
    with pytest.raises(ConfigError, match=r"Mode=single but the config says accounts\.mode: central"):
        account_runs.check_mode(central, Settings())
    with pytest.raises(ConfigError, match=r"Mode=central but the config says accounts\.mode: single"):
        account_runs.check_mode(single, Settings(mode="central"))
    with pytest.raises(ConfigError, match="not the stack's ExecutionRoleName 'Other'"):
        account_runs.check_mode(central, Settings(mode="central", execution_role="Other"))


def test_single_mode_acts_in_its_own_account_and_refuses_another() -> None:
    config = parse_config("version: 1")
    home = Settings(account_id=A)
    assert account_runs.admission(A, config, home).admitted
    assert account_runs.admission("", config, home).admitted  # a message naming no account: RoleWarden's own
    refused = account_runs.admission(B, config, home)
    assert not refused.admitted and "not RoleWarden's own account" in refused.reason
    # the CLI and tests, where the stack does not say its account: nothing to check against
    assert account_runs.admission(B, config, Settings()).admitted
    assert account_runs.account_of("", home) == A and account_runs.account_of(B, home) == B


def test_only_the_schedules_own_sweep_fans_out_and_only_in_central_mode() -> None:
    central, single = parse_config(CENTRAL), parse_config("version: 1")
    scheduled, part = split_records(
        _sqs(
            {"id": "s1", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}, "account": A},
            AccountSweep("instance_profiles", "s1#" + A, A).body(),
        ),
        "instance_profiles",
        Settings(),
    )[0]
    assert scheduled.targets == [SWEEP] and part.targets == [SWEEP]
    assert account_runs.fans_out(scheduled, central)
    assert not account_runs.fans_out(part, central)
    assert not account_runs.fans_out(scheduled, single)


def test_a_change_made_by_the_execution_role_in_a_member_is_rolewardens_own_in_central_mode() -> None:
    def iam_change(issuer: str) -> dict[str, Any]:
        return {
            "id": "c1",
            "source": "aws.iam",
            "detail-type": "AWS API Call via CloudTrail",
            "account": A,
            "detail": {
                "eventSource": "iam.amazonaws.com",
                "eventName": "AttachRolePolicy",
                "requestParameters": {"roleName": "app"},
                "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": issuer}}},
            },
        }

    own = iam_change(f"arn:aws:iam::{A}:role/RoleWardenExecution")
    other = iam_change(f"arn:aws:iam::{A}:role/someone-else")
    central = Settings(mode="central")
    (mine, theirs), _ = split_records(_sqs(own, other), "role_compliance", central)
    assert (mine.self_caused, theirs.self_caused) == (True, False) and theirs.targets
    (single,), _ = split_records(_sqs(own), "role_compliance", Settings())
    assert not single.self_caused  # in single mode that role is nobody special


def test_records_of_a_member_carry_its_account_and_the_breakers_stay_the_deployments() -> None:
    from rolewarden.aws.recorder import Recorder
    from rolewarden.breaker import RECORD_RESOURCE

    roles, breaker = Recorder(Sink(), table=""), Recorder(Sink(), table="", per_account=False)
    with clients.acting_in(FakeScope(A)):
        drift = roles.record("role/app", "remediation", {"prior": {}})
        trip = breaker.record(RECORD_RESOURCE, "trip", {"count": 26})
        assert [r.record_id for r in roles.history("role/app")] == [drift.record_id]
    assert (drift.resource, drift.data["account"]) == (f"account#{A}#role/app", A)
    assert roles.history("role/app") == []  # RoleWarden's own account has no such role's records
    # the breaker is one for the deployment: its trip is found from any scope, and still says where it tripped
    assert (trip.resource, trip.data["account"]) == (RECORD_RESOURCE, A)
    assert [r.record_id for r in breaker.history(RECORD_RESOURCE)] == [trip.record_id]
    home = Recorder(Sink(), table="").record("role/app", "remediation", {})
    assert home.resource == "role/app" and "account" not in home.data
