"""The RoleWarden config: schema version 1, validated once, before anything acts.

The config is YAML. It is read from ``ROLEWARDEN_CONFIG``: a file path, or ``ssm:<name>`` for an
SSM parameter holding the YAML (cached with Powertools Parameters). Unknown keys are errors, and
every error names the source, the key path and what is wrong.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from rolewarden.errors import ConfigError

#: A managed path: "/"-separated IAM name characters. Stricter than IAM's own grammar on purpose: the
#: path is pasted into policy ARNs (role${ManagedPath}*), where "*" or "?" would widen RoleWarden's reach.
_PATH_RE = re.compile(r"^/([A-Za-z0-9_+=,.@-]+/)+$")
#: IAM role and instance-profile names: [\w+=,.@-]{1,64} (profiles allow 128).
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
PROFILE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)
_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]+$")

DEFAULT_LEVELS: dict[str, list[str]] = {
    "read": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"],
    "write": [
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucketMultipartUploads",
    ],
}

RuleMode = Literal["enforce", "report", "off"]

COMPLIANCE_RULE_IDS = (
    "no-admin-access",
    "no-privilege-escalation",
    "trust-ec2-only",
    "permissions-boundary",
    "no-inline-policies",
    "managed-policy-allowlist",
    "grant-policy-drift",
)
_DEFAULT_RULE_MODES: dict[str, RuleMode] = {
    "no-admin-access": "enforce",
    "no-privilege-escalation": "enforce",
    "trust-ec2-only": "enforce",
    "permissions-boundary": "enforce",
    "no-inline-policies": "report",
    "managed-policy-allowlist": "report",
    "grant-policy-drift": "enforce",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TagValue = str | list[str]


class ProfileRule(_Strict):
    """One tag rule: every key of ``match`` must be on the instance (a value, any of a list, or "*")."""

    match: dict[str, TagValue] = Field(min_length=1)
    profile: str
    #: Hand out this profile even when its role fails the guard rules (no-admin-access,
    #: no-privilege-escalation, permissions-boundary). Needs a ``reason``, which every log line quotes.
    allow_privileged: StrictBool = False
    reason: str | None = None

    @field_validator("match")
    @classmethod
    def _match_values(cls, value: dict[str, TagValue]) -> dict[str, TagValue]:
        for key, wanted in value.items():
            if not key or len(key) > 128:
                raise ValueError(f"tag key {key!r} must be 1-128 characters")
            if isinstance(wanted, list) and not wanted:
                raise ValueError(f"tag {key!r}: an empty list matches nothing; use '*' for any value")
        return value

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, value: str) -> str:
        if not PROFILE_NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid instance profile name")
        return value

    @model_validator(mode="after")
    def _privileged_needs_a_reason(self) -> ProfileRule:
        reason = (self.reason or "").strip()
        if self.allow_privileged and not reason:
            raise ValueError(
                f"allow_privileged: true (profile {self.profile}) needs a non-empty 'reason' saying why a tag may "
                "hand out a role that fails the compliance rules"
            )
        if self.reason is not None and not self.allow_privileged:
            raise ValueError("'reason' is only read with allow_privileged: true; remove it or set allow_privileged")
        return self


class InstanceProfiles(_Strict):
    rules: list[ProfileRule] = Field(default_factory=list)
    default: str | None = None
    on_mismatch: Literal["replace", "report"] = "replace"

    @field_validator("default")
    @classmethod
    def _default_name(cls, value: str | None) -> str | None:
        if value is not None and not PROFILE_NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid instance profile name")
        return value


class BucketGrants(_Strict):
    tag_prefix: str = Field(default="rolewarden:", min_length=1, max_length=100)
    levels: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_LEVELS.items()})
    protected_buckets: list[str] = Field(default_factory=list)
    max_policies_per_role: Annotated[int, Field(ge=1, le=20)] = 5

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
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
        return value


class Compliance(_Strict):
    permissions_boundary: str | None = None
    allowed_managed_policies: list[str] = Field(default_factory=list)
    protected_roles: list[str] = Field(default_factory=list)
    max_remediations_per_run: Annotated[int, Field(ge=0)] = 25
    rules: dict[str, RuleMode] = Field(default_factory=lambda: dict(_DEFAULT_RULE_MODES))

    @field_validator("permissions_boundary")
    @classmethod
    def _boundary(cls, value: str | None) -> str | None:
        if value is not None and not _POLICY_ARN_RE.match(value):
            raise ValueError(f"{value!r} is not an IAM policy ARN")
        return value

    @field_validator("allowed_managed_policies")
    @classmethod
    def _allowed(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not _POLICY_ARN_RE.match(arn):
                raise ValueError(f"{arn!r} is not an IAM policy ARN")
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[str, RuleMode]) -> dict[str, RuleMode]:
        unknown = sorted(set(value) - set(COMPLIANCE_RULE_IDS))
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}; known: {list(COMPLIANCE_RULE_IDS)}")
        return {**_DEFAULT_RULE_MODES, **value}


class Config(_Strict):
    version: Literal[1]
    managed_path: str = "/rolewarden/"
    dry_run: StrictBool = False
    instance_profiles: InstanceProfiles = Field(default_factory=InstanceProfiles)
    bucket_grants: BucketGrants = Field(default_factory=BucketGrants)
    compliance: Compliance = Field(default_factory=Compliance)

    @field_validator("managed_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value == "/":
            raise ValueError("'/' would put every role in the account under RoleWarden; use a path like /rolewarden/")
        if not _PATH_RE.match(value) or len(value) > 512:
            raise ValueError(
                f"{value!r} is not a usable IAM path: '/'-separated names of letters, digits and _+=,.@- "
                "starting and ending with '/', e.g. /rolewarden/"
            )
        return value

    # -- helpers shared by the decision code -------------------------------------------------
    def is_protected_bucket(self, bucket: str) -> bool:
        return any(fnmatch.fnmatchcase(bucket, pattern) for pattern in self.bucket_grants.protected_buckets)

    def rule_mode(self, rule_id: str) -> RuleMode:
        return self.compliance.rules.get(rule_id, "off")


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  {path}: {message}")
    return "\n".join(lines)


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse and validate YAML text. Raises ConfigError naming source, key path and problem."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid config {source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping with 'version: 1'")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc
    forced_path = os.environ.get("ROLEWARDEN_MANAGED_PATH")
    if forced_path and forced_path != config.managed_path:
        raise ConfigError(
            f"invalid config {source}: managed_path: {config.managed_path!r} differs from the stack's "
            f"ManagedPath {forced_path!r}; RoleWarden's IAM permissions are scoped to the stack's path"
        )
    if os.environ.get("ROLEWARDEN_DRY_RUN", "").lower() == "true" and not config.dry_run:
        config = config.model_copy(update={"dry_run": True})
    return config


@dataclass
class _Cached:
    raw: str
    config: Config


_cache: dict[str, _Cached] = {}


def read_source(location: str) -> str:
    """Return the raw YAML text at ``location`` (a path or ``ssm:<name>``)."""
    if location.startswith("ssm:"):
        from aws_lambda_powertools.utilities import parameters

        name = location[len("ssm:") :]
        try:
            value = parameters.get_parameter(name, max_age=int(os.environ.get("ROLEWARDEN_CONFIG_MAX_AGE", "300")))
        except parameters.exceptions.GetParameterError as exc:
            raise ConfigError(f"cannot read config from SSM parameter {name!r}: {exc}") from exc
        return str(value)
    try:
        with open(location, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {location!r}: {exc.strerror}") from exc


def load_config(location: str | None = None) -> Config:
    """Load the config named by ``location`` or ``ROLEWARDEN_CONFIG``; parsed once per distinct text."""
    location = location or os.environ.get("ROLEWARDEN_CONFIG")
    if not location:
        raise ConfigError("ROLEWARDEN_CONFIG is not set: give a config file path or ssm:<parameter-name>")
    raw = read_source(location)
    key = "|".join((location, os.environ.get("ROLEWARDEN_MANAGED_PATH", ""), os.environ.get("ROLEWARDEN_DRY_RUN", "")))
    cached = _cache.get(key)
    if cached is not None and cached.raw == raw:
        return cached.config
    config = parse_config(raw, location)
    _cache[key] = _Cached(raw, config)
    return config
