"""Where the command line finds RoleWarden's config and state table: its flags first, then the
environment (ROLEWARDEN_CONFIG, ROLEWARDEN_TABLE), then the defaults."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from rolewarden.cli.errors import UsageError
from rolewarden.settings import current, pinned

DEFAULT_CONFIG = "config/rolewarden.yaml"


def config_path(given: str | None) -> str:
    """``--config`` (or validate's FILE), else $ROLEWARDEN_CONFIG, else the repository's config."""
    return given or current().config or DEFAULT_CONFIG


def state_table(args: argparse.Namespace) -> str | None:
    """``--table``, else $ROLEWARDEN_TABLE; None when neither is set."""
    return args.table or current().table or None


def required_state_table(args: argparse.Namespace) -> str:
    table = state_table(args)
    if not table:
        raise UsageError(
            f"{args.command} reads RoleWarden's state table: pass --table NAME or set ROLEWARDEN_TABLE "
            "(the stack's StateTableName output)"
        )
    return str(table)


@contextmanager
def table_for_run(table: str | None) -> Iterator[None]:
    """The run's settings name ``--table`` as the state table (the records, leases and breaker read
    ``settings.table``); the environment is left as it is."""
    if not table:
        yield
        return
    with pinned(dataclasses.replace(current(), table=table)):
        yield
