"""A corpus of roles for escalation detection: escalations (with variants) and controls that must pass.

Written for RoleWarden from the public catalogs (Rhino Security Labs' 21 methods, Datadog's
pathfinding.cloud, cloudsplaining's PRIVILEGE_ESCALATION_METHODS, PMapper's edge checks). The catalog
below is typed from those sources, NOT read from ``rolewarden.decide.escalation``: a path the table
gets wrong shows up here as a miss. Each escalation is played in variants:

* ``base``      one statement, every action, ``Resource: "*"``
* ``split``     one statement per action, alternating between an inline and an attached managed policy
* ``wildcard``  every action written as a prefix wildcard (``iam:PutRole*``)
* ``case``      actions in odd case (``IAM:putrolepolicy``)
* ``scoped``    the variant the path's danger really depends on: the role's own ARN or path for
                self-targeting writes, an attached policy for policy versions, ``iam:PassedToService``
                naming the path's service for PassRole

Controls are roles that must NOT be flagged: ``benign`` (everyday application policies) and
``scoped-safe`` (the dangerous actions, narrowed so they are not an escalation). Used by
tests/unit/test_escalation_corpus.py (``make test``) and bench/escalation_detection.py (``make bench``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ACCOUNT = "123456789012"
ROLE_NAME = "app"
ROLE_PATH = "/rolewarden/"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role{ROLE_PATH}{ROLE_NAME}"
APP_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/app-policy"

Kind = Literal["escalation", "benign", "scoped-safe"]


@dataclass(frozen=True)
class Case:
    id: str
    kind: Kind
    inline: Mapping[str, Mapping[str, Any]]
    managed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the path id a detector must name (escalations); "admin" for an admin-equivalent
    path: str | None = None

    @property
    def escalation(self) -> bool:
        return self.kind == "escalation"

    def merged(self) -> dict[str, Any]:
        """Every statement of the role in one document (how a single-policy tool sees the whole role)."""
        statements: list[Any] = []
        for document in [*self.inline.values(), *self.managed.values()]:
            body = document["Statement"]
            statements.extend(body if isinstance(body, list) else [body])
        return {"Version": "2012-10-17", "Statement": statements}


def doc(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def allow(action: str | Sequence[str], resource: str | Sequence[str] = "*", **extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": action if isinstance(action, str) else list(action),
        "Resource": resource if isinstance(resource, str) else list(resource),
        **extra,
    }


def deny(action: str | Sequence[str], resource: str | Sequence[str] = "*", **extra: Any) -> dict[str, Any]:
    return {**allow(action, resource, **extra), "Effect": "Deny"}


# ------------------------------------------------------------------ the catalog (typed from the sources)
#: (path id, service principal for PassRole paths or "", how the path targets: "" any/broad, "self", "policy",
#:  the actions it needs). PassRole is listed where the path passes a role.
CATALOG: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # Rhino 1-21 (with their pathfinding.cloud ids where published)
    ("iam-001", "", "policy", ("iam:CreatePolicyVersion",)),
    ("iam-setdefault", "", "policy", ("iam:SetDefaultPolicyVersion",)),
    ("ec2-001", "ec2.amazonaws.com", "", ("iam:PassRole", "ec2:RunInstances")),
    ("iam-002", "", "", ("iam:CreateAccessKey",)),
    ("iam-004", "", "", ("iam:CreateLoginProfile",)),
    ("iam-006", "", "", ("iam:UpdateLoginProfile",)),
    ("iam-008", "", "", ("iam:AttachUserPolicy",)),
    ("iam-010", "", "", ("iam:AttachGroupPolicy",)),
    ("iam-009", "", "self", ("iam:AttachRolePolicy",)),
    ("iam-007", "", "", ("iam:PutUserPolicy",)),
    ("iam-011", "", "", ("iam:PutGroupPolicy",)),
    ("iam-005", "", "self", ("iam:PutRolePolicy",)),
    ("iam-013", "", "", ("iam:AddUserToGroup",)),
    ("iam-012", "", "self", ("iam:UpdateAssumeRolePolicy", "sts:AssumeRole")),
    ("lambda-001", "lambda.amazonaws.com", "", ("iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction")),
    (
        "lambda-002",
        "lambda.amazonaws.com",
        "",
        ("iam:PassRole", "lambda:CreateFunction", "lambda:CreateEventSourceMapping"),
    ),
    ("lambda-003", "", "", ("lambda:UpdateFunctionCode",)),
    ("glue-001", "glue.amazonaws.com", "", ("iam:PassRole", "glue:CreateDevEndpoint")),
    ("glue-002", "", "", ("glue:UpdateDevEndpoint",)),
    ("cloudformation-001", "cloudformation.amazonaws.com", "", ("iam:PassRole", "cloudformation:CreateStack")),
    (
        "datapipeline-001",
        "datapipeline.amazonaws.com",
        "",
        ("iam:PassRole", "datapipeline:CreatePipeline", "datapipeline:PutPipelineDefinition"),
    ),
    # pathfinding.cloud beyond Rhino
    ("iam-003", "", "", ("iam:DeleteAccessKey", "iam:CreateAccessKey")),
    ("iam-014", "", "", ("iam:AttachRolePolicy", "sts:AssumeRole")),
    ("iam-015", "", "", ("iam:AttachUserPolicy", "iam:CreateAccessKey")),
    ("iam-016", "", "", ("iam:CreatePolicyVersion", "sts:AssumeRole")),
    ("iam-017", "", "", ("iam:PutRolePolicy", "sts:AssumeRole")),
    ("iam-018", "", "", ("iam:PutUserPolicy", "iam:CreateAccessKey")),
    ("iam-019", "", "", ("iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy")),
    ("iam-020", "", "", ("iam:CreatePolicyVersion", "iam:UpdateAssumeRolePolicy")),
    ("iam-021", "", "", ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy")),
    ("sts-001", "", "", ("sts:AssumeRole",)),
    ("lambda-004", "", "", ("lambda:UpdateFunctionCode", "lambda:InvokeFunction")),
    ("lambda-005", "", "", ("lambda:UpdateFunctionCode", "lambda:AddPermission")),
    ("lambda-006", "lambda.amazonaws.com", "", ("iam:PassRole", "lambda:CreateFunction", "lambda:AddPermission")),
    ("ec2-002", "", "", ("ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances")),
    ("ec2-003", "", "", ("ec2-instance-connect:SendSSHPublicKey",)),
    ("ec2-004", "ec2.amazonaws.com", "", ("iam:PassRole", "ec2:RequestSpotInstances")),
    ("ec2-005", "", "", ("ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate")),
    ("glue-003", "glue.amazonaws.com", "", ("iam:PassRole", "glue:CreateJob", "glue:StartJobRun")),
    ("glue-004", "glue.amazonaws.com", "", ("iam:PassRole", "glue:CreateJob", "glue:CreateTrigger")),
    ("glue-005", "glue.amazonaws.com", "", ("iam:PassRole", "glue:UpdateJob", "glue:StartJobRun")),
    ("glue-006", "glue.amazonaws.com", "", ("iam:PassRole", "glue:UpdateJob", "glue:CreateTrigger")),
    ("glue-007", "glue.amazonaws.com", "", ("iam:PassRole", "glue:CreateSession", "glue:RunStatement")),
    ("cloudformation-002", "", "", ("cloudformation:UpdateStack",)),
    (
        "cloudformation-003",
        "cloudformation.amazonaws.com",
        "",
        ("iam:PassRole", "cloudformation:CreateStackSet", "cloudformation:CreateStackInstances"),
    ),
    ("cloudformation-004", "cloudformation.amazonaws.com", "", ("iam:PassRole", "cloudformation:UpdateStackSet")),
    ("cloudformation-005", "", "", ("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet")),
    (
        "codebuild-001",
        "codebuild.amazonaws.com",
        "",
        ("iam:PassRole", "codebuild:CreateProject", "codebuild:StartBuild"),
    ),
    ("codebuild-002", "", "", ("codebuild:StartBuild",)),
    ("codebuild-003", "", "", ("codebuild:StartBuildBatch",)),
    (
        "codebuild-004",
        "codebuild.amazonaws.com",
        "",
        ("iam:PassRole", "codebuild:CreateProject", "codebuild:StartBuildBatch"),
    ),
    (
        "ecs-001",
        "ecs-tasks.amazonaws.com",
        "",
        ("iam:PassRole", "ecs:CreateCluster", "ecs:RegisterTaskDefinition", "ecs:CreateService"),
    ),
    (
        "ecs-002",
        "ecs-tasks.amazonaws.com",
        "",
        ("iam:PassRole", "ecs:CreateCluster", "ecs:RegisterTaskDefinition", "ecs:RunTask"),
    ),
    ("ecs-003", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:CreateService")),
    ("ecs-004", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:RunTask")),
    ("ecs-005", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:StartTask")),
    ("ecs-006", "", "", ("ecs:ExecuteCommand", "ecs:DescribeTasks")),
    ("ecs-007", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "ecs:RegisterContainerInstance", "ecs:StartTask")),
    ("ecs-008", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "ecs:RunTask")),
    ("ecs-009", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "ecs:StartTask")),
    ("sagemaker-001", "sagemaker.amazonaws.com", "", ("iam:PassRole", "sagemaker:CreateNotebookInstance")),
    ("sagemaker-002", "sagemaker.amazonaws.com", "", ("iam:PassRole", "sagemaker:CreateTrainingJob")),
    ("sagemaker-003", "sagemaker.amazonaws.com", "", ("iam:PassRole", "sagemaker:CreateProcessingJob")),
    ("sagemaker-004", "", "", ("sagemaker:CreatePresignedNotebookInstanceUrl",)),
    (
        "sagemaker-005",
        "",
        "",
        (
            "sagemaker:CreateNotebookInstanceLifecycleConfig",
            "sagemaker:StopNotebookInstance",
            "sagemaker:UpdateNotebookInstance",
            "sagemaker:StartNotebookInstance",
        ),
    ),
    ("ssm-001", "", "", ("ssm:StartSession",)),
    ("ssm-002", "", "", ("ssm:SendCommand",)),
    ("apprunner-001", "tasks.apprunner.amazonaws.com", "", ("iam:PassRole", "apprunner:CreateService")),
    ("apprunner-002", "", "", ("apprunner:UpdateService",)),
    (
        "bedrock-001",
        "bedrock-agentcore.amazonaws.com",
        "",
        (
            "iam:PassRole",
            "bedrock-agentcore:CreateCodeInterpreter",
            "bedrock-agentcore:StartCodeInterpreterSession",
            "bedrock-agentcore:InvokeCodeInterpreter",
        ),
    ),
    (
        "bedrock-002",
        "",
        "",
        ("bedrock-agentcore:StartCodeInterpreterSession", "bedrock-agentcore:InvokeCodeInterpreter"),
    ),
    ("mwaa-001", "airflow-env.amazonaws.com", "", ("iam:PassRole", "airflow:CreateEnvironment")),
    ("mwaa-002", "", "", ("airflow:UpdateEnvironment", "airflow:CreateCliToken")),
    # cloudsplaining beyond the above
    ("codestar-001", "codestar.amazonaws.com", "", ("iam:PassRole", "codestar:CreateProject")),
    # PMapper's edge checks beyond the above
    ("ec2-associate", "ec2.amazonaws.com", "", ("iam:PassRole", "ec2:AssociateIamInstanceProfile")),
    (
        "autoscaling-launch-configuration",
        "ec2.amazonaws.com",
        "",
        ("iam:PassRole", "autoscaling:CreateLaunchConfiguration", "autoscaling:CreateAutoScalingGroup"),
    ),
    (
        "ec2-launch-template",
        "ec2.amazonaws.com",
        "",
        ("iam:PassRole", "ec2:CreateLaunchTemplate", "autoscaling:CreateAutoScalingGroup"),
    ),
    ("codebuild-update-project", "codebuild.amazonaws.com", "", ("iam:PassRole", "codebuild:UpdateProject")),
    (
        "cloudformation-passrole-update",
        "cloudformation.amazonaws.com",
        "",
        ("iam:PassRole", "cloudformation:UpdateStack"),
    ),
    # the issue's own list: existing compute updated through its configuration, boundaries
    ("lambda-configuration", "", "", ("lambda:UpdateFunctionConfiguration",)),
    ("boundary-delete", "", "self", ("iam:DeleteRolePermissionsBoundary",)),
    ("emr-cluster", "elasticmapreduce.amazonaws.com", "", ("iam:PassRole", "elasticmapreduce:RunJobFlow")),
    ("batch-job", "ecs-tasks.amazonaws.com", "", ("iam:PassRole", "batch:RegisterJobDefinition", "batch:SubmitJob")),
)

#: pathfinding ids whose path is a superset of another in the table: a detector may name either.
ALSO_ACCEPTED: dict[str, tuple[str, ...]] = {
    "lambda-004": ("lambda-003",),
    "lambda-005": ("lambda-003",),
}


def _odd_case(action: str) -> str:
    service, name = action.split(":", 1)
    return f"{service.upper()}:{name.lower()}"


def _wildcard(action: str) -> str:
    service, name = action.split(":", 1)
    return f"{service}:{name[: max(3, len(name) - 4)]}*"


def _statements(actions: Sequence[str], principal: str, scope: str, style: str) -> list[dict[str, Any]]:
    out = []
    for action in actions:
        written = _odd_case(action) if style == "case" else _wildcard(action) if style == "wildcard" else action
        extra: dict[str, Any] = {}
        resource: str | list[str] = "*"
        if style == "scoped":
            if action == "iam:PassRole" and principal:
                extra = {"Condition": {"StringEquals": {"iam:PassedToService": principal}}}
            elif scope == "self":
                resource = f"arn:aws:iam::{ACCOUNT}:role/rolewarden/*"
            elif scope == "policy":
                resource = APP_POLICY
        out.append(allow(written, resource, **extra))
    return out


def _escalations() -> list[Case]:
    cases = []
    for pid, principal, scope, actions in CATALOG:
        for style in ("base", "split", "wildcard", "case", "scoped"):
            if style == "scoped" and not (principal or scope):
                continue
            statements = _statements(actions, principal, scope, "base" if style == "split" else style)
            managed = {APP_POLICY: doc(allow("s3:GetObject", "arn:aws:s3:::app-data/*"))}
            if style == "split":
                inline = {f"p{i}": doc(s) for i, s in enumerate(statements) if i % 2 == 0}
                odd = [s for i, s in enumerate(statements) if i % 2 == 1]
                if odd:
                    managed = {APP_POLICY: doc(*odd)}
            else:
                inline = {"app": doc(*statements)}
            cases.append(Case(f"{pid}/{style}", "escalation", inline, managed, pid))
    return cases


_SELF = f"arn:aws:iam::{ACCOUNT}:role/rolewarden/app"
_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"

HANDWRITTEN: tuple[Case, ...] = (
    # admin-equivalents
    Case("admin/star", "escalation", {"a": doc(allow("*"))}, path="admin"),
    Case("admin/star-star", "escalation", {"a": doc(allow("*:*"))}, path="admin"),
    Case(
        "admin/notaction",
        "escalation",
        {"a": doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})},
        path="admin",
    ),
    Case("iam-star/all", "escalation", {"a": doc(allow("iam:*"))}, path="iam-005"),
    Case("iam-star/odd-case", "escalation", {"a": doc(allow("IAM:*"))}, path="iam-009"),
    Case("lambda-star", "escalation", {"a": doc(allow("lambda:*"))}, path="lambda-003"),
    Case("glue-star", "escalation", {"a": doc(allow("Glue:*"))}, path="glue-002"),
    Case("ssm-star", "escalation", {"a": doc(allow("ssm:*"))}, path="ssm-002"),
    Case("ssm-send-command-wildcard", "escalation", {"a": doc(allow("ssm:Send*"))}, path="ssm-002"),
    # NotResource, NotAction on a narrower set
    Case(
        "notresource-putrolepolicy",
        "escalation",
        {"a": doc({"Effect": "Allow", "Action": "iam:PutRolePolicy", "NotResource": _ADMIN})},
        path="iam-005",
    ),
    Case(
        "notaction-iam-but-read",
        "escalation",
        {"a": doc({"Effect": "Allow", "NotAction": ["s3:*", "ec2:*"], "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"})},
        path="iam-005",
    ),
    # self-targeting resources
    Case("self-arn/putrolepolicy", "escalation", {"a": doc(allow("iam:PutRolePolicy", _SELF))}, path="iam-005"),
    Case("self-arn/attachrolepolicy", "escalation", {"a": doc(allow("iam:AttachRolePolicy", _SELF))}, path="iam-009"),
    Case(
        "self-path/attach-any-account",
        "escalation",
        {"a": doc(allow("iam:AttachRolePolicy", "arn:aws:iam::*:role/rolewarden/*"))},
        path="iam-009",
    ),
    Case(
        "own-policy/create-version",
        "escalation",
        {"a": doc(allow("iam:CreatePolicyVersion", APP_POLICY))},
        {APP_POLICY: doc(allow("s3:GetObject", "arn:aws:s3:::app-data/*"))},
        path="iam-001",
    ),
    # pairs on named roles
    Case(
        "pair/update-trust-then-assume-admin",
        "escalation",
        {"a": doc(allow("iam:UpdateAssumeRolePolicy", _ADMIN)), "b": doc(allow("sts:AssumeRole", _ADMIN))},
        path="iam-012",
    ),
    Case(
        "pair/putrolepolicy-then-assume",
        "escalation",
        {"a": doc(allow("iam:PutRolePolicy", _ADMIN), allow("sts:AssumeRole", _ADMIN))},
        path="iam-017",
    ),
    # conditions that do not narrow
    Case(
        "passrole-negated-service",
        "escalation",
        {
            "a": doc(
                allow("iam:PassRole", Condition={"StringNotEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
                allow(["lambda:CreateFunction", "lambda:InvokeFunction"]),
            )
        },
        path="lambda-001",
    ),
    Case(
        "passrole-ifexists-service",
        "escalation",
        {
            "a": doc(
                allow("iam:PassRole", Condition={"StringEqualsIfExists": {"iam:PassedToService": "ec2.amazonaws.com"}}),
                allow(["lambda:CreateFunction", "lambda:InvokeFunction"]),
            )
        },
        path="lambda-001",
    ),
    Case(
        "region-condition",
        "escalation",
        {"a": doc(allow("ssm:SendCommand", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}))},
        path="ssm-002",
    ),
    Case(
        "conditional-deny-does-not-close",
        "escalation",
        {
            "a": doc(
                allow("iam:PutRolePolicy"),
                deny("iam:PutRolePolicy", Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
            )
        },
        path="iam-005",
    ),
    Case(
        "attach-admin-by-condition",
        "escalation",
        {
            "a": doc(
                allow(
                    "iam:AttachRolePolicy",
                    _SELF,
                    Condition={"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}},
                )
            )
        },
        path="iam-009",
    ),
    Case(
        "deny-elsewhere-leaves-self",
        "escalation",
        {"a": doc(allow("iam:PutRolePolicy", "arn:aws:iam::*:role/*"), deny("iam:PutRolePolicy", _ADMIN))},
        path="iam-005",
    ),
)


_BENIGN_DOCS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "s3-read-bucket",
        doc(allow(["s3:GetObject", "s3:ListBucket"], ["arn:aws:s3:::app-data", "arn:aws:s3:::app-data/*"])),
    ),
    ("s3-write-prefix", doc(allow(["s3:PutObject", "s3:DeleteObject"], "arn:aws:s3:::app-data/uploads/*"))),
    (
        "dynamodb-crud",
        doc(
            allow(
                ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/app",
            )
        ),
    ),
    (
        "sqs-consumer",
        doc(allow(["sqs:ReceiveMessage", "sqs:DeleteMessage"], f"arn:aws:sqs:eu-west-1:{ACCOUNT}:app-queue")),
    ),
    ("logs", doc(allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"arn:aws:logs:*:{ACCOUNT}:log-group:/app/*"))),
    ("metrics", doc(allow("cloudwatch:PutMetricData"))),
    (
        "kms-decrypt",
        doc(allow("kms:Decrypt", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab")),
    ),
    (
        "ssm-parameters",
        doc(allow(["ssm:GetParameter", "ssm:GetParametersByPath"], f"arn:aws:ssm:*:{ACCOUNT}:parameter/app/*")),
    ),
    ("secrets", doc(allow("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:app/*"))),
    ("ec2-describe", doc(allow(["ec2:DescribeInstances", "ec2:DescribeTags"]))),
    ("iam-read-only", doc(allow(["iam:Get*", "iam:List*"]))),
    ("xray", doc(allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"]))),
    ("ecr-pull", doc(allow(["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]))),
    ("sns-publish", doc(allow("sns:Publish", f"arn:aws:sns:eu-west-1:{ACCOUNT}:app-events"))),
    ("caller-identity", doc(allow("sts:GetCallerIdentity"))),
    ("lambda-read-and-invoke", doc(allow(["lambda:GetFunction", "lambda:ListFunctions", "lambda:InvokeFunction"]))),
    ("cloudformation-read", doc(allow(["cloudformation:DescribeStacks", "cloudformation:ListStacks"]))),
    ("codebuild-read", doc(allow(["codebuild:BatchGetBuilds", "codebuild:ListProjects"]))),
    ("ssm-inventory", doc(allow(["ssm:DescribeInstanceInformation", "ssm:ListCommands"]))),
    ("ec2-start-stop", doc(allow(["ec2:StartInstances", "ec2:StopInstances"]))),
    ("autoscaling-capacity", doc(allow(["autoscaling:SetDesiredCapacity", "autoscaling:DescribeAutoScalingGroups"]))),
    ("glue-read", doc(allow(["glue:GetJob", "glue:GetJobRuns", "glue:GetTable"]))),
    ("ecs-read", doc(allow(["ecs:DescribeTasks", "ecs:ListTasks", "ecs:DescribeServices"]))),
    # the false positives
    ("passrole-alone", doc(allow("iam:PassRole"))),
    ("passrole-create-function-no-invoke", doc(allow("iam:PassRole"), allow("lambda:CreateFunction"))),
    (
        "self-service-own-user",
        doc(
            allow(
                ["iam:CreateAccessKey", "iam:UpdateLoginProfile", "iam:DeleteAccessKey", "iam:ChangePassword"],
                "arn:aws:iam::*:user/${aws:username}",
            )
        ),
    ),
    ("deny-all-iam", doc({"Effect": "Deny", "Action": "iam:*", "Resource": "*"})),
)

_SCOPED_SAFE_DOCS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "passrole-one-role-run-instances",
        doc(allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/web"), allow("ec2:RunInstances")),
    ),
    (
        "passrole-to-ec2-with-lambda",
        doc(
            allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
            allow(["lambda:CreateFunction", "lambda:InvokeFunction"]),
        ),
    ),
    (
        "passrole-to-ecs-with-glue",
        doc(
            allow("iam:PassRole", Condition={"StringLike": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
            allow(["glue:CreateJob", "glue:StartJobRun"]),
        ),
    ),
    ("putrolepolicy-other-role-only", doc(allow("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/other"))),
    (
        "attach-only-own-grant-policy",
        doc(
            allow(
                "iam:AttachRolePolicy",
                "arn:aws:iam::*:role/rolewarden/*",
                Condition={"ArnLike": {"iam:PolicyARN": f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/grants-app"}},
            )
        ),
    ),
    (
        "send-command-one-instance",
        doc(
            allow(
                "ssm:SendCommand",
                [
                    f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0123456789abcdef0",
                    "arn:aws:ssm:eu-west-1::document/AWS-RunShellScript",
                ],
            )
        ),
    ),
    (
        "send-command-patching-document-only",
        doc(
            allow(
                "ssm:SendCommand",
                ["arn:aws:ec2:*:*:instance/*", "arn:aws:ssm:*:*:document/AWS-RunPatchBaseline"],
            )
        ),
    ),
    (
        "update-code-one-function",
        doc(allow("lambda:UpdateFunctionCode", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:app-worker")),
    ),
    ("assume-one-role", doc(allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/rolewarden/reader"))),
    (
        "create-version-unattached-policy",
        doc(allow("iam:CreatePolicyVersion", f"arn:aws:iam::{ACCOUNT}:policy/rolewarden/other-policy")),
    ),
    (
        "start-build-one-project",
        doc(allow("codebuild:StartBuild", f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/app-build")),
    ),
    (
        "update-stack-one-stack",
        doc(allow("cloudformation:UpdateStack", f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/app/*")),
    ),
    (
        "ssh-key-one-instance",
        doc(
            allow(
                "ec2-instance-connect:SendSSHPublicKey", f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0123456789abcdef0"
            )
        ),
    ),
    ("putrolepolicy-denied", doc(allow("iam:PutRolePolicy"), deny("iam:PutRolePolicy"))),
    ("lambda-star-own-functions", doc(allow("lambda:*", f"arn:aws:lambda:*:{ACCOUNT}:function:app-*"))),
)


def cases() -> list[Case]:
    out = _escalations() + list(HANDWRITTEN)
    out += [Case(f"benign/{name}", "benign", {"app": d}) for name, d in _BENIGN_DOCS]
    out += [Case(f"scoped-safe/{name}", "scoped-safe", {"app": d}) for name, d in _SCOPED_SAFE_DOCS]
    return out


CASES: tuple[Case, ...] = tuple(cases())


def rolewarden_finds(case: Case, config: Any = None) -> set[str]:
    """The path ids RoleWarden names for the case's role ("admin" for no-admin-access)."""
    from rolewarden.config import parse_config
    from rolewarden.decide.compliance.judge import judge_documents

    found = judge_documents(
        config or parse_config("version: 1"),
        case.inline,
        case.managed,
        role_name=ROLE_NAME,
        role_path=ROLE_PATH,
        account=ACCOUNT,
    )
    ids: set[str] = set()
    for violation, _mode in found:
        if violation.rule == "no-admin-access":
            ids.add("admin")
        ids.update(p["id"] for p in violation.details.get("paths", []))
    return ids


def expected_ids(case: Case) -> set[str]:
    return {case.path, *ALSO_ACCEPTED.get(case.path, ())} if case.path else set()
