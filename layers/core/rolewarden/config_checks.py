"""The checks of single config values: IAM names, paths and ARNs, tag matches, S3 levels, escalation ids.

Each takes a value that already has its type, returns it, or raises ``ValueError`` with a message that
says what is wrong; ``rolewarden.config`` attaches them to its fields with ``Check`` (rolewarden.schema),
which reports the message at the field's key path.
"""

from __future__ import annotations

import re

#: A managed path: "/"-separated IAM name characters. Stricter than IAM's own grammar on purpose: the
#: path is pasted into policy ARNs (role${ManagedPath}*), where "*" or "?" would widen RoleWarden's reach.
_PATH_RE = re.compile(r"^/([A-Za-z0-9_+=,.@-]+/)+$")
#: IAM instance-profile names: [\w+=,.@-]{1,128}.
PROFILE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)
_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]+$")


def tag_match(value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
    for key, wanted in value.items():
        if not key or len(key) > 128:
            raise ValueError(f"tag key {key!r} must be 1-128 characters")
        if isinstance(wanted, list) and not wanted:
            raise ValueError(f"tag {key!r}: an empty list matches nothing; use '*' for any value")
    return value


def role_patterns(value: list[str], allow_all: bool = False) -> list[str]:
    """Role names; shell-style patterns (app-*) allowed, a bare "*" only with ``allow_all``."""
    for pattern in value:
        if not re.fullmatch(r"[\w+=,.@*?-]{1,64}", pattern, re.ASCII) or (pattern.strip("*?") == "" and not allow_all):
            verb = "names" if allow_all else "exempts"
            raise ValueError(f"{pattern!r} is not a role name or a pattern naming some roles (a bare '*' {verb} all)")
    return value


def role_patterns_or_all(value: list[str]) -> list[str]:
    # "*" is allowed here: "every VPC has an S3 gateway endpoint" is a common, true statement
    return role_patterns(value, allow_all=True)


def profile_name(value: str | None) -> str | None:
    if value is not None and not PROFILE_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid instance profile name")
    return value


def policy_arns(value: list[str]) -> list[str]:
    for arn in value:
        if not _POLICY_ARN_RE.match(arn):
            raise ValueError(f"{arn!r} is not an IAM policy ARN")
    return value


def levels(value: dict[str, list[str]]) -> dict[str, list[str]]:
    for level, actions in value.items():
        if not re.match(r"^[a-z][a-z0-9_-]{0,31}$", level):
            raise ValueError(f"level name {level!r} must be lower-case letters, digits, '-' or '_'")
        if not actions:
            raise ValueError(f"level {level!r} has no actions")
        for action in actions:
            if not action.startswith("s3:") or not _ACTION_RE.match(action):
                raise ValueError(f"level {level!r}: {action!r} is not an s3: action")
            if action in ("s3:*", "s3:") or action.endswith(":*"):
                raise ValueError(f"level {level!r}: {action!r} grants every S3 action; list actions")
        if "s3:GetObjectVersion" in actions and "s3:ListBucketVersions" not in actions:
            raise ValueError(
                f"level {level!r} grants s3:GetObjectVersion without s3:ListBucketVersions: a reader could "
                "fetch a version only by an id it cannot list; add s3:ListBucketVersions to the level"
            )
    return value


def escalation_paths(value: list[str]) -> list[str]:
    # imported here: the escalation table is large, and only a config that exempts paths needs it
    from rolewarden.decide.escalation.catalog import PATH_IDS
    from rolewarden.decide.escalation.path import CATEGORIES

    unknown = sorted(set(value) - set(PATH_IDS) - set(CATEGORIES))
    if unknown:
        raise ValueError(
            f"unknown escalation path(s) or categories {unknown}; categories: {list(CATEGORIES)}; "
            "path ids: see the README's escalation paths table"
        )
    return value


def escalation_categories(value: dict[str, str]) -> dict[str, str]:
    from rolewarden.decide.escalation.path import CATEGORIES

    unknown = sorted(set(value) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown escalation categories {unknown}; known: {list(CATEGORIES)}")
    return value


_SERVICE_RE = re.compile(r"^[a-z0-9-]{2,40}$")


def services(value: list[str]) -> list[str]:
    for service in value:
        if not _SERVICE_RE.match(service):
            raise ValueError(f"{service!r} is not an IAM service prefix (like s3, dynamodb, sqs, kms)")
    return value


def policy_arn(value: str | None) -> str | None:
    if value is not None:
        policy_arns([value])
    return value


def managed_path(value: str) -> str:
    if value == "/":
        raise ValueError("'/' would put every role in the account under RoleWarden; use a path like /rolewarden/")
    if not _PATH_RE.match(value) or len(value) > 512:
        raise ValueError(
            f"{value!r} is not a usable IAM path: '/'-separated names of letters, digits and _+=,.@- "
            "starting and ending with '/', e.g. /rolewarden/"
        )
    return value
