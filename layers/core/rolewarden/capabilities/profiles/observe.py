"""Observe for instance profiles: read what a decision needs, write nothing.

Reads: one DescribeInstances (paginated, an instance-id filter) for the batch; one GetInstanceProfile
per distinct desired profile plus its role's policies for the tag guard (cached, ``guard``); one
DescribeIamInstanceProfileAssociations, only for the instances DescribeInstances shows holding
another profile (the association is the source of truth there, and its id is needed to replace it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence

from rolewarden.aws import profiles as aws_profiles
from rolewarden.capabilities.base import Run
from rolewarden.capabilities.profiles.guard import lookup_profiles
from rolewarden.decide.profiles import decide, wanted_profiles
from rolewarden.model.instances import InstanceView, ProfilesSnapshot
from rolewarden.model.targets import Target


def observe(run: Run, targets: Sequence[Target]) -> ProfilesSnapshot:
    """The instances the ``instance`` targets name (an id that does not exist is simply absent)."""
    ids = sorted({t.id for t in targets if t.kind == "instance"})
    return observe_views(run, ids, aws_profiles.describe_instances(ids))


def observe_views(run: Run, ids: Sequence[str], views: Mapping[str, InstanceView]) -> ProfilesSnapshot:
    """The snapshot of instances already described (a batch, or one page of a sweep): their desired
    profiles, then the associations of those that show another profile (decided ``confirm`` on the
    first reading)."""
    profiles = lookup_profiles(wanted_profiles(run.config, views.values()), run.config)
    snapshot = ProfilesSnapshot(ids=tuple(ids), views=views, profiles=profiles)
    confirm = {i for i, d in decide(snapshot, run.config).items() if d.verdict == "confirm"}
    return with_associations(snapshot, confirm) if confirm else snapshot


def with_associations(snapshot: ProfilesSnapshot, ids: Collection[str]) -> ProfilesSnapshot:
    """The snapshot with the active associations of ``ids`` read afresh (after a conflict, too)."""
    read = aws_profiles.describe_associations(ids)
    associations = {i: a for i, a in snapshot.associations.items() if i not in ids}
    return dataclasses.replace(
        snapshot,
        associations={**associations, **read},
        association_read=snapshot.association_read | frozenset(ids),
    )
