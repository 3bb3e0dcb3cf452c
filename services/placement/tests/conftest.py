"""Fixtures of the placement service's tests: settings on the real stack, facility keys."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_placement.config import PlacementSettings
from cmhl_placement.domain.demo import DEMO_FACILITIES
from cmhl_servicekit.auth import api_key_hash
from cmhl_servicekit.testing import infra_settings

FACILITY_KEYS = {f.facility_id: f"test-key-{f.facility_id}" for f in DEMO_FACILITIES}


def key_of(facility_id: str) -> dict[str, str]:
    return {"X-API-Key": FACILITY_KEYS[facility_id]}


def a_past_day() -> datetime:
    """Facility events are keyed by the (shared) demo facility ids and topics are read from
    their start: a random day in 2012 keeps this test's times apart from every other run's."""
    return datetime(2012, 1, 1, 8, tzinfo=UTC) + timedelta(
        days=random.randrange(360), seconds=random.randrange(86_400)
    )


@pytest.fixture
def placement_settings(kafka_bootstrap: str, mongo_uri: str) -> PlacementSettings:
    # A long scan interval: tests drive the timers themselves on a simulated clock.
    return PlacementSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        facility_api_keys={api_key_hash(k): f for f, k in FACILITY_KEYS.items()},
        timer_scan_seconds=3600,
    )
