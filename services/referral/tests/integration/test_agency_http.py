"""Agency systems posting batches over HTTP with their client's token, bound to one agency."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import agency_bearer, bearer, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-07", Role.LIAISON, cmhc_id="cmhc-06")


def submission(reference: str, agency_id: str = "greene-so", **overrides: Any) -> dict[str, Any]:
    return {
        "agency": {"agency_id": agency_id, "source": "sheriff"},
        "agency_reference": reference,
        "county_fips": "29077",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {"given_name": "Al", "family_name": "Fox", "birth_date": "1975-05-05"},
        "referred_at": datetime.now(UTC).isoformat(),
    } | overrides


async def test_batches_are_idempotent_and_clients_are_bound_to_their_agency(
    referral_settings: ReferralSettings,
) -> None:
    settings = referral_settings
    run = uuid.uuid4().hex[:8]
    url = "/api/v1/agency/referrals"
    headers = agency_bearer("greene-so")
    async with running_app(build(settings), from_now=True) as client:
        first = await client.post(
            url,
            headers=headers,
            json={
                "submissions": [
                    submission(f"{run}-1"),
                    submission(f"{run}-2"),
                    submission(f"{run}-3", referred_at="2099-01-01T00:00:00Z"),
                ]
            },
        )
        again = await client.post(
            url, headers=headers, json={"submissions": [submission(f"{run}-1")]}
        )
        foreign = await client.post(
            url, headers=headers, json={"submissions": [submission(f"{run}-4", agency_id="stl-pd")]}
        )
        unknown = await client.post(
            url,
            headers={"Authorization": "Bearer guess"},
            json={"submissions": [submission(f"{run}-5")]},
        )
        missing = await client.post(url, json={"submissions": [submission(f"{run}-6")]})
        person = await client.post(
            url, headers=LIAISON, json={"submissions": [submission(f"{run}-7")]}
        )
        too_many = await client.post(
            url,
            headers=headers,
            json={"submissions": [submission(f"{run}-x{n}") for n in range(501)]},
        )
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["created"], result["duplicates"], result["rejected"]) == (2, 0, 1)
    assert result["results"][2]["reason"] == "referred_at is in the future"
    assert again.json()["duplicates"] == 1
    assert again.json()["results"][0]["referral_id"] == result["results"][0]["referral_id"]
    assert (foreign.status_code, unknown.status_code, missing.status_code) == (403, 401, 401)
    assert person.status_code == 403  # a person's token names no agency
    assert too_many.status_code == 422
