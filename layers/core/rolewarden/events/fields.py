"""The field checks of the typed event models (``rolewarden.events``): each names the field it refuses in
its ``MalformedEvent``; and ``cloudtrail_request``, the request parameters of a CloudTrail call."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from rolewarden.errors import MalformedEvent

ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]{1,1100}$")
_INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
#: where a CloudTrail call's parameters are, in messages
REQUEST = "detail.requestParameters"


class EnvelopeFields(Protocol):
    """The parts of a parsed EventBridge envelope (``triggers.Envelope``) the models read."""

    @property
    def detail(self) -> Mapping[str, Any]: ...
    @property
    def resources(self) -> tuple[str, ...]: ...
    @property
    def epoch(self) -> float | None: ...


def text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{where}.{key} must be a non-empty string, got {type(value).__name__}")
    return value


def matching(data: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str], what: str) -> str:
    value = text(data, key, where)
    if not pattern.match(value):
        raise MalformedEvent(f"{where}.{key} {value[:120]!r} is not {what}")
    return value


def instance_id(data: Mapping[str, Any], key: str, where: str = "detail") -> str:
    return matching(data, key, where, _INSTANCE_ID_RE, "an instance id")


def resource_arns(env: EnvelopeFields, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """The first group of each of the envelope's resources, all of which must be ``what`` ARNs."""
    names = []
    for arn in env.resources:
        match = pattern.match(arn)
        if match is None:
            raise MalformedEvent(f"resource {arn[:120]!r} is not {what}")
        names.append(match.group(1))
    return tuple(names)


def cloudtrail_request(env: EnvelopeFields) -> Mapping[str, Any] | None:
    """detail.requestParameters of a successful CloudTrail call ({} when absent), None for a failed call."""
    if env.detail.get("errorCode"):
        return None
    params = env.detail.get("requestParameters") or {}
    if not isinstance(params, dict):
        raise MalformedEvent(f"detail.requestParameters must be an object, got {type(params).__name__}")
    return params
