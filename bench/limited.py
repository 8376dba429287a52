"""What the throttled scenarios share: the hostile proxy with EC2's documented token buckets (and IAM's
assumed ones) between the tools and moto, attempt counts read at the proxy, and Custodian's event mode
run as its Lambda runs it.

Every attempt is counted at the proxy (``ProxyStats.attempts`` per service, throttled answers
included): a call botocore retried three times counts three. Time runs on the proxy's simulated clock;
at ``time_scale`` 1 simulated seconds are real seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BENCH, custodian_policy

ASSOCIATE = "AssociateIamInstanceProfile"


@dataclass
class Snapshot:
    """The proxy's counters at one moment; ``since`` gives what happened after it."""

    attempts: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    writes: int = 0  # len(write_times)

    @classmethod
    def of(cls, proxy: Any) -> Snapshot:
        with proxy.stats.lock:
            return cls(
                Counter(proxy.stats.attempts),
                Counter(proxy.stats.forwarded),
                Counter(proxy.stats.injected),
                len(proxy.stats.write_times),
            )

    def since(self, earlier: Snapshot) -> Snapshot:
        return Snapshot(
            self.attempts - earlier.attempts,
            self.forwarded - earlier.forwarded,
            self.injected - earlier.injected,
            self.writes - earlier.writes,
        )

    def throttled(self, service: str) -> int:
        return self.injected[f"throttle:{service}"] + sum(
            n for k, n in self.injected.items() if k.startswith(f"bucket:{service}:")
        )

    def throttled_fraction(self, service: str) -> float:
        total = self.attempts[service]
        return round(self.throttled(service) / total, 4) if total else 0.0

    def by_operation(self) -> dict[str, int]:
        """Attempts per "service:Operation": forwarded ones plus throttled ones (by their bucket)."""
        found = Counter(self.forwarded)
        for key, n in self.injected.items():
            if key.startswith("bucket:"):
                found[f"{key.removeprefix('bucket:')} (throttled)"] += n
        return dict(sorted(found.items()))


@contextmanager
def hostile_proxy(aws_port: int, time_scale: float, iam: bool = True) -> Iterator[Any]:
    """The chaos proxy with token buckets on and no random faults. The lags (IAM, EC2) are off: these
    scenarios measure throttling alone (the chaos suite covers the lags)."""
    from rwlocal.hostile import Hostility
    from rwlocal.proxy import ChaosProxy, FaultPlan

    hostility = Hostility(time_scale=time_scale, buckets=True, iam_lag=0.0, ec2_lag=0.0, scale_visibility=True)
    with ChaosProxy(aws_port, FaultPlan(), hostility) as proxy:
        yield proxy


def last_write_after(proxy: Any, operation: str, started_real: float) -> float | None:
    """Real seconds from ``started_real`` to the last effective ``operation`` write."""
    with proxy.stats.lock:
        times = [t for t, name in proxy.stats.write_times if name.endswith(f":{operation}") and t >= started_real]
    return max(times) - started_real if times else None


def wait_until(predicate: Any, timeout: float, poll: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


def harness_env(config: Path, proxy: Any, time_scale: float) -> dict[str, str]:
    """Function environment overrides: RoleWarden's clients go through the proxy; its pacing runs in
    real seconds, so its rates are multiplied by 1 / time_scale (at time_scale 1: the documented rates)."""
    return {
        "ROLEWARDEN_CONFIG": str(config),
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "ROLEWARDEN_PROPAGATION_WAIT": "0",
        "ROLEWARDEN_PACING": "on",
        "ROLEWARDEN_PACE_FACTOR": repr(1.0 / time_scale),
    }


# -- Cloud Custodian's event mode, as its Lambda runs it --------------------------------------------------
EVENT_POLICY = custodian_policy(
    type="ec2-instance-state", events=["running"], role="arn:aws:iam::123456789012:role/custodian-lambda"
)

#: What c7n's Lambda entry point (c7n.handler.dispatch_event) does, minus reading config.json from the
#: package: build the policy collection once per container, then ``policy.push(event, context)`` for each
#: event (ec2-instance-state mode: resolve the instance ids of the event with DescribeInstances, filter,
#: run the actions). One event per invocation: a CloudWatch Events rule invokes the function per event.
C7N_DRIVER = r"""
import json, os, sys, time, types, uuid
import yaml
from c7n.config import Config
from c7n.policy import PolicyCollection
from c7n.resources import load_resources

policy_path, events_path, out_dir = sys.argv[1:4]
load_resources(("aws.ec2",))
data = yaml.safe_load(open(policy_path))
options = Config.empty(region="us-east-1", output_dir=out_dir, log_group=None, metrics=None, account_id="123456789012")
policy = list(PolicyCollection.from_data(data, options))[0]
failed = 0
for line in open(events_path):
    event = json.loads(line)
    context = types.SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name="custodian-web-instance-profile",
                                    get_remaining_time_in_millis=lambda: 60000)
    try:
        policy.push(event, context)
    except Exception as exc:  # Lambda would record the invocation as failed and retry it twice (async)
        failed += 1
        print(f"invocation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
print(json.dumps({"failed": failed}))
"""


def run_custodian_event_mode(
    c7n_python: Path, workdir: Path, events: list[dict[str, Any]], endpoint: str, containers: int, time_scale: float
) -> list[subprocess.CompletedProcess[str]]:
    """Deliver ``events`` to ``containers`` warm Custodian containers (processes) at once, each taking its
    share in order, as Lambda runs concurrent invocations; wait for all. Returns their results."""
    policy = workdir / "custodian-event-policy.yml"
    policy.write_text(EVENT_POLICY)
    driver = workdir / "custodian_event_driver.py"
    driver.write_text(C7N_DRIVER)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(BENCH / "callcount"),
        "RW_BENCH_TIME_SCALE": repr(time_scale),  # botocore's retry sleeps on the simulated clock
    }
    procs = []
    for index in range(containers):
        path = workdir / f"custodian-events-{index}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events[index::containers]))
        out = workdir / f"custodian-event-out-{index}"
        procs.append(
            subprocess.Popen(
                [str(c7n_python), str(driver), str(policy), str(path), str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return results
