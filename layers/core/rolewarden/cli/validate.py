"""``rolewarden validate [FILE] [--offline]``: the config's schema, then its references checked against
the account; exit 1 on any problem (the checks come from ``rolewarden.validate``)."""

from __future__ import annotations

import argparse

from rolewarden.cli.errors import CallErrors, preflight
from rolewarden.cli.locations import config_path
from rolewarden.cli.output import EXIT_ERROR, EXIT_OK, Out
from rolewarden.config import load_config
from rolewarden.errors import ConfigError


def cmd_validate(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden.operator.validate import account_problems, offline_problems

    path = config_path(args.file or args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        problems = [line.strip() for line in lines[1:]] or [str(exc)]
        if args.json:
            out.json({"config": path, "valid": False, "problems": problems})
        else:
            for line in lines:
                out.line(line)
        return EXIT_ERROR
    problems = offline_problems(config)
    if not args.offline:
        preflight()
        problems += account_problems(config)
    deprecated = config.compliance.deprecations()  # accepted, but to be rewritten: not a problem
    if args.json:
        out.json({"config": path, "valid": not problems, "problems": problems, "deprecated": deprecated})
        return EXIT_ERROR if problems else EXIT_OK
    for message in deprecated:
        out.warn(message)
    if problems:
        where = "" if args.offline else " (checked against the account)"
        out.line(f"config {path}: {len(problems)} problem(s){where}:")
        for problem in problems:
            out.line(f"  {problem}")
    else:
        out.line(f"config {path} is valid" + ("" if args.offline else " and consistent with the account"))
    return EXIT_ERROR if problems else EXIT_OK
