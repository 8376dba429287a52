"""Semantic checks of a valid config: do the named things exist and sit where RoleWarden may use them.
Each problem is one line starting with its key path.

``offline_problems`` needs no AWS call (the levels' actions against the S3 action catalogue);
``account_problems`` reads the account: the named instance profiles (and their roles' paths), the
permissions boundary and the allowed managed policies."""

from __future__ import annotations

from botocore.exceptions import ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import code_of
from rolewarden.capabilities.profiles.guard import lookup_profiles
from rolewarden.config import Config
from rolewarden.decide.grants.catalog import resource_type
from rolewarden.decide.profiles import assignable


def _profile_problems(config: Config) -> list[str]:
    """Every rule (and the default) whose profile would be refused: missing, outside the managed
    path, or (the tag guard) a role that fails no-admin-access, no-privilege-escalation or the
    configured permissions boundary, unless that rule says allow_privileged."""
    settings = config.instance_profiles
    named: list[tuple[str, str, bool]] = [
        (f"instance_profiles.rules.{i}.profile", r.profile, r.allow_privileged) for i, r in enumerate(settings.rules)
    ]
    if settings.default:
        named.append(("instance_profiles.default", settings.default, False))
    found = lookup_profiles({name for _, name, _ in named}, config)
    problems = []
    for path, name, allowed in named:
        info = found.get(name)
        refusal = assignable(info, config.managed_path)
        if refusal is not None:
            problems.append(f"{path}: {name}: {refusal}")
        elif info is not None and info.guard and not allowed:
            rules = ", ".join(sorted({g.rule for g in info.guard}))
            details = "; ".join(g.message for g in info.guard)
            problems.append(
                f"{path}: {name}: would be refused by the tag guard: its role fails {rules} ({details}); "
                "map the tag to a compliant profile, or set allow_privileged: true with a reason"
            )
    return problems


def _policy_exists(arn: str) -> bool:
    try:
        client("iam").get_policy(PolicyArn=arn)
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            return False
        raise
    return True


def _compliance_problems(config: Config) -> list[str]:
    problems = []
    boundary = config.compliance.permissions_boundary
    if boundary and not _policy_exists(boundary):
        problems.append(f"compliance.permissions_boundary: {boundary} does not exist")
    for index, arn in enumerate(config.compliance.allowed_managed_policies):
        if not _policy_exists(arn):
            problems.append(f"compliance.allowed_managed_policies.{index}: {arn} does not exist")
    return problems


def _level_problems(config: Config) -> list[str]:
    problems = []
    for level, actions in config.bucket_grants.levels.items():
        for index, action in enumerate(actions):
            if resource_type(action) is None:
                problems.append(
                    f"bucket_grants.levels.{level}.{index}: {action} is not an S3 data-access action RoleWarden "
                    "grants (unknown, or it changes permissions); every tag naming this level would be refused"
                )
    return problems


def offline_problems(config: Config) -> list[str]:
    """What can be checked without AWS: the levels' actions against the S3 action catalogue."""
    return _level_problems(config)


def account_problems(config: Config) -> list[str]:
    """Every reference in the config checked against the account."""
    return _profile_problems(config) + _compliance_problems(config)
