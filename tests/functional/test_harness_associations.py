"""The local AWS hands out EC2 association ids as AWS does (rwlocal.hostile.Associations, played by the
fault proxy): a Replace answers with a fresh association id, the id it named stops being the active
association, and a second Replace or a Disassociate naming it fails with IncorrectState "The
association ... is not the active association" (aws-notes section 3). moto itself keeps the id and
accepts the second Replace; these tests show the proxy does not."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rwlocal import world as w
from rwlocal.proxy import ChaosProxy


def _ec2(endpoint: str) -> Any:
    return boto3.client("ec2", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))


def _active(ec2: Any, instance_id: str) -> dict[str, Any]:
    (association,) = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return dict(association)


def test_replace_answers_a_fresh_id_and_the_old_one_is_refused(aws: Any) -> None:
    web = w.create_profile("web-server")
    other = w.create_profile("other")
    data = w.create_profile("data-worker")
    instance = w.run_instance({"rolewarden:profile": "web"}, profile_arn=other)
    with ChaosProxy(aws.port) as proxy:
        ec2 = _ec2(proxy.endpoint)
        first = _active(ec2, instance)["AssociationId"]
        replaced = ec2.replace_iam_instance_profile_association(IamInstanceProfile={"Arn": web}, AssociationId=first)
        fresh = replaced["IamInstanceProfileAssociation"]["AssociationId"]
        assert fresh != first
        assert _active(ec2, instance)["AssociationId"] == fresh  # reads show the active id
        # moto alone would accept this second Replace (it kept the id); EC2 refuses it
        for call in (
            lambda: ec2.replace_iam_instance_profile_association(IamInstanceProfile={"Arn": data}, AssociationId=first),
            lambda: ec2.disassociate_iam_instance_profile(AssociationId=first),
        ):
            with pytest.raises(ClientError) as caught:
                call()
            assert caught.value.response["Error"]["Code"] == "IncorrectState"
            assert caught.value.response["Error"]["Message"] == f"The association {first} is not the active association"
        assert w.attached_profiles() == {instance: "web-server"}
        assert proxy.stats.writes_ok["ec2:ReplaceIamInstanceProfileAssociation"] == 1
        # the fresh id works for the next Replace and for a Disassociate, and is refused once superseded
        again = ec2.replace_iam_instance_profile_association(IamInstanceProfile={"Arn": data}, AssociationId=fresh)
        newest = again["IamInstanceProfileAssociation"]["AssociationId"]
        assert w.attached_profiles() == {instance: "data-worker"}
        ec2.disassociate_iam_instance_profile(AssociationId=newest)
        with pytest.raises(ClientError) as caught:
            ec2.disassociate_iam_instance_profile(AssociationId=newest)
        assert caught.value.response["Error"]["Code"] == "IncorrectState"
        assert w.attached_profiles() == {}
        # a new association gets moto's id, which is active until replaced
        associated = ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": web}, InstanceId=instance)
        assert _active(ec2, instance)["AssociationId"] == associated["IamInstanceProfileAssociation"]["AssociationId"]
