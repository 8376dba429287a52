"""The circuit breaker's pure arithmetic (rolewarden.decide.breaker) and its config keys."""

from __future__ import annotations

import pytest

from rolewarden.config import parse_config
from rolewarden.decide.breaker import new_trip, over_run_limit, window_at
from rolewarden.errors import ConfigError
from rolewarden.model.breaker import TRIP_WINDOW, Limits, Trip

HOUR = 3600


@pytest.mark.parametrize(
    ("now", "seconds", "start", "end"),
    [
        pytest.param(0.0, HOUR, 0, HOUR, id="epoch"),
        pytest.param(HOUR - 0.001, HOUR, 0, HOUR, id="last-instant-of-a-window"),
        pytest.param(HOUR, HOUR, HOUR, 2 * HOUR, id="first-instant-of-the-next"),
        pytest.param(1_800_000_123.5, HOUR, 1_800_000_000, 1_800_003_600, id="hour-aligned"),
        pytest.param(1_800_000_123.5, 300, 1_800_000_000, 1_800_000_300, id="five-minutes"),
    ],
)
def test_windows_are_fixed_and_aligned_to_the_epoch(now: float, seconds: int, start: int, end: int) -> None:
    window = window_at(now, seconds)
    assert (window.start, window.end) == (start, end)
    assert window.key == f"window#{start}"
    assert window.expiry() == end + seconds  # the counter outlives its window by one window (status shows it)


def test_every_container_computes_the_same_window_for_the_same_second() -> None:
    assert {window_at(1_800_000_000 + s, HOUR).key for s in range(0, HOUR, 97)} == {"window#1800000000"}


def test_a_trip_holds_for_one_window_length_from_the_moment_it_happened() -> None:
    trip = new_trip(1000.0, Limits.of(25, 60), TRIP_WINDOW, ["a", "b"], "evt-1")
    assert trip.until == 1000.0 + HOUR
    assert trip.in_force(1000.0) and trip.in_force(1000.0 + HOUR - 0.001)
    assert not trip.in_force(1000.0 + HOUR)  # checked by the reader: DynamoDB's TTL deletes lazily
    assert Trip.from_dict(trip.as_dict()) == trip


def test_a_trip_names_at_most_200_roles() -> None:
    trip = new_trip(0.0, Limits.of(1, 1), TRIP_WINDOW, [f"r{i}" for i in range(500)], "")
    assert len(trip.roles) == 200


@pytest.mark.parametrize(("wanted", "limit", "over"), [(0, 0, False), (1, 0, True), (25, 25, False), (26, 25, True)])
def test_a_run_over_the_limit_is_refused_whole(wanted: int, limit: int, over: bool) -> None:
    assert over_run_limit([f"r{i}" for i in range(wanted)], Limits.of(limit, 60)) is over


# -- config ---------------------------------------------------------------------------------------------
def test_the_breaker_defaults_to_25_per_hour() -> None:
    breaker = parse_config("version: 1\n").compliance.circuit_breaker
    assert (breaker.max_remediations, breaker.window_minutes) == (25, 60)


def test_the_deprecated_per_run_key_is_read_as_the_window_limit_with_a_message() -> None:
    config = parse_config("version: 1\ncompliance:\n  max_remediations_per_run: 7\n")
    assert config.compliance.circuit_breaker.max_remediations == 7
    (message,) = config.compliance.deprecations()
    assert "max_remediations_per_run is deprecated" in message and "circuit_breaker.max_remediations" in message
    assert parse_config("version: 1\n").compliance.deprecations() == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(
            "compliance:\n  max_remediations_per_run: 7\n  circuit_breaker: {max_remediations: 5}\n",
            "keep only circuit_breaker.max_remediations",
            id="both-keys",
        ),
        pytest.param("compliance:\n  circuit_breaker: {window_minutes: 0}\n", "window_minutes", id="no-window"),
        pytest.param("compliance:\n  circuit_breaker: {window_minutes: 1441}\n", "window_minutes", id="over-a-day"),
        pytest.param("compliance:\n  circuit_breaker: {max_remediations: -1}\n", "max_remediations", id="negative"),
        pytest.param("compliance:\n  circuit_breaker: {limit: 3}\n", "circuit_breaker.limit: unknown key", id="typo"),
    ],
)
def test_bad_breaker_settings_are_refused_with_their_key_path(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_config("version: 1\n" + text)
