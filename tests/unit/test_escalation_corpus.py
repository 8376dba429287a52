"""The escalation corpus (tests/escalation_corpus.py) as a decision table: every escalation found and named
by its path id, no control flagged. ``make bench`` runs the same corpus against cloudsplaining."""

from __future__ import annotations

import pytest

from tests.escalation_corpus import CASES, Case, expected_ids, rolewarden_finds


def test_the_corpus_has_the_controls_the_issue_asks_for() -> None:
    kinds = [c.kind for c in CASES]
    assert kinds.count("benign") >= 20
    assert kinds.count("scoped-safe") >= 10
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_escalation_corpus(case: Case) -> None:
    found = rolewarden_finds(case)
    if case.escalation:
        assert found & expected_ids(case), f"expected {case.path}, found {sorted(found)}"
    else:
        assert not found, f"a {case.kind} control was flagged: {sorted(found)}"
