"""Error types that carry their retry meaning (kopf style): the type says what to do next."""

from __future__ import annotations


class RoleWardenError(Exception):
    """Base class of every error RoleWarden raises on purpose."""


class ConfigError(RoleWardenError):
    """The config is missing or invalid. Nothing may act until it is fixed."""


class MalformedEvent(RoleWardenError):
    """An event or SQS record that cannot be understood. Retrying will not help: it goes to the DLQ."""


class RetryableError(RoleWardenError):
    """A temporary condition (throttling, eventual consistency, a 5xx). The record is failed and redelivered."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class PermanentError(RoleWardenError):
    """The target cannot be acted on (gone, forbidden by config). Logged, never retried."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code
