"""Escalation paths that change the code of compute which already runs with a role (category
``existing-compute``), as data. Sources and scopes: ``rolewarden.decide.escalation.path``."""

from __future__ import annotations

from rolewarden.decide.escalation.path import EscalationPath, existing_path, key_need

EXISTING_COMPUTE: tuple[EscalationPath, ...] = (
    # ---------------------------------------------------------------- existing-compute: code in what runs already
    existing_path(
        "lambda-003",
        "replace the code of any function",
        ("rhino:17", "pathfinding:lambda-003", "cloudsplaining:EditExistingLambdaFunctionWithRole", "pmapper:lambda"),
        key_need("lambda:UpdateFunctionCode"),
    ),
    existing_path(
        "lambda-configuration",
        "add a layer (or wrapper) to any function",
        ("rolewarden",),
        key_need("lambda:UpdateFunctionConfiguration"),
    ),
    existing_path(
        "glue-002",
        "add an SSH key to any Glue dev endpoint",
        ("rhino:19", "pathfinding:glue-002", "cloudsplaining:UpdateExistingGlueDevEndpoint"),
        key_need("glue:UpdateDevEndpoint"),
    ),
    existing_path(
        "cloudformation-002",
        "update any stack (runs as its service role)",
        ("pathfinding:cloudformation-002", "pmapper:cloudformation"),
        key_need("cloudformation:UpdateStack"),
    ),
    existing_path(
        "cloudformation-005",
        "change set on any stack, executed",
        ("pathfinding:cloudformation-005", "cloudsplaining:ExecuteCloudFormationChangeSet"),
        key_need("cloudformation:CreateChangeSet"),
        "cloudformation:ExecuteChangeSet",
    ),
    existing_path(
        "codebuild-002",
        "start any build with a buildspec override",
        ("pathfinding:codebuild-002",),
        key_need("codebuild:StartBuild"),
    ),
    existing_path(
        "codebuild-003",
        "start any batch build with a buildspec override",
        ("pathfinding:codebuild-003",),
        key_need("codebuild:StartBuildBatch"),
    ),
    existing_path(
        "ssm-002",
        "run commands on any managed instance",
        ("pathfinding:ssm-002", "pmapper:ssm"),
        key_need("ssm:SendCommand", types=("instance", "document")),
    ),
    existing_path(
        "ssm-001",
        "shell on any managed instance",
        ("pathfinding:ssm-001", "pmapper:ssm"),
        key_need("ssm:StartSession", types=("instance",)),
    ),
    existing_path(
        "ec2-002",
        "new user data on any instance, restarted",
        ("pathfinding:ec2-002", "cloudsplaining:ModifyEC2InstanceUserDataThenRestart"),
        key_need("ec2:ModifyInstanceAttribute"),
        "ec2:StopInstances",
        "ec2:StartInstances",
    ),
    existing_path(
        "ec2-005",
        "new default version of any launch template",
        ("pathfinding:ec2-005", "cloudsplaining:ModifyExistingEC2LaunchTemplate"),
        key_need("ec2:CreateLaunchTemplateVersion"),
        "ec2:ModifyLaunchTemplate",
    ),
    existing_path(
        "autoscaling-update",
        "new version of a launch template (its profile kept), an Auto Scaling group switched to it",
        ("rolewarden",),
        key_need("ec2:CreateLaunchTemplateVersion"),
        "autoscaling:UpdateAutoScalingGroup",
    ),
    existing_path(
        "ec2-003",
        "SSH key pushed to any instance",
        ("pathfinding:ec2-003", "cloudsplaining:EC2InstanceConnectSendSSHPublicKey"),
        key_need("ec2-instance-connect:SendSSHPublicKey"),
    ),
    existing_path(
        "ecs-006",
        "shell in any running task",
        ("pathfinding:ecs-006", "cloudsplaining:ECSExecuteCommandOnRunningTask"),
        key_need("ecs:ExecuteCommand"),
        "ecs:DescribeTasks",
    ),
    existing_path(
        "sagemaker-004",
        "presigned URL to any notebook instance",
        ("pathfinding:sagemaker-004", "cloudsplaining:CreatePresignedSageMakerNotebookUrl"),
        key_need("sagemaker:CreatePresignedNotebookInstanceUrl"),
    ),
    existing_path(
        "sagemaker-005",
        "lifecycle configuration on any notebook instance",
        ("pathfinding:sagemaker-005", "cloudsplaining:UpdateSageMakerNotebookLifecycleConfig"),
        key_need("sagemaker:CreateNotebookInstanceLifecycleConfig"),
        "sagemaker:UpdateNotebookInstance",
        "sagemaker:StopNotebookInstance",
        "sagemaker:StartNotebookInstance",
    ),
    existing_path(
        "bedrock-002",
        "session in any Bedrock AgentCore code interpreter",
        ("pathfinding:bedrock-002", "cloudsplaining:AccessExistingBedrockCodeInterpreterSession"),
        key_need("bedrock-agentcore:StartCodeInterpreterSession"),
        "bedrock-agentcore:InvokeCodeInterpreter",
    ),
    existing_path(
        "apprunner-002",
        "update any App Runner service",
        ("pathfinding:apprunner-002",),
        key_need("apprunner:UpdateService"),
    ),
    existing_path(
        "mwaa-002",
        "update any Airflow (MWAA) environment",
        ("pathfinding:mwaa-002",),
        key_need("airflow:UpdateEnvironment"),
        "airflow:CreateCliToken",
    ),
)
