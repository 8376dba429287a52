"""``rolewarden explain i-…|role/NAME|bucket/NAME``: why a resource is as it is and what RoleWarden
would do, as indented text or one JSON document (the reports come from ``rolewarden.explain``)."""

from __future__ import annotations

import argparse

from rolewarden.cli.errors import CallErrors, UsageError
from rolewarden.cli.output import EXIT_OK, Out
from rolewarden.config import load_config


def cmd_explain(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden.operator import profiles as explain

    config = load_config(args.config)
    target = args.resource
    kind, _, name = target.partition("/")
    if target.startswith("i-"):
        report = explain.explain_instance(config, target)
    elif kind == "role" and name:
        report = explain.explain_role(config, name)
    elif kind == "bucket" and name:
        report = explain.explain_bucket(config, name)
    else:
        raise UsageError(f"explain takes i-<id>, role/NAME or bucket/NAME, not {target!r}")
    if args.json:
        out.json(report)
    else:
        out.report(report)
    return EXIT_OK
