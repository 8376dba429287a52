"""``rolewarden explain i-…|role/NAME|bucket/NAME``: why a resource is as it is and what RoleWarden
would do, as indented text or one JSON document (the reports come from ``rolewarden.operator.profiles``);
with ``--account``, one report per account, grouped."""

from __future__ import annotations

import argparse
from typing import Any

from rolewarden.cli.accounts import resolve
from rolewarden.cli.errors import CallErrors, UsageError
from rolewarden.cli.output import EXIT_ERROR, EXIT_OK, Out
from rolewarden.config import Config, load_config


def cmd_explain(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    config = load_config(args.config)
    target = args.resource
    kind, _, name = target.partition("/")
    if not (target.startswith("i-") or (kind in ("role", "bucket") and name)):
        raise UsageError(f"explain takes i-<id>, role/NAME or bucket/NAME, not {target!r}")
    places = resolve(args, config, out)
    if places is None:
        return EXIT_ERROR
    reports: dict[str | None, dict[str, Any]] = {}
    for where in places.wheres:
        with where.acting():
            reports[where.account] = explain_one(where.config, target)
    if args.json:
        out.json(places.document(reports))
    else:
        for where in places.wheres:
            where.header(out)
            out.report(reports[where.account])
    return EXIT_ERROR if places.unavailable else EXIT_OK


def explain_one(config: Config, target: str) -> dict[str, Any]:
    from rolewarden.operator import profiles as explain

    kind, _, name = target.partition("/")
    if target.startswith("i-"):
        return explain.explain_instance(config, target)
    if kind == "role":
        return explain.explain_role(config, name)
    return explain.explain_bucket(config, name)
