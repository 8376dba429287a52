"""Cloud Custodian in a virtual environment of its own (its exact boto3/tabulate pins clash with
aws-sam-cli's, which share RoleWarden's .venv). Made once with the same Python as .venv and cached in
bench/.c7n-venv (gitignored); rebuilt when the pinned version is not what is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.common import BENCH

C7N_VERSION = "0.9.53"
C7N_VENV = BENCH / ".c7n-venv"
C7N_PYTHON = C7N_VENV / "bin" / "python"
CUSTODIAN = C7N_VENV / "bin" / "custodian"


def _installed_version() -> str | None:
    if not C7N_PYTHON.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('c7n'))"
    proc = subprocess.run([str(C7N_PYTHON), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_custodian(log: object = print) -> Path:
    """The ``custodian`` executable, installing c7n==C7N_VERSION into bench/.c7n-venv when needed."""
    if _installed_version() == C7N_VERSION and CUSTODIAN.exists():
        return CUSTODIAN
    base = Path(sys.base_prefix) / "bin" / "python3"  # the interpreter .venv was made from (3.13)
    log(f"creating {C7N_VENV.relative_to(BENCH.parent)} with {base} and c7n=={C7N_VERSION} (once)")  # type: ignore[operator]
    subprocess.run([str(base), "-m", "venv", "--clear", str(C7N_VENV)], check=True)
    subprocess.run(
        [str(C7N_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"c7n=={C7N_VERSION}"],
        check=True,
    )
    return CUSTODIAN
