"""What the scenarios share: the run context, seeding helpers, statistics, peer versions, results."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rwlocal.configs import WEB_RULE, config_yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV_PY = ROOT / ".venv" / "bin" / "python"
CALLCOUNT_DIR = BENCH / "callcount"

#: One small AMI catalogue for moto (MOTO_AMIS_PATH). moto looks every new instance's image up in its
#: catalogue of ~1,000 default AMIs with a linear filter (about 9 ms an instance); with one image the
#: seeding of 5,000 instances takes half the time. Neither RoleWarden nor Custodian reads images.
AMIS = [
    {
        "ami_id": "ami-12c6146b",
        "name": "rolewarden-bench",
        "description": "bench image",
        "owner_id": "137112412989",
        "public": True,
        "virtualization_type": "hvm",
        "architecture": "x86_64",
        "state": "available",
        "platform": None,
        "image_type": "machine",
        "root_device_name": "/dev/xvda",
        "root_device_type": "ebs",
        "sriov": "simple",
        "hypervisor": "xen",
    }
]

PROFILE_CONFIG = config_yaml(
    # the attach alone, as Custodian's set-instance-profile does it (imdsv2 report, the default, would add
    # one findings message per batch for the IMDSv1-open instances moto launches; enforce, one write each)
    instance_profiles={"rules": [WEB_RULE], "metadata": {"imdsv2": "off"}}
)
WEB_TAGS = {"rolewarden:profile": "web", "team": "web"}


def custodian_policy(**mode: Any) -> str:
    """Cloud Custodian's counterpart of WEB_RULE, as a policy file: EC2 instances tagged for web that have
    no instance profile get web-server (``set-instance-profile``). ``mode`` (its ``type``, ``events``,
    ``role``) runs it in an event mode; without one it is a pull-mode policy."""
    policy: dict[str, Any] = {"name": "web-instance-profile", "resource": "ec2"}
    if mode:
        policy["mode"] = mode
    policy["filters"] = [{"tag:rolewarden:profile": "web"}, {"IamInstanceProfile": "absent"}]
    policy["actions"] = [{"type": "set-instance-profile", "name": "web-server"}]
    return yaml.safe_dump({"policies": [policy]}, sort_keys=False)


def configure_moto(workdir: Path) -> None:
    """Environment for the embedded moto server; must run before moto is imported."""
    path = workdir / "amis.json"
    path.write_text(json.dumps(AMIS))
    os.environ["MOTO_AMIS_PATH"] = str(path)


def speed_up_moto() -> None:
    """An exact fast path for one emulator cost that AWS does not have.

    moto 5.x finds an EC2 resource's own tags (``TaggedEC2Resource.get_tags``) by running
    ``describe_tags`` with a resource-id filter, which regex-matches every tagged resource in the region:
    describing N instances costs O(N x all instances). At 5,000 instances a DescribeInstances page of
    1,000 took over 30 s on this machine (RoleWarden's read timeout), and every seeding call slowed down
    with the account's size. The replacement reads the same dictionary by key and returns the same list
    (same keys, same order) the filter returns for an exact id. Both tools benefit alike; moto's other
    costs (the response serializer, linear instance lookups) are left as they are."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    if getattr(TaggedEC2Resource.get_tags, "_rolewarden_bench", False):
        return

    def get_tags(self: Any) -> list[dict[str, str]]:
        if not self.id:
            return []
        tags = self.ec2_backend.tags.get(self.id) or {}
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]

    get_tags._rolewarden_bench = True  # type: ignore[attr-defined]
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]


@dataclass
class Context:
    """One bench run: the moto server, a scratch directory, the options."""

    aws: Any
    workdir: Path
    small: bool = False
    rounds: int = 3
    log: Any = print
    _handler_log: Any = None

    @property
    def handler_log_path(self) -> Path:
        return self.workdir / "handlers.log"

    def handler_stdout(self) -> Any:
        """Redirect stdout (the handlers' Powertools JSON logs and EMF metrics, CloudWatch's part) to
        bench/out/handlers.log. The file stays open for the whole run: Powertools loggers of one service
        share their stream, so a handler imported in one scenario keeps writing to it in the next."""
        if self._handler_log is None:
            self._handler_log = open(self.handler_log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        return contextlib.redirect_stdout(self._handler_log)

    def close(self) -> None:
        if self._handler_log is not None:
            self._handler_log.close()
            self._handler_log = None

    def config_file(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path

    def fresh(self) -> None:
        """A clean moto server and a clean RoleWarden process state."""
        self.aws.reset()
        reset_rolewarden()

    def deploy(self, config_name: str, config_text: str) -> tuple[Path, Any]:
        """The start of every pipeline scenario: a fresh server, the config written to ``config_name``, the
        stack deployed into the server. Returns (config path, stack)."""
        from rwlocal import stack as st

        self.fresh()
        config = self.config_file(config_name, config_text)
        return config, st.deploy()


def reset_rolewarden() -> None:
    from rolewarden import config
    from rolewarden.aws import clients
    from rolewarden.capabilities.profiles import guard as profiles

    clients.reset()
    profiles.clear_profile_cache()
    config._cache.clear()
    try:
        from rolewarden.aws import iam_snapshot

        iam_snapshot.clear_caches()
    except ImportError:  # the compliance capability is not there yet
        pass


@dataclass
class Result:
    scenario: str
    status: str = "ok"  # ok | skipped | error
    reason: str = ""
    sizes: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, Any] = field(default_factory=dict)
    goals: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def goal(self, name: str, value: float, op: str, target: float, note: str = "") -> bool:
        met = value <= target if op == "<=" else value >= target if op == ">=" else value == target
        self.goals.append({"goal": name, "value": value, "op": op, "target": target, "met": met, "note": note})
        return met

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "status": self.status,
            "reason": self.reason,
            "sizes": self.sizes,
            "figures": self.figures,
            "calls": self.calls,
            "goals": self.goals,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


# -- statistics ----------------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 100 batches is the 99th value, not an interpolation)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def by_operation(calls: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(calls.items()))


# -- seeding ---------------------------------------------------------------------------------------
def seed_instances(
    count: int, tags: Mapping[str, str], chunk: int = 500, with_profile: str | None = None, missing: int = 0
) -> list[str]:
    """``count`` instances launched ``chunk`` at a time (run_instances Min=MaxCount). With ``with_profile``,
    all but the last ``missing`` get that profile associated. (moto associates a profile given to
    RunInstances with the first instance of the call only, so each association is its own call.)"""
    from rwlocal import world

    ec2 = world.ec2()
    ids: list[str] = []
    while len(ids) < count:
        launched = world.run_instances(min(chunk, count - len(ids)), tags)
        if with_profile:  # associate while the account is small: moto finds an instance by a linear scan
            for offset, instance_id in enumerate(launched, start=len(ids)):
                if offset < count - missing:
                    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": with_profile}, InstanceId=instance_id)
        ids += launched
    return ids


# -- processes -------------------------------------------------------------------------------------
@dataclass
class Child:
    returncode: int
    seconds: float
    cpu_seconds: float
    calls: Counter[str]
    stdout: str
    stderr: str


def run_counted(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Child:
    """Run a tool in a child process with ``bench/callcount/sitecustomize.py`` counting its AWS calls.
    ``seconds`` is wall time from spawn to exit (interpreter start included); ``cpu_seconds`` is the
    child's own user+system CPU time (the tool's work, not the moto server's)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        calls_path = Path(handle.name)
    child_env = dict(env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CALLCOUNT_DIR), env.get("PYTHONPATH", "")]))
    child_env["RW_BENCH_CALLS_OUT"] = str(calls_path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(list(argv), env=child_env, cwd=cwd or ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        calls: Counter[str] = Counter(json.loads(calls_path.read_text() or "{}"))
    except (OSError, ValueError):
        calls = Counter()
    finally:
        calls_path.unlink(missing_ok=True)
    return Child(proc.returncode, seconds, cpu, calls, proc.stdout, proc.stderr)


# -- versions --------------------------------------------------------------------------------------
def versions(c7n_python: Path | None = None) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {"python": sys.version.split()[0]}
    for name in ("rolewarden", "boto3", "botocore", "moto", "aws-lambda-powertools", "aws-xray-sdk", "pydantic"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    if c7n_python is not None and c7n_python.exists():
        code = (
            "import sys, importlib.metadata as m; "
            "print(m.version('c7n'), m.version('boto3'), m.version('botocore'), sys.version.split()[0])"
        )
        out = subprocess.run([str(c7n_python), "-c", code], capture_output=True, text=True, check=False).stdout.split()
        if len(out) == 4:
            found.update({"c7n": out[0], "c7n.boto3": out[1], "c7n.botocore": out[2], "c7n.python": out[3]})
    return found
