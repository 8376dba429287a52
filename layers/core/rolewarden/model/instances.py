"""Observed EC2 state (instances, associations, instance profiles, lifecycle hooks), as plain frozen data.
Built by ``rolewarden.aws`` and read by ``rolewarden.decide``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetadataOptions:
    """The instance metadata service options DescribeInstances shows (``MetadataOptions``)."""

    http_tokens: str  # "required" (IMDSv2 only) or "optional" (IMDSv1 answers too)
    hop_limit: int  # HttpPutResponseHopLimit
    http_endpoint: str = "enabled"  # "disabled": no metadata service at all
    state: str = "applied"  # "pending" just after a change


@dataclass(frozen=True)
class InstanceView:
    """One instance as DescribeInstances shows it."""

    instance_id: str
    state: str
    tags: Mapping[str, str]
    profile_arn: str | None = None
    #: None when the answer had no MetadataOptions.
    metadata: MetadataOptions | None = None


@dataclass(frozen=True)
class Association:
    """An active (associating or associated) instance-profile association."""

    association_id: str
    instance_id: str
    profile_arn: str
    state: str


@dataclass(frozen=True)
class GuardFinding:
    """A compliance rule the role inside an instance profile fails (the tag guard, issue 16)."""

    rule: str
    message: str


@dataclass(frozen=True)
class ProfileInfo:
    """An instance profile and the role inside it (IAM allows at most one).

    ``guard`` is the verdict of the tag guard on that role: the compliance rules it fails (``()``:
    none), or ``None`` when the role has not been judged, which the decision treats as a refusal."""

    name: str
    arn: str
    role_names: tuple[str, ...]
    role_paths: tuple[str, ...]
    guard: tuple[GuardFinding, ...] | None = None
    role_arns: tuple[str, ...] = ()


#: Upper bound of the time until a failed record is delivered again (the runtime's retry backoff, which
#: keeps a record holding a lifecycle hook within it); the profiles decision heartbeats a hook by it.
RETRY_MARGIN_SECONDS = 20.0


@dataclass(frozen=True)
class LifecycleAction:
    """The Auto Scaling lifecycle hook an instance waits on (from the launch lifecycle event)."""

    group: str
    hook: str
    token: str
    instance_id: str


@dataclass(frozen=True)
class ProfilesSnapshot:
    """What the instance-profiles capability observed for one decision (``capabilities.profiles.observe``):
    the instances DescribeInstances showed, the desired profiles as IAM holds them (with the tag guard's
    verdict; None: absent), and the associations read for the instances in ``association_read`` (only
    those that showed another profile: the source of truth there; absent from ``associations``: none)."""

    ids: tuple[str, ...]
    views: Mapping[str, InstanceView]
    profiles: Mapping[str, ProfileInfo | None]
    associations: Mapping[str, Association] = field(default_factory=dict)
    association_read: frozenset[str] = frozenset()
