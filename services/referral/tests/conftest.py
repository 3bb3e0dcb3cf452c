"""Fixtures of the referral service's tests."""

import base64
import os
from collections.abc import Callable
from typing import Any

import pytest

from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.testing import infra_settings


@pytest.fixture
def referral_settings(kafka_bootstrap: str, mongo_uri: str) -> ReferralSettings:
    return ReferralSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )


@pytest.fixture
def referral_body() -> Callable[..., dict[str, Any]]:
    def make(**overrides: Any) -> dict[str, Any]:
        return {
            "agency": {"agency_id": "stl-pd", "source": "municipal_police"},
            "county_fips": "29510",
            "primary_need": "threat_to_self_or_others",
            "person_location": "detention",
            "person": {"given_name": "Jane", "family_name": "Roe", "birth_date": "1990-01-02"},
            "narrative": "Walked into the station making demands.",
        } | overrides

    return make
