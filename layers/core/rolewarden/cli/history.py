"""``rolewarden history role/NAME`` and ``rolewarden rollback role/NAME``: the recorded remediations and
rollbacks of a role, newest first, and restoring one record's prior state (itself recorded, so it can be
undone). Both read the state table; history and rollback come from ``operator.compliance``. With
``--account``, history reads each named account's records (their keys carry the account), and rollback
restores a role of the one account it names, through that account's execution role."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rolewarden.cli.accounts import ALL, named, resolve
from rolewarden.cli.errors import CallErrors, UsageError
from rolewarden.cli.locations import required_state_table
from rolewarden.cli.output import EXIT_ERROR, EXIT_OK, Out
from rolewarden.config import load_config


def role_name(resource: str) -> str:
    kind, _, name = resource.partition("/")
    if kind != "role" or not name:
        raise UsageError(f"expected role/NAME, got {resource!r}")
    return name


def cmd_history(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    name = role_name(args.resource)
    table = required_state_table(args)
    if named(args) is None:  # the caller's own records; the config is not read
        records = _records(name, table)
        if args.json:
            out.json(records)
        else:
            show_history(out, name, records, None)
        return EXIT_OK
    places = resolve(args, load_config(args.config), out, assume=False)
    if places is None:
        return EXIT_ERROR
    found: dict[str | None, list[dict[str, Any]]] = {}
    for where in places.wheres:
        with where.acting():  # the account's record keys (aws.clients.scoped_key)
            found[where.account] = _records(name, table)
    if args.json:
        out.json(places.document(found))
        return EXIT_OK
    for where in places.wheres:
        where.header(out)
        show_history(out, name, found[where.account], where.account)
    return EXIT_OK


def _records(name: str, table: str) -> list[dict[str, Any]]:
    from rolewarden.operator import compliance

    records = compliance.history(f"role/{name}", table=table)
    # Newest first across kinds (the table sorts by kind first, then time).
    records.sort(key=lambda r: (str(r.get("time", "")), str(r.get("record_id", ""))), reverse=True)
    return records


def show_history(out: Out, name: str, records: list[dict[str, Any]], account: str | None) -> None:
    if not records:
        out.line(f"no records for role/{name}")
        return
    rows = []
    for rec in records:
        rules = sorted({str(f.get("rule", "")) for f in rec.get("findings") or [] if isinstance(f, dict)} - {""})
        what = "; ".join(str(a) for a in rec.get("actions") or []) or "-"
        if rec.get("restored_from"):
            what = f"restored {rec['restored_from']}: {what}"
        rows.append([rec["record_id"], rec["time"], rec["kind"], ", ".join(rules) or "-", rec.get("trigger", ""), what])
    out.table(f"history of role/{name}", ["record", "time", "kind", "rules", "trigger", "changes"], rows)
    flag = f" --account {account}" if account is not None else ""
    out.line(f"Restore a record's prior state with: rolewarden rollback role/{name}{flag} --to RECORD")


def cmd_rollback(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden.operator import compliance

    name = role_name(args.resource)
    table = required_state_table(args)
    config = load_config(args.config)
    accounts = named(args)
    if accounts is not None and (len(accounts) != 1 or accounts[0] == ALL):
        raise UsageError("rollback restores a role of one account: pass one --account ID")
    places = resolve(args, config, out)
    if places is None or not places.wheres:
        return EXIT_ERROR
    (where,) = places.wheres
    with where.acting():
        result = compliance.rollback(name, args.to, config=where.config, dry_run=args.dry_run, table=table)
    enforced = [v for v in result["violations_after"] if v.get("mode") == "enforce"]
    if args.json:
        out.json(result if where.account is None else {**result, "account": where.account})
    else:
        where.header(out)
        steps = result["steps"]
        verb = "would restore" if result["dry_run"] else "restored"
        out.line(f"role {result['role']}: {verb} record {result['restored_from']} ({len(steps)} step(s))")
        for step in steps:
            out.line(f"  {step['step']}: {_step_value(step)}")
        if not result["dry_run"]:
            out.line(f"verified: {'yes' if result['verified'] else 'NO: the role differs from the record'}")
            if result["record_id"]:
                out.line(f"recorded as {result['record_id']} (roll this back with --to {result['record_id']})")
        for violation in result["violations_after"]:
            if violation.get("mode") != "enforce":
                out.line(f"  the restored state breaks {violation['rule']} (report only): {violation['message']}")
    for violation in enforced:
        out.warn(
            f"the restored state breaks {violation['rule']} (enforce): {violation['message']}; RoleWarden will "
            "remediate it again at the next event or sweep unless the rule is set to report or the role is "
            "added to compliance.protected_roles"
        )
    return EXIT_OK if result["dry_run"] or result["verified"] else EXIT_ERROR


def _step_value(step: dict[str, Any]) -> str:
    value = step.get("value")
    if step.get("step") == "put-inline" and isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]} {json.dumps(value[1], sort_keys=True)}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)
