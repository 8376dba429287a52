"""Scenario cold_start: what a cold start of each function costs, next to ``import boto3``.

For each handler (functions/*/app.py) a fresh interpreter does what a new Lambda container does before
and during its first invocation, and times it from the first statement to the last (the interpreter's
own start, the same for both sides, is left out):

* import the handler module, which builds its globals (``make_handler``: Powertools Logger and Metrics)
  (alone, this is the reference figure ``import_only_ratio``);
* the fixed work of the first invocation that every invocation needs: load and validate the config
  (``load_config``: the file ROLEWARDEN_CONFIG names in the config layer, YAML read with PyYAML or JSON
  read without it; the config's sections) and import the capability's module
  (``capabilities.get``). Work only some invocations do (SQS/SNS sends, the DynamoDB records of a
  sweep) stays out, as it does in the function. AWS calls and client creation stay out of both sides.

The baseline is ``import boto3`` alone, timed the same way in the same interpreter setup. Baseline runs
are interleaved with handler runs so drift on a shared machine hits both; the figure is the ratio of
medians. The ratio is taken on CPU time (``time.process_time``): on a loaded 2-core machine the wall
time of an import is mostly the wait for a core, while its CPU time is what the same import costs on
Lambda's idle core (the files are in the page cache on both). Wall-time medians are reported too.

As deployed: the interpreter sees only what a Lambda container sees, in Lambda's order: the function's
code (/var/task), the core layer (its requirements installed with pip from layers/core/requirements.txt,
plus layers/core: /opt/python), and the runtime's own boto3/botocore (at the versions of the dev
environment). The dev virtual environment's site-packages are kept off sys.path (``-S``): the dev tools
bring packages Lambda lacks (awscrt, pyOpenSSL, the X-Ray SDK formerly) that botocore and Powertools
import when they find them. The environment variables are the template's (Globals and the function's
own, intrinsics replaced by sample values) plus Lambda's own (AWS_LAMBDA_FUNCTION_NAME...). The config
layer is what ``sam build`` makes of template.yaml's ConfigLayer: config/ as it is, or, when the layer has
``BuildMethod: makefile``, the output of config/Makefile (``config_layer``).
The installed layout is cached in the workdir, keyed by the requirements and versions.

One more run per handler with ``-X importtime`` attributes the import time to top-level packages.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import ROOT, VENV_PY, Context, Result, median

NAME = "cold_start"
REQUIRES = None
LAYER_REQUIREMENTS = ROOT / "layers" / "core" / "requirements.txt"
#: What the Lambda python3.13 runtime ships (its boto3), pinned to the dev environment's versions.
RUNTIME_PACKAGES = ("boto3", "botocore")

CHILD = """\
import time
_c0 = time.process_time()
_t0 = time.perf_counter()
{body}
_t1 = time.perf_counter()
_c1 = time.process_time()
print(f"BENCH_SECONDS={{_t1 - _t0:.6f}} BENCH_CPU={{_c1 - _c0:.6f}}")
"""
BASELINE = "import boto3"
IMPORT_ONLY = (
    "import importlib.util\n"
    "_spec = importlib.util.spec_from_file_location('app', {path!r})\n"
    "_module = importlib.util.module_from_spec(_spec)\n"
    "_spec.loader.exec_module(_module)\n"
    "assert callable(_module.lambda_handler) and callable(_module.sweep_handler)"
)
HANDLER = (
    IMPORT_ONLY + "\n"
    # the first invocation's fixed work (Handler.handle): the config, then the capability's module
    "from rolewarden.config import load_config\n"
    "from rolewarden import capabilities\n"
    "load_config()\n"
    "capabilities.get({capability!r})"
)


def sizes(small: bool) -> dict[str, int]:
    return {"runs": 3} if small else {"runs": 7}


def handlers() -> list[Path]:
    return sorted((ROOT / "functions").glob("*/app.py"))


# -- the deployed layout -----------------------------------------------------------------------------
def deployed_layout(workdir: Path) -> tuple[Path, Path]:
    """(layer site dir, runtime site dir): the layer's requirements and the runtime's boto3, installed
    with pip into directories of their own, as ``sam build`` and the Lambda runtime provide them."""
    pins = [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]
    key = hashlib.sha256((LAYER_REQUIREMENTS.read_text() + "\n".join(pins)).encode()).hexdigest()[:16]
    base = workdir.resolve() / "cold_start" / key
    layer, runtime = base / "layer", base / "runtime"
    if not (base / ".complete").exists():
        shutil.rmtree(base, ignore_errors=True)
        pip = [str(VENV_PY), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
        for target, args in ((layer, ["-r", str(LAYER_REQUIREMENTS)]), (runtime, pins)):
            proc = subprocess.run([*pip, "--target", str(target), *args], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"pip could not build the deployed layout in {target}: {proc.stderr[-1500:]}")
        (base / ".complete").touch()
    return layer, runtime


def config_layer(template: dict[str, Any], workdir: Path) -> Path:
    """The config layer's files (Lambda's /opt) as ``sam build`` makes them from template.yaml's ConfigLayer:
    its ContentUri as it is, or, with ``Metadata: BuildMethod: makefile``, what the ContentUri's Makefile
    target ``build-ConfigLayer`` writes to ARTIFACTS_DIR (run here on a copy, as sam runs it)."""
    layer = template["Resources"]["ConfigLayer"]
    source = ROOT / str(layer["Properties"]["ContentUri"])
    if layer.get("Metadata", {}).get("BuildMethod") != "makefile":
        return source
    scratch, artifacts = workdir.resolve() / "config-layer-src", workdir.resolve() / "config-layer"
    for folder in (scratch, artifacts):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, scratch)
    artifacts.mkdir(parents=True)
    make = ["make", "-s", "build-ConfigLayer", f"ARTIFACTS_DIR={artifacts}", f"PYTHON={VENV_PY}"]
    proc = subprocess.run(make, cwd=scratch, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the config layer's build failed: {proc.stderr[-1500:]}")
    return artifacts


def _sample(value: Any, parameters: dict[str, Any], name: str, opt: Path) -> str:
    """A template environment value as the deployed function would see it (intrinsics -> samples; a path
    under /opt -> the config layer's file ``opt`` holds)."""
    if name == "ROLEWARDEN_CONFIG":  # !If [UseSsmConfig, ssm:..., /opt/<file>]: the default, the layer's file
        path = value["Fn::If"][2] if isinstance(value, dict) and "Fn::If" in value else value
        return str(opt / str(path).removeprefix("/opt/"))
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return str(parameters[value["Ref"]].get("Default", ""))
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] == "AWS::AccountId":
        return "123456789012"
    if name == "ROLEWARDEN_HOME_REGION":
        return "us-east-1"
    if isinstance(value, dict) and "Fn::If" in value:
        # a feature switched by a parameter whose default turns it off (SecurityHub=Disabled): the else branch
        return _sample(value["Fn::If"][2], parameters, name, opt)
    if name.endswith("_URL"):
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/{name.lower()}"
    if name.endswith("_TOPIC"):
        return f"arn:aws:sns:us-east-1:123456789012:{name.lower()}"
    if name.endswith("_ARNS"):
        return "arn:aws:iam::123456789012:role/rolewarden-function"
    return f"rolewarden-{name.lower().replace('_', '-')}"


def lambda_env(function: str, layer: Path, runtime: Path, opt: Path | None = None) -> dict[str, str]:
    """The environment and sys.path of the deployed event function of ``function`` (functions/<function>);
    ``opt``: the config layer's files (``config_layer``), by default the unbuilt config/."""
    from rwlocal.stack import load_template

    template = load_template(ROOT / "template.yaml")
    opt = opt or ROOT / "config"
    parameters = template.get("Parameters", {})
    globals_ = template["Globals"]["Function"]
    variables: dict[str, Any] = dict(globals_.get("Environment", {}).get("Variables", {}))
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if (
            resource.get("Type") == "AWS::Serverless::Function"
            and str(props.get("CodeUri", "")).rstrip("/") == f"functions/{function}"
            and props.get("Handler") == "app.lambda_handler"
        ):
            variables.update(props.get("Environment", {}).get("Variables", {}))
    env = {name: _sample(value, parameters, name, opt) for name, value in variables.items()}
    env.update(
        {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": f"rolewarden-{function}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(globals_.get("MemorySize", 512)),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "Text",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1",
            "AWS_EC2_METADATA_DISABLED": "true",
            # /var/task, /opt/python (the core layer: its requirements and layers/core), the runtime's boto3
            "PYTHONPATH": ":".join(
                [str(ROOT / "functions" / function), str(layer), str(ROOT / "layers" / "core"), str(runtime)]
            ),
        }
    )
    return env


# -- timing ------------------------------------------------------------------------------------------
def _time(body: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``body`` in a fresh interpreter."""
    proc = subprocess.run(
        [str(VENV_PY), "-S", "-c", CHILD.format(body=body)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_SECONDS="):
            wall, cpu = (part.split("=", 1)[1] for part in line.split())
            return float(wall), float(cpu)
    raise RuntimeError(f"cold-start child failed ({proc.returncode}): {proc.stderr[-1500:]}")


def loaded_modules(body: str, env: dict[str, str]) -> set[str]:
    """Top-level packages in sys.modules after ``body`` (the deployed layout)."""
    code = f"{body}\nimport sys, json\nprint('MODULES=' + json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [str(VENV_PY), "-S", "-c", code], env=env, capture_output=True, text=True, check=False, cwd="/"
    )
    for line in proc.stdout.splitlines():
        if line.startswith("MODULES="):
            return set(json.loads(line.split("=", 1)[1]))
    raise RuntimeError(f"cold-start child failed ({proc.returncode}): {proc.stderr[-1500:]}")


def import_breakdown(body: str, env: dict[str, str], top: int = 8) -> dict[str, float]:
    """Milliseconds of import time per top-level package (self times summed), from -X importtime."""
    proc = subprocess.run(
        [str(VENV_PY), "-S", "-X", "importtime", "-c", body],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    per_package: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, _cumulative, name = (part.strip() for part in line.replace("import time:", "|", 1).split("|"))
        per_package[name.split(".", 1)[0]] += int(self_us) / 1000
    ranked = sorted(per_package.items(), key=lambda item: -item[1])
    return {name: round(ms, 1) for name, ms in ranked[:top]}


def run(ctx: Context, runs: int) -> Result:
    result = Result(NAME, sizes={"runs_per_median": runs, "handlers": len(handlers())})
    layer, runtime = deployed_layout(ctx.workdir)
    from rwlocal.stack import load_template

    opt = config_layer(load_template(ROOT / "template.yaml"), ctx.workdir)
    result.sizes["config_layer"] = "config/ as written" if opt == ROOT / "config" else "built by config/Makefile"
    ratios: dict[str, float] = {}
    import_only: dict[str, float] = {}
    for app in handlers():
        function = app.parent.name
        env = lambda_env(function, layer, runtime, opt)
        body = HANDLER.format(path=str(app), capability=function)
        _time(body, env)  # once untimed: bytecode caches written, as Lambda's installed files have them
        base: list[tuple[float, float]] = []
        handler: list[tuple[float, float]] = []
        imported: list[tuple[float, float]] = []
        for _ in range(runs):
            base.append(_time(BASELINE, env))
            handler.append(_time(body, env))
            imported.append(_time(IMPORT_ONLY.format(path=str(app)), env))
        cpu_ratio = median(c for _, c in handler) / median(c for _, c in base)
        ratios[function] = cpu_ratio
        import_only[function] = median(c for _, c in imported) / median(c for _, c in base)
        result.figures[f"lambda:{function}"] = {
            "ratio": round(cpu_ratio, 2),
            "handler_ms_median": round(median(c for _, c in handler) * 1000, 1),
            "import_boto3_ms_median": round(median(c for _, c in base) * 1000, 1),
            "import_only_ratio": round(import_only[function], 2),
            "wall_ratio": round(median(w for w, _ in handler) / median(w for w, _ in base), 2),
            "handler_wall_ms_median": round(median(w for w, _ in handler) * 1000, 1),
            "import_boto3_wall_ms_median": round(median(w for w, _ in base) * 1000, 1),
        }
        ctx.log(
            f"  {function}: {median(c for _, c in handler) * 1000:.0f} ms CPU vs boto3 "
            f"{median(c for _, c in base) * 1000:.0f} ms ({cpu_ratio:.2f}x)"
        )
        modules = loaded_modules(body, env)
        absent = ("aws_xray_sdk", "rich", "rolewarden.aws.sqs", "rolewarden.aws.sns", "rolewarden.aws.records", "yaml")
        result.figures[f"not_imported:{function}"] = [m for m in absent if m not in modules]
        result.figures[f"import_ms_by_package:{function}"] = import_breakdown(body, env)
    worst = max(ratios.values())
    result.figures["worst_ratio_lambda"] = round(worst, 2)
    result.figures["worst_ratio_import_only"] = round(max(import_only.values()), 2)
    result.goal(
        "cold start (import + first invocation's config and capability) / import boto3", round(worst, 2), "<=", 1.3
    )
    result.notes.append(
        "handler side: import of functions/<f>/app.py (Powertools Logger and Metrics built) plus the first "
        "invocation's fixed work (load_config: the config layer's file, YAML or JSON, and its validation; the "
        "capability module); baseline: "
        "import boto3. Both in the deployed layout (layer from layers/core/requirements.txt, runtime boto3, "
        "no dev site-packages), the template's environment; ratio of CPU-time medians (wall medians beside)."
    )
    return result
