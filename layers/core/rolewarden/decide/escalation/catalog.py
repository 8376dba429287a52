"""The escalation paths RoleWarden looks for: the one table, read once from the data file ``paths.json``
beside this module and checked as it is read (PURE: reads only that file of the package; no boto3, no
environment, no clock). The order of ``PATHS`` and ``PATH_IDS`` is the file's, and part of the config's
and the README's contract.

``paths.json`` is a list of groups ``{"category", "paths"}``; each path is an object with ``id``,
``title``, ``sources`` and ``key`` (its key needs: ``action``, and ``scope``, ``types``, ``narrowed_by``
where they differ from the defaults of ``Need``), ``companions`` (actions needed on any resource, which the
remedy leaves alone) and, for ``passrole-code`` paths only, ``principals``. What the fields mean:
``rolewarden.decide.escalation.path``. A malformed table (unknown category or scope, a missing or unknown
field, a duplicate id) is refused with ``TableError`` naming the place.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files
from typing import get_args

from rolewarden.decide.escalation.path import CATEGORIES, Category, EscalationPath, Need, Scope

_CATEGORIES: dict[str, Category] = {c: c for c in CATEGORIES}
_SCOPES: dict[str, Scope] = {s: s for s in get_args(Scope)}


class TableError(ValueError):
    """The escalation table is malformed (a bug in the package's data, found when it is read)."""


def load_paths(text: str, source: str = "paths.json") -> tuple[EscalationPath, ...]:
    """The paths of the table ``text`` (JSON), in its order; ``TableError`` names ``source`` and the fault."""
    try:
        return parse_paths(json.loads(text))
    except json.JSONDecodeError as exc:
        raise TableError(f"escalation table {source}: not JSON: {exc}") from exc
    except TableError as exc:
        raise TableError(f"escalation table {source}: {exc}") from None


def parse_paths(table: object) -> tuple[EscalationPath, ...]:
    """The paths of the decoded table, group by group in its order."""
    paths: list[EscalationPath] = []
    seen: set[str] = set()
    for index, group in enumerate(_items(table, "the table")):
        fields = _fields(group, f"group {index}", ("category", "paths"))
        raw = fields["category"]
        category = _CATEGORIES.get(raw) if isinstance(raw, str) else None
        if category is None:
            raise TableError(f"group {index}: unknown category {raw!r}; known: {', '.join(CATEGORIES)}")
        if category in seen:
            raise TableError(f"group {index}: category {category} has a group already")
        seen.add(category)
        entries = _items(fields["paths"], f"category {category}: paths")
        paths.extend(_path(entry, category, f"category {category}, path {n}") for n, entry in enumerate(entries))
    repeated = sorted(pid for pid, count in Counter(p.id for p in paths).items() if count > 1)
    if repeated:
        raise TableError(f"duplicate path id(s): {', '.join(repeated)}")
    return tuple(paths)


def _path(entry: object, category: Category, where: str) -> EscalationPath:
    fields = _fields(entry, where, ("id", "title", "sources", "key"), ("principals", "companions"))
    pid = _text(fields["id"], f"{where}: id")
    where = f"path {pid} ({category})"
    principals = _texts(fields["principals"], f"{where}: principals") if "principals" in fields else ()
    if bool(principals) != (category == "passrole-code"):
        raise TableError(f"{where}: principals are named by passrole-code paths, and only by them")
    key = tuple(_key_need(n, f"{where}: key {i}") for i, n in enumerate(_items(fields["key"], f"{where}: key")))
    if not key:
        raise TableError(f"{where}: key names no need (the statements the remedy removes)")
    companions = _texts(fields["companions"], f"{where}: companions") if "companions" in fields else ()
    needs = (*key, *(Need(action, "any") for action in companions))
    title = _text(fields["title"], f"{where}: title")
    return EscalationPath(pid, title, category, _texts(fields["sources"], f"{where}: sources"), needs, principals)


def _key_need(value: object, where: str) -> Need:
    fields = _fields(value, where, ("action",), ("scope", "types", "narrowed_by"))
    raw = fields.get("scope", "broad")
    scope = _SCOPES.get(raw) if isinstance(raw, str) else None
    if scope is None:
        raise TableError(f"{where}: unknown scope {raw!r}; known: {', '.join(_SCOPES)}")
    types = _texts(fields["types"], f"{where}: types") if "types" in fields else ()
    narrowed_by = _text(fields["narrowed_by"], f"{where}: narrowed_by") if "narrowed_by" in fields else ""
    return Need(_text(fields["action"], f"{where}: action"), scope, True, types, narrowed_by)


def _fields(value: object, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TableError(f"{where}: expected an object, got {type(value).__name__}")
    missing = [name for name in required if name not in value]
    if missing:
        raise TableError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(value) - {*required, *optional})
    if unknown:
        raise TableError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join((*required, *optional))}")
    return value


def _items(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise TableError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _texts(value: object, where: str) -> tuple[str, ...]:
    texts = tuple(_text(item, where) for item in _items(value, where))
    if not texts:
        raise TableError(f"{where}: an empty list (name one at least, or leave an optional field out)")
    return texts


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TableError(f"{where}: expected a non-empty string, got {value!r}")
    return value


PATHS: tuple[EscalationPath, ...] = load_paths(files(__name__).joinpath("paths.json").read_text(encoding="utf-8"))

PATHS_BY_ID: dict[str, EscalationPath] = {p.id: p for p in PATHS}
PATH_IDS: tuple[str, ...] = tuple(PATHS_BY_ID)


def all_actions() -> tuple[str, ...]:
    """Every action the table names (checked against the IAM service catalog by a test)."""
    return tuple(sorted({n.action for p in PATHS for n in p.needs}))
