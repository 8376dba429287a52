"""Which instance profile an instance should have, and what to do about the one it has."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rolewarden.config import InstanceProfiles, ProfileRule
from rolewarden.model import Association, InstanceView, ProfileInfo
from rolewarden.plan import Action, AssociateProfile, ReassociateProfile, ReplaceProfile

Verdict = Literal[
    "associate",  # nothing attached: attach the desired profile
    "replace",  # another profile attached to a running instance: swap it
    "reassociate",  # another profile attached to a stopped instance: disassociate, then associate
    "keep",  # the desired profile is attached: no write
    "report",  # another profile attached, on_mismatch=report: log only
    "refuse",  # the desired profile is missing or its role is outside managed_path
    "unmanaged",  # no rule matches and no default: leave the instance alone
    "skip",  # terminated, shutting down, stopping, not found
    "wait",  # pending: the running event (or the sweep) follows
    "confirm",  # DescribeInstances shows another profile: read the association before deciding
]

#: States in which EC2 accepts association changes (AssociateIamInstanceProfile: "running or stopped").
_ACTIONABLE = frozenset({"running", "stopped"})


@dataclass(frozen=True)
class ProfileDecision:
    instance_id: str
    verdict: Verdict
    reason: str
    desired: str | None = None
    rule_index: int | None = None
    current_arn: str | None = None
    actions: tuple[Action, ...] = ()


def rule_matches(rule: ProfileRule, tags: Mapping[str, str]) -> bool:
    """Every key of the rule must be on the instance with an accepted value ("*" accepts any value)."""
    for key, wanted in rule.match.items():
        if key not in tags:
            return False
        value = tags[key]
        if wanted == "*":
            continue
        if isinstance(wanted, list):
            if "*" not in wanted and value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def desired_profile(settings: InstanceProfiles, tags: Mapping[str, str]) -> tuple[str | None, int | None]:
    """The first matching rule's profile and its index, else the default (index None), else (None, None)."""
    for index, rule in enumerate(settings.rules):
        if rule_matches(rule, tags):
            return rule.profile, index
    return settings.default, None


def assignable(profile: ProfileInfo | None, managed_path: str) -> str | None:
    """None when the profile may be assigned, else the reason it is refused."""
    if profile is None:
        return "the instance profile does not exist"
    if len(profile.role_names) != 1:
        return f"the instance profile holds {len(profile.role_names)} roles, not exactly one"
    if not profile.role_paths[0].startswith(managed_path):
        role, path = profile.role_names[0], profile.role_paths[0]
        return f"its role {role} has path {path}, outside the managed path {managed_path}"
    return None


def needs_association(view: InstanceView, desired: ProfileInfo | None) -> bool:
    """True when DescribeInstances shows a profile other than the desired one (the association id is needed)."""
    return view.profile_arn is not None and (desired is None or view.profile_arn != desired.arn)


def decide_instance(
    settings: InstanceProfiles,
    managed_path: str,
    view: InstanceView | None,
    instance_id: str,
    profiles: Mapping[str, ProfileInfo | None],
    association: Association | None = None,
    association_known: bool = False,
) -> ProfileDecision:
    """Decide for one instance. ``profiles`` maps every desired profile name to what IAM holds (None: absent).

    ``association_known`` says whether ``association`` is the result of
    DescribeIamInstanceProfileAssociations (the source of truth) for this instance.
    """
    if view is None:
        return ProfileDecision(instance_id, "skip", "the instance does not exist")
    if view.state == "pending":
        return ProfileDecision(instance_id, "wait", "the instance is pending; it is handled once running")
    if view.state not in _ACTIONABLE:
        return ProfileDecision(instance_id, "skip", f"the instance is {view.state}")

    name, rule_index = desired_profile(settings, view.tags)
    if name is None:
        return ProfileDecision(instance_id, "unmanaged", "no rule matches its tags and there is no default")

    def out(
        verdict: Verdict, reason: str, current: str | None = None, actions: tuple[Action, ...] = ()
    ) -> ProfileDecision:
        return ProfileDecision(instance_id, verdict, reason, name, rule_index, current, actions)

    info = profiles.get(name)
    refusal = assignable(info, managed_path)
    if refusal is not None or info is None:
        return out("refuse", f"profile {name} is not assignable: {refusal}")

    if not association_known:
        if view.profile_arn == info.arn:
            return out("keep", "the desired profile is attached", info.arn)
        if view.profile_arn is not None:
            return out("confirm", "another profile is shown attached", view.profile_arn)
        current = None
    else:
        current = association

    if current is None:
        associate = AssociateProfile(instance_id=instance_id, profile_name=info.name, profile_arn=info.arn)
        return out("associate", "no profile is attached", None, (associate,))
    if current.profile_arn == info.arn:
        return out("keep", "the desired profile is attached", info.arn)
    if settings.on_mismatch == "report":
        reason = f"profile {current.profile_arn} is attached instead of {info.arn} (on_mismatch: report)"
        return out("report", reason, current.profile_arn)
    swap = {
        "instance_id": instance_id,
        "association_id": current.association_id,
        "profile_name": info.name,
        "profile_arn": info.arn,
        "previous_arn": current.profile_arn,
    }
    if view.state == "stopped":
        reason = "another profile is attached to the stopped instance"
        return out("reassociate", reason, current.profile_arn, (ReassociateProfile(**swap),))
    return out("replace", "another profile is attached", current.profile_arn, (ReplaceProfile(**swap),))
