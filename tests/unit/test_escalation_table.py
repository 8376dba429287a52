"""The escalation table is data (``decide/escalation/paths.json``): its loader builds the paths in the file's
order and refuses a malformed table with an error that names the place and the fault."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rolewarden.decide.escalation.catalog import PATH_IDS, PATHS, TableError, load_paths, parse_paths
from rolewarden.decide.escalation.path import EscalationPath, Need

PASSROLE = {
    "id": "lambda-x",
    "title": "new function with the role, invoked",
    "sources": ["rolewarden"],
    "principals": ["lambda.amazonaws.com"],
    "key": [{"action": "iam:PassRole"}],
    "companions": ["lambda:CreateFunction", "lambda:InvokeFunction"],
}
SELF_WRITE = {
    "id": "iam-x",
    "title": "attach a policy to the role itself",
    "sources": ["rhino:9", "pathfinding:iam-009"],
    "key": [{"action": "iam:AttachRolePolicy", "scope": "self", "narrowed_by": "iam:PolicyARN"}],
}
TABLE: list[dict[str, Any]] = [
    {"category": "iam-write", "paths": [SELF_WRITE]},
    {"category": "passrole-code", "paths": [PASSROLE]},
]


def test_a_table_becomes_its_paths_in_order_with_key_needs_first_and_companions_on_any_resource() -> None:
    assert load_paths(json.dumps(TABLE)) == (
        EscalationPath(
            "iam-x",
            "attach a policy to the role itself",
            "iam-write",
            ("rhino:9", "pathfinding:iam-009"),
            (Need("iam:AttachRolePolicy", "self", True, narrowed_by="iam:PolicyARN"),),
        ),
        EscalationPath(
            "lambda-x",
            "new function with the role, invoked",
            "passrole-code",
            ("rolewarden",),
            (
                Need("iam:PassRole", "broad", True),
                Need("lambda:CreateFunction", "any"),
                Need("lambda:InvokeFunction", "any"),
            ),
            ("lambda.amazonaws.com",),
        ),
    )


def test_the_shipped_table_keeps_its_category_order_and_ids() -> None:
    """PATH_IDS is a contract (config exemptions and the README name them): groups in this order."""
    groups = [c for i, c in enumerate(p.category for p in PATHS) if i == 0 or PATHS[i - 1].category != c]
    assert groups == ["iam-write", "credentials", "trust", "passrole-code", "existing-compute"]
    assert PATH_IDS[:3] == ("iam-001", "iam-setdefault", "iam-005") and PATH_IDS[-1] == "mwaa-002"
    assert len(PATH_IDS) == len(set(PATH_IDS)) == 88


def _broken(change: str) -> list[dict[str, Any]]:
    table = copy.deepcopy(TABLE)
    write, passrole = table[0]["paths"][0], table[1]["paths"][0]
    match change:
        case "unknown category":
            table[0]["category"] = "iam-writes"
        case "category twice":
            table.append({"category": "iam-write", "paths": []})
        case "unknown scope":
            write["key"][0]["scope"] = "own"
        case "missing field":
            del passrole["sources"]
        case "unknown field":
            write["key"][0]["narowed_by"] = write["key"][0].pop("narrowed_by")
        case "duplicate id":
            passrole["id"] = "iam-x"
        case "principals elsewhere":
            write["principals"] = ["ec2.amazonaws.com"]
        case "passrole without principals":
            del passrole["principals"]
        case "no key need":
            write["key"] = []
        case "not a string":
            passrole["companions"] = ["lambda:CreateFunction", 7]
        case "no sources":
            passrole["sources"] = []
        case "group not an object":
            table[1] = "passrole-code"
    return table


#: Each way ``_broken`` breaks the table, and what the refusal must say (after the file's name).
REFUSALS = {
    "unknown category": "group 0: unknown category 'iam-writes'; known: iam-write, passrole-code,",
    "category twice": "group 2: category iam-write has a group already",
    "unknown scope": "path iam-x (iam-write): key 0: unknown scope 'own'; known: broad, self, policy, any",
    "missing field": "category passrole-code, path 0: missing field(s) sources",
    "unknown field": "path iam-x (iam-write): key 0: unknown field(s) narowed_by; known: action, scope,",
    "duplicate id": "duplicate path id(s): iam-x",
    "principals elsewhere": "path iam-x (iam-write): principals are named by passrole-code paths",
    "passrole without principals": "path lambda-x (passrole-code): principals are named by passrole-code",
    "no key need": "path iam-x (iam-write): key names no need",
    "not a string": "path lambda-x (passrole-code): companions: expected a non-empty string, got 7",
    "no sources": "path lambda-x (passrole-code): sources: an empty list",
    "group not an object": "group 1: expected an object, got str",
}


@pytest.mark.parametrize("change", REFUSALS)
def test_a_malformed_table_is_refused_naming_the_place(change: str) -> None:
    with pytest.raises(TableError) as refused:
        load_paths(json.dumps(_broken(change)), source="test.json")
    assert str(refused.value).startswith("escalation table test.json: ") and REFUSALS[change] in str(refused.value)


def test_text_that_is_not_json_or_not_a_list_is_refused() -> None:
    with pytest.raises(TableError, match=r"^escalation table paths.json: not JSON: "):
        load_paths("[{")
    with pytest.raises(TableError, match=r"^the table: expected a list, got dict$"):
        parse_paths({"iam-write": []})
