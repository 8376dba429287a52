"""Every action of the escalation table (and of the corpus that tests it) exists in the IAM service
catalog: a misspelled action would be a path RoleWarden can never find."""

from __future__ import annotations

import pytest

from rolewarden.decide.escalation.catalog import PATHS, all_actions
from rwlocal.iamcatalog import problems
from tests.escalation_corpus import CATALOG


def _allow(action: str) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


@pytest.mark.parametrize("action", all_actions())
def test_every_action_of_the_table_is_in_the_iam_catalog(action: str) -> None:
    assert problems(_allow(action), where=action) == []


@pytest.mark.parametrize("action", sorted({a for _id, _p, _s, actions in CATALOG for a in actions}))
def test_every_action_of_the_corpus_is_in_the_iam_catalog(action: str) -> None:
    assert problems(_allow(action), where=action) == []


def test_a_misspelled_action_is_caught() -> None:
    """The check can fail: the catalog knows iam:PutRolePolicy, not iam:PutRolePolicies."""
    assert problems(_allow("iam:PutRolePolicies"))


def test_every_passrole_path_names_a_service_principal_and_a_service_action() -> None:
    for path in PATHS:
        if path.category == "passrole-code":
            assert path.principals and all(p.endswith(".amazonaws.com") for p in path.principals), path.id
            assert any(a != "iam:PassRole" for a in path.actions), path.id


def test_the_readme_lists_every_path_by_category() -> None:
    """The README's escalation table is the operator's view of the table: it cannot fall behind."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `") and "` |" in line
    }
    for path in PATHS:
        assert f"`{path.id}` " in rows.get(path.category, ""), f"{path.id} missing from the README row {path.category}"
