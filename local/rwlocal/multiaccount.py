"""The multi-account local AWS (issue 14): an AWS Organizations organization managed from moto's default
account, the central stack (template.yaml, Mode=central) there, and member stacks (member.yaml) in accounts
of the organization, each created the way a service-managed StackSet would, by CloudFormation in the
member account. moto keeps one state per account id, and STS AssumeRole into a role of another account
returns credentials that act there (it does not check the role exists), which is how this module reaches
each member.

moto differs from AWS here in two ways the harness fixes (``forwarding_keeps_the_source``), both about
the ``account`` RoleWarden's central functions act on: a rule whose target is an event bus in another
account re-puts the event there, so it arrives with the receiving account's ``account`` (and a new id,
no resources, a new time), where EventBridge keeps the event as it was; and moto's delivery to a queue
(a target without an input transformer) leaves ``account`` out of the event, where EventBridge delivers
the whole event. moto checks neither the central bus's policy (``aws:PrincipalOrgID``) nor the execution
role's trust: the unit tests of the templates cover those. Nor does moto's STS check that an assumed role
exists: ``sts_refuses_missing_roles`` makes RoleWarden's own AssumeRole calls in this process answer
AccessDenied, as STS does, where the execution role does not exist (read from moto's IAM), so an account
with no member stack is unavailable here as on AWS (poller processes of ``ParallelPipeline`` are not
covered: they import RoleWarden afresh).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from rwlocal.stack import ROOT, Stack, deploy, load_template, restore_inline_policies_as_text

CENTRAL_ACCOUNT = "123456789012"  # moto's default account: the organization's management account here
MEMBER_TEMPLATE = ROOT / "member.yaml"
EXECUTION_ROLE = "RoleWardenExecution"  # member.yaml's ExecutionRoleName default


# -- moto quirks: a forwarded event keeps its source account, and deliveries carry it -------------------
_install_lock = threading.Lock()
_installed = 0
_original_send: Callable[..., None] | None = None
_original_template: str | None = None
#: The default input template moto gives a target without a transformer, with the ``account`` AWS keeps.
_WITH_ACCOUNT = '"version": "0", "account": "<account>", '


def _is_bus(target: Mapping[str, Any]) -> bool:
    return ":event-bus/" in str(target.get("Arn", ""))


def _send_keeping_the_source(rule: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    """``moto.events.models.Rule.send_to_targets`` with event-bus targets delivered as EventBridge does:
    the event as it was (id, account, source, time, region, resources, detail) reaches the rules of the
    target bus, instead of a new event put there by the target's account."""
    assert _original_send is not None
    forwards = [t for t in rule.targets if _is_bus(t)]
    if not forwards:
        _original_send(rule, original_event, transform_input)
        return
    if not rule.event_pattern.matches_event(original_event):
        return
    pristine = copy.deepcopy(original_event)  # the SQS delivery below rewrites "time" in place
    others = [t for t in rule.targets if not _is_bus(t)]
    if others:
        rest = copy.copy(rule)
        rest.targets = others
        _original_send(rest, original_event, transform_input)
    from moto.events.models import events_backends
    from moto.utilities.arns import parse_arn

    for target in forwards:
        arn = parse_arn(target["Arn"])
        bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
        for receiving in list(bus.rules.values()):
            receiving.send_to_targets(copy.deepcopy(pristine))  # type: ignore[arg-type]


def install_forwarding_fix() -> None:
    """Install ``_send_keeping_the_source`` and the delivery template with ``account`` in the in-process
    moto server (counted: each install needs its ``uninstall_forwarding_fix``; the first installs, the
    last removes)."""
    global _installed, _original_send, _original_template
    from moto.events.models import Rule
    from moto.events.utils import EventTemplateParser

    with _install_lock:
        if _installed == 0:
            _original_send = Rule.send_to_targets
            Rule.send_to_targets = _send_keeping_the_source  # type: ignore[method-assign,assignment]
            _original_template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
            if '"<account>"' not in _original_template:
                EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = _original_template.replace(
                    '"version": "0", ', _WITH_ACCOUNT, 1
                )
        _installed += 1


def uninstall_forwarding_fix() -> None:
    global _installed, _original_send, _original_template
    from moto.events.models import Rule
    from moto.events.utils import EventTemplateParser

    with _install_lock:
        if _installed == 0:
            return
        _installed -= 1
        if _installed == 0 and _original_send is not None and _original_template is not None:
            Rule.send_to_targets = _original_send  # type: ignore[method-assign]
            EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = _original_template
            _original_send = _original_template = None


@contextmanager
def forwarding_keeps_the_source() -> Iterator[None]:
    """For the block, events forwarded to another account's bus keep their ``account`` (see the module)."""
    install_forwarding_fix()
    try:
        yield
    finally:
        uninstall_forwarding_fix()


# -- moto kindness: AssumeRole of a role that does not exist -----------------------------------------
def _role_exists(role_arn: str) -> bool:
    from moto.iam.models import iam_backends

    _, _, _, _, account, resource = role_arn.split(":", 5)
    name = resource.rsplit("/", 1)[-1]
    return any(role.name == name for role in iam_backends[account]["aws"].roles.values())


def _refuse_a_missing_role(**kwargs: Any) -> tuple[Any, dict[str, Any]] | None:
    """A botocore before-call handler: STS's AccessDenied (its shape when the role does not exist or does
    not trust the caller) for an AssumeRole whose role moto's IAM does not hold; None lets the call go."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    arn = str(kwargs["params"]["body"]["RoleArn"])  # the serialized query request
    if _role_exists(arn):
        return None
    message = f"User: arn:aws:sts::{CENTRAL_ACCOUNT}:assumed-role/rolewarden/fn is not authorized to perform: "
    parsed = {
        "Error": {"Type": "Sender", "Code": "AccessDenied", "Message": f"{message}sts:AssumeRole on resource: {arn}"},
        "ResponseMetadata": {"HTTPStatusCode": 403},
    }
    return AWSResponse("https://sts.amazonaws.com/", 403, HTTPHeaders(), None), parsed


@contextmanager
def sts_refuses_missing_roles() -> Iterator[None]:
    """For the block, RoleWarden's AssumeRole into a role moto's IAM does not hold is refused (AccessDenied)."""
    from rolewarden.aws import clients

    clients.add_hook("before-call.sts.AssumeRole", _refuse_a_missing_role)
    try:
        yield
    finally:
        clients.remove_hook("before-call.sts.AssumeRole", _refuse_a_missing_role)


# -- the organization -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Organization:
    """An organization in moto, managed from the central account (the default credentials)."""

    id: str
    root: str
    management_account: str = CENTRAL_ACCOUNT

    def add_account(self, name: str) -> str:
        """A new member account under the root (moto picks its id)."""
        orgs = boto3.client("organizations")
        status = orgs.create_account(AccountName=name, Email=f"{name.lower()}@rolewarden.example")
        return str(status["CreateAccountStatus"]["AccountId"])


def create_organization() -> Organization:
    """An organization (all features) whose management account is the central one."""
    orgs = boto3.client("organizations")
    org = orgs.create_organization(FeatureSet="ALL")["Organization"]
    (root,) = orgs.list_roots()["Roots"]
    return Organization(str(org["Id"]), str(root["Id"]), str(org["MasterAccountId"]))


#: An account of no organization here: a stranger's.
OUTSIDER = "999999999999"


# -- the stacks -----------------------------------------------------------------------------------------
def member_session(account: str, region: str = "us-east-1") -> boto3.session.Session:
    """A session acting in ``account``, as the organization's access role of a member would give."""
    sts = boto3.session.Session().client("sts")  # the central account's own credentials, whatever the default
    given = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="rwlocal-stackset"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=given["AccessKeyId"],
        aws_secret_access_key=given["SecretAccessKey"],
        aws_session_token=given["SessionToken"],
        region_name=region,
    )


@dataclass
class Member:
    account: str
    stack_name: str
    resources: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def session(self) -> boto3.session.Session:
        return member_session(self.account)


def deploy_central(organization_id: str, name: str = "rolewarden-central") -> Stack:
    return deploy(name, {"Mode": "central", "OrganizationId": organization_id})


def deploy_member(central: Stack, account: str, organization_id: str, region: str = "us-east-1") -> Member:
    """member.yaml in ``account`` with the parameters the StackSet would pass from the central outputs."""
    profiles, grants, compliance = central.outputs["CentralRoleNames"].split(",")
    parameters = {
        "CentralAccountId": CENTRAL_ACCOUNT,
        "CentralRegion": region,
        "CentralBusName": central.outputs["CentralBusName"],
        "InstanceProfilesRoleName": profiles,
        "BucketGrantsRoleName": grants,
        "RoleComplianceRoleName": compliance,
        "OrganizationId": organization_id,
    }
    name = f"StackSet-rolewarden-member-{account}"
    session = member_session(account, region)
    cfn = session.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(load_template(MEMBER_TEMPLATE)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"member stack in {account} ended {described['StackStatus']}")
    resources = {
        s["LogicalResourceId"]: s.get("PhysicalResourceId", "")
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        for s in page["StackResourceSummaries"]
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    restore_inline_policies_as_text(session.client("iam"))
    return Member(account, name, resources, outputs)


#: account -> its session, while a ``central_world`` lasts (moto forgets assumed-role keys when reset).
_sessions: dict[str, boto3.session.Session] = {}


def forget_sessions() -> None:
    """Drop the member sessions ``in_account`` keeps: after a reset of moto their keys would act in the
    default account (moto no longer knows them), silently."""
    _sessions.clear()


@contextmanager
def in_account(account: str) -> Iterator[boto3.session.Session]:
    """boto3's default session acts in ``account`` for the block: ``boto3.client`` (so rwlocal.world's
    helpers and ``rwlocal.pipeline.put_events``) reaches that account. RoleWarden's clients are not
    affected (they build their own session)."""
    saved = boto3.DEFAULT_SESSION
    session = _sessions.get(account)
    if session is None:
        session = boto3.session.Session() if account == CENTRAL_ACCOUNT else member_session(account)
        _sessions[account] = session
    boto3.DEFAULT_SESSION = session
    try:
        yield session
    finally:
        boto3.DEFAULT_SESSION = saved


# -- what happens in an account ------------------------------------------------------------------------
WEB = {"rolewarden:profile": "web"}


def launch(account: str, profile: bool = True) -> str:
    """In ``account``: the web-server profile (its role under the managed path) and a web-tagged instance."""
    from rwlocal import world as w

    with in_account(account):
        if profile:
            w.create_profile("web-server")
        return w.run_instance(WEB)


def running(account: str, instance: str) -> dict[str, Any]:
    """The EC2 state-change event of ``instance`` in ``account`` (put it on that account's bus)."""
    from rwlocal import world as w

    event = w.state_change_event(instance)
    event["resources"] = [f"arn:aws:ec2:us-east-1:{account}:instance/{instance}"]
    return event


# -- the whole world ------------------------------------------------------------------------------------
@dataclass
class CentralWorld:
    """The organization, the central stack and the member stacks, by name (``members["A"]``)."""

    organization: Organization
    central: Stack
    members: dict[str, Member]

    def account(self, name: str) -> str:
        return self.members[name].account

    def central_config(self, **accounts: Any) -> dict[str, Any]:
        """The config's ``accounts`` section for this organization (``accounts`` adds keys to it)."""
        return {"mode": "central", "organization_id": self.organization.id, **accounts}


@contextmanager
def central_world(members: Sequence[str] = ("A", "B"), name: str = "rolewarden-central") -> Iterator[CentralWorld]:
    """An organization, the central stack and one member stack per name in ``members`` (each in a new
    account of the organization), with forwarded events keeping their account and STS refusing missing
    roles for the block."""
    forget_sessions()
    try:
        with forwarding_keeps_the_source(), sts_refuses_missing_roles():
            organization = create_organization()
            central = deploy_central(organization.id, name)
            deployed = {n: deploy_member(central, organization.add_account(n), organization.id) for n in members}
            yield CentralWorld(organization, central, deployed)
    finally:
        forget_sessions()
