"""The command line's errors: usage errors, the failed AWS calls of a command (collected through the
clients' event hooks), and one operator-facing line per kind of failure that names what to do (the
missing permission, the credentials or region to set, throttling). Error codes are classified once, in
``rolewarden.aws.errors``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from rolewarden.aws.errors import (
    CAPACITY_EXCEEDED_CODES,
    DENIED_CODES,
    REJECTED_CREDENTIALS_CODES,
    THROTTLING_CODES,
    code_of,
    message_of,
)
from rolewarden.errors import RoleWardenError

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(or log in with aws sso login)"
)
NO_REGION = "no AWS region: set AWS_DEFAULT_REGION, or use a profile (AWS_PROFILE) whose config names a region"
#: IAM action names that differ from the API operation's name.
_IAM_ACTION = {
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:HeadBucket": "s3:ListBucket",
}


class UsageError(RoleWardenError):
    """The command line was called wrongly (a missing --table, a resource of the wrong kind)."""


class PreflightError(RoleWardenError):
    """No region or no credentials, found before the first AWS call."""


@dataclass
class FailedCall:
    permission: str
    code: str
    message: str


class CallErrors:
    """Every AWS call of RoleWarden's clients that ended in an error (after botocore's retries), by the
    IAM permission it needed and the error code. Capabilities turn errors into outcomes with a message;
    this keeps the code and the exact permission, so the command line can say what is missing."""

    def __init__(self) -> None:
        self.failed: list[FailedCall] = []

    def after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if http_response is None or model is None or int(getattr(http_response, "status_code", 200)) < 300:
            return
        error = (parsed or {}).get("Error", {}) if isinstance(parsed, dict) else {}
        self.failed.append(
            FailedCall(
                permission(str(model.service_model.signing_name), str(model.name)),
                str(error.get("Code", "")),
                str(error.get("Message", "")),
            )
        )

    def after_error(self, exception: Exception | None = None, **_: Any) -> None:
        if isinstance(exception, NoCredentialsError):
            self.failed.append(FailedCall("", "NoCredentials", str(exception)))

    def explain(self) -> list[str]:
        """One line per distinct kind of failure (access denied, throttled, rejected credentials)."""
        lines: dict[str, None] = {}
        for call in self.failed:
            line = explain_code(call.permission, call.code, call.message)
            if line:
                lines[line] = None
        return list(lines)


def explain_code(permission: str, code: str, message: str) -> str:
    """The operator's line for an error code, or "" when the code needs no explaining."""
    if code in DENIED_CODES:
        return f"access denied: the caller lacks the permission {permission} ({code}: {message})"
    if code in REJECTED_CREDENTIALS_CODES:
        return f"the AWS credentials were rejected ({code}: {message}); refresh them (e.g. aws sso login)"
    if code in THROTTLING_CODES or code in CAPACITY_EXCEEDED_CODES:
        return (
            f"AWS kept throttling {permission} after retries ({code}); retry later, "
            "or set ROLEWARDEN_RETRY_MODE=adaptive and ROLEWARDEN_MAX_ATTEMPTS higher"
        )
    if code == "NoCredentials":
        return NO_CREDENTIALS
    return ""


def aws_error(exc: BaseException) -> str:
    """The operator's line for a botocore exception that reached the command."""
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, NoRegionError):
        return NO_REGION
    if isinstance(exc, ClientError):
        code, message = code_of(exc), message_of(exc)
        needed = permission(_service_of_operation(exc.operation_name), exc.operation_name)
        return explain_code(needed, code, message) or f"{needed} failed: {code}: {message}"
    return f"AWS call failed: {type(exc).__name__}: {exc}"


def permission(service: str, operation: str) -> str:
    """The IAM permission an API operation needs."""
    name = f"{service}:{operation}"
    return _IAM_ACTION.get(name, name)


@cache
def _service_of_operation(operation: str) -> str:
    """The IAM prefix of the service that defines ``operation`` (among those RoleWarden calls)."""
    import botocore.session

    session = botocore.session.get_session()
    for service in ("ec2", "iam", "s3", "dynamodb", "autoscaling", "sts", "sqs", "sns", "ssm"):
        model = session.get_service_model(service)
        if operation in model.operation_names:
            return str(model.signing_name)
    return "<service>"


@contextmanager
def watching() -> Iterator[CallErrors]:
    """Collect the failed calls of RoleWarden's clients while the block runs."""
    from rolewarden.aws import clients

    errors = CallErrors()
    clients.add_hook("after-call", errors.after_call)
    clients.add_hook("after-call-error", errors.after_error)
    try:
        yield errors
    finally:
        clients.remove_hook("after-call", errors.after_call)
        clients.remove_hook("after-call-error", errors.after_error)


def preflight() -> None:
    """A region and some credentials, before the first call: clearer than the first call's failure."""
    from rolewarden.aws.clients import session

    current = session()
    if not current.region_name:
        raise PreflightError(NO_REGION)
    if current.get_credentials() is None:
        raise PreflightError(NO_CREDENTIALS)
