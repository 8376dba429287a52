"""The capability contract's shared parts: the end of a reconcile (results -> outcome) and the pure
decision of an instance-profiles snapshot. No network."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest

from rolewarden.aws.executor import ActionResult, Executor, Status
from rolewarden.capabilities.base import Outcome, Run, apply, outcome_of
from rolewarden.config import Config, InstanceProfiles, ProfileRule
from rolewarden.decide.profiles import decide, wanted_profiles
from rolewarden.model.actions import Action
from rolewarden.model.instances import Association, InstanceView, ProfileInfo, ProfilesSnapshot
from rolewarden.model.profiles import AssociateProfile, CompleteLifecycle, ReplaceProfile
from rolewarden.settings import Settings
from rolewarden.telemetry import Sink

ARN = "arn:aws:iam::123456789012:instance-profile/web-server"
OTHER = "arn:aws:iam::123456789012:instance-profile/other"


def _associate(instance: str = "i-1") -> AssociateProfile:
    return AssociateProfile(instance_id=instance, profile_name="web-server", profile_arn=ARN)


@pytest.mark.parametrize(
    ("status", "retryable", "expected"),
    [
        ("applied", False, "ok"),
        ("planned", False, "ok"),
        ("gone", False, "ok"),
        ("conflict", True, "retry"),
        ("failed", True, "retry"),
        ("failed", False, "dead"),
    ],
)
def test_each_result_maps_to_an_outcome(status: Status, retryable: bool, expected: str) -> None:
    outcome = outcome_of(ActionResult(_associate(), status, "why", retryable=retryable))
    assert outcome.status == expected
    assert outcome.message == ("" if expected == "ok" else "why")


class _Scripted(Executor):
    """An executor that answers each action with the next scripted status (no AWS)."""

    def __init__(self, statuses: Iterable[tuple[Status, bool]]) -> None:
        super().__init__(sink=Sink())
        self.statuses = list(statuses)
        self.seen: list[Action] = []

    def execute_one(self, action: Action) -> ActionResult:
        self.seen.append(action)
        status, retryable = self.statuses.pop(0)
        return ActionResult(action, status, f"{status} {action.verb}", retryable=retryable)


def _run(executor: Executor) -> Run:
    return Run(config=Config(version=1), sink=Sink(), executor=executor, settings=Settings())


def test_apply_records_every_result_and_takes_the_worst() -> None:
    actions = [_associate("i-1"), _associate("i-2"), _associate("i-3")]
    executor = _Scripted([("failed", False), ("conflict", True), ("gone", False)])
    run = _run(executor)
    applied = apply(run, actions)
    assert [r.action for r in run.results] == actions == executor.seen
    assert applied.outcome == Outcome("dead", "failed associate")
    assert applied.conflicted and applied.gone and applied.applied == ()


def test_apply_stops_at_the_first_failure_when_the_steps_depend_on_each_other() -> None:
    actions = [_associate("i-1"), _associate("i-2"), _associate("i-3")]
    executor = _Scripted([("applied", False), ("conflict", True), ("applied", False)])
    applied = apply(_run(executor), actions, stop_at_failure=True)
    assert executor.seen == actions[:2]
    assert applied.outcome == Outcome("retry", "conflict associate")
    assert applied.applied == (actions[0],)


def test_apply_of_nothing_is_ok() -> None:
    applied = apply(_run(_Scripted([])), [])
    assert applied.outcome == Outcome() and applied.results == ()


def test_run_reads_the_process_settings_unless_given() -> None:
    assert _run(_Scripted([])).settings == Settings()
    assert isinstance(Run(config=Config(version=1), sink=Sink(), executor=_Scripted([])).settings, Settings)


CONFIG = Config(
    version=1,
    instance_profiles=InstanceProfiles(rules=[ProfileRule(match={"role": "web"}, profile="web-server")]),
)
WEB = ProfileInfo("web-server", ARN, ("web-server",), ("/rolewarden/",), guard=())


def _view(instance: str, profile_arn: str | None) -> InstanceView:
    return InstanceView(instance, "running", {"role": "web"}, profile_arn)


def test_decide_of_a_snapshot_is_pure_and_asks_for_the_association_it_lacks() -> None:
    views = {"i-new": _view("i-new", None), "i-other": _view("i-other", OTHER), "i-ok": _view("i-ok", ARN)}
    snapshot = ProfilesSnapshot(ids=tuple(sorted(views)), views=views, profiles={"web-server": WEB})
    assert wanted_profiles(CONFIG, views.values()) == {"web-server"}
    first = decide(snapshot, CONFIG)
    assert {i: d.verdict for i, d in first.items()} == {"i-new": "associate", "i-ok": "keep", "i-other": "confirm"}
    assert first["i-new"].actions == (_associate("i-new"),)
    association = Association("iip-assoc-1", "i-other", OTHER, "associated")
    read = dataclasses.replace(snapshot, associations={"i-other": association}, association_read=frozenset({"i-other"}))
    again = decide(read, CONFIG, ["i-other"])
    assert list(again) == ["i-other"] and again["i-other"].verdict == "replace"
    (replace,) = again["i-other"].actions
    assert isinstance(replace, ReplaceProfile) and replace.association_id == "iip-assoc-1"
    assert decide(snapshot, CONFIG) == first  # the same snapshot, the same decisions


def test_an_association_read_and_found_absent_means_associate() -> None:
    views = {"i-1": _view("i-1", OTHER)}  # DescribeInstances lagged: the association is already gone
    snapshot = ProfilesSnapshot(("i-1",), views, {"web-server": WEB}, {}, frozenset({"i-1"}))
    assert decide(snapshot, CONFIG)["i-1"].verdict == "associate"


def test_lifecycle_actions_belong_to_the_profiles_capability() -> None:
    assert CompleteLifecycle.capability == AssociateProfile.capability == "instance_profiles"
