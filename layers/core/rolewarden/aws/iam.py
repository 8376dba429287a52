"""IAM reads used by the instance-profile capability (the grant and compliance capabilities add theirs)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws.clients import client
from rolewarden.aws.errors import classify, code_of
from rolewarden.model import ProfileInfo


def get_instance_profile(name: str) -> ProfileInfo | None:
    """The profile and its role, or None when IAM has no profile of that name."""
    try:
        raw = client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if code_of(exc) == "NoSuchEntity":
            return None
        raise classify(exc, f"iam:GetInstanceProfile {name}") from exc
    except BotoCoreError as exc:
        raise classify(exc, f"iam:GetInstanceProfile {name}") from exc
    roles = raw.get("Roles", [])
    return ProfileInfo(
        name=raw["InstanceProfileName"],
        arn=raw["Arn"],
        role_names=tuple(role["RoleName"] for role in roles),
        role_paths=tuple(role.get("Path", "/") for role in roles),
    )
