"""The RoleWarden config: schema version 1, validated once, before anything acts.

The config is YAML (or JSON, which is YAML, read then without importing PyYAML). It is read from
``ROLEWARDEN_CONFIG``: a file path, or ``ssm:<name>`` for an SSM parameter holding the YAML (cached
with Powertools Parameters). Unknown keys are errors, and every error names the source, the key path
and what is wrong.

Each section is a frozen dataclass deriving from ``rolewarden.schema.Section`` (no pydantic: importing
it and building its models cost about half of ``import boto3`` at every cold start). The pattern, for
a new section:

* a field is an annotation and a default (``field(default_factory=...)`` for lists, dicts and sections);
  a field without a default is a required key;
* bounds go in ``Annotated[int, Limits(ge=1, le=64)]`` (``min_length``/``max_length`` for strings, lists
  and mappings), a field's own rule in ``Annotated[str, Check(fn)]``: ``fn(value)`` returns the value to
  keep or raises ``ValueError("...")``, reported at the field's key path;
* rules across fields go in ``check(self)``, which returns the section (``dataclasses.replace`` to change
  a field) or raises ``ValueError``, reported at the section's path; ``self.given(key)`` tells a key the
  config wrote from a default;
* ``Config.from_data(data)`` validates a whole mapping (``SchemaError`` lists every problem);
  ``parse_config`` adds the source's name and the stack's overrides.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from rolewarden import config_checks as checks
from rolewarden.accounts_config import Accounts
from rolewarden.errors import ConfigError
from rolewarden.schema import Check, Limits, SchemaError, Section
from rolewarden.settings import Settings, current

#: IAM role names: [\w+=,.@-]{1,64}.
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)

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
#: ``instance_profiles.metadata.imdsv2``: what RoleWarden does about instances that still answer IMDSv1.
Imdsv2Mode = Literal["off", "report", "enforce"]

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


TagValue = str | list[str]


#: a tag rule's ``match``: at least one tag key, each with a value, a list of values or "*"
Match = Annotated[dict[str, TagValue], Limits(min_length=1), Check(checks.tag_match)]


@dataclass(frozen=True)
class ProfileRule(Section):
    """One tag rule: every key of ``match`` must be on the instance (a value, any of a list, or "*")."""

    match: Match
    profile: Annotated[str, Check(checks.profile_name)]
    #: Hand out this profile even when its role fails the guard rules (no-admin-access,
    #: no-privilege-escalation, permissions-boundary). Needs a ``reason``, which every log line quotes.
    allow_privileged: bool = False
    reason: str | None = None

    def check(self) -> ProfileRule:
        reason = (self.reason or "").strip()
        if self.allow_privileged and not reason:
            raise ValueError(
                f"allow_privileged: true (profile {self.profile}) needs a non-empty 'reason' saying why a tag may "
                "hand out a role that fails the compliance rules"
            )
        if self.reason is not None and not self.allow_privileged:
            raise ValueError("'reason' is only read with allow_privileged: true; remove it or set allow_privileged")
        return self


@dataclass(frozen=True)
class MetadataExemption(Section):
    """Instances whose tags match keep their metadata options as they are (e.g. software that still needs IMDSv1)."""

    match: Match
    reason: Annotated[str, Limits(min_length=1, max_length=500)]


@dataclass(frozen=True)
class InstanceMetadata(Section):
    """IMDSv2 with the attach (issue 15): ``off`` ignores metadata options; ``report`` names each managed
    instance that still answers IMDSv1; ``enforce`` sets ``HttpTokens: required`` and ``hop_limit`` on each
    managed instance in the same reconcile that gives it its profile."""

    imdsv2: Imdsv2Mode = "report"
    #: HttpPutResponseHopLimit (EC2 accepts 1-64); 2 lets containers on the instance reach IMDSv2.
    hop_limit: Annotated[int, Limits(ge=1, le=64)] = 2
    exemptions: list[MetadataExemption] = field(default_factory=list)


@dataclass(frozen=True)
class InstanceProfiles(Section):
    """Which instance profile each tagged instance gets (``rules``, first match wins, else ``default``)."""

    rules: list[ProfileRule] = field(default_factory=list)
    default: Annotated[str | None, Check(checks.profile_name)] = None
    on_mismatch: Literal["replace", "report"] = "replace"
    metadata: InstanceMetadata = field(default_factory=InstanceMetadata)


@dataclass(frozen=True)
class BucketGrants(Section):
    """S3 grants from bucket tags: ``<tag_prefix><level>`` names roles; ``levels`` name the actions."""

    tag_prefix: Annotated[str, Limits(min_length=1, max_length=100)] = "rolewarden:"
    levels: Annotated[dict[str, list[str]], Check(checks.levels)] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_LEVELS.items()}
    )
    protected_buckets: list[str] = field(default_factory=list)
    max_policies_per_role: Annotated[int, Limits(ge=1, le=20)] = 5


@dataclass(frozen=True)
class CircuitBreaker(Section):
    """At most ``max_remediations`` roles remediated per window of ``window_minutes``, counted across every
    invocation and container in the state table; a role that finds the window full is not remediated and
    trips the breaker for one window (or until ``rolewarden breaker reset``)."""

    max_remediations: Annotated[int, Limits(ge=0, le=10_000)] = 25
    window_minutes: Annotated[int, Limits(ge=1, le=1440)] = 60


#: The per-run limit became a per-window limit; the old key is still read (see ``Compliance.deprecations``).
DEPRECATED_LIMIT_MESSAGE = (
    "compliance.max_remediations_per_run is deprecated: its value is now the limit per window, counted "
    "across all invocations; write it as compliance.circuit_breaker.max_remediations "
    "(and compliance.circuit_breaker.window_minutes, default 60)"
)


@dataclass(frozen=True)
class EscalationExemption(Section):
    """Paths (ids or whole categories) that ``no-privilege-escalation`` does not report for some roles."""

    roles: Annotated[list[str], Limits(min_length=1), Check(checks.role_patterns)]
    paths: Annotated[list[str], Limits(min_length=1), Check(checks.escalation_paths)]  # ids (ssm-002) or categories
    reason: Annotated[str, Limits(min_length=1, max_length=500)]


@dataclass(frozen=True)
class Escalation(Section):
    """Settings of ``no-privilege-escalation``: a mode per path category (the stricter of it and the rule's
    mode applies) and exemptions."""

    categories: Annotated[dict[str, RuleMode], Check(checks.escalation_categories)] = field(default_factory=dict)
    exemptions: list[EscalationExemption] = field(default_factory=list)

    def category_mode(self, category: str) -> RuleMode:
        return self.categories.get(category, "enforce")

    def exempt(self, role: str, path_id: str, category: str) -> bool:
        return any(
            (path_id in e.paths or category in e.paths) and any(fnmatch.fnmatchcase(role, p) for p in e.roles)
            for e in self.exemptions
        )


@dataclass(frozen=True)
class EndpointServices(Section):
    """The services that the VPCs of some roles' instances reach through VPC endpoints (interface or gateway)."""

    roles: Annotated[list[str], Limits(min_length=1), Check(checks.role_patterns_or_all)]
    services: Annotated[list[str], Limits(min_length=1), Check(checks.services)]  # IAM service prefixes: s3, sqs, kms
    note: str | None = None


@dataclass(frozen=True)
class InstancePerimeter(Section):
    """Settings of ``instance-credential-perimeter``: which services each role's VPCs reach through endpoints.
    A role no entry names gets no perimeter (reported: RoleWarden cannot know its network path)."""

    endpoint_services: list[EndpointServices] = field(default_factory=list)

    def services_for(self, role: str) -> tuple[str, ...]:
        found = {
            s for e in self.endpoint_services if any(fnmatch.fnmatchcase(role, p) for p in e.roles) for s in e.services
        }
        return tuple(sorted(found))


def _rules(value: dict[str, RuleMode]) -> dict[str, RuleMode]:
    unknown = sorted(set(value) - set(COMPLIANCE_RULE_IDS))
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; known: {list(COMPLIANCE_RULE_IDS)}")
    return {**_DEFAULT_RULE_MODES, **value}


@dataclass(frozen=True)
class Compliance(Section):
    """The compliance rules of managed roles: their modes, settings and the remediation circuit breaker."""

    permissions_boundary: Annotated[str | None, Check(checks.policy_arn)] = None
    allowed_managed_policies: Annotated[list[str], Check(checks.policy_arns)] = field(default_factory=list)
    protected_roles: list[str] = field(default_factory=list)
    circuit_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    #: Deprecated: read as ``circuit_breaker.max_remediations`` (see ``deprecations``).
    max_remediations_per_run: Annotated[int, Limits(ge=0, le=10_000)] | None = None
    rules: Annotated[dict[str, RuleMode], Check(_rules)] = field(default_factory=lambda: dict(_DEFAULT_RULE_MODES))
    escalation: Escalation = field(default_factory=Escalation)
    instance_perimeter: InstancePerimeter = field(default_factory=InstancePerimeter)

    def check(self) -> Compliance:
        old = self.max_remediations_per_run
        if old is None:
            return self
        if self.circuit_breaker.given("max_remediations"):
            raise ValueError(
                "max_remediations_per_run and circuit_breaker.max_remediations are both set; "
                "keep only circuit_breaker.max_remediations"
            )
        return replace(self, circuit_breaker=replace(self.circuit_breaker, max_remediations=old))

    def deprecations(self) -> list[str]:
        """Keys still accepted but to be rewritten (``rolewarden validate`` and the function's log say so)."""
        return [DEPRECATED_LIMIT_MESSAGE] if self.max_remediations_per_run is not None else []


@dataclass(frozen=True)
class Config(Section):
    """The whole config (schema version 1)."""

    version: Literal[1]
    managed_path: Annotated[str, Check(checks.managed_path)] = "/rolewarden/"
    dry_run: bool = False
    instance_profiles: InstanceProfiles = field(default_factory=InstanceProfiles)
    bucket_grants: BucketGrants = field(default_factory=BucketGrants)
    compliance: Compliance = field(default_factory=Compliance)
    accounts: Accounts = field(default_factory=Accounts)  # issue 14 (rolewarden/accounts_config.py)

    # -- helpers shared by the decision code -------------------------------------------------
    def is_protected_bucket(self, bucket: str) -> bool:
        return any(fnmatch.fnmatchcase(bucket, pattern) for pattern in self.bucket_grants.protected_buckets)

    def rule_mode(self, rule_id: str) -> RuleMode:
        return self.compliance.rules.get(rule_id, "off")


def _format_errors(source: str, error: SchemaError) -> str:
    lines = [f"invalid config {source}:"]
    lines += [f"  {path or '(top level)'}: {message}" for path, message in error.problems]
    return "\n".join(lines)


def _load_yaml(text: str, source: str) -> Any:
    """YAML text as data, with PyYAML's libyaml parser where the wheel has it (the same YAML, parsed in C).
    Imported here: a config written as JSON (JSON is YAML) never needs PyYAML, about a tenth of
    ``import boto3`` at cold start."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid config {source}: not valid YAML: {exc}") from exc


def parse_config(text: str, source: str = "<string>", settings: Settings | None = None) -> Config:
    """Parse and validate YAML text (JSON too: it is YAML, read with the json module when it parses as
    JSON). Raises ConfigError naming source, key path and problem. The stack's settings
    (``ROLEWARDEN_MANAGED_PATH``, ``ROLEWARDEN_DRY_RUN``) are checked and applied."""
    data: Any = None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None  # a YAML flow mapping ({version: 1}), not JSON
    if data is None:
        data = _load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping with 'version: 1'")
    try:
        config = Config.from_data(data)
    except SchemaError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc
    settings = settings or current()
    forced_path = settings.managed_path
    if forced_path and forced_path != config.managed_path:
        raise ConfigError(
            f"invalid config {source}: managed_path: {config.managed_path!r} differs from the stack's "
            f"ManagedPath {forced_path!r}; RoleWarden's IAM permissions are scoped to the stack's path"
        )
    if settings.dry_run and not config.dry_run:
        config = replace(config, dry_run=True)
    return config


def config_json(text: str, source: str = "<string>") -> str:
    """The config ``text`` (YAML) as JSON, once it validates: what the config layer ships when it is built
    from the YAML (``config/Makefile``), so that a cold start reads it with the json module and never
    imports PyYAML. Validated data is strings, numbers, booleans, lists and mappings, which JSON holds
    (account ids YAML read as numbers, as mapping keys too, become the strings they are read as anyway).
    Raises ConfigError naming ``source``."""
    parse_config(text, source)
    return json.dumps(_load_yaml(text, source), indent=1, ensure_ascii=False) + "\n"


#: location|managed path|dry run -> (raw text, its config): parsed once per distinct text
_cache: dict[str, tuple[str, Config]] = {}


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
    if cached is not None and cached[0] == raw:
        return cached[1]
    config = parse_config(raw, location, settings)
    _cache[key] = (raw, config)
    return config
