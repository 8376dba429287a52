"""Count the AWS calls of a tool that runs in another process (the RoleWarden CLI, Cloud Custodian).

The bench puts this directory first on PYTHONPATH and sets RW_BENCH_CALLS_OUT. Python imports
``sitecustomize`` at start-up, so before the tool's own code runs this wraps
``botocore.session.Session.create_client``: every client the tool creates (boto3 or bare botocore,
any session) gets the same ``before-parameter-build`` counter the in-process bench registers through
``rolewarden.aws.clients.add_hook``. That event fires once per API call (botocore's own retries of a
call are not recounted), so the two sides are counted the same way. The counts, keyed
"service:Operation", are written as JSON to RW_BENCH_CALLS_OUT at exit.

Importing botocore.session here moves an import both tools make anyway to start-up; it adds no work
to either. Without RW_BENCH_CALLS_OUT this file does nothing.
"""

import os

if os.environ.get("RW_BENCH_CALLS_OUT"):
    import atexit
    import json
    from collections import Counter

    import botocore.session

    _calls: Counter = Counter()
    _original = botocore.session.Session.create_client

    def _count(model=None, **_):
        _calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def _create_client(self, *args, **kwargs):
        client = _original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", _count)
        return client

    botocore.session.Session.create_client = _create_client

    @atexit.register
    def _write():
        with open(os.environ["RW_BENCH_CALLS_OUT"], "w", encoding="utf-8") as handle:
            json.dump(dict(_calls), handle, sort_keys=True)


if os.environ.get("RW_BENCH_TIME_SCALE"):
    # the throttled bench scenarios run on a simulated clock: botocore's retry backoff sleeps scaled, as
    # rwlocal.pipeline does in its pollers
    import time as _time
    import types as _types

    import botocore.endpoint

    _scale = float(os.environ["RW_BENCH_TIME_SCALE"])
    botocore.endpoint.time = _types.SimpleNamespace(sleep=lambda seconds: _time.sleep(seconds * _scale))
