"""The entry points as Lambda builds them (AWS_LAMBDA_FUNCTION_NAME set: Powertools' Lambda context
injection on, where the X-Ray Tracer used to be built too), run against the moto server over HTTP."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from rwlocal import world as w
from tests.functional.helpers import invoke, load_app, sink_of


@pytest.fixture
def lambda_app(aws: Any, write_config: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    write_config()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "rolewarden-instance-profiles")
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
    return load_app("instance_profiles")


def test_the_lambda_entry_point_attaches_a_profile_without_any_tracer(lambda_app: Any) -> None:
    w.create_profile("web-server")
    web = w.run_instance({"rolewarden:profile": "web"})
    result = invoke(lambda_app, w.as_sqs_event(w.state_change_event(web, "running")))
    assert result == {"batchItemFailures": []}
    assert w.attached_profiles() == {web: "web-server"}
    assert sink_of(lambda_app).counts["Attached"] == 1
    assert "aws_xray_sdk" not in sys.modules  # the layer no longer ships it, and nothing asks for it


def test_the_sweep_entry_point_runs_as_lambda_builds_it(lambda_app: Any) -> None:
    w.create_profile("web-server")
    web = w.run_instance({"rolewarden:profile": "web"})
    sweep = {
        "id": "sweep-1",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "account": "123456789012",
        "region": "us-east-1",
        "time": "2026-11-29T10:00:00Z",
        "resources": [],
        "detail": {},
    }
    lambda_app.sweep_handler(w.as_sqs_event(sweep), _context())
    assert w.attached_profiles() == {web: "web-server"}


def _context() -> Any:
    from rwlocal.pipeline import FakeContext

    return FakeContext("rolewarden-instance-profiles-sweep")
