"""``rolewarden breaker status|reset``: the compliance circuit breaker, tripped or not and this window's
count (exit 3 when tripped), and closing a tripped breaker with a recorded reason and operator."""

from __future__ import annotations

import argparse

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.cli.errors import CallErrors, UsageError
from rolewarden.cli.locations import required_state_table
from rolewarden.cli.output import EXIT_OK, EXIT_TRIPPED, Out
from rolewarden.config import load_config


def operator() -> str:
    """Who runs the command, for the reset record: the caller's ARN (sts:GetCallerIdentity)."""
    from rolewarden.aws.clients import client

    try:
        return str(client("sts").get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        return f"unknown (sts:GetCallerIdentity failed: {type(exc).__name__})"


def cmd_breaker(args: argparse.Namespace, out: Out, errors: CallErrors) -> int:
    from rolewarden import breaker

    table = required_state_table(args)
    config = load_config(args.config)
    if args.action == "reset":
        if not args.reason or not args.reason.strip():
            raise UsageError("breaker reset needs --reason TEXT (it is recorded with who reset it)")
        result = breaker.reset(config, table, args.reason.strip(), operator())
        if args.json:
            out.json(result)
            return EXIT_OK
        if result["was_tripped"]:
            trip = result["previous_trip"] or {}
            out.line(f"circuit breaker reset: it had tripped ({trip.get('cause', '?')}); remediation resumes now")
        else:
            out.line("circuit breaker was not tripped; this window's count is cleared")
        out.line(f"cleared {result['remediations_cleared']} remediation(s) counted in this window")
        out.line(f"recorded as {result['record_id']} (operator {result['operator']}, reason: {result['reason']})")
        return EXIT_OK
    state = breaker.status(config, table)
    if args.json:
        out.json(state)
        return EXIT_TRIPPED if state["tripped"] else EXIT_OK
    window = state["window"]
    limit = f"{state['limit']} per {state['window_minutes']} min"
    if state["tripped"]:
        trip = state["trip"]
        out.line(f"circuit breaker: TRIPPED at {trip['tripped_at']} ({trip['cause']}), until {trip['until']}")
        if trip["roles"]:
            out.line(f"  roles withheld when it tripped: {', '.join(trip['roles'][:20])}")
        out.line("  reset with: rolewarden breaker reset --reason TEXT")
    else:
        out.line("circuit breaker: closed (remediating)")
    out.line(
        f"this window {window['start']} .. {window['end']}: {window['remediations']} of {limit}"
        + (" (closed by a trip)" if window["closed"] else "")
    )
    if state["history"]:
        rows = [
            [h["record_id"], h["time"], h["kind"], str(h.get("cause") or h.get("reason") or ""), h.get("operator", "")]
            for h in state["history"]
        ]
        out.table("recent trips and resets", ["record", "time", "kind", "cause or reason", "operator"], rows)
    return EXIT_TRIPPED if state["tripped"] else EXIT_OK
