"""Where the command line finds RoleWarden's config and state table: its flags first, then the
environment (ROLEWARDEN_CONFIG, ROLEWARDEN_TABLE), then the defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rolewarden.cli.errors import UsageError

DEFAULT_CONFIG = "config/rolewarden.yaml"


def config_path(given: str | None) -> str:
    """``--config`` (or validate's FILE), else $ROLEWARDEN_CONFIG, else the repository's config."""
    return given or os.environ.get("ROLEWARDEN_CONFIG") or DEFAULT_CONFIG


def state_table(args: argparse.Namespace) -> str | None:
    """``--table``, else $ROLEWARDEN_TABLE; None when neither is set."""
    return args.table or os.environ.get("ROLEWARDEN_TABLE") or None


def required_state_table(args: argparse.Namespace) -> str:
    table = state_table(args)
    if not table:
        raise UsageError(
            f"{args.command} reads RoleWarden's state table: pass --table NAME or set ROLEWARDEN_TABLE "
            "(the stack's StateTableName output)"
        )
    return str(table)


# replaced by Run.settings at merge (issue 11)
@contextmanager
def table_in_environment(table: str | None) -> Iterator[None]:
    """The capabilities' Recorder reads ROLEWARDEN_TABLE: set it from --table for the duration."""
    saved = os.environ.get("ROLEWARDEN_TABLE")
    if table:
        os.environ["ROLEWARDEN_TABLE"] = table
    try:
        yield
    finally:
        if table:
            if saved is None:
                os.environ.pop("ROLEWARDEN_TABLE", None)
            else:
                os.environ["ROLEWARDEN_TABLE"] = saved
