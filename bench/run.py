"""`make bench` (``python -m bench.run``): RoleWarden against its peers on an embedded moto server.

    python -m bench.run                       # every scenario at the issue's sizes: ~10-15 min for the
                                              # unthrottled ones, plus ~1 h for the throttled ones at time
                                              # scale 1 (sweep_limited's 3 rounds are most of it)
    python -m bench.run --scenarios sweep_limited --limited-rounds 1   # one throttled scenario, smaller
    python -m bench.run --small               # the same at small sizes (under a minute)
    python -m bench.run --scenarios launch_burst,cold_start --launches 500

Prints a table and writes ``--out`` (bench/results.json): one object per scenario with its figures,
goals, exact AWS call counts per service:Operation, the sizes used and the versions of the peers.
Scratch files (configs, handler logs, Custodian's output) go to bench/out/ (gitignored).
A scenario whose capability module does not exist yet is skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.common import ROOT, Context, Result, configure_moto, speed_up_moto, versions
from rwlocal.server import ROLEWARDEN_ENV

ORDER = (
    "policy_capacity",
    "cold_start",
    "launch_burst",
    "sweep_vs_custodian",
    "role_sweep",
    "bucket_change",
    "escalation_detection",
    "launch_burst_limited",
    "custodian_event_mode",
    "sweep_limited",
    "grant_storm",
)
#: command-line flag -> (scenario, keyword of its run())
SIZE_FLAGS = {
    "existing": ("launch_burst", "existing", "instances already in the account (launch_burst)"),
    "launches": ("launch_burst", "launches", "instances launched (launch_burst)"),
    "instances": ("sweep_vs_custodian", "instances", "instances in the world (sweep_vs_custodian)"),
    "missing": ("sweep_vs_custodian", "missing", "of them without their profile (sweep_vs_custodian)"),
    "rounds": ("sweep_vs_custodian", "rounds", "alternations of the two tools (sweep_vs_custodian)"),
    "roles": ("role_sweep", "roles", "managed roles (role_sweep)"),
    "buckets": ("bucket_change", "buckets", "buckets at 1x (bucket_change)"),
    "bucket_roles": ("bucket_change", "roles", "managed roles (bucket_change)"),
    "factor": ("bucket_change", "factor", "growth factor of the bucket count (bucket_change)"),
    "cold_runs": ("cold_start", "runs", "runs per median (cold_start)"),
    "max_buckets": ("policy_capacity", "max_buckets", "search ceiling (policy_capacity)"),
    "escalation_cases": ("escalation_detection", "cases", "corpus cases, 0 for all (escalation_detection)"),
    "burst_launches": ("launch_burst_limited", "launches", "instances launched (launch_burst_limited)"),
    "event_launches": ("custodian_event_mode", "launches", "instances launched (custodian_event_mode)"),
    "limited_instances": ("sweep_limited", "instances", "instances in the world (sweep_limited)"),
    "limited_missing": ("sweep_limited", "missing", "of them without their profile (sweep_limited)"),
    "limited_rounds": ("sweep_limited", "rounds", "alternations of the two tools (sweep_limited)"),
    "storm_changes": ("grant_storm", "changes", "bucket tag changes (grant_storm)"),
    "storm_roles": ("grant_storm", "roles", "roles named by them (grant_storm)"),
}
#: the throttled scenarios' simulated clock (1.0: real time)
SCALED = ("launch_burst_limited", "custodian_event_mode", "sweep_limited", "grant_storm")
_ENV_TO_CLEAR = (*ROLEWARDEN_ENV, "AWS_PROFILE")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(ORDER), help=f"comma-separated, from {','.join(ORDER)}")
    parser.add_argument("--small", action="store_true", help="small sizes: checks that everything works")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json", help="results JSON")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out", help="scratch directory")
    for flag, (_scenario, _key, text) in SIZE_FLAGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", type=int, default=None, help=text)
    parser.add_argument(
        "--time-scale", type=float, default=None, help=f"simulated clock of {', '.join(SCALED)} (1.0: real time)"
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios.split(",") if s and s not in ORDER]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(ORDER)}")
    return args


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _module(name: str) -> ModuleType:
    import importlib

    return importlib.import_module(f"bench.{name}")


def run_scenarios(args: argparse.Namespace, emit: Callable[[str], None] = log) -> list[Result]:
    args.workdir.mkdir(parents=True, exist_ok=True)
    configure_moto(args.workdir)  # before moto is imported
    for key in _ENV_TO_CLEAR:
        os.environ.pop(key, None)
    # moto does not throttle: the unthrottled scenarios measure calls with pacing off; the throttled
    # ones (bench.limited) turn it on against the proxy's token buckets
    os.environ["ROLEWARDEN_PACING"] = "off"
    from bench import counting

    counting.install()  # before any botocore client exists
    speed_up_moto()
    from rwlocal.server import LocalAws

    chosen = [s for s in ORDER if s in args.scenarios.split(",")]
    results: list[Result] = []
    with LocalAws() as aws:
        ctx = Context(aws=aws, workdir=args.workdir, small=args.small, log=emit)
        for name in chosen:
            module = _module(name)
            requires = getattr(module, "REQUIRES", None)
            if requires and not (ROOT / requires).exists():
                result = Result(name, status="skipped", reason=f"{requires} does not exist yet")
                emit(f"{name}: SKIPPED: {result.reason}")
                results.append(result)
                continue
            kwargs: dict[str, Any] = dict(module.sizes(args.small))
            for flag, (scenario, key, _text) in SIZE_FLAGS.items():
                value = getattr(args, flag)
                if scenario == name and value is not None:
                    kwargs[key] = value
            if name in SCALED and args.time_scale is not None:
                kwargs["time_scale"] = args.time_scale
            emit(f"{name}: {kwargs}")
            started = time.perf_counter()
            try:
                result = module.run(ctx, **kwargs)
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others' figures
                result = Result(name, status="error", reason=f"{type(exc).__name__}: {exc}")
                result.notes.append(traceback.format_exc()[-3000:])
                emit(f"{name}: ERROR: {result.reason}")
            result.seconds = time.perf_counter() - started
            emit(f"{name}: done in {result.seconds:.0f}s")
            results.append(result)
        ctx.close()
    return results


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def goal_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = []
    for result in results:
        if result.status != "ok":
            rows.append([result.scenario, result.status.upper(), "", "", result.reason])
            continue
        for goal in result.goals:
            rows.append(
                [
                    result.scenario,
                    goal["goal"],
                    _fmt(goal["value"]),
                    f"{goal['op']} {_fmt(goal['target'])}",
                    "met" if goal["met"] else "MISSED",
                ]
            )
    return rows


def figure_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = []
    for result in results:
        for key, value in result.figures.items():
            if isinstance(value, dict):
                if "ratio" in value:  # cold_start per handler
                    value = f"{value['ratio']} ({value['handler_ms_median']} ms / {value['import_boto3_ms_median']} ms)"
                else:
                    continue
            rows.append([result.scenario, key, _fmt(value)])
    return rows


def print_tables(results: Sequence[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    goals = Table(title="RoleWarden bench: goals", title_justify="left")
    for column in ("scenario", "goal", "value", "target", "verdict"):
        goals.add_column(column, overflow="fold")
    for row in goal_rows(results):
        goals.add_row(*row, style="red" if row[-1] == "MISSED" else None)
    figures = Table(title="RoleWarden bench: figures", title_justify="left")
    for column in ("scenario", "figure", "value"):
        figures.add_column(column, overflow="fold")
    for row in figure_rows(results):
        figures.add_row(*row)
    console.print(goals)
    console.print(figures)


def markdown(results: Sequence[Result], command: str, seconds: float) -> str:
    lines = [
        f"`{command}` ({seconds / 60:.1f} min)",
        "",
        "| scenario | goal | value | target | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in goal_rows(results)]
    lines += ["", "| scenario | figure | value |", "|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in figure_rows(results)]
    return "\n".join(lines) + "\n"


def merged(out: Path, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scenarios of an earlier results file, each replaced by its fresh run if there is one, in ORDER:
    running a few scenarios keeps the others' figures (each entry carries its own command and sizes)."""
    try:
        earlier = json.loads(out.read_text()).get("scenarios", [])
    except (OSError, ValueError):
        earlier = []
    by_name = {entry["scenario"]: entry for entry in earlier}
    by_name.update({entry["scenario"]: entry for entry in fresh})
    rank = {name: index for index, name in enumerate(ORDER)}
    return sorted(by_name.values(), key=lambda entry: rank.get(entry["scenario"], len(ORDER)))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "make bench" + (f" BENCH_ARGS='{' '.join(argv or sys.argv[1:])}'" if (argv or sys.argv[1:]) else "")
    started = time.perf_counter()
    results = run_scenarios(args)
    seconds = time.perf_counter() - started
    from bench.peers import C7N_PYTHON

    peer_versions = versions(C7N_PYTHON)
    fresh = [{**r.as_dict(), "command": command, "versions": peer_versions} for r in results]
    document = {
        "command": command,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(seconds, 1),
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "versions": peer_versions,
        "scenarios": merged(args.out, fresh),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    (args.workdir / "results.md").write_text(markdown(results, command, seconds))
    print_tables(results)
    shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    print(f"{command}: {seconds / 60:.1f} min; results in {shown}")
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
