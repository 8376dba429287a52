"""The one IAM policy grammar, PURE: statements normalised, wildcard matching of actions and resources,
NotAction/NotResource, condition values, and documents minus some statements.

Used by every rule of the compliance capability (and so by the profiles tag guard, which runs them) and
by the perimeter rule. Loading a document and its canonical JSON are ``rolewarden.model.documents``.

Semantics (documented choices where IAM leaves room):

* Documents may be dicts or JSON strings (also URL-encoded, as IAM's raw API returns them);
  ``Statement``, ``Action``, ``NotAction``, ``Resource`` and ``NotResource`` may be a string or a list.
* Actions match case-insensitively with IAM wildcards (``*``, ``?``): ``iam:Put*`` covers
  ``iam:PutRolePolicy``. An Allow with ``NotAction`` allows every action it does not name.
* A resource written with the caller's own user name (``user/${aws:username}``) names nothing for a role;
  any other policy variable may be anything, so it counts as a wildcard.
* ``...IfExists`` condition operators never narrow (the key may be absent from the request).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rolewarden.model.documents import PolicyDocumentError, load_document

#: A policy variable naming the caller's own IAM user: for a role it resolves to nothing, so a resource
#: written with it (the documented self-service pattern ``user/${aws:username}``) grants a role nothing.
SELF_USER_VARIABLE = "${aws:username}"
_VARIABLE = re.compile(r"\$\{[^}]*\}")


def string_list(value: Any, where: str) -> tuple[str, ...]:
    """A grammar element that may be a string or a list of strings, as a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise PolicyDocumentError(f"{where} must be a string or a list of strings")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def named_values(document: Any) -> Iterable[str]:
    """Every string a document's statements name as a ``Resource`` or as a condition value, skipping what
    is not of the grammar instead of refusing it: the scan for what a hand-edited document still names
    (the grants capability's buckets), where ``parse_policy`` would refuse the whole document."""
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    for statement in _listed(statements):
        if not isinstance(statement, Mapping):
            continue
        values = _listed(statement.get("Resource", []))
        conditions = statement.get("Condition")
        for condition in conditions.values() if isinstance(conditions, Mapping) else []:
            if isinstance(condition, Mapping):
                for item in condition.values():
                    values = [*values, *_listed(item)]
        yield from (value for value in values if isinstance(value, str))


@dataclass(frozen=True)
class Statement:
    """One statement, normalised. ``raw`` is the statement as written (kept verbatim on rewrite)."""

    index: int
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] | None  # None: the statement uses NotAction
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None  # None: the statement uses NotResource (or names none)
    not_resources: tuple[str, ...] | None
    condition: Mapping[str, Any]
    principal: Any = None
    not_principal: Any = None
    sid: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_allow(self) -> bool:
        return self.effect == "Allow"

    def allows_action(self, action: str) -> bool:
        """True when this statement is an Allow whose Action/NotAction covers ``action``."""
        return self.is_allow and statement_covers(self, action)

    @property
    def every_resource(self) -> bool:
        """Applies to every resource: ``*`` (or an all-wildcard ARN), or NotResource."""
        if self.not_resources is not None:
            return True
        return self.resources is not None and any(resource_is_everything(r) for r in self.resources)


@dataclass(frozen=True)
class PolicyDocument:
    raw: Mapping[str, Any]
    statements: tuple[Statement, ...]
    statement_is_list: bool


def parse_policy(document: Any) -> PolicyDocument:
    """Normalise a policy document (dict or JSON string; Statement a dict or a list)."""
    raw = load_document(document)
    statement = raw.get("Statement")
    if isinstance(statement, Mapping):
        items: list[Any] = [statement]
        is_list = False
    elif isinstance(statement, list):
        items, is_list = statement, True
    else:
        raise PolicyDocumentError("Statement must be an object or a list of objects")
    return PolicyDocument(raw, tuple(_statement(index, item) for index, item in enumerate(items)), is_list)


def _statement(index: int, item: Any) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(item, Mapping):
        raise PolicyDocumentError(f"{where} is not an object")
    effect = str(item.get("Effect", ""))
    if effect.lower() not in ("allow", "deny"):
        raise PolicyDocumentError(f"{where}.Effect must be Allow or Deny")
    lists = {
        key: string_list(item[key], f"{where}.{key}") if key in item else None
        for key in ("Action", "NotAction", "Resource", "NotResource")
    }
    condition = item.get("Condition") or {}
    if not isinstance(condition, Mapping):
        raise PolicyDocumentError(f"{where}.Condition must be an object")
    return Statement(
        index=index,
        effect="Allow" if effect.lower() == "allow" else "Deny",
        actions=lists["Action"],
        not_actions=lists["NotAction"],
        resources=lists["Resource"],
        not_resources=lists["NotResource"],
        condition=condition,
        principal=item.get("Principal"),
        not_principal=item.get("NotPrincipal"),
        sid=str(item.get("Sid", "")),
        raw=dict(item),
    )


def without_statements(document: Any, indexes: Iterable[int]) -> dict[str, Any] | None:
    """The document minus the statements at ``indexes`` (others kept verbatim, in order); None if none is left."""
    policy = parse_policy(document)
    drop = set(indexes)
    kept = [dict(s.raw) for s in policy.statements if s.index not in drop]
    if not kept:
        return None
    out = dict(policy.raw)
    out["Statement"] = kept if policy.statement_is_list else kept[0]
    return out


# ------------------------------------------------------------------ actions
@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{escaped}$", re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, ``*`` and ``?`` wildcards (``iam:Put*``, ``iam:*``, ``*``)."""
    return _pattern(pattern).match(action.lower()) is not None


def pattern_is_everything(pattern: str) -> bool:
    """``*``, ``*:*`` and their variants match every action."""
    return pattern.replace("*", "") in ("", ":")


def statement_covers(statement: Statement, action: str) -> bool:
    """Whether the statement's Action/NotAction covers ``action``, whatever its Effect."""
    if statement.actions is not None:
        return any(action_matches(pattern, action) for pattern in statement.actions)
    if statement.not_actions is not None:
        return not any(action_matches(pattern, action) for pattern in statement.not_actions)
    return False


# ------------------------------------------------------------------ resources
def resource_is_everything(resource: str) -> bool:
    """``*`` or an ARN whose service, region, account and resource parts are all wildcards."""
    if resource.replace("*", "") == "":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return False
    return all(part.replace("*", "").replace("?", "") == "" for part in parts[2:])


def resource_is_broad(resource: str) -> bool:
    """A resource that names no particular principal or policy: ``*``; an ARN with a wildcard service
    or account; or a resource part that starts with a wildcard right after its type (``role/*``,
    ``user/*``, ``*``). A path-scoped pattern (``role/rolewarden/*``, ``role/app-*``) is not broad."""
    if resource_is_everything(resource):
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return "*" in resource or "?" in resource
    service, account, rest = parts[2], parts[4], parts[5]
    if "*" in service or "?" in service or "*" in account or "?" in account:
        return True
    if rest[:1] in ("*", "?"):
        return True
    if service == "s3":
        return False  # S3 ARNs have no resource type: "bucket/*" names one bucket's objects
    _type, sep, name = rest.partition("/")
    if not sep:
        _type, sep, name = rest.partition(":")
    return bool(sep) and name[:1] in ("*", "?")


def resource_matches(pattern: str, arn: str) -> bool:
    """An IAM resource pattern against one ARN (wildcards; a policy variable other than the caller's
    user name may be anything, so it counts as a wildcard)."""
    return action_matches(_VARIABLE.sub("*", pattern), arn)


def usable_resources(resources: tuple[str, ...]) -> tuple[str, ...]:
    """The resources that can name something for a role (those written with ``${aws:username}`` cannot)."""
    return tuple(r for r in resources if SELF_USER_VARIABLE not in r.lower())


def applies_to(statement: Statement, arn: str) -> bool:
    """Whether the statement's Resource/NotResource covers the resource ``arn``."""
    if statement.not_resources is not None:
        return not any(resource_matches(r, arn) for r in statement.not_resources)
    return any(resource_matches(r, arn) for r in usable_resources(statement.resources or ()))


def applies_broadly(statement: Statement) -> bool:
    """The statement names a broad set of resources (``resource_is_broad``) or uses NotResource."""
    if statement.not_resources is not None:
        return True
    return any(resource_is_broad(r) for r in usable_resources(statement.resources or ()))


def broad_for_type(statement: Statement, resource_type: str) -> bool:
    """Grants every resource of ``resource_type`` (``*``, ``...:instance/*``), or uses NotResource."""
    if statement.not_resources is not None:
        return True
    for resource in usable_resources(statement.resources or ()):
        if resource_is_everything(resource):
            return True
        rest = resource.split(":", 5)[-1]
        if rest[:1] in ("*", "?"):
            return True
        kind, sep, name = rest.partition("/")
        if sep and action_matches(kind, resource_type) and name[:1] in ("*", "?"):
            return True
    return False


# ------------------------------------------------------------------ conditions
def condition_operands(statement: Statement, key: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(values an operator requires, values a negated operator excludes) for ``key``; None if absent.
    ``...IfExists`` operators do not narrow (the key may be absent)."""
    wanted: list[str] = []
    excluded: list[str] = []
    present = False
    for operator, block in statement.condition.items():
        if not isinstance(block, Mapping) or "ifexists" in str(operator).lower():
            continue
        for name, value in block.items():
            if str(name).lower() != key.lower():
                continue
            present = True
            values = [value] if isinstance(value, str) else [str(v) for v in value or []]
            (excluded if "not" in str(operator).lower() else wanted).extend(values)
    return (tuple(wanted), tuple(excluded)) if present else None
