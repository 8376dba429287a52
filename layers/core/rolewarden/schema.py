"""Typed config sections: frozen dataclasses built from plain data (YAML, JSON) with strict checks.

A section is a ``@dataclass(frozen=True)`` subclass of ``Section``; ``Cls.from_data(data)`` checks the
data against its annotations and returns the section, or raises ``SchemaError`` listing every problem
as (key path, message), paths like ``instance_profiles.rules.0.profile``. It replaces pydantic on the
Lambda path, where importing pydantic and building its models cost about half of ``import boto3``.

What an annotation may be: ``str``, ``int`` (also written as an integral number or a string of digits),
``bool`` (only ``true``/``false``), ``Literal[...]``, ``X | None``, ``A | B`` (the first that fits),
``list[X]``, ``dict[str, X]`` and another ``Section``. ``Annotated[X, Limits(...), Check(fn)]`` adds
bounds (``ge``/``le`` on numbers, ``min_length``/``max_length`` on strings, lists and mappings) and field
checks: ``fn(value)`` runs once the value has its type, returns the value to keep and raises
``ValueError`` with a message (reported at the field's path). A section's ``check()`` runs once every
field is valid, for rules across fields: it returns the section to keep (``dataclasses.replace`` to
change one) and raises ``ValueError`` (reported at the section's path). Keys the data does not name take
the dataclass defaults, which are not checked; unknown keys are errors. ``given(key)`` tells whether the
data named a key. A section's ``prepare(data)`` may first rewrite its mapping for spellings the types do
not take (YAML reads an unquoted 111111111111 as a number, even as a mapping key). Sections built directly
(``Cls(field=...)``, as tests do) are trusted, not checked.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

#: (key path, message) of one problem
Problem = tuple[str, str]
_BAD: Any = object()  # "this value did not validate": its problems are already recorded
_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")


class SchemaError(ValueError):
    """The data does not fit the section: ``problems`` lists (key path, message), "" for the top level."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{path or '(top level)'}: {message}" for path, message in problems))
        self.problems = problems


class Limits:
    """Bounds of a number (``ge``, ``le``) or of a string's, list's or mapping's length."""

    __slots__ = ("ge", "le", "max_length", "min_length")

    def __init__(
        self,
        *,
        ge: int | None = None,
        le: int | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> None:
        self.ge, self.le, self.min_length, self.max_length = ge, le, min_length, max_length

    def __call__(self, value: Any) -> Any:
        if self.ge is not None and value < self.ge:
            raise ValueError(f"must be at least {self.ge}, got {value}")
        if self.le is not None and value > self.le:
            raise ValueError(f"must be at most {self.le}, got {value}")
        unit = "character" if isinstance(value, str) else "item"
        if self.min_length is not None and len(value) < self.min_length:
            plural = "" if self.min_length == 1 else "s"
            raise ValueError(f"must have at least {self.min_length} {unit}{plural}, got {len(value)}")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(f"must have at most {self.max_length} {unit}s, got {len(value)}")
        return value


class Check:
    """A field check: ``fn(value) -> value``, raising ``ValueError`` with a message naming the problem."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, value: Any) -> Any:
        return self.fn(value)


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of a config section (see the module's docstring)."""

    #: the keys the data named (set by ``from_data``; empty for a section built directly)
    _given: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """The section for ``data`` (a mapping), or ``SchemaError`` naming every problem by its key path."""
        problems: list[Problem] = []
        section = _section(cls, data, "", problems)
        if problems:
            raise SchemaError(problems)
        return typing.cast(Self, section)

    @classmethod
    def prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        """The section's mapping as its fields are to read it, before any check (a new mapping, ``data``
        itself unchanged); by default ``data`` as it is."""
        return data

    def check(self) -> Self:
        """Checks across fields, once every field is valid; returns the section to keep."""
        return self

    def given(self, key: str) -> bool:
        """Whether the data named ``key`` (False when the field holds its default)."""
        return key in self._given


_hints: dict[type, list[tuple[dataclasses.Field[Any], Any]]] = {}


def _fields(cls: type[Section]) -> list[tuple[dataclasses.Field[Any], Any]]:
    """(field, resolved annotation) of each init field of ``cls``, resolved once per class."""
    found = _hints.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = _hints[cls] = [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]
    return found


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _section(cls: type[Section], data: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(data, dict):
        problems.append((path, f"Input should be a mapping of keys to values, {_got(data)}"))
        return _BAD
    data = cls.prepare(data)
    before = len(problems)
    values: dict[str, Any] = {}
    fields = _fields(cls)
    for field, annotation in fields:
        if field.name in data:
            values[field.name] = _value(annotation, data[field.name], _join(path, field.name), problems)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.append((_join(path, field.name), "required key is missing"))
    names = {field.name for field, _ in fields}
    problems.extend((_join(path, key), "unknown key") for key in data if key not in names)
    if len(problems) > before:
        return _BAD
    section = cls(**values)
    object.__setattr__(section, "_given", frozenset(data))
    try:
        return section.check()
    except ValueError as exc:
        problems.append((path, str(exc)))
        return _BAD


def _value(annotation: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        value = _value(annotation.__origin__, value, path, problems)
        for extra in annotation.__metadata__:
            if value is _BAD:
                break
            try:
                value = extra(value)
            except ValueError as exc:
                problems.append((path, str(exc)))
                value = _BAD
        return value
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return _section(annotation, value, path, problems)
    if origin is Literal:
        for choice in get_args(annotation):
            if type(value) is type(choice) and value == choice:
                return choice
        problems.append((path, f"Input should be {_describe(annotation)}, {_got(value)}"))
        return _BAD
    if origin is typing.Union or origin is types.UnionType:
        return _union(annotation, value, path, problems)
    if origin is list:
        if not isinstance(value, list | tuple):
            problems.append((path, f"Input should be a valid list, {_got(value)}"))
            return _BAD
        (item,) = get_args(annotation)
        out = [_value(item, v, _join(path, i), problems) for i, v in enumerate(value)]
        return _BAD if _BAD in out else out
    if origin is dict:
        if not isinstance(value, dict):
            problems.append((path, f"Input should be a valid mapping, {_got(value)}"))
            return _BAD
        key_type, item = get_args(annotation)
        assert key_type is str, annotation
        bad = [k for k in value if not isinstance(k, str)]
        problems.extend((_join(path, k), "Input should be a valid string (as a key)") for k in bad)
        mapped = {k: _value(item, v, _join(path, k), problems) for k, v in value.items() if isinstance(k, str)}
        return _BAD if bad or _BAD in mapped.values() else mapped
    return _scalar(annotation, value, path, problems)


def _scalar(annotation: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    if annotation is bool:
        if type(value) is bool:
            return value
        problems.append((path, f"Input should be a valid boolean (true or false), {_got(value)}"))
    elif annotation is int:
        if type(value) is int:
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_TEXT.fullmatch(value):
            return int(value)
        problems.append((path, f"Input should be a valid integer, {_got(value)}"))
    elif annotation is str:
        if isinstance(value, str):
            return value
        problems.append((path, f"Input should be a valid string, {_got(value)}"))
    elif annotation is types.NoneType:
        if value is None:
            return None
        problems.append((path, f"Input should be null, {_got(value)}"))
    else:
        raise TypeError(f"{annotation!r} is not a type a Section field may have")
    return _BAD


def _got(value: Any) -> str:
    """'got 2.5' / "got 'yes'" / 'got a list': what the data held instead, briefly."""
    if isinstance(value, dict | list | tuple):
        return "got a " + ("mapping" if isinstance(value, dict) else "list")
    text = "null" if value is None else repr(value)
    return "got " + (text if len(text) <= 40 else text[:37] + "...")


def _union(annotation: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    options = get_args(annotation)
    if value is None and types.NoneType in options:
        return None
    options = tuple(o for o in options if o is not types.NoneType)
    attempts: list[list[Problem]] = []
    for option in options:
        found: list[Problem] = []
        out = _value(option, value, path, found)
        if not found:
            return out
        attempts.append(found)
    # a branch whose own shape fitted (its problems are deeper, or from its checks) explains best; type
    # mismatches, and only they, start with "Input should be"
    fitting = [a for a in attempts if any(p != path or not m.startswith("Input should be ") for p, m in a)]
    if len(options) == 1 or len(fitting) == 1:
        problems.extend(fitting[0] if fitting else attempts[0])
    else:
        problems.append((path, "Input should be " + " or ".join(_describe(o) for o in options) + f", {_got(value)}"))
    return _BAD


def _describe(annotation: Any) -> str:
    """A type in words, for the messages: 'a string', 'a list of strings', "'a', 'b' or 'c'"."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _describe(annotation.__origin__)
    if origin is Literal:
        choices = [repr(c) for c in get_args(annotation)]
        return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]
    words = {str: "a string", int: "an integer", bool: "a boolean", types.NoneType: "null"}
    if origin is list:
        inner = words.get(get_args(annotation)[0])
        return f"a list of {inner[2:]}s" if inner and inner.startswith("a ") else "a list"
    if origin is dict:
        return "a mapping"
    return words.get(annotation, "a mapping of keys to values")
