"""Telemetry: where logs, metrics and findings go. One Sink per run: Powertools Logger/Metrics in Lambda,
a plain logger and in-memory counters in the CLI and tests. Every action and refusal is one
structured log line a person can grep."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import Any

from rolewarden.model.findings import Finding

_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


class Sink:
    def __init__(self, logger: Any = None, metrics: Any = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger("rolewarden")
        self.metrics = metrics
        self.counts: Counter[str] = Counter()
        self.findings: list[Finding] = []
        self.records: list[dict[str, Any]] = []
        #: The member account the invocation acts in now (central mode); its findings name it.
        self.account = ""

    def log(self, level: str, message: str, **fields: Any) -> None:
        self.records.append({"level": level, "message": message, **fields})
        self.logger.log(_LEVELS.get(level, logging.INFO), message, extra=fields)

    def metric(self, name: str, value: int = 1) -> None:
        """Count now; ``flush_metrics`` publishes one value per metric name at the end of the invocation."""
        self.counts[name] += value

    def flush_metrics(self) -> None:
        if self.metrics is None:
            return
        from aws_lambda_powertools.metrics import MetricUnit

        for name, value in sorted(self.counts.items()):
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def finding(self, finding: Finding, metric: str = "Findings") -> None:
        if self.account and not finding.account:
            finding = replace(finding, account=self.account)
        self.findings.append(finding)
        self.log(
            finding.severity,
            f"finding {finding.rule} on {finding.resource}: {finding.message}",
            finding=finding.as_dict(),
        )
        self.metric(metric)
