"""The whole system as a black box: its own stack and four service processes, HTTP and Kafka in,
statewide metrics out. Started with deploy/local/stack.py, exactly as `make up` starts it."""

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cmhl_contracts import AgencyReferralSubmittedV1
from cmhl_servicekit.oidc import SignIn, demo_user
from cmhl_servicekit.testing import KafkaProbe, stack_admin

pytestmark = pytest.mark.e2e


def url(system: dict[str, Any], service: str, path: str) -> str:
    return f"http://127.0.0.1:{system['stack']['service_ports'][service]}{path}"


def token(system: dict[str, Any], role: str) -> str:
    """A demo user of that role signs in at the stack's Keycloak, as a person's script would:
    the credentials file names the issuer, the users and the password-grant test client."""
    credentials = system["credentials"]
    user = next(u for u in credentials["users"] if u["role"] == role)
    return demo_user(credentials, user["username"]).token()


def auth(system: dict[str, Any], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(system, role)}"}


async def test_referral_follow_up_and_training_reach_the_statewide_metrics(
    system: dict[str, Any],
) -> None:
    referred_at = datetime.now(UTC) - timedelta(days=10)  # its 7-day follow-up is already due
    async with httpx.AsyncClient(timeout=10) as client:
        for service in ("referral", "followup", "training", "reporting"):
            ready = await client.get(url(system, service, "/health/ready"))
            assert ready.status_code == 200, (service, ready.text)

        created = await client.post(
            url(system, "referral", "/api/v1/referrals"),
            headers=auth(system, "liaison"),
            json={
                "agency": {"agency_id": "columbia-pd", "source": "municipal_police"},
                "county_fips": "29019",
                "primary_need": "threat_to_self_or_others",
                "person_location": "detention",
                "referred_at": referred_at.isoformat(),
                "person": {"given_name": "Ada", "family_name": "Stone", "birth_date": "1988-08-08"},
            },
        )
        assert created.status_code == 201, created.text

        trained = await client.post(
            url(system, "training", "/api/v1/training-sessions"),
            headers=auth(system, "liaison"),
            json={
                "course_id": "de-escalation",
                "held_on": (datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
                "county_fips": "29019",
                "host_agency_id": "columbia-pd",
                "capacity": 20,
                "roster": [
                    {"agency_id": "columbia-pd", "officer_ref": "P-1"},
                    {"agency_id": "boone-so", "officer_ref": "S-7"},
                ],
            },
        )
        assert trained.status_code == 201, trained.text

        submission = AgencyReferralSubmittedV1.create(
            about=("e2e",),
            producer="court-cms",
            correlation_id=str(uuid.uuid4()),
            agency={"agency_id": "boone-court", "source": "court", "court_type": "mental_health"},
            agency_reference="MH-2026-1",
            county_fips="29019",
            primary_need="behavioral_needs",
            person_location="community",
            referred_at=datetime.now(UTC),
            person={"given_name": "Bo", "family_name": "Lake", "birth_date": "1970-07-07"},
        )
        probe = KafkaProbe(
            f"127.0.0.1:{system['stack']['kafka_port']}", stack_admin(system["state_dir"])
        )
        await probe.start()
        try:
            for _ in range(2):  # the agency's retry must not count twice
                await probe.send(
                    AgencyReferralSubmittedV1.topic(),
                    submission.model_dump_json().encode(),
                    key=submission.kafka_key(),
                )
        finally:
            await probe.stop()

        # Published counts of 1-10 referrals or people are suppressed (small-cell rule), so
        # the two referrals show as present but not as numbers; trainings are not suppressed.
        hidden = "suppressed"
        expected: dict[str, dict[str, Any]] = {
            "referrals": {
                "total": hidden,
                "people": hidden,
                "repeat_involvement": 0,
                "by_source": {"municipal_police": hidden, "court": hidden},
                "by_presenting_need": {
                    "threat_to_self_or_others": hidden,
                    "behavioral_needs": hidden,
                },
            },
            "follow_ups": {"scheduled": hidden, "due": hidden, "completed": 0},
            "trainings": {"sessions": 1, "officers_trained": 2},
        }
        deadline = time.monotonic() + 60
        while True:
            body = (
                await client.get(
                    url(system, "reporting", "/api/v1/metrics/statewide"),
                    # Today's referrals: a role that may see records sees the running quarter.
                    headers=auth(system, "privacy_officer"),
                )
            ).json()
            metrics = {
                section: {key: body[section][key] for key in keys}
                for section, keys in expected.items()
            }
            if metrics == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert metrics == expected


SERVICES_WITH_APIS = ("referral", "followup", "training", "reporting", "placement", "notifications")
CALLERS = (
    "liaison",
    "supervisor",
    "metrics_consumer",
    "privacy_officer",
    "program_admin",
    "agency",
    "facility",
)


def credential(system: dict[str, Any], caller: str) -> str:
    """A person of the role signs in (the password-grant test client), or an agency's or a
    facility's records system with its own client."""
    credentials = system["credentials"]
    if caller in ("agency", "facility"):
        client = credentials[f"{caller}_clients"][0]
        return SignIn(
            credentials["issuer"], client["client_id"], client_secret=client["client_secret"]
        ).token()
    return token(system, caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("service", SERVICES_WITH_APIS)
def test_no_request_makes_a_service_answer_5xx(
    system: dict[str, Any], service: str, caller: str
) -> None:
    """Schemathesis generates requests from each service's OpenAPI document (valid and not,
    then sequences of calls that feed one answer into the next) with each kind of caller's
    credentials. Runs after the metrics test, since what it creates would change the counts."""
    schema = url(system, service, "/openapi.json")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            schema,
            "-H",
            f"Authorization: Bearer {credential(system, caller)}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "10",
            "--phases",
            "coverage,fuzzing,stateful",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, summary
    assert " passed" in summary
