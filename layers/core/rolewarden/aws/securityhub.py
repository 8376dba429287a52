"""Sends ASFF findings (``decide.asff``) to Security Hub with BatchImportFindings, 100 per request (the
API's limit), and reports the findings Security Hub refused one by one (issue 14). The SNS findings topic
stays: this is an additional, optional destination."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rolewarden.aws import clients
from rolewarden.aws.errors import classify

BATCH_SIZE = 100


@dataclass(frozen=True)
class FailedFinding:
    id: str
    code: str
    message: str


@dataclass(frozen=True)
class ImportResult:
    imported: int = 0
    requests: int = 0
    failed: tuple[FailedFinding, ...] = field(default_factory=tuple)


def import_findings(findings: Sequence[Mapping[str, Any]], client: Any = None) -> ImportResult:
    """Import ``findings`` in batches of 100. A refused finding is reported in ``failed`` (the others of its
    batch are imported); a failed request raises RetryableError or PermanentError (``aws.errors``)."""
    securityhub = client or clients.client("securityhub")
    imported, requests = 0, 0
    failed: list[FailedFinding] = []
    for start in range(0, len(findings), BATCH_SIZE):
        batch = [dict(f) for f in findings[start : start + BATCH_SIZE]]
        try:
            answer = securityhub.batch_import_findings(Findings=batch)
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, f"securityhub:BatchImportFindings ({len(batch)} findings)") from exc
        requests += 1
        imported += int(answer.get("SuccessCount", 0))
        failed.extend(
            FailedFinding(str(f.get("Id", "")), str(f.get("ErrorCode", "")), str(f.get("ErrorMessage", "")))
            for f in answer.get("FailedFindings", [])
        )
    return ImportResult(imported, requests, tuple(failed))
