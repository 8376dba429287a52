"""The compliance circuit breaker across invocations and containers (issue 10, defect 5), against the moto
server over HTTP: real handlers (``rolewarden.runtime.Handler``), real DynamoDB conditional writes in a
state table with the template's key schema, the CLI in process.

Two things moto does not model are supplied here and said so where they are used: DynamoDB's guarantee
that a conditional write to one item is atomic (moto's server checks the condition and writes on the
request's own thread with no lock), and DynamoDB throttling (injected at the botocore level in the
service's own JSON error shape). The wall clock of the breaker's windows is injected
(``rolewarden.breaker.clock``) so a window can pass without waiting.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rolewarden import breaker
from rolewarden.cli.main import main
from rolewarden.runtime import Handler
from rolewarden.telemetry import Sink
from rwlocal import world as w
from rwlocal.faults import Fault, count_calls, inject
from rwlocal.pipeline import FakeContext
from rwlocal.scenes.compliance import ADMIN_ARN
from rwlocal.server import LocalAws
from rwlocal.world import ensure_aws_managed_policy
from tests.functional.helpers import sample

CONFIG = """
version: 1
managed_path: /rolewarden/
"""
START = 1_800_000_000.0  # a wall-clock second at the start of an hour window (1800000000 = 500000 * 3600)


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(breaker, "clock", fake)
    return fake


@pytest.fixture
def configure(aws: LocalAws, write_config: Callable[..., Path]) -> Callable[..., Path]:
    def make(max_remediations: int = 25, window_minutes: int = 60) -> Path:
        return write_config(
            CONFIG,
            compliance={"circuit_breaker": {"max_remediations": max_remediations, "window_minutes": window_minutes}},
        )

    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()
    return make


@pytest.fixture
def table(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    name = w.create_state_table()
    monkeypatch.setenv("ROLEWARDEN_TABLE", name)
    return name


@pytest.fixture
def atomic_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each single-item write (its condition check and its update) atomically; moto's
    server runs each request on its own thread without a lock between the check and the write. Serialise
    moto's item operations so the concurrent containers below meet DynamoDB's real guarantee."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "get_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def iam() -> Any:
    return boto3.client("iam")


def make_roles(names: list[str]) -> None:
    ensure_aws_managed_policy()
    for name in names:
        w.create_role(name)
        iam().attach_role_policy(RoleName=name, PolicyArn=ADMIN_ARN)


def has_admin(name: str) -> bool:
    attached = iam().list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    return ADMIN_ARN in {p["PolicyArn"] for p in attached}


def attach_event(role: str, index: int = 0) -> dict[str, Any]:
    """The real-shaped CloudTrail AttachRolePolicy event, naming ``role``, with its own ids."""
    event = sample("cloudtrail-iam-attachrolepolicy.json", **{"web-server": role})
    event["id"] = f"attach-{role}-{index}"
    event["detail"]["eventID"] = f"attach-{role}-{index}"
    return event


def batch(roles: list[str], tag: str = "b") -> dict[str, Any]:
    records = w.as_sqs_event(*(attach_event(r) for r in roles))
    for i, record in enumerate(records["Records"]):
        record["messageId"] = f"{tag}-{i}"
    return records


def remediated_roles(params: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """Roles that received an IAM write, from the calls counted at the botocore level."""
    return {
        str(p["RoleName"])
        for name, p in params
        if name.startswith("iam:") and not name.split(":")[1].startswith(("Get", "List")) and "RoleName" in p
    }


def breaker_findings(sinks: list[Sink]) -> list[dict[str, Any]]:
    return [f.as_dict() for s in sinks for f in s.findings if f.rule == "circuit-breaker"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ the scenario
def test_100_role_events_in_10_batches_over_3_containers_remediate_at_most_the_limit(
    configure: Callable[..., Path], table: str, clock: Clock, atomic_items: None
) -> None:
    configure(max_remediations=25, window_minutes=60)
    names = [f"app-{i:03d}" for i in range(100)]
    make_roles(names)
    batches = [batch(names[i * 10 : (i + 1) * 10], tag=f"batch{i}") for i in range(10)]
    containers = [Handler("role_compliance") for _ in range(3)]
    sinks: dict[int, list[Sink]] = {c: [] for c in range(3)}
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def container(c: int) -> None:
        # Batch b goes to container b % 3; the three containers run at the same time, interleaved.
        try:
            start.wait()
            for b in range(c, 10, 3):
                answers.append(containers[c](batches[b], FakeContext(f"container-{c}")))
                sink = containers[c].last_sink
                assert sink is not None
                sinks[c].append(sink)
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)

    with count_calls() as calls:
        threads = [threading.Thread(target=container, args=(c,)) for c in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors

    # At most 25 roles were written to (counted at the botocore level), and IAM agrees: exactly 25 lost
    # AdministratorAccess (100 wanted it removed), the other 75 are untouched.
    written = remediated_roles(calls.params)
    assert len(written) == 25 and written <= set(names)
    assert sorted(n for n in names if not has_admin(n)) == sorted(written)
    # Every container saw the breaker tripped: each raised the alarm metric in at least one invocation.
    for c in range(3):
        assert any(s.counts[breaker.METRIC] for s in sinks[c]), f"container {c} never saw the breaker tripped"
    everything = [s for c in range(3) for s in sinks[c]]
    found = breaker_findings(everything)
    # One container set the flag (the ERROR finding); the others report what they withheld (WARNING).
    assert [f["severity"] for f in found].count("ERROR") == 1
    withheld = {r for f in found for r in f["details"]["roles"]}
    assert withheld == set(names) - written
    # Withheld roles are acknowledged, not retried into the DLQ: the first sweep after the window takes them.
    assert all(a == {"batchItemFailures": []} for a in answers)
    # The table holds the count and the flag the CLI shows.
    state = breaker.status(load(), table)
    assert state["tripped"] and state["window"]["remediations"] == 25 and state["window"]["closed"]
    assert [h["kind"] for h in state["history"]] == ["trip"]


def load() -> Any:
    from rolewarden.config import load_config

    return load_config()


def test_a_run_over_the_limit_remediates_none_and_stops_every_container(
    configure: Callable[..., Path], table: str, clock: Clock
) -> None:
    configure(max_remediations=2)
    make_roles(["app-0", "app-1", "app-2", "app-3"])
    first, second = Handler("role_compliance"), Handler("role_compliance")

    first(batch(["app-0", "app-1", "app-2"]), FakeContext("one"))
    assert all(has_admin(f"app-{i}") for i in range(3))
    (tripped,) = breaker_findings([first.last_sink])  # type: ignore[list-item]
    assert tripped["severity"] == "ERROR" and tripped["details"]["cause"] == "run-over-limit"
    assert tripped["details"]["roles"] == ["app-0", "app-1", "app-2"]

    # Another container, one role, well under the limit: withheld, because the flag is shared.
    second(batch(["app-3"]), FakeContext("two"))
    assert has_admin("app-3")
    assert second.last_sink is not None and second.last_sink.counts[breaker.METRIC] == 1
    (open_,) = breaker_findings([second.last_sink])
    assert open_["severity"] == "WARNING" and open_["details"]["roles"] == ["app-3"]
    violation = [f for f in second.last_sink.findings if f.rule == "no-admin-access"]
    assert violation and "not remediated: the circuit breaker is open" in violation[0].message


def test_the_breaker_closes_by_itself_when_its_window_has_passed(
    configure: Callable[..., Path], table: str, clock: Clock
) -> None:
    configure(max_remediations=2, window_minutes=60)
    make_roles(["app-0", "app-1", "app-2", "app-3"])
    handler = Handler("role_compliance")

    handler(batch(["app-0"]), FakeContext("t"))
    clock.now += 600
    handler(batch(["app-1", "app-2"]), FakeContext("t"))  # app-1 takes the second slot, app-2 trips it
    assert [has_admin(f"app-{i}") for i in range(3)] == [False, False, True]
    assert breaker_findings([handler.last_sink])[0]["severity"] == "ERROR"  # type: ignore[list-item]

    clock.now += 3000  # the next hour window has begun, but the trip holds for a full window from it
    handler(batch(["app-2"]), FakeContext("t"))
    assert has_admin("app-2")
    assert breaker_findings([handler.last_sink])[0]["severity"] == "WARNING"  # type: ignore[list-item]

    clock.now += 601  # one window length after the trip: closed, though DynamoDB's TTL has deleted nothing
    handler(batch(["app-2", "app-3"]), FakeContext("t"))
    assert not has_admin("app-2") and not has_admin("app-3")
    assert handler.last_sink is not None and not handler.last_sink.counts[breaker.METRIC]


def test_an_operator_resets_a_tripped_breaker_with_the_cli_and_the_reset_is_recorded(
    configure: Callable[..., Path], table: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(max_remediations=1)
    make_roles(["app-0", "app-1"])
    handler = Handler("role_compliance")
    handler(batch(["app-0", "app-1"]), FakeContext("t"))  # over the limit in one run: none, tripped
    assert has_admin("app-0") and has_admin("app-1")

    code, out, _ = cli(capsys, "breaker", "status")
    assert code == 3 and "TRIPPED" in out and "run-over-limit" in out
    code, _, err = cli(capsys, "breaker", "reset")
    assert code == 1 and "--reason" in err
    handler(batch(["app-0"]), FakeContext("t"))
    assert has_admin("app-0")  # the failed reset changed nothing

    code, out, _ = cli(capsys, "breaker", "reset", "--reason", "rule fixed in change 42")
    assert code == 0 and "remediation resumes now" in out
    code, out, _ = cli(capsys, "breaker", "status", "--json")
    state = json.loads(out)
    assert code == 0 and state["tripped"] is False and state["window"]["remediations"] == 0
    reset = state["history"][0]
    assert reset["kind"] == "reset" and reset["reason"] == "rule fixed in change 42" and reset["was_tripped"]
    assert reset["operator"].startswith("arn:aws:")  # sts:GetCallerIdentity of whoever ran it

    handler(batch(["app-0"]), FakeContext("t"))
    assert not has_admin("app-0")
    assert has_admin("app-1")


def test_the_cli_needs_the_state_table_for_the_breaker(
    configure: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure()
    monkeypatch.delenv("ROLEWARDEN_TABLE", raising=False)
    code, _, err = cli(capsys, "breaker", "status")
    assert code == 1 and "ROLEWARDEN_TABLE" in err


def test_without_a_state_table_the_breaker_counts_per_invocation_and_warns(
    configure: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chosen fallback: with no state table (a local run; the template always sets one) the breaker
    can only count per invocation; it says so with a WARNING once per container."""
    configure(max_remediations=2)
    monkeypatch.setattr(breaker, "_warned_no_table", False)
    names = [f"app-{i}" for i in range(7)]
    make_roles(names)
    handler = Handler("role_compliance")
    sinks = []
    for pair in (names[0:2], names[2:4], names[4:6]):
        handler(batch(pair), FakeContext("t"))
        sinks.append(handler.last_sink)
    assert not any(has_admin(n) for n in names[:6])  # 6 > 2: counted per invocation only
    warnings = [r for s in sinks for r in s.records if "no state table" in r["message"]]  # type: ignore[union-attr]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    handler(batch([names[6], names[0]]), FakeContext("t"))  # still within 2 per run
    assert not has_admin(names[6])


def _dynamodb_throttled(_: dict[str, Any]) -> AWSResponse:
    """DynamoDB's JSON error shape for throttling (moto cannot throttle)."""
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"})

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body.encode()

    headers = HTTPHeaders.from_dict({"content-type": "application/x-amz-json-1.0"})
    return AWSResponse("https://injected", 400, headers, Raw())


def test_when_the_state_table_cannot_count_nothing_is_remediated_and_the_records_are_retried(
    configure: Callable[..., Path], table: str, clock: Clock
) -> None:
    configure()
    make_roles(["app-0", "app-1"])
    handler = Handler("role_compliance")
    fault = Fault("dynamodb", "UpdateItem", times=100, respond=_dynamodb_throttled)
    with inject(fault), count_calls() as calls:
        answer = handler(batch(["app-0", "app-1"]), FakeContext("t"))
    assert fault.seen >= 6  # botocore retried each throttled UpdateItem before giving up
    assert remediated_roles(calls.params) == set()
    assert has_admin("app-0") and has_admin("app-1")
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == ["b-0", "b-1"]

    handler(batch(["app-0", "app-1"]), FakeContext("t"))  # redelivered, the table answers again
    assert not has_admin("app-0") and not has_admin("app-1")


def test_a_deprecated_per_run_limit_is_read_as_the_window_limit_and_said(
    aws: LocalAws, write_config: Callable[..., Path], table: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(CONFIG, compliance={"max_remediations_per_run": 1})
    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()
    make_roles(["app-0", "app-1"])
    handler = Handler("role_compliance")
    handler(batch(["app-0"], tag="one"), FakeContext("t"))
    handler(batch(["app-1"], tag="two"), FakeContext("t"))  # second invocation, same window: over 1
    assert [has_admin("app-0"), has_admin("app-1")] == [False, True]

    code, _, err = cli(capsys, "validate", "--offline")
    assert code == 0 and "max_remediations_per_run is deprecated" in err and "circuit_breaker.max_remediations" in err


def test_the_alarm_watches_the_metric_the_breaker_emits() -> None:
    from rwlocal.stack import load_template

    alarm = load_template()["Resources"]["CircuitBreakerAlarm"]["Properties"]
    assert alarm["MetricName"] == breaker.METRIC
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 0
