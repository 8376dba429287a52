"""The declared executor registry: every action type the decision code can produce has exactly one
executor, found through ``rolewarden.aws.executor.EXECUTOR_MODULES``; an unknown action is a clear error."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import ClassVar

import pytest

import rolewarden.decide
import rolewarden.model
from rolewarden.aws.executor import EXECUTOR_MODULES, Executor, UnknownAction, executor_for
from rolewarden.model.actions import Action
from rolewarden.telemetry import Sink


def _import_all(package: object) -> None:
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):  # type: ignore[attr-defined]
        importlib.import_module(info.name)


def _subclasses(cls: type[Action]) -> set[type[Action]]:
    found: set[type[Action]] = set()
    for sub in cls.__subclasses__():
        found.add(sub)
        found |= _subclasses(sub)
    return found


def concrete_actions() -> list[type[Action]]:
    """Every action type of the package: a subclass with a verb (the bases of a capability have none)."""
    _import_all(rolewarden.model)
    _import_all(rolewarden.decide)
    return sorted(
        (
            a
            for a in _subclasses(Action)
            if a.verb and a.__module__.startswith(("rolewarden.model", "rolewarden.decide"))
        ),
        key=lambda a: (a.capability, a.__name__),
    )


def test_the_package_has_actions_of_every_capability() -> None:
    assert {a.capability for a in concrete_actions()} == set(EXECUTOR_MODULES)


@pytest.mark.parametrize("action_type", concrete_actions(), ids=lambda a: a.__name__)
def test_every_action_has_exactly_one_executor(action_type: type[Action]) -> None:
    declaring = [name for name in EXECUTOR_MODULES.values() if action_type in importlib.import_module(name).EXECUTORS]
    assert declaring == [EXECUTOR_MODULES[action_type.capability]], (
        f"{action_type.__name__} must be declared once, in its capability's executor module"
    )
    func, metric = executor_for(action_type)
    assert callable(func) and metric


@pytest.mark.parametrize("module_name", sorted(EXECUTOR_MODULES.values()))
def test_executor_tables_name_only_their_capabilitys_actions(module_name: str) -> None:
    module = importlib.import_module(module_name)
    capability = next(c for c, m in EXECUTOR_MODULES.items() if m == module_name)
    assert module.EXECUTORS and {a.capability for a in module.EXECUTORS} == {capability}
    assert set(module.METRICS) <= set(module.EXECUTORS), "a metric for an action nobody executes"


def test_the_profile_metrics_are_declared() -> None:
    from rolewarden.model.profiles import AssociateProfile, SetMetadataOptions

    assert executor_for(AssociateProfile)[1] == "Attached"
    assert executor_for(SetMetadataOptions)[1] == "Imdsv2Required"


@dataclass(frozen=True)
class _Stray(Action):
    capability: ClassVar[str] = "nobody"
    verb: ClassVar[str] = "stray"

    @property
    def resource(self) -> str:
        return "stray"


@dataclass(frozen=True)
class _Undeclared(Action):
    capability: ClassVar[str] = "instance_profiles"
    verb: ClassVar[str] = "undeclared"

    @property
    def resource(self) -> str:
        return "undeclared"


def test_an_action_of_an_unknown_capability_is_a_clear_error() -> None:
    with pytest.raises(UnknownAction, match=r"_Stray: its capability 'nobody' is not one of"):
        Executor(sink=Sink()).execute_one(_Stray())


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
def test_an_undeclared_action_is_a_clear_error_even_in_dry_run(dry_run: bool) -> None:
    with pytest.raises(UnknownAction, match=r"rolewarden\.aws\.profiles\.EXECUTORS has no executor for _Undeclared"):
        Executor(sink=Sink(), dry_run=dry_run).execute_one(_Undeclared())
