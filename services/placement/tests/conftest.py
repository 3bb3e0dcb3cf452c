"""Fixtures of the placement service's tests: settings on the real stack, facility clients, and
the referral service a bed search asks (run in the test, on the same stack)."""

import base64
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cmhl_placement.config import PlacementSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.testing import (
    BearerHeaders,
    facility_bearer,
    infra_settings,
    running_app,
)

# The in-test referral app answers at any host through its ASGI client.
REFERRAL_URL = "http://referral.test"


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
    # A long scan interval: tests drive the timers themselves on a simulated clock. The demo
    # facilities are listed at start (the registry's test-only seed path; `make up` posts them
    # through the API), as the bed-search tests expect them.
    return PlacementSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        timer_scan_seconds=3600,
        referral_url=REFERRAL_URL,
        seed_demo_facilities=True,
    )


class ReferralDesk:
    """The referral service of a test: referrals to open bed searches for."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def referral_of(self, liaison: BearerHeaders, county_fips: str = "29019") -> str:
        """A new referral in the liaison's caseload; its id."""
        answer = await self.client.post(
            f"{REFERRAL_URL}/api/v1/referrals",
            headers=liaison,
            json={
                "agency": {"agency_id": "boone-so", "source": "sheriff"},
                "county_fips": county_fips,
                "primary_need": "threat_to_self_or_others",
                "person_location": "detention",
                "person": {"given_name": "Ash", "family_name": "Bell", "birth_date": "1980-03-03"},
            },
        )
        assert answer.status_code == 201, answer.text
        referral_id: str = answer.json()["referral_id"]
        return referral_id


@pytest.fixture
async def referrals(kafka_bootstrap: str, mongo_uri: str) -> AsyncIterator[ReferralDesk]:
    settings = ReferralSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    async with running_app(build_referral(settings), from_now=True) as client:
        yield ReferralDesk(client)
