"""Bed-update reminders on the real stack: the notifications service keeps each facility's
registered contact from the registry's events (the newest version wins, a redelivered older one
changes nothing), mails a stale-numbers reminder there once however often the event arrives,
and lists it in no liaison's app."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from cmhl_contracts import BedAvailabilityStaleV1, FacilityRecordUpdatedV1, IntegrationEvent
from cmhl_contracts.placement import AgeGroup, SecurityLevel, UnitSettings, UnitType
from cmhl_notifications.bootstrap import build
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, running_app

from ..conftest import ScriptedSmtp

pytestmark = pytest.mark.integration


async def publish(probe: KafkaProbe, event: IntegrationEvent) -> None:
    await probe.send(event.topic(), event.model_dump_json().encode(), event.kafka_key())


def record(facility_id: str, version: int, contact: str, at: datetime) -> FacilityRecordUpdatedV1:
    return FacilityRecordUpdatedV1.create(
        about=(facility_id, str(version)),
        producer="test",
        correlation_id=f"corr-{facility_id}",
        facility_id=facility_id,
        county_fips="29019",
        cmhc_region="cmhc-02",
        record_version=version,
        title="Test Hospital",
        phone="573-555-0100",
        contact_email=contact,
        medical_clearance_required=False,
        units=[
            UnitSettings(
                unit_type=UnitType.ADULT_ACUTE,
                capacity=10,
                patient_types=[AgeGroup.ADULT],
                involuntary_holds=True,
                security_level=SecurityLevel.LOCKED,
            )
        ],
        changed_at=at,
        changed_by="program-admin",
    )


def stale(facility_id: str, sequence: int, at: datetime) -> BedAvailabilityStaleV1:
    return BedAvailabilityStaleV1.create(
        about=(facility_id, str(sequence)),
        producer="test",
        correlation_id=f"stale-{facility_id}-{sequence}",
        facility_id=facility_id,
        county_fips="29019",
        cmhc_region="cmhc-02",
        sequence=sequence,
        stale_units=[UnitType.ADULT_ACUTE],
        last_updated_at=at - timedelta(hours=12, minutes=1),
        stale_after_hours=12,
        flagged_at=at,
    )


async def test_reminders_reach_the_newest_contact_once(
    settings_for: Any, smtp: tuple[ScriptedSmtp, int], kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    server, port = smtp
    run = uuid.uuid4().hex[:8]
    facility_id = f"fac-n-{run}"
    old, new = f"old-{run}@desk.example.org", f"new-{run}@desk.example.org"
    now = datetime.now(UTC)
    settings = settings_for(port)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    addresses = mongo[settings.mongo_database]["mail_addresses"]
    async with running_app(build(settings), from_now=True) as client:
        await publish(kafka_probe, record(facility_id, 1, old, now - timedelta(hours=2)))
        await publish(kafka_probe, record(facility_id, 2, new, now - timedelta(hours=1)))
        # Redelivered after the newer one: changes nothing.
        await publish(kafka_probe, record(facility_id, 1, old, now - timedelta(hours=2)))

        async def contact_is_new() -> bool:
            found = await addresses.find_one({"_id": f"facility:{facility_id}"})
            return found is not None and (found["address"], found["record_version"]) == (new, 2)

        await eventually(contact_is_new, timeout=60, interval=0.3)
        reminder = stale(facility_id, 1, now)
        for _ in range(2):  # delivered twice: mailed once
            await publish(kafka_probe, reminder)
        # History is not news: a reminder of numbers that went stale two days ago mails nothing.
        await publish(kafka_probe, stale(facility_id, 2, now - timedelta(days=2)))

        async def mailed() -> bool:
            return any(new.encode() in m for m in server.kept)

        await eventually(mailed, timeout=60, interval=0.3)
        await eventually(contact_is_new, timeout=5, interval=0.5)  # the v1 replay lost
        # A liaison's list never shows a facility's reminder.
        liaison = bearer(f"liaison-{run}", Role.LIAISON, cmhc_id="cmhc-02")
        listed = await client.get("/api/v1/notifications", headers=liaison)
        assert listed.json()["count"] == 0
        await asyncio.sleep(2)  # the duplicate and the history pass through before counting
    await mongo.close()
    mails = [m for m in server.kept if facility_id.encode() in m]
    assert len(mails) == 1
    assert b"CMHL: please update your facility's bed numbers" in mails[0]
    assert old.encode() not in b"".join(server.kept)
