"""The shape of an escalation path (``Need``, ``EscalationPath``, categories); the table itself is the data
file ``paths.json``, read and checked by ``rolewarden.decide.escalation.catalog`` (PURE: no imports of boto3,
the config or the clock).

Written for RoleWarden from four public catalogs; the facts (which actions, together, let a principal
raise its privileges) carry over, the table is ours. ``sources`` names where each path is published:

* ``rhino:N``      Rhino Security Labs, "AWS IAM Privilege Escalation - Methods and Mitigation" (method N of 21)
* ``pathfinding:ID`` Datadog's pathfinding.cloud path ID
* ``cloudsplaining:NAME`` cloudsplaining's PRIVILEGE_ESCALATION_METHODS entry
* ``pmapper:EDGE`` an edge checker of NCC Group's PMapper (iam, sts, lambda, ec2, cloudformation,
  codebuild, sagemaker, ssm, autoscaling)
* ``rolewarden``   not in those catalogs: a service that runs caller-supplied code with a passed role,
  from AWS's own documentation of that service

A path is a set of ``Need`` (every one required, possibly granted by different statements and
policies of the role). ``scope`` says which resources make the grant dangerous:

* ``broad``  a resource that names no particular thing (``*``, ``role/*``, a wildcard account), or NotResource
* ``self``   broad, or a pattern that matches the role's own ARN (its path, ``role/rolewarden/*``)
* ``policy`` broad, or a pattern that matches a customer-managed policy attached to the role
* ``any``    any resource at all (the companion half of a pair, e.g. sts:AssumeRole after rewriting a trust policy)

``types`` (broad needs only): every listed resource type must be granted broadly, e.g. ssm:SendCommand
is harmless when its ``document/`` resources name only a patching document. ``narrowed_by``: a
condition key that, given concrete values, narrows the grant (iam:PolicyARN on Attach*Policy).
``key`` marks the needs whose statements the remedy removes (the dangerous half, not the companion
actions an application also uses). PassRole paths name the service principal(s) the role is passed to;
an ``iam:PassedToService`` condition that names none of them leaves the path closed.

``category`` groups the paths (an exemption or a mode may name a whole category):

* ``iam-write``         IAM writes that change what a principal may do: on the role itself, on any user or group,
  and pairs that change another principal, then become it
* ``credentials``       credentials of other principals (access keys, console passwords)
* ``trust``             become another role
* ``passrole-code``     pass the role to a service that runs new, caller-supplied code with it
* ``existing-compute``  change the code of compute that already runs with a role
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["iam-write", "passrole-code", "existing-compute", "credentials", "trust"]
Scope = Literal["broad", "self", "policy", "any"]
CATEGORIES: tuple[Category, ...] = ("iam-write", "passrole-code", "existing-compute", "credentials", "trust")
PASS_ROLE = "iam:PassRole"


@dataclass(frozen=True)
class Need:
    action: str
    scope: Scope = "broad"
    key: bool = False
    types: tuple[str, ...] = ()
    narrowed_by: str = ""


@dataclass(frozen=True)
class EscalationPath:
    id: str
    title: str
    category: Category
    sources: tuple[str, ...]
    needs: tuple[Need, ...]
    #: service principals a PassRole path passes the role to (empty: not a PassRole path)
    principals: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(n.action for n in self.needs)
