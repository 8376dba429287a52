"""Turn botocore errors into RoleWarden's retry-typed errors, by error code, never by message text
(except where AWS has no code: the instance-profile propagation error, see aws-notes §3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from rolewarden.errors import PermanentError, RetryableError

THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "SlowDown",
        "TooManyRequestsException",
        "RequestThrottled",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "ServiceFailure",
        "ConcurrentModification",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
#: DynamoDB's answer when a table's capacity is used up: throttling, but classify() has never counted it
#: as such (botocore retries it before any caller sees it); the command line names it as throttling.
CAPACITY_EXCEEDED_CODES = frozenset({"ProvisionedThroughputExceededException"})
#: A missing permission. AuthorizationError is SNS's name for it (no SNS call goes through classify()).
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
#: The credentials themselves were refused (expired, unknown key, bad signature for EC2).
REJECTED_CREDENTIALS_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure"}
)


@contextmanager
def raise_instead(code: str, replacement: Exception) -> Iterator[None]:
    """Inside the block, a ClientError with ``code`` becomes ``replacement`` (e.g. NoSuchEntity on a
    write becomes Gone: the goal is already reached); any other error passes through unchanged."""
    try:
        yield
    except ClientError as exc:
        if code_of(exc) == code:
            raise replacement from exc
        raise


def code_of(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def message_of(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def is_profile_propagation(error: ClientError) -> bool:
    """EC2's answer for an instance profile IAM has not propagated yet (no dedicated code exists)."""
    return code_of(error) == "InvalidParameterValue" and "Invalid IAM Instance Profile" in message_of(error)


def classify(error: Exception, what: str) -> Exception:
    """Map a botocore failure of ``what`` to RetryableError or PermanentError (the caller raises it)."""
    if isinstance(error, ClientError):
        code = code_of(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"{what} failed: {code}: {message_of(error)}"
        if code in THROTTLING_CODES or code in TRANSIENT_CODES or status >= 500:
            return RetryableError(text, code)
        if code in DENIED_CODES:
            # A missing permission is a deployment problem: fail the record so it is retried and,
            # if it persists, kept in the DLQ with this reason.
            return RetryableError(text, code)
        return PermanentError(text, code)
    if isinstance(error, (ConnectionError, HTTPClientError, BotoCoreError)):
        return RetryableError(f"{what} failed: {type(error).__name__}: {error}", type(error).__name__)
    return error


#: DynamoDB's answer to a write whose condition does not hold.
CONDITION_FAILED = "ConditionalCheckFailedException"


def or_none[T](call: Callable[[], T], absent: str, fail: str | Callable[[Exception], Exception]) -> T | None:
    """``call()``, or None when AWS answers with the error code ``absent`` (``NoSuchEntity``: nothing to read;
    ``ConditionalCheckFailedException``: a condition said no). Any other failure is raised as ``fail(exc)``,
    or classified as a failure of ``fail`` when that is a text."""
    try:
        return call()
    except ClientError as exc:
        if code_of(exc) == absent:
            return None
        raise (classify(exc, fail) if isinstance(fail, str) else fail(exc)) from exc
    except BotoCoreError as exc:
        raise (classify(exc, fail) if isinstance(fail, str) else fail(exc)) from exc
