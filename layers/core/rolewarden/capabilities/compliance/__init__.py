"""Role compliance: keep managed roles within the rules (observe -> decide -> apply).

``observe.py`` reads (``observe(run, targets) -> ComplianceSnapshot``), ``rolewarden.decide.compliance``
decides (pure), ``reconcile.py`` composes them with the circuit breaker, the remediation lease, the
records and the sweep cursor, and ``report.py`` emits the findings and hands grant-policy drift to the
grants queue. The executors are ``rolewarden.aws.compliance.executors``; explain, history and rollback
are the operator's (``rolewarden.operator.compliance``).
"""

from __future__ import annotations

from rolewarden.capabilities.compliance.reconcile import RoleCompliance

CAPABILITY = RoleCompliance()
