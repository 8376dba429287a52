"""`rolewarden`: the operator's command line. Same config, same decision code, same executor as the
Lambda handlers; no second implementation.

    rolewarden validate [CONFIG] [--offline]               schema + checks against the account; exit 1 on problems
    rolewarden plan [--only CAP] [--json] [--account A]    what a sweep would do; exit 0 nothing, 2 changes, 1 error
    rolewarden apply [--only CAP] [--yes] [--table T] [--account A]   the same plan, confirmed, then applied
    rolewarden explain i-…|role/NAME|bucket/NAME [--account A]        why it is so, what RoleWarden would do
    rolewarden history role/NAME [--table T] [--account A] recorded remediations and rollbacks of a role
    rolewarden rollback role/NAME [--to RECORD] [--dry-run] [--table T] [--account ID]   restore a recorded state
    rolewarden breaker status [--table T]                  the compliance circuit breaker: tripped?, this window's count
    rolewarden breaker reset --reason TEXT [--table T]     close a tripped breaker now (recorded)

Works against a real account (profile, region, credential chain) and a local endpoint (AWS_ENDPOINT_URL).
``--account ID[,ID…]`` (repeatable; ``all``: every admitted account of the organization) acts in the named
accounts, each admitted and entered as the Lambda functions do (central mode), the output grouped by account.

The modules: ``main`` (entry point and argument parser), one per command (``plan``, ``apply``,
``explain``, ``validate``, ``history`` with rollback, ``breaker``), ``accounts`` (``--account``: the
accounts a command acts in), ``output`` (text, tables, JSON, exit
codes), ``errors`` (failed AWS calls and what they mean for the operator) and ``locations`` (config
file and state table from flags and environment).
"""
