"""The layer stays lean at cold start: no X-Ray SDK (in maintenance since 2026-02-25, end of support
2027-02-25; AWS recommends OpenTelemetry), Lambda still traces the functions itself (Tracing: Active),
and importing a handler as Lambda does loads nothing that only some invocations need."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rwlocal.stack import load_template

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
#: Loaded only by the invocations that need them, never at import: the X-Ray SDK (gone), pydantic (gone
#: from the layer: rolewarden.schema checks the config), the CLI's tables, the SQS/SNS sends (retries,
#: DLQ, findings, sweep hand-offs), the state-table records of a sweep, Powertools' SSM parameters (only
#: with ROLEWARDEN_CONFIG=ssm:...) and idempotency utilities.
NOT_AT_IMPORT = (
    "aws_xray_sdk",
    "pydantic",
    "rich",
    "rolewarden.aws.sqs",
    "rolewarden.aws.sns",
    "rolewarden.aws.records",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.idempotency",
)


def _requirement_names(lines: list[str]) -> list[str]:
    """'name[extra]' of each requirement, lower case, '-' for '_'."""
    out = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?", line)
        assert match, line
        out.append((match.group(1) + (match.group(2) or "")).lower().replace("_", "-"))
    return out


def _no_xray(requirements: list[str]) -> None:
    for name in requirements:
        assert not name.startswith("aws-xray-sdk"), f"{name}: the X-Ray SDK is not part of the layer"
        if name.startswith("aws-lambda-powertools["):
            extras = {e.strip() for e in name[len("aws-lambda-powertools[") : -1].split(",")}
            assert not extras & {"tracer", "all"}, f"{name}: Powertools' tracer/all extras pull in the X-Ray SDK"


def test_layer_requirements_have_no_xray_sdk() -> None:
    requirements = _requirement_names((ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines())
    assert "aws-lambda-powertools" in requirements  # the check reads the real file
    _no_xray(requirements)


def test_neither_the_layer_nor_the_package_requires_pydantic() -> None:
    """The config is checked by rolewarden.schema; pydantic cost about half of import boto3 at cold start."""
    layer = _requirement_names((ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines())
    package = _requirement_names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert "pyyaml" in layer and "pyyaml" in package  # both lists were read
    assert [n for n in layer + package if n.split("[")[0] in ("pydantic", "pydantic-core")] == []


def test_package_dependencies_have_no_xray_sdk() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = _requirement_names(project["dependencies"])
    assert "aws-lambda-powertools" in requirements
    _no_xray(requirements)


def test_lambda_still_traces_the_functions() -> None:
    """Without an SDK, Lambda's active tracing is what records each sampled invocation in X-Ray."""
    template = load_template()
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"].get("Tracing", "Active") == "Active", name


def _modules_after(app: Path, code: str) -> set[str]:
    """sys.modules after ``code`` ran in a fresh interpreter with Lambda's variables (AWS_LAMBDA_FUNCTION_NAME
    set: where Powertools' Tracer used to be built) after importing the handler ``app`` as Lambda does."""
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(app)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert callable(module.lambda_handler) and callable(module.sweep_handler)\n"
        f"{code}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"rolewarden-{app.parent.name}",
        "ROLEWARDEN_CONFIG": str(ROOT / "config" / "rolewarden.yaml"),
        "POWERTOOLS_SERVICE_NAME": "rolewarden",
    }
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _loaded(names: tuple[str, ...], modules: set[str]) -> list[str]:
    return [m for m in names if m in modules or any(k.startswith(m + ".") for k in modules)]


@pytest.mark.parametrize("app", HANDLERS, ids=lambda p: p.parent.name)
def test_importing_a_handler_as_lambda_loads_only_what_every_invocation_needs(app: Path) -> None:
    """The handler imported and the config loaded, as a first invocation does."""
    modules = _modules_after(app, "from rolewarden.config import load_config\nload_config()")
    assert "rolewarden.config" in modules and "aws_lambda_powertools.logging" in modules  # it did import
    assert _loaded(NOT_AT_IMPORT, modules) == [], f"{app.parent.name} loads them at cold start"


#: Per function: its capability's module, and what its first invocation (config and capability loaded)
#: never needs: the compliance rules and the escalation table judge roles for role_compliance and the
#: profile guard, never for grants.
FIRST_INVOCATION = {
    "bucket_grants": (
        "rolewarden.capabilities.grants",
        ("rolewarden.decide.compliance", "rolewarden.decide.escalation"),
    ),
    "instance_profiles": ("rolewarden.capabilities.profiles", ()),
    "role_compliance": ("rolewarden.capabilities.compliance", ()),
}


@pytest.mark.parametrize("app", HANDLERS, ids=lambda p: p.parent.name)
def test_a_first_invocation_loads_no_other_capability_s_decisions(app: Path) -> None:
    function = app.parent.name
    capability, unneeded = FIRST_INVOCATION[function]
    code = "from rolewarden.config import load_config\nfrom rolewarden import capabilities\nload_config()\n"
    modules = _modules_after(app, code + f"capabilities.get({function!r})")
    assert capability in modules  # the capability did load
    assert _loaded(NOT_AT_IMPORT + unneeded, modules) == []


#: Per function: a sample of its events, the event-model module routing it loads, and the families of the
#: other functions' events, which it never loads (rolewarden.events: one module per family)
EVENT_FAMILIES = {
    "bucket_grants": (
        "cloudtrail-s3-putbuckettagging.json",
        "rolewarden.events.s3",
        ("rolewarden.events.ec2", "rolewarden.events.iam"),
    ),
    "instance_profiles": (
        "ec2-state-running.json",
        "rolewarden.events.ec2",
        ("rolewarden.events.s3", "rolewarden.events.iam"),
    ),
    "role_compliance": (
        "cloudtrail-iam-attachrolepolicy.json",
        "rolewarden.events.iam",
        ("rolewarden.events.ec2", "rolewarden.events.s3"),
    ),
}


@pytest.mark.parametrize("app", HANDLERS, ids=lambda p: p.parent.name)
def test_routing_an_event_loads_only_its_family_s_models(app: Path) -> None:
    function = app.parent.name
    sample, family, others = EVENT_FAMILIES[function]
    event = (ROOT / "events" / sample).read_text()
    code = (
        "import json\nfrom rolewarden.triggers import parse_envelope, route\n"
        f"assert route({function!r}, parse_envelope(json.loads({event!r})))\n"
    )
    modules = _modules_after(app, code)
    assert family in modules  # the route did parse its model
    assert _loaded(others, modules) == []
