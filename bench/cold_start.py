"""Scenario 6, cold_start: for each handler (functions/*/app.py), a fresh interpreter imports the
handler module and builds its globals (make_handler: config-free Powertools Logger, Metrics and, where
Lambda would, Tracer), timed inside the child from the first statement to the last, so the interpreter's
own start (the same for both) is left out. The baseline is ``import boto3`` alone, timed the same way in
the same interpreter setup (same python, same environment). Median of RUNS runs, baseline runs
interleaved with handler runs so drift on a shared machine hits both.

Two environments:
* lambda: what the deployed function sees: the template's Globals environment (POWERTOOLS_*), Lambda's
  own variables (AWS_LAMBDA_FUNCTION_NAME, AWS_EXECUTION_ENV...). The template says ``Tracing: Active``
  and AWS_LAMBDA_FUNCTION_NAME is set, so Powertools Tracer is built and loads the X-Ray SDK.
  The goal uses this one: it is what a real cold start costs.
* no-tracer: the same without AWS_LAMBDA_FUNCTION_NAME (as in the tests and the local pipeline).

One more run per handler with ``-X importtime`` attributes the import time to top-level packages.
"""

from __future__ import annotations

import os
import subprocess
from collections import defaultdict
from pathlib import Path

from bench.common import ROOT, VENV_PY, Context, Result, median

NAME = "cold_start"
REQUIRES = None

CHILD = """\
import time
_t0 = time.perf_counter()
{body}
_t1 = time.perf_counter()
print(f"BENCH_SECONDS={{_t1 - _t0:.6f}}")
"""
BASELINE = "import boto3"
HANDLER = (
    "import importlib.util\n"
    "_spec = importlib.util.spec_from_file_location('app', {path!r})\n"
    "_module = importlib.util.module_from_spec(_spec)\n"
    "_spec.loader.exec_module(_module)\n"
    "assert callable(_module.lambda_handler)"
)


def sizes(small: bool) -> dict[str, int]:
    return {"runs": 3} if small else {"runs": 7}


def handlers() -> list[Path]:
    return sorted((ROOT / "functions").glob("*/app.py"))


def lambda_env(function: str, tracer: bool) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "ROLEWARDEN_CONFIG": "/opt/rolewarden.yaml",
        "ROLEWARDEN_MANAGED_PATH": "/rolewarden/",
        "ROLEWARDEN_DRY_RUN": "false",
        "ROLEWARDEN_TABLE": "rolewarden-state",
        "ROLEWARDEN_MAX_RECEIVE": "5",
        "POWERTOOLS_SERVICE_NAME": "rolewarden",
        "POWERTOOLS_METRICS_NAMESPACE": "RoleWarden",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if tracer:
        env["AWS_LAMBDA_FUNCTION_NAME"] = f"rolewarden-{function}"
    return env


def _time(body: str, env: dict[str, str]) -> float:
    proc = subprocess.run(
        [str(VENV_PY), "-c", CHILD.format(body=body)], env=env, capture_output=True, text=True, check=False, cwd="/"
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_SECONDS="):
            return float(line.split("=", 1)[1])
    raise RuntimeError(f"cold-start child failed ({proc.returncode}): {proc.stderr[-1500:]}")


def import_breakdown(body: str, env: dict[str, str], top: int = 8) -> dict[str, float]:
    """Milliseconds of import time per top-level package (self times summed), from -X importtime."""
    proc = subprocess.run(
        [str(VENV_PY), "-X", "importtime", "-c", body], env=env, capture_output=True, text=True, check=False, cwd="/"
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
    ratios: dict[str, dict[str, float]] = {}
    for tracer in (True, False):
        variant = "lambda" if tracer else "no-tracer"
        for app in handlers():
            function = app.parent.name
            env = lambda_env(function, tracer)
            body = HANDLER.format(path=str(app))
            base, handler = [], []
            for _ in range(runs):
                base.append(_time(BASELINE, env))
                handler.append(_time(body, env))
            ratio = median(handler) / median(base)
            ratios.setdefault(variant, {})[function] = ratio
            result.figures[f"{variant}:{function}"] = {
                "ratio": round(ratio, 2),
                "handler_ms_median": round(median(handler) * 1000, 1),
                "import_boto3_ms_median": round(median(base) * 1000, 1),
            }
            ctx.log(f"  {variant} {function}: {median(handler) * 1000:.0f} ms vs boto3 {median(base) * 1000:.0f} ms")
    worst = {variant: max(values.values()) for variant, values in ratios.items()}
    result.figures["worst_ratio_lambda"] = round(worst["lambda"], 2)
    result.figures["worst_ratio_no_tracer"] = round(worst["no-tracer"], 2)
    for app in handlers():
        body = HANDLER.format(path=str(app))
        result.figures[f"import_ms_by_package (lambda):{app.parent.name}"] = import_breakdown(
            body, lambda_env(app.parent.name, True)
        )
    result.goal("cold start / import boto3 (Lambda env, Tracer on)", round(worst["lambda"], 2), "<=", 1.3)
    result.notes.append(
        "the goal uses the 'lambda' environment (template Tracing: Active, AWS_LAMBDA_FUNCTION_NAME set); the"
        f" no-tracer figure ({worst['no-tracer']:.2f}) is what tests and the local pipeline see."
    )
    return result
