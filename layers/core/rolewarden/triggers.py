"""Event envelope -> which resources to reconcile: one table, not knowledge scattered through handlers.

Events are edge triggers only: a route parses its event's typed model (``rolewarden.events``) and
returns the ids of the resources it names, nothing else; the capability re-reads their real state
before deciding. A route imports its model's module when it first parses an event, so that a function
loads only the models of the events it receives (an instance-profiles function never the S3 ones).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rolewarden.errors import MalformedEvent
from rolewarden.model.targets import SWEEP, Target

CLOUDTRAIL = "AWS API Call via CloudTrail"
SCHEDULED = "Scheduled Event"


_EVENT_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z$")


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    detail_type: str
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = ()
    region: str = ""
    account: str = ""
    time: str = ""

    @property
    def epoch(self) -> float | None:
        """The event's ``time`` (EventBridge's UTC ``2026-11-28T09:10:00Z``) as epoch seconds; None when
        absent or in another form. Pure arithmetic: the decision core reads no clock."""
        match = _EVENT_TIME_RE.match(self.time)
        if match is None:
            return None
        try:
            return float(calendar.timegm((*(int(part) for part in match.groups()), 0, 0, 0)))
        except (ValueError, OverflowError):
            return None


def parse_envelope(event: Any) -> Envelope:
    """Validate the EventBridge envelope. Lenient about fields RoleWarden does not use (moto omits
    ``account``); strict about the ones it does."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"the event is a {type(event).__name__}, not a JSON object")
    missing = [key for key in ("source", "detail-type", "detail") if key not in event]
    if missing:
        raise MalformedEvent(f"the event lacks {', '.join(missing)}")
    source, detail_type, detail = event["source"], event["detail-type"], event["detail"]
    if not isinstance(source, str) or not isinstance(detail_type, str):
        raise MalformedEvent("source and detail-type must be strings")
    if not isinstance(detail, dict):
        raise MalformedEvent(f"detail is a {type(detail).__name__}, not an object")
    resources = event.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        raise MalformedEvent("resources must be a list of strings")
    event_id = event.get("id", "")
    return Envelope(
        id=event_id if isinstance(event_id, str) else str(event_id),
        source=source,
        detail_type=detail_type,
        detail=detail,
        resources=tuple(resources),
        region=str(event.get("region", "")),
        account=str(event.get("account", "")),
        time=str(event.get("time", "")),
    )


# -- routes: parse the route's typed model (rolewarden.events.<family>, imported by the route), return
# the targets it names
def _ec2_state(env: Envelope) -> list[Target]:
    from rolewarden.events.ec2 import InstanceStateChange

    event = InstanceStateChange.from_envelope(env)
    return [Target("instance", event.instance_id, launched_at=event.launched_at)]


def _asg_launch(env: Envelope) -> list[Target]:
    from rolewarden.events.ec2 import InstanceLaunch

    event = InstanceLaunch.from_envelope(env)
    return [Target("instance", event.instance_id, launched_at=event.launched_at)]


def _asg_lifecycle(env: Envelope) -> list[Target]:
    from rolewarden.events.ec2 import LaunchLifecycleAction

    event = LaunchLifecycleAction.from_envelope(env)
    if event is None:
        return []  # test notifications and other transitions concern nothing RoleWarden does
    action = event.action
    return [Target("instance", action.instance_id, lifecycle=action, launched_at=event.launched_at)]


def _tag_change_instances(env: Envelope) -> list[Target]:
    from rolewarden.events.ec2 import InstanceTagChange

    event = InstanceTagChange.from_envelope(env)
    return [Target("instance", instance_id) for instance_id in event.instance_ids] if event else []


def _ec2_tag_calls(env: Envelope) -> list[Target]:
    from rolewarden.events.ec2 import Ec2TagCall

    event = Ec2TagCall.from_envelope(env)
    return [Target("instance", instance_id) for instance_id in event.instance_ids] if event else []


def _sweep(env: Envelope) -> list[Target]:
    from rolewarden.events.own import ScheduledSweep

    ScheduledSweep.from_envelope(env)
    return [SWEEP]


def _s3_calls(env: Envelope) -> list[Target]:
    from rolewarden.events.s3 import S3BucketCall

    event = S3BucketCall.from_envelope(env)
    return [Target("bucket", event.bucket)] if event else []


def _tag_change_buckets(env: Envelope) -> list[Target]:
    from rolewarden.events.s3 import BucketTagChange

    event = BucketTagChange.from_envelope(env)
    return [Target("bucket", bucket) for bucket in event.buckets] if event else []


IAM_ROLE_EVENTS = frozenset(
    {
        "AttachRolePolicy",
        "DetachRolePolicy",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "UpdateAssumeRolePolicy",
        "PutRolePermissionsBoundary",
        "DeleteRolePermissionsBoundary",
        "CreateRole",
    }
)
IAM_POLICY_EVENTS = frozenset({"CreatePolicyVersion", "SetDefaultPolicyVersion"})


def caller_role_arn(env: Envelope) -> str:
    """The IAM role behind the CloudTrail caller's session ("" for users and services)."""
    identity = env.detail.get("userIdentity")
    context = identity.get("sessionContext") if isinstance(identity, dict) else None
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    arn = issuer.get("arn") if isinstance(issuer, dict) else None
    return arn if isinstance(arn, str) else ""


def _iam_calls(env: Envelope) -> list[Target]:
    from rolewarden.events.iam import IamPolicyCall, IamRoleCall

    if env.detail.get("eventName") in IAM_POLICY_EVENTS:
        policy = IamPolicyCall.from_envelope(env)
        return [Target("policy", policy.name)] if policy else []
    role = IamRoleCall.from_envelope(env)
    return [Target("role", role.name)] if role else []


#: IAM changes to an instance profile's role: the instance-profiles capability judges the profile again.
IAM_PROFILE_EVENTS = frozenset({"AddRoleToInstanceProfile", "RemoveRoleFromInstanceProfile"})


def _iam_profile_calls(env: Envelope) -> list[Target]:
    from rolewarden.events.iam import InstanceProfileCall

    event = InstanceProfileCall.from_envelope(env)
    return [Target("profile", event.name)] if event else []


#: Grant-policy drift the compliance capability found, sent to the grants queue (sender: compliance).
GRANT_DRIFT_SOURCE = "rolewarden.compliance"
GRANT_DRIFT = "Grant Policy Drift"


def _grant_drift(env: Envelope) -> list[Target]:
    """A drifted grant policy: its role's grants are re-published from the state table."""
    from rolewarden.events.own import GrantPolicyDrift

    return [Target("role", GrantPolicyDrift.from_envelope(env).role_name)]


Extractor = Callable[[Envelope], list[Target]]


@dataclass(frozen=True)
class Route:
    source: str
    detail_type: str
    extract: Extractor
    event_names: frozenset[str] = frozenset()  # CloudTrail routes: the eventName values handled


ROUTES: dict[str, list[Route]] = {
    "instance_profiles": [
        Route("aws.ec2", "EC2 Instance State-change Notification", _ec2_state),
        Route("aws.autoscaling", "EC2 Instance Launch Successful", _asg_launch),
        Route("aws.autoscaling", "EC2 Instance-launch Lifecycle Action", _asg_lifecycle),
        Route("aws.tag", "Tag Change on Resource", _tag_change_instances),
        Route("aws.ec2", CLOUDTRAIL, _ec2_tag_calls, frozenset({"CreateTags", "DeleteTags"})),
        Route("aws.iam", CLOUDTRAIL, _iam_profile_calls, IAM_PROFILE_EVENTS),
        Route("aws.events", SCHEDULED, _sweep),
    ],
    "bucket_grants": [
        Route(
            "aws.s3",
            CLOUDTRAIL,
            _s3_calls,
            frozenset(
                {
                    "PutBucketTagging",
                    "DeleteBucketTagging",
                    "CreateBucket",
                    "DeleteBucket",
                    "TagResource",
                    "UntagResource",
                    # A grant names the bucket's default customer key: a key change re-grants at once.
                    "PutBucketEncryption",
                    "DeleteBucketEncryption",
                }
            ),
        ),
        Route("aws.tag", "Tag Change on Resource", _tag_change_buckets),
        Route("aws.events", SCHEDULED, _sweep),
        Route(GRANT_DRIFT_SOURCE, GRANT_DRIFT, _grant_drift),
    ],
    "role_compliance": [
        Route("aws.iam", CLOUDTRAIL, _iam_calls, IAM_ROLE_EVENTS | IAM_POLICY_EVENTS),
        Route("aws.events", SCHEDULED, _sweep),
    ],
}


def register(capability: str, *routes: Route) -> None:
    ROUTES.setdefault(capability, []).extend(routes)


def route(capability: str, env: Envelope) -> list[Target]:
    """The targets an event names for ``capability``; [] when it concerns nothing RoleWarden manages."""
    for candidate in ROUTES.get(capability, []):
        if candidate.source != env.source or candidate.detail_type != env.detail_type:
            continue
        if candidate.event_names:
            name = env.detail.get("eventName")
            if name not in candidate.event_names:
                continue
        return candidate.extract(env)
    return []
