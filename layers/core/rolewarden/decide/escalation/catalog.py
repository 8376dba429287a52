"""The escalation paths RoleWarden looks for: the one table, assembled from the data modules in a fixed
order (the order of ``PATH_IDS`` is part of the config's and the README's contract)."""

from __future__ import annotations

from rolewarden.decide.escalation.existing_compute import EXISTING_COMPUTE
from rolewarden.decide.escalation.iam_write import CREDENTIALS, IAM_WRITE, TRUST
from rolewarden.decide.escalation.passrole import PASSROLE_CODE
from rolewarden.decide.escalation.path import EscalationPath

PATHS: tuple[EscalationPath, ...] = (*IAM_WRITE, *CREDENTIALS, *TRUST, *PASSROLE_CODE, *EXISTING_COMPUTE)

PATHS_BY_ID: dict[str, EscalationPath] = {p.id: p for p in PATHS}
PATH_IDS: tuple[str, ...] = tuple(PATHS_BY_ID)
if len(PATH_IDS) != len(PATHS):  # pragma: no cover - a duplicated id is a bug in the table
    raise ValueError("duplicate escalation path id")


def all_actions() -> tuple[str, ...]:
    """Every action the table names (checked against the IAM service catalog by a test)."""
    return tuple(sorted({n.action for p in PATHS for n in p.needs}))
