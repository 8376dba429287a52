"""Actions: explicit, serialisable steps that one executor applies (or only logs, in dry run).

Each capability's decision code returns actions; ``rolewarden.aws.executor`` maps each action type to
the AWS calls that carry it out. An action names the resource it changes, so the executor can
check scope and record it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from rolewarden.model.targets import Target


@dataclass(frozen=True)
class Action:
    """Base class. ``capability``, ``verb`` and ``summary`` are class-level; fields are the parameters. A
    subclass (a frozen dataclass) names its verb and summary as class arguments:
    ``class DetachGrantPolicy(GrantAction, verb="detach-grant-policy", summary="detach {policy_name} ..."):``."""

    capability: ClassVar[str] = ""
    verb: ClassVar[str] = ""
    allowed_in_dry_run: ClassVar[bool] = False
    #: What ``describe`` says: a template naming the action's fields and properties (``{policy_name}``; a
    #: tuple reads as a list). Empty: the verb and the resource.
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, verb: str = "", summary: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if verb:
            cls.verb = verb
        if summary:
            cls.summary = summary

    @property
    def resource(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @property
    def target(self) -> Target | None:
        """The one resource a reconcile must re-read to decide this action again, when there is one (an
        instance for a profile change). None: deciding it again takes the capability's sweep (a grant
        depends on every bucket's tags; compliance re-reads all roles in one paginated call anyway)."""
        return None

    def describe(self) -> str:
        return self.summary.format_map(_Fields(self)) if self.summary else f"{self.verb} {self.resource}"

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.verb, "capability": self.capability, "resource": self.resource, **asdict(self)}


class _Fields:
    """An action's fields and properties by name, for ``summary`` templates."""

    def __init__(self, action: Action) -> None:
        self._action = action

    def __getitem__(self, name: str) -> object:
        value = getattr(self._action, name)
        return list(value) if isinstance(value, tuple) else value


@dataclass
class Plan:
    """An ordered list of actions plus the findings that came with deciding them."""

    actions: list[Action] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)

    def extend(self, other: Plan) -> None:
        self.actions.extend(other.actions)
        self.findings.extend(other.findings)

    def __bool__(self) -> bool:
        return bool(self.actions)
