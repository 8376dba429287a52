"""`make demo`: RoleWarden's main job on an embedded local AWS.

Starts a moto server, deploys the stack into it (the SAM template translated offline), seeds a small
world, emits the events AWS would emit into moto's EventBridge so the template's own rules route them
to the queues, drains the queues into the real handlers in-process, and prints what changed.
Exits 0 and leaves no process behind (the server runs in a thread of this process).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rwlocal import stack as st
from rwlocal import world as w
from rwlocal.pipeline import Pipeline, put_events
from rwlocal.server import LocalAws

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "rolewarden.yaml"
SCENES = ("grants", "compliance", "imds", "central")


@dataclass
class Demo:
    stack: st.Stack
    pipeline: Pipeline
    console: Console
    notes: list[str] = field(default_factory=list)
    #: The local AWS itself (a scene that needs a fresh one resets it: the central scene)
    aws: LocalAws | None = None

    def section(self, title: str) -> None:
        self.console.rule(f"[bold]{title}")

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*[str(cell) for cell in row])
        self.console.print(table)


def _demo_config() -> Path:
    """The shipped config plus the one rule the shipped config deliberately lacks (issue 16): a tag asking
    for the break-glass profile, so the demo can show RoleWarden refusing it."""
    import tempfile

    import yaml

    data = yaml.safe_load(CONFIG.read_text())
    data["instance_profiles"]["rules"].append(
        {"match": {"rolewarden:profile": "admin"}, "profile": "break-glass-admin"}
    )
    handle, name = tempfile.mkstemp(prefix="rolewarden-demo-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    return Path(name)


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "-"


def instance_profiles_scene(demo: Demo) -> None:
    demo.section("1. Instance profiles by tag")
    profiles = {
        "web-server": w.create_profile("web-server"),
        "data-worker": w.create_profile("data-worker", role="data-worker", role_path="/rolewarden/data/"),
        "old-web": w.create_profile("old-web"),
        "break-glass-admin": w.create_profile("break-glass-admin", role="break-glass-admin", role_path="/"),
    }
    ec2 = w.ec2()
    world = {
        "web-1 (new, no profile)": w.run_instance({"Name": "web-1", "rolewarden:profile": "web"}),
        "web-2 (wrong profile)": w.run_instance({"Name": "web-2", "rolewarden:profile": "web"}, profiles["old-web"]),
        "web-3 (stopped, wrong profile)": w.run_instance(
            {"Name": "web-3", "rolewarden:profile": "web"}, profiles["old-web"]
        ),
        # the shipped config keys every rule under the rolewarden: prefix the guardrails reserve (issue 16)
        "etl-1 (data/prod)": w.run_instance({"Name": "etl-1", "rolewarden:profile": "data", "env": "prod"}),
        "asg-1 (Auto Scaling launch)": w.run_instance(
            {"Name": "asg-1", "rolewarden:profile": "web", "aws:autoscaling:groupName": "web-asg"}
        ),
        "ops-1 (asks for admin)": w.run_instance({"Name": "ops-1", "rolewarden:profile": "admin"}),
        "misc-1 (no rule)": w.run_instance({"Name": "misc-1", "team": "marketing"}),
    }
    ec2.stop_instances(InstanceIds=[world["web-3 (stopped, wrong profile)"]])
    ids = list(world.values())
    before = w.attached_profiles(ids)
    tags = {i: w.instance_tags(i) for i in ids}

    events = [w.state_change_event(i, "running") for n, i in world.items() if "asg" not in n and "stopped" not in n]
    events.append(w.asg_launch_event(world["asg-1 (Auto Scaling launch)"]))
    # someone tags the stopped instance again: CloudTrail CreateTags
    stopped = world["web-3 (stopped, wrong profile)"]
    events.append(
        {
            "source": "aws.ec2",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {
                "eventSource": "ec2.amazonaws.com",
                "eventName": "CreateTags",
                "requestParameters": {
                    "resourcesSet": {"items": [{"resourceId": stopped}]},
                    "tagSet": {"items": [{"key": "rolewarden:profile", "value": "web"}]},
                },
            },
        }
    )
    sent = put_events(events)
    demo.console.print(f"emitted {sent} events into EventBridge; the template's rules route them to the queue")
    refusals: list[Any] = []

    def collect(consumer: str, event: dict[str, Any], response: dict[str, Any]) -> None:
        sink = demo.pipeline.consumers[consumer].runtime().last_sink
        if sink is not None:
            # (IMDSv1 findings of the default imdsv2: report are the imds scene's subject, not refusals)
            refusals.extend(
                f for f in sink.findings if f.capability == "instance_profiles" and not f.rule.startswith("imds")
            )

    demo.pipeline.on_batch = collect
    stats = demo.pipeline.drain(["InstanceProfilesFunction"])
    demo.pipeline.on_batch = None
    demo.console.print(f"drained the queue: {stats.invocations} handler invocation(s), {stats.records} record(s)")
    after = w.attached_profiles(ids)
    rows = [
        [
            name.split(" ", 1)[0],
            name.split(" ", 1)[1].strip("()"),
            i,
            _tags({k: v for k, v in tags[i].items() if k != "Name"}),
            before.get(i, "-"),
            after.get(i, "-"),
        ]
        for name, i in world.items()
    ]
    demo.table("Instances: profile before and after", ["name", "situation", "id", "tags", "before", "after"], rows)
    if refusals:
        demo.table(
            "Refused (no change made)", ["instance", "rule", "why"], [[f.resource, f.rule, f.message] for f in refusals]
        )
    expected = {
        world["web-1 (new, no profile)"]: "web-server",
        world["web-2 (wrong profile)"]: "web-server",
        world["web-3 (stopped, wrong profile)"]: "web-server",
        world["etl-1 (data/prod)"]: "data-worker",
        world["asg-1 (Auto Scaling launch)"]: "web-server",
    }
    wrong = {i: after.get(i) for i, p in expected.items() if after.get(i) != p}
    if wrong or world["ops-1 (asks for admin)"] in after:
        raise SystemExit(f"demo check failed: {wrong or 'admin profile attached'}")


def main() -> int:
    logging.getLogger("rolewarden").setLevel(logging.WARNING)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # "There are unpublished metrics" on each deploy
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    console = Console(width=max(Console().width, 130))
    started = time.perf_counter()
    with LocalAws() as aws:
        console.print(f"[bold]RoleWarden demo[/bold]: embedded moto server at {aws.endpoint}")
        stack = st.deploy()
        functions = [k for k, v in stack.template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
        console.print(
            f"deployed stack {stack.name}: {len(stack.resources)} resources, functions {', '.join(functions)}"
        )
        # The handlers run with the functions' deployed environment; only the config path (which points
        # into the Lambda layer) and the log level (to keep the tables readable) are changed.
        overrides = {"ROLEWARDEN_CONFIG": str(_demo_config()), "POWERTOOLS_LOG_LEVEL": "ERROR"}
        pipeline = Pipeline(stack, env_overrides=overrides)
        demo = Demo(stack=stack, pipeline=pipeline, console=console, aws=aws)
        instance_profiles_scene(demo)
        for name in SCENES:
            try:
                module = importlib.import_module(f"rwlocal.scenes.{name}")
            except ModuleNotFoundError:
                continue
            module.scene(demo)
    console.print(f"[green]demo finished in {time.perf_counter() - started:.1f}s; the local server is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
