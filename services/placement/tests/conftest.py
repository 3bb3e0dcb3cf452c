"""Fixtures of the placement service's tests: settings on the real stack, facility clients."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_placement.config import PlacementSettings
from cmhl_servicekit.testing import BearerHeaders, facility_bearer, infra_settings


def key_of(facility_id: str) -> BearerHeaders:
    """A token of the facility's own client (client credentials, from the real provider)."""
    return facility_bearer(facility_id)


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
        timer_scan_seconds=3600,
    )
