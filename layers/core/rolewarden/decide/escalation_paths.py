"""The escalation paths RoleWarden looks for, as data (PURE: no imports of boto3, the config or the clock).

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


def _key(action: str, scope: Scope = "broad", **kw: object) -> Need:
    return Need(action, scope, True, **kw)  # type: ignore[arg-type]


def _with(action: str) -> Need:
    """A companion action: any resource will do (the caller creates or names the resource itself)."""
    return Need(action, "any")


def _iam(
    pid: str, title: str, sources: tuple[str, ...], *needs: Need, category: Category = "iam-write"
) -> EscalationPath:
    return EscalationPath(pid, title, category, sources, needs)


def _passrole(
    pid: str, title: str, sources: tuple[str, ...], principals: tuple[str, ...], *actions: str
) -> EscalationPath:
    return EscalationPath(
        pid, title, "passrole-code", sources, (_key(PASS_ROLE), *(_with(a) for a in actions)), principals
    )


def _existing(pid: str, title: str, sources: tuple[str, ...], first: Need, *more: str) -> EscalationPath:
    return EscalationPath(pid, title, "existing-compute", sources, (first, *(_with(a) for a in more)))


EC2 = ("ec2.amazonaws.com",)
LAMBDA = ("lambda.amazonaws.com",)
GLUE = ("glue.amazonaws.com",)
CFN = ("cloudformation.amazonaws.com",)
ECS = ("ecs-tasks.amazonaws.com",)
SAGEMAKER = ("sagemaker.amazonaws.com",)
CODEBUILD = ("codebuild.amazonaws.com",)

PATHS: tuple[EscalationPath, ...] = (
    # ---------------------------------------------------------------- iam-write: change what a principal may do
    _iam(
        "iam-001",
        "new default version of a policy attached to the role",
        ("rhino:1", "pathfinding:iam-001", "cloudsplaining:CreateNewPolicyVersion", "pmapper:iam"),
        _key("iam:CreatePolicyVersion", "policy"),
    ),
    _iam(
        "iam-setdefault",
        "switch an attached policy to another existing version",
        ("rhino:2", "cloudsplaining:SetExistingDefaultPolicyVersion"),
        _key("iam:SetDefaultPolicyVersion", "policy"),
    ),
    _iam(
        "iam-005",
        "inline policy on the role itself",
        ("rhino:12", "pathfinding:iam-005", "cloudsplaining:PutRolePolicy", "pmapper:iam"),
        _key("iam:PutRolePolicy", "self"),
    ),
    _iam(
        "iam-009",
        "attach any managed policy to the role itself",
        ("rhino:9", "pathfinding:iam-009", "cloudsplaining:AttachRolePolicy", "pmapper:iam"),
        _key("iam:AttachRolePolicy", "self", narrowed_by="iam:PolicyARN"),
    ),
    _iam(
        "iam-007",
        "inline policy on any user",
        ("rhino:10", "pathfinding:iam-007", "cloudsplaining:PutUserPolicy", "pmapper:iam"),
        _key("iam:PutUserPolicy"),
    ),
    _iam(
        "iam-008",
        "attach a managed policy to any user",
        ("rhino:7", "pathfinding:iam-008", "cloudsplaining:AttachUserPolicy", "pmapper:iam"),
        _key("iam:AttachUserPolicy", narrowed_by="iam:PolicyARN"),
    ),
    _iam(
        "iam-011",
        "inline policy on any group",
        ("rhino:11", "pathfinding:iam-011", "cloudsplaining:PutGroupPolicy"),
        _key("iam:PutGroupPolicy"),
    ),
    _iam(
        "iam-010",
        "attach a managed policy to any group",
        ("rhino:8", "pathfinding:iam-010", "cloudsplaining:AttachGroupPolicy"),
        _key("iam:AttachGroupPolicy", narrowed_by="iam:PolicyARN"),
    ),
    _iam(
        "iam-013",
        "add a user to any group",
        ("rhino:13", "pathfinding:iam-013", "cloudsplaining:AddUserToGroup"),
        _key("iam:AddUserToGroup"),
    ),
    _iam(
        "boundary-delete",
        "remove the role's own permissions boundary",
        ("rolewarden",),
        _key("iam:DeleteRolePermissionsBoundary", "self"),
    ),
    _iam(
        "boundary-put",
        "replace the role's own permissions boundary",
        ("rolewarden",),
        _key("iam:PutRolePermissionsBoundary", "self"),
    ),
    # pairs: change another principal, then become it
    _iam(
        "iam-014",
        "attach a policy to a role, then assume it",
        ("rhino:9", "pathfinding:iam-014", "pmapper:sts"),
        _key("iam:AttachRolePolicy", "any", narrowed_by="iam:PolicyARN"),
        _with("sts:AssumeRole"),
    ),
    _iam(
        "iam-016",
        "new version of a role's policy, then assume the role",
        ("pathfinding:iam-016", "cloudsplaining:CreatePolicyVersionThenAssumeRole"),
        _key("iam:CreatePolicyVersion", "any"),
        _with("sts:AssumeRole"),
    ),
    _iam(
        "iam-017",
        "inline policy on a role, then assume it",
        ("rhino:12", "pathfinding:iam-017"),
        _key("iam:PutRolePolicy", "any"),
        _with("sts:AssumeRole"),
    ),
    _iam(
        "iam-015",
        "attach a policy to a user, then create its access key",
        ("pathfinding:iam-015", "cloudsplaining:AttachUserPolicyThenCreateAccessKey"),
        _key("iam:AttachUserPolicy", "any", narrowed_by="iam:PolicyARN"),
        _with("iam:CreateAccessKey"),
    ),
    _iam(
        "iam-018",
        "inline policy on a user, then create its access key",
        ("pathfinding:iam-018", "cloudsplaining:PutUserPolicyThenCreateAccessKey"),
        _key("iam:PutUserPolicy", "any"),
        _with("iam:CreateAccessKey"),
    ),
    _iam(
        "iam-019",
        "attach a policy to a role and rewrite its trust policy",
        ("pathfinding:iam-019", "cloudsplaining:AttachRolePolicyThenUpdateAssumeRolePolicy"),
        _key("iam:AttachRolePolicy", "any", narrowed_by="iam:PolicyARN"),
        _key("iam:UpdateAssumeRolePolicy", "any"),
    ),
    _iam(
        "iam-020",
        "new version of a role's policy and rewrite its trust policy",
        ("pathfinding:iam-020", "cloudsplaining:CreatePolicyVersionThenUpdateAssumeRolePolicy"),
        _key("iam:CreatePolicyVersion", "any"),
        _key("iam:UpdateAssumeRolePolicy", "any"),
    ),
    _iam(
        "iam-021",
        "inline policy on a role and rewrite its trust policy",
        ("pathfinding:iam-021", "cloudsplaining:PutRolePolicyThenUpdateAssumeRolePolicy"),
        _key("iam:PutRolePolicy", "any"),
        _key("iam:UpdateAssumeRolePolicy", "any"),
    ),
    # ---------------------------------------------------------------- credentials of other principals
    _iam(
        "iam-002",
        "access keys for any user",
        ("rhino:4", "pathfinding:iam-002", "cloudsplaining:CreateAccessKey", "pmapper:iam"),
        _key("iam:CreateAccessKey"),
        category="credentials",
    ),
    _iam(
        "iam-003",
        "delete then create access keys for any user",
        ("pathfinding:iam-003", "cloudsplaining:CreateAndRotateAccessKey"),
        _key("iam:CreateAccessKey"),
        _with("iam:DeleteAccessKey"),
        category="credentials",
    ),
    _iam(
        "iam-004",
        "console password for any user",
        ("rhino:5", "pathfinding:iam-004", "cloudsplaining:CreateLoginProfile", "pmapper:iam"),
        _key("iam:CreateLoginProfile"),
        category="credentials",
    ),
    _iam(
        "iam-006",
        "reset the console password of any user",
        ("rhino:6", "pathfinding:iam-006", "cloudsplaining:UpdateLoginProfile", "pmapper:iam"),
        _key("iam:UpdateLoginProfile"),
        category="credentials",
    ),
    # ---------------------------------------------------------------- trust: become another role
    _iam(
        "sts-001",
        "assume any role that trusts the account",
        ("pathfinding:sts-001", "pmapper:sts"),
        _key("sts:AssumeRole"),
        category="trust",
    ),
    _iam(
        "iam-012",
        "rewrite a role's trust policy (and assume it: a trust naming the caller needs no sts:AssumeRole grant)",
        ("rhino:14", "pathfinding:iam-012", "cloudsplaining:UpdateRolePolicyToAssumeIt", "pmapper:sts"),
        _key("iam:UpdateAssumeRolePolicy", "any"),
        category="trust",
    ),
    # ---------------------------------------------------------------- passrole-code: pass a role to new code
    _passrole(
        "ec2-001",
        "run an instance with the role",
        ("rhino:3", "pathfinding:ec2-001", "cloudsplaining:CreateEC2WithExistingIP", "pmapper:ec2"),
        EC2,
        "ec2:RunInstances",
    ),
    _passrole(
        "ec2-004",
        "request a spot instance with the role",
        ("pathfinding:ec2-004", "cloudsplaining:PassExistingRoleToNewEC2SpotInstance"),
        EC2,
        "ec2:RequestSpotInstances",
    ),
    _passrole(
        "ec2-associate",
        "attach the role to an instance the caller controls",
        ("pmapper:ec2",),
        EC2,
        "ec2:AssociateIamInstanceProfile",
    ),
    _passrole(
        "ec2-replace-association",
        "swap the role onto an instance the caller controls",
        ("pmapper:ec2",),
        EC2,
        "ec2:ReplaceIamInstanceProfileAssociation",
    ),
    _passrole(
        "ec2-launch-template",
        "launch template with the role, then an Auto Scaling group",
        ("pmapper:autoscaling",),
        EC2,
        "ec2:CreateLaunchTemplate",
        "autoscaling:CreateAutoScalingGroup",
    ),
    _passrole(
        "autoscaling-launch-configuration",
        "launch configuration with the role, then an Auto Scaling group",
        ("pmapper:autoscaling",),
        EC2,
        "autoscaling:CreateLaunchConfiguration",
        "autoscaling:CreateAutoScalingGroup",
    ),
    _passrole(
        "lambda-001",
        "new function with the role, invoked",
        (
            "rhino:15",
            "pathfinding:lambda-001",
            "cloudsplaining:PassExistingRoleToNewLambdaThenInvoke",
            "pmapper:lambda",
        ),
        LAMBDA,
        "lambda:CreateFunction",
        "lambda:InvokeFunction",
    ),
    _passrole(
        "lambda-002",
        "new function with the role, triggered by an event source",
        (
            "rhino:16",
            "pathfinding:lambda-002",
            "cloudsplaining:PassExistingRoleToNewLambdaThenTriggerWithExistingDynamo",
        ),
        LAMBDA,
        "lambda:CreateFunction",
        "lambda:CreateEventSourceMapping",
    ),
    _passrole(
        "lambda-006",
        "new function with the role, opened by a resource policy",
        ("pathfinding:lambda-006", "cloudsplaining:PassExistingRoleToNewLambdaThenAddPermission"),
        LAMBDA,
        "lambda:CreateFunction",
        "lambda:AddPermission",
    ),
    _passrole(
        "lambda-url",
        "new function with the role, reached through a function URL",
        ("rolewarden",),
        LAMBDA,
        "lambda:CreateFunction",
        "lambda:CreateFunctionUrlConfig",
    ),
    _passrole(
        "glue-001",
        "new Glue dev endpoint with the role",
        ("rhino:18", "pathfinding:glue-001", "cloudsplaining:PassExistingRoleToNewGlueDevEndpoint"),
        GLUE,
        "glue:CreateDevEndpoint",
    ),
    _passrole(
        "glue-003",
        "new Glue job with the role, run",
        ("pathfinding:glue-003", "cloudsplaining:PassExistingRoleToNewGlueJobThenRun"),
        GLUE,
        "glue:CreateJob",
        "glue:StartJobRun",
    ),
    _passrole(
        "glue-004",
        "new Glue job with the role, triggered",
        ("pathfinding:glue-004", "cloudsplaining:PassExistingRoleToNewGlueJobViaTrigger"),
        GLUE,
        "glue:CreateJob",
        "glue:CreateTrigger",
    ),
    _passrole(
        "glue-005",
        "Glue job switched to the role, run",
        ("pathfinding:glue-005", "cloudsplaining:PassExistingRoleToUpdatedGlueJobThenRun"),
        GLUE,
        "glue:UpdateJob",
        "glue:StartJobRun",
    ),
    _passrole(
        "glue-006",
        "Glue job switched to the role, triggered",
        ("pathfinding:glue-006", "cloudsplaining:PassExistingRoleToUpdatedGlueJobViaTrigger"),
        GLUE,
        "glue:UpdateJob",
        "glue:CreateTrigger",
    ),
    _passrole(
        "glue-007",
        "Glue interactive session with the role",
        ("pathfinding:glue-007",),
        GLUE,
        "glue:CreateSession",
        "glue:RunStatement",
    ),
    _passrole(
        "cloudformation-001",
        "new stack run as the role",
        (
            "rhino:20",
            "pathfinding:cloudformation-001",
            "cloudsplaining:PassExistingRoleToCloudFormation",
            "pmapper:cloudformation",
        ),
        CFN,
        "cloudformation:CreateStack",
    ),
    _passrole(
        "cloudformation-003",
        "new stack set run as the role",
        ("pathfinding:cloudformation-003", "cloudsplaining:PassExistingRoleToNewCloudFormationStackSet"),
        CFN,
        "cloudformation:CreateStackSet",
        "cloudformation:CreateStackInstances",
    ),
    _passrole(
        "cloudformation-004",
        "stack set switched to the role",
        ("pathfinding:cloudformation-004", "cloudsplaining:PassRoleToUpdateCloudFormationStackSet"),
        CFN,
        "cloudformation:UpdateStackSet",
    ),
    _passrole(
        "cloudformation-passrole-update",
        "existing stack switched to the role",
        ("pmapper:cloudformation",),
        CFN,
        "cloudformation:UpdateStack",
    ),
    _passrole(
        "datapipeline-001",
        "new Data Pipeline run as the role",
        ("rhino:21", "pathfinding:datapipeline-001", "cloudsplaining:PassExistingRoleToNewDataPipeline"),
        ("datapipeline.amazonaws.com",),
        "datapipeline:CreatePipeline",
        "datapipeline:PutPipelineDefinition",
    ),
    _passrole(
        "codebuild-001",
        "new CodeBuild project with the role, built",
        (
            "pathfinding:codebuild-001",
            "cloudsplaining:PassExistingRoleToNewCodeBuildProjectThenBuild",
            "pmapper:codebuild",
        ),
        CODEBUILD,
        "codebuild:CreateProject",
        "codebuild:StartBuild",
    ),
    _passrole(
        "codebuild-004",
        "new CodeBuild project with the role, batch-built",
        ("pathfinding:codebuild-004", "cloudsplaining:PassExistingRoleToNewCodeBuildProjectThenBuildBatch"),
        CODEBUILD,
        "codebuild:CreateProject",
        "codebuild:StartBuildBatch",
    ),
    _passrole(
        "codebuild-update-project",
        "CodeBuild project switched to the role",
        ("pmapper:codebuild",),
        CODEBUILD,
        "codebuild:UpdateProject",
    ),
    _passrole(
        "ecs-001",
        "new cluster, task definition with the role, service",
        ("pathfinding:ecs-001", "cloudsplaining:PassExistingRoleToNewECSClusterServiceTask"),
        ECS,
        "ecs:CreateCluster",
        "ecs:RegisterTaskDefinition",
        "ecs:CreateService",
    ),
    _passrole(
        "ecs-002",
        "new cluster, task definition with the role, run",
        ("pathfinding:ecs-002", "cloudsplaining:PassExistingRoleToNewECSClusterRunTask"),
        ECS,
        "ecs:CreateCluster",
        "ecs:RegisterTaskDefinition",
        "ecs:RunTask",
    ),
    _passrole(
        "ecs-003",
        "task definition with the role, service",
        ("pathfinding:ecs-003", "cloudsplaining:PassExistingRoleToNewECSService"),
        ECS,
        "ecs:RegisterTaskDefinition",
        "ecs:CreateService",
    ),
    _passrole(
        "ecs-004",
        "task definition with the role, run",
        ("pathfinding:ecs-004", "cloudsplaining:PassExistingRoleToNewECSTaskViaRunTask"),
        ECS,
        "ecs:RegisterTaskDefinition",
        "ecs:RunTask",
    ),
    _passrole(
        "ecs-005",
        "task definition with the role, started",
        ("pathfinding:ecs-005", "cloudsplaining:PassExistingRoleToNewECSTaskViaStartTask"),
        ECS,
        "ecs:RegisterTaskDefinition",
        "ecs:StartTask",
    ),
    _passrole(
        "ecs-007",
        "register a container instance, start a task with the role",
        ("pathfinding:ecs-007",),
        ECS,
        "ecs:RegisterContainerInstance",
        "ecs:StartTask",
    ),
    _passrole("ecs-008", "run a task with the role as an override", ("pathfinding:ecs-008",), ECS, "ecs:RunTask"),
    _passrole("ecs-009", "start a task with the role as an override", ("pathfinding:ecs-009",), ECS, "ecs:StartTask"),
    _passrole(
        "sagemaker-001",
        "new notebook instance with the role",
        (
            "pathfinding:sagemaker-001",
            "cloudsplaining:PassExistingRoleToNewSageMakerNotebookInstance",
            "pmapper:sagemaker",
        ),
        SAGEMAKER,
        "sagemaker:CreateNotebookInstance",
    ),
    _passrole(
        "sagemaker-002",
        "new training job with the role",
        ("pathfinding:sagemaker-002", "cloudsplaining:PassExistingRoleToNewSageMakerTrainingJob", "pmapper:sagemaker"),
        SAGEMAKER,
        "sagemaker:CreateTrainingJob",
    ),
    _passrole(
        "sagemaker-003",
        "new processing job with the role",
        ("pathfinding:sagemaker-003", "cloudsplaining:PassExistingRoleToNewSageMakerProcessingJob"),
        SAGEMAKER,
        "sagemaker:CreateProcessingJob",
    ),
    _passrole(
        "apprunner-001",
        "new App Runner service with the role",
        ("pathfinding:apprunner-001", "cloudsplaining:PassExistingRoleToNewAppRunnerService"),
        ("tasks.apprunner.amazonaws.com",),
        "apprunner:CreateService",
    ),
    _passrole(
        "bedrock-001",
        "new Bedrock AgentCore code interpreter with the role, invoked",
        ("pathfinding:bedrock-001", "cloudsplaining:PassExistingRoleToNewBedrockCodeInterpreter"),
        ("bedrock-agentcore.amazonaws.com",),
        "bedrock-agentcore:CreateCodeInterpreter",
        "bedrock-agentcore:StartCodeInterpreterSession",
        "bedrock-agentcore:InvokeCodeInterpreter",
    ),
    _passrole(
        "mwaa-001",
        "new Airflow (MWAA) environment with the role",
        ("pathfinding:mwaa-001",),
        ("airflow-env.amazonaws.com", "airflow.amazonaws.com"),
        "airflow:CreateEnvironment",
    ),
    _passrole(
        "codestar-001",
        "new CodeStar project with the role",
        ("cloudsplaining:PassExistingRoleToNewCodeStarProject",),
        ("codestar.amazonaws.com",),
        "codestar:CreateProject",
    ),
    _passrole(
        "batch-job",
        "Batch job definition with the role, submitted",
        ("rolewarden",),
        ECS,
        "batch:RegisterJobDefinition",
        "batch:SubmitJob",
    ),
    _passrole(
        "emr-cluster",
        "EMR cluster with the role, steps run",
        ("rolewarden",),
        ("elasticmapreduce.amazonaws.com", "ec2.amazonaws.com"),
        "elasticmapreduce:RunJobFlow",
    ),
    _passrole(
        "emr-serverless",
        "EMR Serverless job run as the role",
        ("rolewarden",),
        ("emr-serverless.amazonaws.com",),
        "emr-serverless:StartJobRun",
    ),
    _passrole(
        "ssm-automation",
        "SSM Automation run as the role",
        ("rolewarden",),
        ("ssm.amazonaws.com",),
        "ssm:StartAutomationExecution",
    ),
    _passrole(
        "states-machine",
        "Step Functions state machine run as the role",
        ("rolewarden",),
        ("states.amazonaws.com",),
        "states:CreateStateMachine",
        "states:StartExecution",
    ),
    # ---------------------------------------------------------------- existing-compute: code in what runs already
    _existing(
        "lambda-003",
        "replace the code of any function",
        ("rhino:17", "pathfinding:lambda-003", "cloudsplaining:EditExistingLambdaFunctionWithRole", "pmapper:lambda"),
        _key("lambda:UpdateFunctionCode"),
    ),
    _existing(
        "lambda-configuration",
        "add a layer (or wrapper) to any function",
        ("rolewarden",),
        _key("lambda:UpdateFunctionConfiguration"),
    ),
    _existing(
        "glue-002",
        "add an SSH key to any Glue dev endpoint",
        ("rhino:19", "pathfinding:glue-002", "cloudsplaining:UpdateExistingGlueDevEndpoint"),
        _key("glue:UpdateDevEndpoint"),
    ),
    _existing(
        "cloudformation-002",
        "update any stack (runs as its service role)",
        ("pathfinding:cloudformation-002", "pmapper:cloudformation"),
        _key("cloudformation:UpdateStack"),
    ),
    _existing(
        "cloudformation-005",
        "change set on any stack, executed",
        ("pathfinding:cloudformation-005", "cloudsplaining:ExecuteCloudFormationChangeSet"),
        _key("cloudformation:CreateChangeSet"),
        "cloudformation:ExecuteChangeSet",
    ),
    _existing(
        "codebuild-002",
        "start any build with a buildspec override",
        ("pathfinding:codebuild-002",),
        _key("codebuild:StartBuild"),
    ),
    _existing(
        "codebuild-003",
        "start any batch build with a buildspec override",
        ("pathfinding:codebuild-003",),
        _key("codebuild:StartBuildBatch"),
    ),
    _existing(
        "ssm-002",
        "run commands on any managed instance",
        ("pathfinding:ssm-002", "pmapper:ssm"),
        _key("ssm:SendCommand", types=("instance", "document")),
    ),
    _existing(
        "ssm-001",
        "shell on any managed instance",
        ("pathfinding:ssm-001", "pmapper:ssm"),
        _key("ssm:StartSession", types=("instance",)),
    ),
    _existing(
        "ec2-002",
        "new user data on any instance, restarted",
        ("pathfinding:ec2-002", "cloudsplaining:ModifyEC2InstanceUserDataThenRestart"),
        _key("ec2:ModifyInstanceAttribute"),
        "ec2:StopInstances",
        "ec2:StartInstances",
    ),
    _existing(
        "ec2-005",
        "new default version of any launch template",
        ("pathfinding:ec2-005", "cloudsplaining:ModifyExistingEC2LaunchTemplate"),
        _key("ec2:CreateLaunchTemplateVersion"),
        "ec2:ModifyLaunchTemplate",
    ),
    _existing(
        "autoscaling-update",
        "new version of a launch template (its profile kept), an Auto Scaling group switched to it",
        ("rolewarden",),
        _key("ec2:CreateLaunchTemplateVersion"),
        "autoscaling:UpdateAutoScalingGroup",
    ),
    _existing(
        "ec2-003",
        "SSH key pushed to any instance",
        ("pathfinding:ec2-003", "cloudsplaining:EC2InstanceConnectSendSSHPublicKey"),
        _key("ec2-instance-connect:SendSSHPublicKey"),
    ),
    _existing(
        "ecs-006",
        "shell in any running task",
        ("pathfinding:ecs-006", "cloudsplaining:ECSExecuteCommandOnRunningTask"),
        _key("ecs:ExecuteCommand"),
        "ecs:DescribeTasks",
    ),
    _existing(
        "sagemaker-004",
        "presigned URL to any notebook instance",
        ("pathfinding:sagemaker-004", "cloudsplaining:CreatePresignedSageMakerNotebookUrl"),
        _key("sagemaker:CreatePresignedNotebookInstanceUrl"),
    ),
    _existing(
        "sagemaker-005",
        "lifecycle configuration on any notebook instance",
        ("pathfinding:sagemaker-005", "cloudsplaining:UpdateSageMakerNotebookLifecycleConfig"),
        _key("sagemaker:CreateNotebookInstanceLifecycleConfig"),
        "sagemaker:UpdateNotebookInstance",
        "sagemaker:StopNotebookInstance",
        "sagemaker:StartNotebookInstance",
    ),
    _existing(
        "bedrock-002",
        "session in any Bedrock AgentCore code interpreter",
        ("pathfinding:bedrock-002", "cloudsplaining:AccessExistingBedrockCodeInterpreterSession"),
        _key("bedrock-agentcore:StartCodeInterpreterSession"),
        "bedrock-agentcore:InvokeCodeInterpreter",
    ),
    _existing(
        "apprunner-002",
        "update any App Runner service",
        ("pathfinding:apprunner-002",),
        _key("apprunner:UpdateService"),
    ),
    _existing(
        "mwaa-002",
        "update any Airflow (MWAA) environment",
        ("pathfinding:mwaa-002",),
        _key("airflow:UpdateEnvironment"),
        "airflow:CreateCliToken",
    ),
)

PATHS_BY_ID: dict[str, EscalationPath] = {p.id: p for p in PATHS}
PATH_IDS: tuple[str, ...] = tuple(PATHS_BY_ID)
if len(PATH_IDS) != len(PATHS):  # pragma: no cover - a duplicated id is a bug in the table
    raise ValueError("duplicate escalation path id")


def all_actions() -> tuple[str, ...]:
    """Every action the table names (checked against the IAM service catalog by a test)."""
    return tuple(sorted({n.action for p in PATHS for n in p.needs}))
