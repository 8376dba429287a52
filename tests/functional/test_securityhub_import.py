"""Findings to Security Hub (issue 14) against the moto server over real HTTP. moto 5.2 implements
BatchImportFindings (it refuses a finding without resources, one by one, as AWS does) and GetFindings
(filters not implemented: the test reads all and compares)."""

from __future__ import annotations

from typing import Any

from rolewarden.aws import clients
from rolewarden.aws.securityhub import BATCH_SIZE, import_findings
from rolewarden.decide.asff import AsffContext, to_asff
from rolewarden.model.findings import Finding
from rwlocal.server import LocalAws

CENTRAL = "123456789012"  # moto's default account
MEMBER = "111111111111"
NOW = "2026-11-29T12:00:00.000Z"


def _asff(count: int) -> list[dict[str, Any]]:
    context = AsffContext(account=MEMBER, importer=CENTRAL, region="us-east-1", now=NOW)
    return [
        to_asff(Finding("profiles", f"i-{n:017x}", "profile-mismatch", f"instance {n} has the wrong profile"), context)
        for n in range(count)
    ]


def _all_findings() -> list[dict[str, Any]]:
    pages = clients.client("securityhub").get_paginator("get_findings").paginate()
    return [f for page in pages for f in page["Findings"]]


def test_findings_are_imported_in_batches_of_100_and_read_back(aws: LocalAws) -> None:
    clients.client("securityhub").enable_security_hub()
    sizes: list[int] = []

    def count(**kwargs: Any) -> None:
        sizes.append(len(kwargs["params"]["Findings"]))

    clients.add_hook("provide-client-params.securityhub.BatchImportFindings", count)
    try:
        findings = _asff(250)
        result = import_findings(findings)
    finally:
        clients.remove_hook("provide-client-params.securityhub.BatchImportFindings", count)
    assert sizes == [BATCH_SIZE, BATCH_SIZE, 50]
    assert (result.imported, result.requests, result.failed) == (250, 3, ())
    stored = {f["Id"]: f for f in _all_findings()}
    assert set(stored) == {f["Id"] for f in findings}
    one = stored[findings[7]["Id"]]
    assert one["AwsAccountId"] == CENTRAL
    assert one["ProductArn"] == f"arn:aws:securityhub:us-east-1:{CENTRAL}:product/{CENTRAL}/default"
    assert one["Resources"][0]["Id"] == f"arn:aws:ec2:us-east-1:{MEMBER}:instance/i-{7:017x}"
    assert one["Severity"]["Label"] == "MEDIUM"

    again = import_findings(findings[:10])  # the same findings again: updated, not duplicated
    assert again.imported == 10 and len(_all_findings()) == 250


def test_a_refused_finding_is_reported_and_the_rest_of_its_batch_imported(aws: LocalAws) -> None:
    findings = _asff(3)
    broken = {**findings[1], "Resources": []}  # Security Hub refuses a finding without a resource
    result = import_findings([findings[0], broken, findings[2]])
    assert result.imported == 2 and result.requests == 1
    (failed,) = result.failed
    assert failed.id == broken["Id"] and failed.code == "InvalidInput"
    assert "resource" in failed.message
    assert {f["Id"] for f in _all_findings()} == {findings[0]["Id"], findings[2]["Id"]}


def test_nothing_to_send_makes_no_request(aws: LocalAws) -> None:
    assert import_findings([]).requests == 0
