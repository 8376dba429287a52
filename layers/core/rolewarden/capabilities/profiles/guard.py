"""The tag guard's reading of instance profiles (issue 16): each desired profile as IAM holds it, with
the compliance rules' verdict on its role, cached for a warm function (``PROFILE_CACHE_SECONDS``)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from rolewarden.aws import iam
from rolewarden.aws.clients import current_account
from rolewarden.config import Config
from rolewarden.decide.profiles import assignable, guard_rules, judge_role
from rolewarden.model.instances import GuardFinding, ProfileInfo

#: Seconds a profile read from IAM, with the guard's verdict on its role, is reused by a warm
#: function. Why 60 s: a launch burst reads the same few profiles in every batch, and without a cache
#: each batch would cost the profile and its role's policies again (IAM throttles per account);
#: a change to a role reaches RoleWarden as a CloudTrail event, which itself takes longer than this
#: to arrive, the compliance function remediates the role on that event, and the instance-profiles
#: function drops the entry when the profile's role is swapped. Only profiles that exist are
#: cached, so a profile created after a refusal is seen at once.
PROFILE_CACHE_SECONDS = 60.0
#: (profile name, account, managed path, boundary) -> (read at, profile with the guard's verdict). The
#: account (``clients.current_account``, issue 14): a profile of one name is another profile, with another
#: role and ARN, in each account a central function acts in.
_profile_cache: dict[tuple[str, str, str, str], tuple[float, ProfileInfo]] = {}


def _cache_key(name: str, config: Config | None) -> tuple[str, str, str, str]:
    account = current_account() or ""
    if config is None:
        return (name, account, "", "")
    return (name, account, config.managed_path, config.compliance.permissions_boundary or "")


def judge_profile(info: ProfileInfo, config: Config) -> ProfileInfo:
    """The profile with the guard's verdict on its role (only an otherwise assignable profile is judged:
    a refused one never reaches an association, and its role may be outside RoleWarden's read scope)."""
    if assignable(info, config.managed_path) is not None:
        return info
    read = iam.read_profile_role(info, config.managed_path, need_boundary="permissions-boundary" in guard_rules(config))
    if read is None:
        missing = GuardFinding("role-unreadable", f"role {info.role_names[0]} vanished while it was read")
        return dataclasses.replace(info, guard=(missing,))
    role, policies = read
    return dataclasses.replace(info, guard=judge_role(role, policies, config))


def lookup_profiles(
    names: Iterable[str], config: Config | None = None, clock: float | None = None
) -> dict[str, ProfileInfo | None]:
    """The named profiles as IAM holds them, each with the guard's verdict on its role when ``config``
    is given (without it, ``guard`` is None and every decision refuses the profile)."""
    now = time.monotonic() if clock is None else clock
    found: dict[str, ProfileInfo | None] = {}
    for name in sorted(set(names)):
        key = _cache_key(name, config)
        cached = _profile_cache.get(key)
        if cached is not None and now - cached[0] < PROFILE_CACHE_SECONDS:
            found[name] = cached[1]
            continue
        info = iam.get_instance_profile(name)
        if info is not None:
            if config is not None:
                info = judge_profile(info, config)
            _profile_cache[key] = (now, info)
        found[name] = info
    return found


def forget_profile(name: str) -> None:
    """Drop every cached reading of one profile, in every account (its role was swapped)."""
    for key in [k for k in _profile_cache if k[0] == name]:
        del _profile_cache[key]


def clear_profile_cache() -> None:
    _profile_cache.clear()
