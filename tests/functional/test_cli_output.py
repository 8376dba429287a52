"""The command line's output, byte for byte, on one small seeded world: every command's stdout, stderr and
exit code compared with a transcript in tests/functional/cli_output/ (written from the CLI before it
became a package, so a refactoring that changes a character of what an operator or a script sees fails).

Values that differ between runs are replaced before the comparison: the instance id (``<instance>``),
record ids (``<record-1>`` ... in order of first appearance, read from the commands' own JSON output),
timestamps (``<time>``) and the config file's path (``<config>``). The world: an instance tagged for a
profile, a bucket granting read to a role, and a role whose trust policy admits another account (one
change per capability, short findings)."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from rolewarden.cli.main import main
from rwlocal import world as w
from rwlocal.server import LocalAws
from tests.functional.test_cli import CONFIG

TRANSCRIPTS = Path(__file__).with_name("cli_output")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


class Session:
    """Runs commands in process; its transcript is normalised when it is checked (record ids are learnt
    from later commands' JSON output)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], config: Path, instance: str) -> None:
        self.capsys, self.config, self.instance = capsys, config, instance
        self.records: list[str] = []
        self.runs: list[tuple[tuple[str, ...], int, str, str]] = []

    def run(self, *argv: str) -> str:
        """Run ``rolewarden argv`` and add it to the transcript; returns its stdout."""
        self.capsys.readouterr()
        code = main(list(argv))
        captured = self.capsys.readouterr()
        self.runs.append((argv, code, captured.out, captured.err))
        return captured.out

    def learn_records(self, *ids: str) -> None:
        self.records.extend(i for i in ids if i not in self.records)

    def normalise(self, text: str) -> str:
        text = text.replace(str(self.config), "<config>").replace(self.instance, "<instance>")
        for number, record in enumerate(self.records, start=1):
            text = text.replace(record, f"<record-{number}>")
        return TIME.sub("<time>", text)

    def transcript(self) -> str:
        return "".join(
            f"$ rolewarden {self.normalise(' '.join(argv))}\n[exit {code}]\n"
            f"--- stdout\n{self.normalise(out)}--- stderr\n{self.normalise(err)}\n"
            for argv, code, out, err in self.runs
        )

    def check(self, name: str) -> None:
        assert self.transcript() == (TRANSCRIPTS / f"{name}.txt").read_text()


@pytest.fixture
def session(
    aws: LocalAws,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Session]:
    from rolewarden.aws import iam_snapshot

    iam_snapshot.clear_caches()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    config = write_config(CONFIG)
    w.create_profile("web-server")
    w.create_role("reporting")
    w.create_role("loose", trust=w.LOOSE_TRUST)
    instance = w.run_instance({"rolewarden:profile": "web"})
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="acme-reports")
    s3.put_bucket_tagging(Bucket="acme-reports", Tagging={"TagSet": [{"Key": "rolewarden:read", "Value": "reporting"}]})
    yield Session(capsys, config, instance)


def test_plan_text_and_json(session: Session) -> None:
    session.run("plan")
    session.run("plan", "--json")
    session.run("plan", "--only", "compliance")
    session.check("plan")


def test_explain_instance_role_and_bucket(session: Session) -> None:
    session.run("explain", session.instance)
    session.run("explain", "role/loose")
    session.run("explain", "role/reporting", "--json")
    session.run("explain", "bucket/acme-reports")
    session.check("explain")


def test_validate_text_and_json(session: Session) -> None:
    session.run("validate", str(session.config))
    session.run("validate", str(session.config), "--json")
    session.run("validate", "--offline", str(session.config))
    session.check("validate")


def test_apply_history_and_rollback(session: Session) -> None:
    table = w.create_state_table()
    session.run("apply", "--yes", "--table", table)
    session.run("history", "role/loose", "--table", table)
    (remediation,) = json.loads(session.run("history", "role/loose", "--table", table, "--json"))
    session.learn_records(remediation["record_id"])
    session.run("rollback", "role/loose", "--dry-run", "--table", table)
    rolled = session.run("rollback", "role/loose", "--table", table, "--json")
    session.learn_records(json.loads(rolled)["record_id"])
    session.run("history", "role/loose", "--table", table)
    again = session.run("rollback", "role/loose", "--to", remediation["record_id"], "--table", table)
    session.learn_records(*re.findall(r"recorded as (\w+) ", again))
    session.run("plan", "--only", "compliance")
    session.check("apply")


def test_breaker_status_and_reset(session: Session) -> None:
    table = w.create_state_table()
    session.run("apply", "--yes", "--only", "compliance", "--table", table)
    session.run("breaker", "status", "--table", table)
    session.run("breaker", "status", "--table", table, "--json")
    session.run("breaker", "reset", "--reason", "rule fixed", "--table", table, "--json")
    session.run("breaker", "reset", "--reason", "  twice  ", "--table", table)
    state = json.loads(session.run("breaker", "status", "--table", table, "--json"))
    session.learn_records(*(h["record_id"] for h in reversed(state["history"])))
    session.run("breaker", "status", "--table", table)
    session.check("breaker")
