"""One trace from a liaison's POST of a referral, through the referral service's outbox and
Kafka, into the follow-up service's consumer and its database write, on the real stack; no
exported span carries the person's name, birth date or narrative."""

import base64
import os
import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmhl_contracts import ReferralCreatedV1
from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import bearer, eventually, infra_settings, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-63", Role.LIAISON, cmhc_id="cmhc-11")


def chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The span's name and its ancestors', up to the trace's root."""
    names = [span.name]
    while span.parent is not None:
        assert span.parent.span_id in by_id, f"{span.name}: its parent was not exported"
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_trace_runs_from_the_http_request_to_the_follow_up_services_write(
    kafka_bootstrap: str, mongo_uri: str, spans: InMemorySpanExporter
) -> None:
    referral_settings = ReferralSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    followup_settings = FollowUpSettings(
        **infra_settings(kafka_bootstrap, mongo_uri), due_scan_seconds=3600
    )
    person = {
        "given_name": "Tamsin",
        "family_name": f"Quillfeather{uuid.uuid4().hex[:6]}",
        "birth_date": "1979-03-14",
    }
    narrative = f"Seen pacing outside the courthouse {uuid.uuid4().hex[:6]}"
    body: dict[str, Any] = {
        "agency": {"agency_id": "boone-so", "source": "sheriff"},
        "county_fips": "29019",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": person,
        "narrative": narrative,
    }
    async with (
        running_app(build_followup(followup_settings), from_now=True) as followups,
        running_app(build_referral(referral_settings), from_now=True) as referrals,
    ):
        created = await referrals.post("/api/v1/referrals", json=body, headers=LIAISON)
        assert created.status_code == 201, created.text
        referral_id = created.json()["referral_id"]

        async def listed() -> bool:
            answer = await followups.get("/api/v1/follow-ups", headers=LIAISON)
            return any(f["referral_id"] == referral_id for f in answer.json()["data"])

        await eventually(listed, timeout=60)

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished if s.context}
    request = next(s for s in finished if s.name == "POST /api/v1/referrals")
    assert request.context is not None
    trace_id = request.context.trace_id
    in_trace = [s for s in finished if s.context and s.context.trace_id == trace_id]
    topic = ReferralCreatedV1.topic()

    # The follow-up service's consumer: its process span leads back to the request.
    process = next(s for s in in_trace if s.name == f"{topic} process")
    assert chain(process, by_id) == [
        f"{topic} process",
        f"{topic} receive",
        f"{topic} create",
        "POST /api/v1/referrals",
    ]
    # ... and the follow-up it writes to its own database is part of the same trace.
    followup_writes = [
        s
        for s in in_trace
        if (s.attributes or {}).get("db.name") == followup_settings.mongo_database
        and "POST /api/v1/referrals" in chain(s, by_id)
        and f"{topic} process" in chain(s, by_id)
    ]
    assert followup_writes, "no database call of the follow-up service in the trace"
    # The referral service's own write, inside the request.
    assert any(
        (s.attributes or {}).get("db.name") == referral_settings.mongo_database
        and s.parent is not None
        and s.parent.span_id == request.context.span_id
        for s in in_trace
    )

    exported = "\n".join(s.to_json() for s in finished)
    for secret in (person["given_name"], person["family_name"], person["birth_date"], narrative):
        assert secret not in exported
    assert "courthouse" not in exported
