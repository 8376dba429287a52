"""EC2 and Auto Scaling: batched reads of instances and associations; the association writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of
from rolewarden.errors import RetryableError
from rolewarden.model.instances import Association, InstanceView, MetadataOptions

#: EC2 accepts up to 200 values in one filter.
FILTER_CHUNK = 200
SWEEP_STATES = ("pending", "running", "stopping", "stopped")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _view(raw: dict[str, Any]) -> InstanceView:
    tags = {tag["Key"]: tag.get("Value", "") for tag in raw.get("Tags", []) or []}
    profile = raw.get("IamInstanceProfile") or {}
    return InstanceView(
        instance_id=raw["InstanceId"],
        state=raw.get("State", {}).get("Name", "unknown"),
        tags=tags,
        profile_arn=profile.get("Arn"),
        metadata=_metadata(raw.get("MetadataOptions")),
    )


def _metadata(raw: dict[str, Any] | None) -> MetadataOptions | None:
    """MetadataOptions as DescribeInstances returns them (no extra read: issue 15)."""
    if not raw or not raw.get("HttpTokens"):
        return None
    return MetadataOptions(
        http_tokens=str(raw["HttpTokens"]),
        hop_limit=int(raw.get("HttpPutResponseHopLimit") or 1),
        http_endpoint=str(raw.get("HttpEndpoint") or "enabled"),
        state=str(raw.get("State") or "applied"),
    )


def _describe(filters: list[dict[str, Any]]) -> Iterator[InstanceView]:
    paginator = client("ec2").get_paginator("describe_instances")
    try:
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": 1000}):
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    yield _view(raw)
    except ClientError as exc:
        if code_of(exc) == "InvalidInstanceID.NotFound":
            # With an instance-id *filter* EC2 omits unknown ids; this answer can only be EC2's eventual
            # consistency just after a launch, so the batch is retried rather than its instances skipped.
            raise RetryableError(f"ec2:DescribeInstances: {exc}", "InvalidInstanceID.NotFound") from exc
        raise classify(exc, "ec2:DescribeInstances") from exc
    except BotoCoreError as exc:
        raise classify(exc, "ec2:DescribeInstances") from exc


def describe_instances(instance_ids: Iterable[str]) -> dict[str, InstanceView]:
    """The named instances that exist, keyed by id. Uses an instance-id *filter*, so an id that does
    not exist is simply absent (InstanceIds= would fail the whole call with InvalidInstanceID.NotFound)."""
    ids = sorted(set(instance_ids))
    found: dict[str, InstanceView] = {}
    for chunk in _chunks(ids, FILTER_CHUNK):
        for view in _describe([{"Name": "instance-id", "Values": chunk}]):
            found[view.instance_id] = view
    return found


def sweep_instances() -> dict[str, InstanceView]:
    """Every instance that can hold a profile (paginated, 1,000 a page)."""
    found: dict[str, InstanceView] = {}
    for views, _next in sweep_pages():
        found.update(views)
    return found


#: Instances per DescribeInstances page of the sweep (EC2 allows 5-1000); the sweep checks its time
#: budget between pages. A test lowers it.
SWEEP_PAGE_SIZE = 1000


def sweep_pages(start_token: str | None = None) -> Iterator[tuple[dict[str, InstanceView], str | None]]:
    """Every instance that can hold a profile, one DescribeInstances page at a time, with the
    NextToken that resumes after it (None on the last page). ``start_token`` resumes a sweep."""
    ec2 = client("ec2")
    token = start_token
    while True:
        kwargs: dict[str, Any] = {
            "Filters": [{"Name": "instance-state-name", "Values": list(SWEEP_STATES)}],
            "MaxResults": SWEEP_PAGE_SIZE,
        }
        if token:
            kwargs["NextToken"] = token
        try:
            page = ec2.describe_instances(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "ec2:DescribeInstances") from exc
        views = {
            view.instance_id: view
            for reservation in page.get("Reservations", [])
            for view in (_view(raw) for raw in reservation.get("Instances", []))
        }
        token = page.get("NextToken") or None
        yield views, token
        if token is None:
            return


def instances_holding(profile_arn: str) -> dict[str, InstanceView]:
    """Instances whose active association is ``profile_arn``. The associations are the source of truth
    (DescribeInstances can lag a Replace), read in one paginated call; then one DescribeInstances for
    the holders' tags."""
    holders = [i for i, a in describe_associations(None).items() if a.profile_arn == profile_arn]
    return describe_instances(holders) if holders else {}


def describe_associations(instance_ids: Iterable[str] | None) -> dict[str, Association]:
    """Active associations (associating/associated) of the named instances, or of all when None."""
    paginator = client("ec2").get_paginator("describe_iam_instance_profile_associations")
    state_filter = {"Name": "state", "Values": ["associating", "associated"]}
    if instance_ids is None:
        filter_sets = [[state_filter]]
    else:
        ids = sorted(set(instance_ids))
        filter_sets = [[{"Name": "instance-id", "Values": chunk}, state_filter] for chunk in _chunks(ids, FILTER_CHUNK)]
    result: dict[str, Association] = {}
    try:
        for filters in filter_sets:
            for page in paginator.paginate(Filters=filters):
                for raw in page.get("IamInstanceProfileAssociations", []):
                    if raw.get("State") not in ("associating", "associated"):
                        continue
                    result[raw["InstanceId"]] = Association(
                        association_id=raw["AssociationId"],
                        instance_id=raw["InstanceId"],
                        profile_arn=raw.get("IamInstanceProfile", {}).get("Arn", ""),
                        state=raw["State"],
                    )
    except (ClientError, BotoCoreError) as exc:
        raise classify(exc, "ec2:DescribeIamInstanceProfileAssociations") from exc
    return result


def associate(instance_id: str, profile_arn: str) -> str:
    response = client("ec2").associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile_arn}, InstanceId=instance_id
    )
    return str(response["IamInstanceProfileAssociation"]["AssociationId"])


def replace(association_id: str, profile_arn: str) -> str:
    response = client("ec2").replace_iam_instance_profile_association(
        IamInstanceProfile={"Arn": profile_arn}, AssociationId=association_id
    )
    return str(response["IamInstanceProfileAssociation"]["AssociationId"])


def disassociate(association_id: str) -> None:
    try:
        client("ec2").disassociate_iam_instance_profile(AssociationId=association_id)
    except ClientError as exc:
        if code_of(exc) != "InvalidAssociationID.NotFound":  # already gone: the goal is reached
            raise


def require_imdsv2(instance_id: str, hop_limit: int) -> dict[str, Any]:
    """ModifyInstanceMetadataOptions: HttpTokens required and the hop limit; the other options are not sent
    (EC2 keeps them). Returns the InstanceMetadataOptions EC2 answers."""
    response = client("ec2").modify_instance_metadata_options(
        InstanceId=instance_id, HttpTokens="required", HttpPutResponseHopLimit=hop_limit
    )
    return dict(response.get("InstanceMetadataOptions") or {})


def complete_lifecycle_action(group: str, hook: str, token: str, instance_id: str, result: str) -> None:
    client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=group,
        LifecycleHookName=hook,
        LifecycleActionToken=token,
        LifecycleActionResult=result,
        InstanceId=instance_id,
    )


def record_lifecycle_action_heartbeat(group: str, hook: str, token: str, instance_id: str) -> None:
    client("autoscaling").record_lifecycle_action_heartbeat(
        AutoScalingGroupName=group,
        LifecycleHookName=hook,
        LifecycleActionToken=token,
        InstanceId=instance_id,
    )
