"""The command line's operator-facing lines for AWS failures that the functional tests cannot reach
through a moto server (credentials or region lost after the preflight check, a connection failure, an
operation outside RoleWarden's services), and its text output on a terminal, without NO_COLOR, and
without rich. Real botocore exceptions, no AWS calls."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from rolewarden.cli.errors import NO_CREDENTIALS, NO_REGION, CallErrors, aws_error
from rolewarden.cli.output import Out


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        pytest.param(NoCredentialsError(), NO_CREDENTIALS, id="no-credentials"),
        pytest.param(NoRegionError(), NO_REGION, id="no-region"),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://localhost:1"),
            'AWS call failed: EndpointConnectionError: Could not connect to the endpoint URL: "http://localhost:1"',
            id="connection",
        ),
        pytest.param(
            ClientError({"Error": {"Code": "Weird", "Message": "odd"}}, "Frobnicate"),
            "<service>:Frobnicate failed: Weird: odd",
            id="unknown-operation",
        ),
        pytest.param(
            ClientError({"Error": {"Code": "InvalidClientTokenId", "Message": "bad key"}}, "GetCallerIdentity"),
            "the AWS credentials were rejected (InvalidClientTokenId: bad key); refresh them (e.g. aws sso login)",
            id="rejected-key",
        ),
        pytest.param(
            ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}}, "Publish"),
            "access denied: the caller lacks the permission sns:Publish (AuthorizationError: no)",
            id="sns-denied",
        ),
    ],
)
def test_aws_error_names_what_to_do(exc: BaseException, line: str) -> None:
    assert aws_error(exc) == line


def test_failed_calls_are_explained_once_each_and_missing_credentials_too() -> None:
    errors = CallErrors()
    model = SimpleNamespace(name="GetBucketEncryption", service_model=SimpleNamespace(signing_name="s3"))
    denied = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
    for _ in range(2):
        errors.after_call(http_response=SimpleNamespace(status_code=403), parsed=denied, model=model)
    errors.after_call(http_response=SimpleNamespace(status_code=200), parsed={}, model=model)  # not a failure
    errors.after_call(http_response=SimpleNamespace(status_code=404), parsed={}, model=model)  # nothing to explain
    errors.after_error(exception=ValueError("not botocore's"))
    errors.after_error(exception=NoCredentialsError())
    assert errors.explain() == [
        "access denied: the caller lacks the permission s3:GetEncryptionConfiguration (AccessDenied: Access Denied)",
        NO_CREDENTIALS,
    ]


def test_a_terminal_gets_rich_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    screen = Terminal()
    out = Out(stream=screen)
    assert out.rich
    out.line("hello [not markup]")
    out.table("changes", ["action", "resource"], [["associate", "i-0123"]])
    text = screen.getvalue()
    assert "hello [not markup]" in text
    assert "changes" in text and "associate" in text and "i-0123" in text
    assert "┃" in text or "│" in text  # drawn by rich, not the plain columns


@pytest.mark.parametrize("why", ["NO_COLOR", "no rich"])
def test_without_colour_or_rich_a_terminal_gets_plain_text(why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if why == "NO_COLOR":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setitem(sys.modules, "rich.console", None)  # import fails as if rich were absent
    screen = Terminal()
    out = Out(stream=screen)
    assert not out.rich
    out.line("hello")
    out.table("changes", ["action", "resource"], [["associate", "i-0123"]])
    assert screen.getvalue() == "hello\nchanges\naction     resource\nassociate  i-0123\n\n"
