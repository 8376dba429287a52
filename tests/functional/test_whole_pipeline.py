"""The two programs a person runs, end to end, as subprocesses: `make demo`'s module and a small
`make chaos`, in one account and over three (every check of the chaos table must pass; the default size
runs with `make chaos`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROLEWARDEN_"))}
    env["COLUMNS"] = "160"
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_demo_runs_every_scene_and_exits_0() -> None:
    result = _run("rwlocal.demo", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Instance profiles by tag" in out and "Bucket tags drive S3 grants" in out and "Role compliance" in out
    assert "profile-outside-managed-set" in out  # the refusal is shown
    assert "rolewarden-grants-reporting-app" in out  # the generated policy is shown
    assert "Many accounts, one RoleWarden" in out and "1 finding account-not-admitted" in out  # the central scene
    assert "the local server is stopped" in out


def test_small_chaos_run_passes_every_check() -> None:
    """The small run has every hostile condition of the default one on (parallel pollers, honoured
    visibility, token buckets, IAM and EC2 read lag, lifecycle hooks, tags revoked mid-run)."""
    result = _run("rwlocal.chaos", "--instances", "36", "--buckets", "8", "--roles", "6", timeout=900)
    table = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert result.returncode == 0, "\n".join(table) + result.stdout[-1500:] + result.stderr[-2000:]
    assert sum(" ok " in line for line in table) == 12, "\n".join(table)
    assert sum(" info " in line for line in table) == 2  # grant flaps and time to converge are reported
    assert "FAIL" not in result.stdout


def test_small_chaos_run_over_three_accounts_passes_every_check_in_each() -> None:
    """--accounts 3: the central stack and two member stacks, the world spread over the three accounts."""
    args = ("--accounts", "3", "--instances", "18", "--buckets", "9", "--roles", "6")
    result = _run("rwlocal.chaos", *args, timeout=900)
    table = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert result.returncode == 0, "\n".join(table) + result.stdout[-1500:] + result.stderr[-2000:]
    assert sum(" ok " in line for line in table) == 12, "\n".join(table)
    assert "spread over 3 accounts" in result.stdout
    instances = next(line for line in table if line.startswith("│ instances have the profile"))
    assert "central: 6 instances, 0 wrong; member 1: 6 instances, 0 wrong;" in instances
    assert "FAIL" not in result.stdout
