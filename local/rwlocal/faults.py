"""Count AWS calls and inject the real error shapes of AWS at the botocore level, for behaviour moto
cannot model (eventual consistency, throttling, CompleteLifecycleAction). The injected answer is raw
HTTP (status and the service's own XML error body) so botocore parses, classifies and retries it
exactly as it would the real thing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from rolewarden.aws import clients

_ERROR_BODIES = {
    # EC2 query protocol
    "ec2": "<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
    "<Message>{message}</Message></Error></Errors><RequestID>injected</RequestID></Response>",
    # IAM, Auto Scaling, SNS, SQS (query): ErrorResponse
    "query": "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
    "<RequestId>injected</RequestId></ErrorResponse>",
    # S3 REST-XML
    "s3": "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
    "<RequestId>injected</RequestId></Error>",
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(service: str, code: str, message: str, status: int = 400) -> AWSResponse:
    template = _ERROR_BODIES.get(service, _ERROR_BODIES["query"])
    body = template.format(code=code, message=message).encode()
    return AWSResponse("https://injected", status, HTTPHeaders.from_dict({"content-type": "text/xml"}), _Raw(body))


def ok_response(service: str, operation: str) -> AWSResponse:
    body = (
        f"<{operation}Response><{operation}Result/><ResponseMetadata><RequestId>injected</RequestId>"
        f"</ResponseMetadata></{operation}Response>"
    ).encode()
    return AWSResponse("https://injected", 200, HTTPHeaders.from_dict({"content-type": "text/xml"}), _Raw(body))


def _service_kind(service: str) -> str:
    return service if service in ("ec2", "s3") else "query"


@dataclass
class Fault:
    """Answer the first ``times`` calls of service.operation with an error (or ``respond``)."""

    service: str
    operation: str
    code: str = ""
    message: str = ""
    status: int = 400
    times: int = 1
    respond: Callable[[dict[str, Any]], AWSResponse] | None = None
    #: only requests whose body contains this text are answered (e.g. one instance id)
    body_contains: str = ""
    seen: int = 0
    params: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Any = None, **kwargs: Any) -> AWSResponse | None:
        if self.seen >= self.times:
            return None
        if self.body_contains:
            body = getattr(request, "body", b"") or b""
            text = body.decode() if isinstance(body, bytes) else str(body)
            if self.body_contains not in text:
                return None
        self.seen += 1
        if self.respond is not None:
            return self.respond(kwargs)
        return error_response(_service_kind(self.service), self.code, self.message, self.status)


@contextmanager
def inject(*faults: Fault) -> Iterator[tuple[Fault, ...]]:
    """Install faults on RoleWarden's clients for the duration of the block."""
    installed = []
    for fault in faults:
        event = f"before-send.{fault.service}.{fault.operation}"
        clients.add_hook(event, fault)
        installed.append((event, fault))
    try:
        yield faults
    finally:
        for event, fault in installed:
            clients.remove_hook(event, fault)


@dataclass
class CallCounter:
    """Counts every AWS call RoleWarden makes, by "service:Operation" (retries counted once per attempt)."""

    calls: Counter[str] = field(default_factory=Counter)
    params: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, model: Any = None, params: Any = None, **kwargs: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        self.calls[name] += 1
        self.params.append((name, params or {}))

    def total(self, prefix: str = "") -> int:
        return sum(count for name, count in self.calls.items() if name.startswith(prefix))

    def writes(self) -> Counter[str]:
        reads = ("Describe", "Get", "List")
        return Counter({name: n for name, n in self.calls.items() if not name.split(":")[1].startswith(reads)})


@contextmanager
def count_calls() -> Iterator[CallCounter]:
    """Count RoleWarden's AWS calls (one per API call; botocore's own retries of it are not recounted)."""
    counter = CallCounter()
    clients.add_hook("before-parameter-build", counter)
    try:
        yield counter
    finally:
        clients.remove_hook("before-parameter-build", counter)
