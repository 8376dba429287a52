"""Which instance profile an instance should have, and what to do about the one it has."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Literal

from rolewarden.config import Config, Imdsv2Mode, InstanceMetadata, InstanceProfiles, ProfileRule, TagValue
from rolewarden.model.actions import Action
from rolewarden.model.documents import PolicyDocumentError
from rolewarden.model.iam import ManagedPolicy, Role
from rolewarden.model.instances import (
    RETRY_MARGIN_SECONDS,
    Association,
    GuardFinding,
    InstanceView,
    ProfileInfo,
    ProfilesSnapshot,
)
from rolewarden.model.profiles import AssociateProfile, ReassociateProfile, ReplaceProfile, SetMetadataOptions

Verdict = Literal[
    "associate",  # nothing attached: attach the desired profile
    "replace",  # another profile attached to a running instance: swap it
    "reassociate",  # another profile attached to a stopped instance: disassociate, then associate
    "keep",  # the desired profile is attached: no write
    "report",  # another profile attached, on_mismatch=report: log only
    "refuse",  # the desired profile is missing, its role is outside managed_path, or fails the guard rules
    "unmanaged",  # no rule matches and no default: leave the instance alone
    "skip",  # terminated, shutting down, stopping, not found
    "wait",  # pending: the running event (or the sweep) follows
    "confirm",  # DescribeInstances shows another profile: read the association before deciding
]

#: States in which EC2 accepts association changes (AssociateIamInstanceProfile: "running or stopped").
_ACTIONABLE = frozenset({"running", "stopped"})


MetadataVerdict = Literal[
    "off",  # imdsv2: off
    "exempt",  # an exemption's tags match
    "secure",  # HttpTokens required with the configured hop limit: no write
    "require",  # enforce: ModifyInstanceMetadataOptions in this reconcile
    "imdsv1",  # report: the instance still answers IMDSv1 (a finding)
    "hop-limit",  # report: IMDSv2 required, but another hop limit than configured
    "disabled",  # the metadata service is off on the instance: nothing answers
    "unknown",  # DescribeInstances showed no MetadataOptions
]


@dataclass(frozen=True)
class MetadataDecision:
    verdict: MetadataVerdict
    reason: str
    #: The ``imdsv2`` setting the verdict was reached under.
    mode: Imdsv2Mode
    #: The reason of the exemption that matched (verdict ``exempt``).
    exemption: str | None = None


#: The profile verdicts whose instance RoleWarden manages and acts on: its metadata options are decided too.
#: ``refuse`` is not among them (RoleWarden does not act on an instance whose profile it refuses), nor
#: ``confirm`` (decided again once the association is read).
METADATA_VERDICTS = frozenset({"associate", "replace", "reassociate", "keep", "report"})


@dataclass(frozen=True)
class ProfileDecision:
    instance_id: str
    verdict: Verdict
    reason: str
    #: The rest only by name: several are optional strings that a wrong position would swap silently.
    _: KW_ONLY
    desired: str | None = None
    rule_index: int | None = None
    current_arn: str | None = None
    actions: tuple[Action, ...] = ()
    #: The guard rules the profile's role fails (a refusal, or an allowed one with ``allow_privileged``).
    guard: tuple[GuardFinding, ...] = ()
    #: The tags (key -> the instance's value) of the config rule that asked for the profile.
    asked_by: tuple[tuple[str, str], ...] = ()
    #: The instance metadata options (IMDSv2), decided with the profile; None for unmanaged or refused instances.
    metadata: MetadataDecision | None = None


def rule_matches(rule: ProfileRule, tags: Mapping[str, str]) -> bool:
    """Every key of the rule must be on the instance with an accepted value ("*" accepts any value)."""
    return tags_match(rule.match, tags)


def tags_match(match: Mapping[str, TagValue], tags: Mapping[str, str]) -> bool:
    """Every key of ``match`` is on the instance with an accepted value ("*" accepts any value)."""
    for key, wanted in match.items():
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


#: The compliance rules that judge a profile's role before any tag may hand it out (issue 16).
#: ``permissions-boundary`` applies only when ``compliance.permissions_boundary`` is configured.
GUARD_RULES = ("no-admin-access", "no-privilege-escalation", "permissions-boundary")


def guard_rules(config: Config) -> tuple[str, ...]:
    """The guard rules in force for this config (independent of the rules' compliance modes: the
    guard is about handing a role out, not about remediating it; ``allow_privileged`` is the escape)."""
    return tuple(r for r in GUARD_RULES if r != "permissions-boundary" or config.compliance.permissions_boundary)


def judge_role(role: Role, policies: Mapping[str, ManagedPolicy], config: Config) -> tuple[GuardFinding, ...]:
    """The guard rules ``role`` fails, judged by the compliance capability's own registered rules
    (never a copy of their logic). A rule that is missing from the registry, or a policy document
    that cannot be read, fails closed."""
    # imported here, not at the top: the compliance rules are a large import that only the guard needs
    from rolewarden.decide.compliance.registry import registered_rules
    from rolewarden.decide.compliance.rule import RuleContext

    registry = registered_rules()
    ctx = RuleContext(config, policies)
    found: list[GuardFinding] = []
    for rule_id in guard_rules(config):
        rule = registry.get(rule_id)
        if rule is None:
            found.append(GuardFinding(rule_id, f"rule {rule_id} is not registered; refusing rather than guessing"))
            continue
        try:
            violations = rule.evaluate(role, ctx)
        except PolicyDocumentError as exc:
            found.append(GuardFinding(rule_id, f"a policy of role {role.name} cannot be read: {exc}"))
            continue
        found.extend(GuardFinding(rule_id, f"role {role.name}: {v.message}") for v in violations)
    return tuple(found)


def asking_tags(rule: ProfileRule | None, tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The instance's tags that made ``rule`` match (empty for the default profile)."""
    if rule is None:
        return ()
    return tuple((key, tags.get(key, "")) for key in rule.match)


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

    rule = settings.rules[rule_index] if rule_index is not None else None
    asked_by = asking_tags(rule, view.tags)
    guard: tuple[GuardFinding, ...] = ()
    allowed = ""

    def out(
        verdict: Verdict, reason: str, current: str | None = None, actions: tuple[Action, ...] = ()
    ) -> ProfileDecision:
        metadata: MetadataDecision | None = None
        if verdict in METADATA_VERDICTS and view is not None:
            metadata, md_action = decide_metadata(settings.metadata, view)
            if md_action is not None:
                actions = (*actions, md_action)
        return ProfileDecision(
            instance_id,
            verdict,
            reason + allowed,
            desired=name,
            rule_index=rule_index,
            current_arn=current,
            actions=actions,
            guard=guard,
            asked_by=asked_by,
            metadata=metadata,
        )

    info = profiles.get(name)
    refusal = assignable(info, managed_path)
    if refusal is not None or info is None:
        return out("refuse", f"profile {name} is not assignable: {refusal}")
    asked = _asked(rule_index, asked_by)
    if info.guard is None:
        return out("refuse", f"profile {name} ({asked}) is refused: its role was not checked against the guard rules")
    guard = info.guard
    if guard:
        failed = ", ".join(sorted({g.rule for g in guard}))
        if rule is None or not rule.allow_privileged:
            detail = "; ".join(g.message for g in guard)
            return out(
                "refuse",
                f"profile {name} ({asked}) is refused: its role fails {failed}: {detail}. Map the tag to a "
                "compliant profile, or set allow_privileged: true with a reason on that config rule",
            )
        allowed = f" (its role fails {failed}; allowed by allow_privileged: {rule.reason})"

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


def wanted_profiles(config: Config, views: Iterable[InstanceView]) -> set[str]:
    """The profiles the instances' tags ask for (the ones observe must read from IAM)."""
    wanted = (desired_profile(config.instance_profiles, view.tags)[0] for view in views)
    return {name for name in wanted if name is not None}


def decide(snapshot: ProfilesSnapshot, config: Config, ids: Iterable[str] | None = None) -> dict[str, ProfileDecision]:
    """The decision for every instance of the snapshot (or only ``ids``), from what it observed. An
    instance whose association was read is decided on it (the source of truth); one that shows
    another profile without it is ``confirm`` (observe reads its association and decides again)."""
    settings, path = config.instance_profiles, config.managed_path
    return {
        i: decide_instance(
            settings,
            path,
            snapshot.views.get(i),
            i,
            snapshot.profiles,
            snapshot.associations.get(i),
            association_known=i in snapshot.association_read,
        )
        for i in (snapshot.ids if ids is None else ids)
    }


def decide_metadata(
    settings: InstanceMetadata, view: InstanceView
) -> tuple[MetadataDecision, SetMetadataOptions | None]:
    """IMDSv2 for one managed instance, from the MetadataOptions DescribeInstances already returned.
    Never a write when the options are right; a write only with ``imdsv2: enforce``."""
    mode = settings.imdsv2
    if mode == "off":
        return MetadataDecision("off", "instance_profiles.metadata.imdsv2 is off", mode), None
    for index, exemption in enumerate(settings.exemptions):
        if tags_match(exemption.match, view.tags):
            why = f"exempt by instance_profiles.metadata.exemptions.{index}: {exemption.reason}"
            return MetadataDecision("exempt", why, mode, exemption.reason), None
    options = view.metadata
    if options is None:
        return MetadataDecision("unknown", "DescribeInstances showed no metadata options", mode), None
    if options.http_endpoint == "disabled":
        return MetadataDecision("disabled", "the instance metadata service is disabled: nothing answers", mode), None
    wanted = settings.hop_limit
    if options.http_tokens == "required" and options.hop_limit == wanted:
        return MetadataDecision("secure", f"IMDSv2 is required, hop limit {wanted}", mode), None
    if mode == "report":
        if options.http_tokens != "required":
            why = (
                f"the instance still answers IMDSv1 (HttpTokens {options.http_tokens}, hop limit "
                f"{options.hop_limit}); imdsv2: report changes nothing"
            )
            return MetadataDecision("imdsv1", why, mode), None
        why = f"IMDSv2 is required, hop limit {options.hop_limit} (configured {wanted}); imdsv2: report"
        return MetadataDecision("hop-limit", why, mode), None
    action = SetMetadataOptions(
        instance_id=view.instance_id,
        hop_limit=wanted,
        previous_tokens=options.http_tokens,
        previous_hop_limit=options.hop_limit,
    )
    why = f"HttpTokens {options.http_tokens}, hop limit {options.hop_limit}: requiring IMDSv2 with hop limit {wanted}"
    return MetadataDecision("require", why, mode), action


def _asked(rule_index: int | None, asked_by: tuple[tuple[str, str], ...]) -> str:
    """Which config rule and tags asked for a profile, for messages."""
    if rule_index is None:
        return "asked for by instance_profiles.default"
    tags = ", ".join(f"{k}={v}" for k, v in asked_by)
    return f"asked for by tag {tags} through instance_profiles.rules.{rule_index}"


def profile_refusal(info: ProfileInfo | None, config: Config) -> str | None:
    """Why no tag may get ``info`` any more (None: it may be handed out), for reports that are not
    about one instance: an IAM change to the profile. A guard failure counts unless some config rule
    naming the profile says ``allow_privileged``."""
    refusal = assignable(info, config.managed_path)
    if refusal is not None or info is None:
        return refusal
    if info.guard is None:
        return "its role was not checked against the guard rules"
    if not info.guard:
        return None
    if any(r.allow_privileged for r in config.instance_profiles.rules if r.profile == info.name):
        return None
    failed = ", ".join(sorted({g.rule for g in info.guard}))
    return f"its role fails {failed}: " + "; ".join(g.message for g in info.guard)


# -- launches that EC2 does not show yet (issue 10, defect 4) ------------------------------------
#: A launch event (EC2 state change, Auto Scaling launch) younger than this whose instance
#: DescribeInstances does not show yet is retried, not skipped: EC2 is eventually consistent just
#: after RunInstances. Older than this, a missing instance is gone.
LAUNCH_GRACE_SECONDS = 300.0
#: Auto Scaling's smallest allowed HeartbeatTimeout (PutLifecycleHook: 30 to 7200 s). RoleWarden does
#: not read each hook's own timeout (DescribeLifecycleHooks cannot be scoped to a resource), so it
#: assumes the smallest: a heartbeat it did not need only extends the wait by the hook's timeout.
MIN_HEARTBEAT_TIMEOUT = 30.0


def missing_instance_is_retried(is_hook: bool, event_age: float | None) -> bool:
    """An instance DescribeInstances does not show: retry (True) or skip (False)? A launch lifecycle
    hook is always retried (completing it would let the instance into service without its profile;
    the queue's redrive count bounds the retries, and the hook's default result applies after that);
    a launch event only while it is younger than ``LAUNCH_GRACE_SECONDS``."""
    if is_hook:
        return True
    return event_age is not None and event_age < LAUNCH_GRACE_SECONDS


def hook_needs_heartbeat(action_age: float | None) -> bool:
    """Whether a hook about to be retried could time out before the retry: its age (since the
    lifecycle action began; unknown counts as old) plus the retry margin reaches the smallest
    heartbeat timeout. A heartbeat restarts the hook's timeout, so later retries heartbeat again."""
    return action_age is None or action_age + RETRY_MARGIN_SECONDS >= MIN_HEARTBEAT_TIMEOUT
