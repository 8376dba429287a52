"""The instance-profiles capability's AWS side: batched EC2 reads of instances and associations, the
association, metadata-option and lifecycle-hook writes, and the executors of the profile actions
(``EXECUTORS``/``METRICS``, found by ``rolewarden.aws.executor`` through its declared table)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of, is_profile_propagation
from rolewarden.aws.executor import Conflict, Executor, ExecutorFunction, Gone
from rolewarden.errors import RetryableError
from rolewarden.model.actions import Action
from rolewarden.model.instances import Association, InstanceView, MetadataOptions
from rolewarden.model.profiles import (
    AssociateProfile,
    CompleteLifecycle,
    HeartbeatLifecycle,
    ReassociateProfile,
    ReplaceProfile,
    SetMetadataOptions,
)

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


# -- the executors of the profile actions -----------------------------------------------------------------------
def _associate_with_backoff(
    ex: Executor, instance_id: str, profile_arn: str, *, after_disassociate: bool = False
) -> str:
    """AssociateIamInstanceProfile, retrying the two transient answers EC2 gives:
    a profile IAM has not propagated yet, and (just after a disassociate) the old association still
    disassociating. Past the budget it raises RetryableError so the record is redelivered."""
    delay, waited = 1.0, 0.0
    while True:
        try:
            return associate(instance_id, profile_arn)
        except ClientError as exc:
            code = code_of(exc)
            transient = is_profile_propagation(exc) or (after_disassociate and code == "IncorrectState")
            if code == "IncorrectState" and not after_disassociate:
                raise Conflict(f"{instance_id} already has an association") from exc
            if code == "InvalidInstanceID.NotFound":
                raise Gone(f"{instance_id} no longer exists") from exc
            if not transient:
                raise
            if waited >= ex.propagation_budget:
                raise RetryableError(
                    f"associate {profile_arn} with {instance_id}: still {code} after {waited:.0f}s "
                    "(IAM eventual consistency); the record will be redelivered",
                    code,
                ) from exc
            ex.sink.log(
                "INFO",
                f"{code} associating {instance_id}; retrying in {delay:.0f}s",
                resource=instance_id,
                error_code=code,
            )
            ex.sleep(delay)
            waited += delay
            delay = min(delay * 2, 16.0)


def _apply_associate(ex: Executor, action: AssociateProfile) -> dict[str, Any]:
    association_id = _associate_with_backoff(ex, action.instance_id, action.profile_arn)
    return {"association_id": association_id, "profile": action.profile_name}


def _apply_replace(ex: Executor, action: ReplaceProfile) -> dict[str, Any]:
    delay, waited = 1.0, 0.0
    while True:
        try:
            association_id = replace(action.association_id, action.profile_arn)
            return {"association_id": association_id, "profile": action.profile_name, "previous": action.previous_arn}
        except ClientError as exc:
            code = code_of(exc)
            if code in ("IncorrectState", "InvalidAssociationID.NotFound"):
                raise Conflict(f"association {action.association_id} is no longer active") from exc
            if not is_profile_propagation(exc):
                raise
            if waited >= ex.propagation_budget:
                raise RetryableError(f"replace on {action.instance_id}: profile not visible to EC2 yet", code) from exc
            ex.sleep(delay)
            waited += delay
            delay = min(delay * 2, 16.0)


def _apply_reassociate(ex: Executor, action: ReassociateProfile) -> dict[str, Any]:
    try:
        disassociate(action.association_id)
    except ClientError as exc:
        if code_of(exc) == "IncorrectState":  # another writer replaced it since it was read: re-read, decide again
            raise Conflict(f"association {action.association_id} is no longer active") from exc
        raise
    association_id = _associate_with_backoff(ex, action.instance_id, action.profile_arn, after_disassociate=True)
    return {"association_id": association_id, "profile": action.profile_name, "previous": action.previous_arn}


def _apply_complete(ex: Executor, action: CompleteLifecycle) -> dict[str, Any]:
    try:
        complete_lifecycle_action(action.group, action.hook, action.token, action.instance_id, action.result)
    except ClientError as exc:
        # "No active Lifecycle Action found": a duplicate event after completion, or the hook timed out.
        if code_of(exc) == "ValidationError":
            raise Gone(f"no pending lifecycle action: {exc.response['Error'].get('Message', '')}") from exc
        raise
    return {"group": action.group, "hook": action.hook, "result": action.result}


def _apply_heartbeat(ex: Executor, action: HeartbeatLifecycle) -> dict[str, Any]:
    try:
        record_lifecycle_action_heartbeat(action.group, action.hook, action.token, action.instance_id)
    except ClientError as exc:
        if code_of(exc) == "ValidationError":  # completed meanwhile, or timed out: nothing to keep alive
            raise Gone(f"no pending lifecycle action: {exc.response['Error'].get('Message', '')}") from exc
        raise
    return {"group": action.group, "hook": action.hook}


def _apply_metadata(ex: Executor, action: SetMetadataOptions) -> dict[str, Any]:
    try:
        answer = require_imdsv2(action.instance_id, action.hop_limit)
    except ClientError as exc:
        if code_of(exc) == "InvalidInstanceID.NotFound":
            raise Gone(f"{action.instance_id} no longer exists") from exc
        raise
    return {
        "http_tokens": answer.get("HttpTokens", "required"),
        "hop_limit": answer.get("HttpPutResponseHopLimit", action.hop_limit),
        "previous_tokens": action.previous_tokens,
        "previous_hop_limit": action.previous_hop_limit,
    }


#: The function that carries out each profile action (``rolewarden.aws.executor`` looks it up here).
EXECUTORS: dict[type[Action], ExecutorFunction] = {
    AssociateProfile: _apply_associate,
    ReplaceProfile: _apply_replace,
    ReassociateProfile: _apply_reassociate,
    CompleteLifecycle: _apply_complete,
    HeartbeatLifecycle: _apply_heartbeat,
    SetMetadataOptions: _apply_metadata,
}
#: The metric each profile action counts when it is applied.
METRICS: dict[type[Action], str] = {
    AssociateProfile: "Attached",
    ReplaceProfile: "Replaced",
    ReassociateProfile: "Replaced",
    CompleteLifecycle: "LifecycleCompleted",
    HeartbeatLifecycle: "LifecycleHeartbeats",
    SetMetadataOptions: "Imdsv2Required",
}
