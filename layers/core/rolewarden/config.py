"""The RoleWarden config: schema version 1, validated once, before anything acts.

The config is YAML. It is read from ``ROLEWARDEN_CONFIG``: a file path, or ``ssm:<name>`` for an
SSM parameter holding the YAML (cached with Powertools Parameters). Unknown keys are errors, and
every error names the source, the key path and what is wrong.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from rolewarden.accounts_config import Accounts
from rolewarden.decide.escalation.catalog import PATH_IDS
from rolewarden.decide.escalation.path import CATEGORIES
from rolewarden.errors import ConfigError
from rolewarden.settings import Settings, current

#: A managed path: "/"-separated IAM name characters. Stricter than IAM's own grammar on purpose: the
#: path is pasted into policy ARNs (role${ManagedPath}*), where "*" or "?" would widen RoleWarden's reach.
_PATH_RE = re.compile(r"^/([A-Za-z0-9_+=,.@-]+/)+$")
#: IAM role and instance-profile names: [\w+=,.@-]{1,64} (profiles allow 128).
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
PROFILE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$", re.ASCII)
_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]+$")

DEFAULT_LEVELS: dict[str, list[str]] = {
    # GetObjectVersion reads a version by id; ListBucketVersions is how a reader learns the ids.
    "read": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
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
    "ec2-instance-profile",
    "instance-credential-perimeter",
)
_DEFAULT_RULE_MODES: dict[str, RuleMode] = {
    "no-admin-access": "enforce",
    "no-privilege-escalation": "enforce",
    "trust-ec2-only": "enforce",
    "permissions-boundary": "enforce",
    "no-inline-policies": "report",
    "managed-policy-allowlist": "report",
    "grant-policy-drift": "enforce",
    # Off by default: it creates IAM resources (instance profiles), a new kind of write an operator opts into.
    "ec2-instance-profile": "off",
    # Off by default: a deny on a role's own credentials must be opted into with the endpoint services known.
    "instance-credential-perimeter": "off",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TagValue = str | list[str]


def _check_match(value: dict[str, TagValue]) -> dict[str, TagValue]:
    for key, wanted in value.items():
        if not key or len(key) > 128:
            raise ValueError(f"tag key {key!r} must be 1-128 characters")
        if isinstance(wanted, list) and not wanted:
            raise ValueError(f"tag {key!r}: an empty list matches nothing; use '*' for any value")
    return value


def _check_role_patterns(value: list[str], allow_all: bool = False) -> list[str]:
    for pattern in value:
        if not re.fullmatch(r"[\w+=,.@*?-]{1,64}", pattern, re.ASCII) or (pattern.strip("*?") == "" and not allow_all):
            raise ValueError(f"{pattern!r} is not a role name or a pattern naming some roles (a bare '*' names all)")
    return value


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
        return _check_match(value)

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


class MetadataExemption(_Strict):
    """Instances whose tags match keep their metadata options as they are (e.g. software that still needs IMDSv1)."""

    match: dict[str, TagValue] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("match")
    @classmethod
    def _match_values(cls, value: dict[str, TagValue]) -> dict[str, TagValue]:
        return _check_match(value)


class InstanceMetadata(_Strict):
    """IMDSv2 with the attach (issue 15): ``off`` ignores metadata options; ``report`` names each managed
    instance that still answers IMDSv1; ``enforce`` sets ``HttpTokens: required`` and ``hop_limit`` on each
    managed instance in the same reconcile that gives it its profile."""

    imdsv2: Literal["off", "report", "enforce"] = "report"
    #: HttpPutResponseHopLimit (EC2 accepts 1-64); 2 lets containers on the instance reach IMDSv2.
    hop_limit: Annotated[int, Field(ge=1, le=64)] = 2
    exemptions: list[MetadataExemption] = Field(default_factory=list)


class InstanceProfiles(_Strict):
    rules: list[ProfileRule] = Field(default_factory=list)
    default: str | None = None
    on_mismatch: Literal["replace", "report"] = "replace"
    metadata: InstanceMetadata = Field(default_factory=InstanceMetadata)

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
            if "s3:GetObjectVersion" in actions and "s3:ListBucketVersions" not in actions:
                raise ValueError(
                    f"level {level!r} grants s3:GetObjectVersion without s3:ListBucketVersions: a reader could "
                    "fetch a version only by an id it cannot list; add s3:ListBucketVersions to the level"
                )
        return value


class CircuitBreaker(_Strict):
    """At most ``max_remediations`` roles remediated per window of ``window_minutes``, counted across every
    invocation and container in the state table; a role that finds the window full is not remediated and
    trips the breaker for one window (or until ``rolewarden breaker reset``)."""

    max_remediations: Annotated[int, Field(ge=0, le=10_000)] = 25
    window_minutes: Annotated[int, Field(ge=1, le=1440)] = 60


#: The per-run limit became a per-window limit; the old key is still read (see ``Compliance.deprecations``).
DEPRECATED_LIMIT_MESSAGE = (
    "compliance.max_remediations_per_run is deprecated: its value is now the limit per window, counted "
    "across all invocations; write it as compliance.circuit_breaker.max_remediations "
    "(and compliance.circuit_breaker.window_minutes, default 60)"
)


class EscalationExemption(_Strict):
    """Paths (ids or whole categories) that ``no-privilege-escalation`` does not report for some roles."""

    roles: list[str] = Field(min_length=1)  # role names; shell-style patterns (app-*) allowed
    paths: list[str] = Field(min_length=1)  # path ids (ssm-002) or categories (existing-compute)
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not re.fullmatch(r"[\w+=,.@*?-]{1,64}", pattern, re.ASCII) or pattern.strip("*?") == "":
                raise ValueError(
                    f"{pattern!r} is not a role name or a pattern naming some roles (a bare '*' exempts all)"
                )
        return value

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PATH_IDS) - set(CATEGORIES))
        if unknown:
            raise ValueError(
                f"unknown escalation path(s) or categories {unknown}; categories: {list(CATEGORIES)}; "
                "path ids: see the README's escalation paths table"
            )
        return value


class Escalation(_Strict):
    """Settings of ``no-privilege-escalation``: a mode per path category (the stricter of it and the rule's
    mode applies) and exemptions."""

    categories: dict[str, RuleMode] = Field(default_factory=dict)
    exemptions: list[EscalationExemption] = Field(default_factory=list)

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: dict[str, RuleMode]) -> dict[str, RuleMode]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown escalation categories {unknown}; known: {list(CATEGORIES)}")
        return value

    def category_mode(self, category: str) -> RuleMode:
        return self.categories.get(category, "enforce")

    def exempt(self, role: str, path_id: str, category: str) -> bool:
        return any(
            (path_id in e.paths or category in e.paths) and any(fnmatch.fnmatchcase(role, p) for p in e.roles)
            for e in self.exemptions
        )


_SERVICE_RE = re.compile(r"^[a-z0-9-]{2,40}$")


class EndpointServices(_Strict):
    """The services that the VPCs of some roles' instances reach through VPC endpoints (interface or gateway)."""

    roles: list[str] = Field(min_length=1)  # role names; shell-style patterns (app-*) allowed
    services: list[str] = Field(min_length=1)  # IAM service prefixes: s3, dynamodb, sqs, kms, ...
    note: str | None = None

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        # "*" is allowed here: "every VPC has an S3 gateway endpoint" is a common, true statement
        return _check_role_patterns(value, allow_all=True)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        for service in value:
            if not _SERVICE_RE.match(service):
                raise ValueError(f"{service!r} is not an IAM service prefix (like s3, dynamodb, sqs, kms)")
        return value


class InstancePerimeter(_Strict):
    """Settings of ``instance-credential-perimeter``: which services each role's VPCs reach through endpoints.
    A role no entry names gets no perimeter (reported: RoleWarden cannot know its network path)."""

    endpoint_services: list[EndpointServices] = Field(default_factory=list)

    def services_for(self, role: str) -> tuple[str, ...]:
        found = {
            s for e in self.endpoint_services if any(fnmatch.fnmatchcase(role, p) for p in e.roles) for s in e.services
        }
        return tuple(sorted(found))


class Compliance(_Strict):
    permissions_boundary: str | None = None
    allowed_managed_policies: list[str] = Field(default_factory=list)
    protected_roles: list[str] = Field(default_factory=list)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    #: Deprecated: read as ``circuit_breaker.max_remediations`` (see ``deprecations``).
    max_remediations_per_run: Annotated[int, Field(ge=0, le=10_000)] | None = None
    rules: dict[str, RuleMode] = Field(default_factory=lambda: dict(_DEFAULT_RULE_MODES))
    escalation: Escalation = Field(default_factory=Escalation)
    instance_perimeter: InstancePerimeter = Field(default_factory=InstancePerimeter)

    @model_validator(mode="after")
    def _deprecated_limit(self) -> Compliance:
        old = self.max_remediations_per_run
        if old is None:
            return self
        if "max_remediations" in self.circuit_breaker.model_fields_set:
            raise ValueError(
                "max_remediations_per_run and circuit_breaker.max_remediations are both set; "
                "keep only circuit_breaker.max_remediations"
            )
        breaker = self.circuit_breaker.model_copy(update={"max_remediations": old})
        return self.model_copy(update={"circuit_breaker": breaker})

    def deprecations(self) -> list[str]:
        """Keys still accepted but to be rewritten (``rolewarden validate`` and the function's log say so)."""
        return [DEPRECATED_LIMIT_MESSAGE] if self.max_remediations_per_run is not None else []

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
    accounts: Accounts = Field(default_factory=Accounts)  # issue 14 (rolewarden/accounts_config.py)

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


def parse_config(text: str, source: str = "<string>", settings: Settings | None = None) -> Config:
    """Parse and validate YAML text. Raises ConfigError naming source, key path and problem. The stack's
    settings (``ROLEWARDEN_MANAGED_PATH``, ``ROLEWARDEN_DRY_RUN``) are checked and applied."""
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
    settings = settings or current()
    forced_path = settings.managed_path
    if forced_path and forced_path != config.managed_path:
        raise ConfigError(
            f"invalid config {source}: managed_path: {config.managed_path!r} differs from the stack's "
            f"ManagedPath {forced_path!r}; RoleWarden's IAM permissions are scoped to the stack's path"
        )
    if settings.dry_run and not config.dry_run:
        config = config.model_copy(update={"dry_run": True})
    return config


@dataclass
class _Cached:
    raw: str
    config: Config


_cache: dict[str, _Cached] = {}


def read_source(location: str, settings: Settings | None = None) -> str:
    """Return the raw YAML text at ``location`` (a path or ``ssm:<name>``)."""
    if location.startswith("ssm:"):
        from aws_lambda_powertools.utilities import parameters

        name = location[len("ssm:") :]
        try:
            max_age = (settings or current()).config_max_age
            value = parameters.get_parameter(name, max_age=max_age)
        except parameters.exceptions.GetParameterError as exc:
            raise ConfigError(f"cannot read config from SSM parameter {name!r}: {exc}") from exc
        return str(value)
    try:
        with open(location, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {location!r}: {exc.strerror}") from exc


def load_config(location: str | None = None, settings: Settings | None = None) -> Config:
    """Load the config named by ``location`` or ``ROLEWARDEN_CONFIG``; parsed once per distinct text."""
    settings = settings or current()
    location = location or settings.config
    if not location:
        raise ConfigError("ROLEWARDEN_CONFIG is not set: give a config file path or ssm:<parameter-name>")
    raw = read_source(location, settings)
    key = "|".join((location, settings.managed_path, str(settings.dry_run)))
    cached = _cache.get(key)
    if cached is not None and cached.raw == raw:
        return cached.config
    config = parse_config(raw, location, settings)
    _cache[key] = _Cached(raw, config)
    return config
