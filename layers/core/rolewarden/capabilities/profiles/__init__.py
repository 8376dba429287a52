"""Instance profiles by tag: each instance gets the instance profile its tags call for.

The capability's parts: ``observe`` (reads: DescribeInstances, the desired profiles with the tag
guard's verdict, associations where needed) -> ``rolewarden.decide.profiles`` (pure decisions) ->
apply through the executor (``rolewarden.aws.profiles`` carries out the actions); ``reconcile``
composes them; ``guard`` caches the tag guard's reading of profiles; ``report`` writes the findings.
"""

from __future__ import annotations

from rolewarden.capabilities.profiles.reconcile import InstanceProfiles

CAPABILITY = InstanceProfiles()
