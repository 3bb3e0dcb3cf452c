"""The facility registry on the real stack: a program admin registers and changes facilities, a
facility's own client changes only its own, a liaison neither; contradictory units get a 422
naming the rule, stale versions a 409; every change is published and audited; bed updates keep
working on a registered facility; and its bed-update reminder reaches its registered contact
through the notifications service and the stack's SMTP sink."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from cmhl_contracts import BedAvailabilityUpdatedV1, FacilityRecordUpdatedV1
from cmhl_contracts.placement import AgeGroup, SecurityLevel, UnitType
from cmhl_notifications.bootstrap import build as build_notifications
from cmhl_notifications.config import NotificationSettings
from cmhl_placement.bootstrap import build
from cmhl_placement.config import PlacementSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import (
    KafkaProbe,
    MailSink,
    bearer,
    eventually,
    infra_settings,
    running_app,
)

from ..conftest import key_of

pytestmark = pytest.mark.integration

ADMIN = bearer("program-admin-b", Role.PROGRAM_ADMIN)
LIAISON = bearer("liaison-34", Role.LIAISON, cmhc_id="cmhc-02")
URL = "/api/v1/facilities"


def a_facility(facility_id: str, contact: str = "beds@riverside.example.org") -> dict[str, Any]:
    return {
        "facility_id": facility_id,
        "name": "Riverside Behavioral Health",
        "county_fips": "29019",
        "phone": "573-555-0199",
        "contact_email": contact,
        "medical_clearance_required": True,
        "units": [
            {
                "unit_type": UnitType.ADULT_ACUTE,
                "capacity": 20,
                "available": 4,
                "patient_types": [AgeGroup.ADULT, AgeGroup.GERIATRIC],
                "involuntary_holds": True,
                "security_level": SecurityLevel.LOCKED,
                "exclusions": ["medical_instability"],
            },
            {
                "unit_type": UnitType.CO_OCCURRING,
                "capacity": 8,
                "available": 0,
                "patient_types": [AgeGroup.ADULT],
                "involuntary_holds": False,
                "security_level": SecurityLevel.OPEN,
            },
        ],
    }


def without_seed(settings: PlacementSettings) -> PlacementSettings:
    return settings.model_copy(update={"seed_demo_facilities": False})


async def test_admins_register_facilities_own_clients_change_their_own_and_changes_publish(
    placement_settings: PlacementSettings, kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    settings = without_seed(placement_settings)
    run = uuid.uuid4().hex[:8]
    ours, theirs = f"fac-t-{run}", f"fac-u-{run}"
    own, other = key_of(ours), key_of(theirs)
    body = a_facility(ours)
    async with running_app(build(settings)) as client:
        # Who may register: a program admin only.
        for who in (LIAISON, own):
            assert (await client.post(URL, json=body, headers=who)).status_code == 403
        created = await client.post(URL, json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
        assert created.headers["Location"] == f"{URL}/{ours}"
        shown = created.json()
        assert (shown["version"], shown["contact_email"], shown["cmhc_region"]) == (
            1,
            "beds@riverside.example.org",
            "cmhc-02",
        )
        units = {u["unit_type"]: u for u in shown["units"]}
        assert units["adult_acute"]["patient_types"] == ["adult", "geriatric"]
        assert units["co_occurring"]["security_level"] == "open"
        # A retried POST stores nothing twice; the same id with other settings is refused.
        again = await client.post(URL, json=body, headers=ADMIN)
        assert again.status_code == 200
        renamed = await client.post(URL, json=body | {"name": "Another"}, headers=ADMIN)
        assert renamed.status_code == 409
        assert "change it with PUT" in renamed.json()["detail"]
        assert (await client.post(URL, json=a_facility(theirs), headers=ADMIN)).status_code == 201

        # Contradictory settings and unknown counties: a 422 naming the rule.
        youth_with_elders = a_facility(f"fac-v-{run}")
        youth_with_elders["units"][0] |= {
            "unit_type": "youth_acute",
            "patient_types": ["youth", "geriatric"],
        }
        holds_on_open = a_facility(f"fac-v-{run}")
        holds_on_open["units"][1]["involuntary_holds"] = True
        too_many = a_facility(f"fac-v-{run}")
        too_many["units"][0]["available"] = 21
        for bad, rule in [
            (youth_with_elders, "youth may not share a unit with adults or geriatric patients"),
            (holds_on_open, "involuntary holds need a locked or secure unit"),
            (too_many, "21 available beds is above the unit's capacity of 20"),
        ]:
            refused = await client.post(URL, json=bad, headers=ADMIN)
            assert refused.status_code == 422, refused.text
            assert rule in refused.json()["detail"]
        unknown_county = await client.post(
            URL, json=a_facility(f"fac-v-{run}") | {"county_fips": "29999"}, headers=ADMIN
        )
        assert unknown_county.status_code == 422
        assert "not a Missouri county" in unknown_county.text
        assert (await client.get(f"{URL}/fac-v-{run}", headers=ADMIN)).status_code == 404

        # Reads: staff by county; a facility's client its own record only.
        listed = await client.get(URL, params={"county_fips": "29019"}, headers=LIAISON)
        assert {f["facility_id"] for f in listed.json()["data"]} == {ours, theirs}
        assert (await client.get(URL, params={"county_fips": "29510"}, headers=LIAISON)).json()[
            "count"
        ] == 0
        assert (await client.get(f"{URL}/{ours}", headers=own)).status_code == 200
        assert (await client.get(f"{URL}/{ours}", headers=other)).status_code == 403

        # Changes: the facility's own client (its own only), the admin (any), never a liaison;
        # each on the version it read.
        change = {k: v for k, v in body.items() if k != "facility_id"} | {"version": 1}
        change["contact_email"] = "bed-desk@riverside.example.org"
        change["units"] = [u | {"available": None} for u in body["units"]]
        change["units"][0]["capacity"] = 24
        assert (await client.put(f"{URL}/{ours}", json=change, headers=other)).status_code == 403
        assert (await client.put(f"{URL}/{ours}", json=change, headers=LIAISON)).status_code == 403
        changed = await client.put(f"{URL}/{ours}", json=change, headers=own)
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == 2
        adult = next(u for u in changed.json()["units"] if u["unit_type"] == "adult_acute")
        assert (adult["capacity"], adult["available"]) == (24, 4)  # the number is kept
        # The same change sent again (its answer lost) is stored once; another change made on
        # the version read before it is a stale write.
        retried = await client.put(f"{URL}/{ours}", json=change, headers=own)
        assert retried.status_code == 200
        assert retried.json()["version"] == 2
        other_change = change | {"phone": "573-555-0111"}
        stale_write = await client.put(f"{URL}/{ours}", json=other_change, headers=ADMIN)
        assert stale_write.status_code == 409
        assert "version 2" in stale_write.json()["detail"]
        contradictory = change | {"version": 2}
        contradictory["units"] = [change["units"][0] | {"capacity": 3}]
        refused = await client.put(f"{URL}/{ours}", json=contradictory, headers=ADMIN)
        assert refused.status_code == 422
        assert "above the new capacity of 3" in refused.json()["detail"]
        admin_change = await client.put(
            f"{URL}/{theirs}", json=change | {"contact_email": "x@y.example.org"}, headers=ADMIN
        )
        assert admin_change.status_code == 200
        missing = await client.put(f"{URL}/fac-v-{run}", json=change, headers=ADMIN)
        assert missing.status_code == 404

        # Bed numbers keep coming from the facility's client.
        beds = await client.put(
            f"{URL}/{ours}/availability",
            json={"units": [{"unit_type": "adult_acute", "available": 6}]},
            headers=own,
        )
        assert beds.status_code == 200, beds.text
        assert beds.json()["version"] == 2  # a bed update is not a change of the record

        # Read while the app runs: its relay publishes what the last calls stored.
        records = await kafka_probe.collect(
            [FacilityRecordUpdatedV1.topic()],
            lambda r: r.key == ours.encode(),
            expect=2,
            settle=2.0,
        )
        published = sorted(
            (FacilityRecordUpdatedV1.model_validate_json(r.value) for r in records),
            key=lambda e: e.record_version,
        )
        assert [(e.record_version, e.contact_email) for e in published] == [
            (1, "beds@riverside.example.org"),
            (2, "bed-desk@riverside.example.org"),
        ]
        assert published[1].changed_by == f"test-facility-{ours}"
        assert {u.unit_type: u.capacity for u in published[1].units} == {
            UnitType.ADULT_ACUTE: 24,
            UnitType.CO_OCCURRING: 8,
        }
        updates = await kafka_probe.collect(
            [BedAvailabilityUpdatedV1.topic()],
            lambda r: r.key == ours.encode(),
            expect=3,
            settle=2.0,
        )
        sequences = sorted(
            BedAvailabilityUpdatedV1.model_validate_json(r.value).sequence for r in updates
        )
        assert sequences == [1, 2, 3]  # listed, capacity changed, numbers reported

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        audit = mongo[settings.audit_database]["audit_log"]
        entries = await audit.find({"record": f"facility/{ours}"}).to_list(None)
    finally:
        await mongo.close()
    outcomes = sorted((e["action"], e["outcome"]) for e in entries)
    assert outcomes == sorted(
        [
            ("register", "created"),
            ("register", "duplicate_returned"),
            ("change", "denied"),
            ("change", "denied"),
            ("change", "changed"),
            ("change", "unchanged"),
            ("change", "conflict"),
        ]
    )


async def test_a_stale_facility_is_reminded_at_its_registered_contact(
    placement_settings: PlacementSettings,
    kafka_bootstrap: str,
    mongo_uri: str,
    mail_sink: MailSink,
) -> None:
    run = uuid.uuid4().hex[:8]
    facility_id = f"fac-m-{run}"
    contact = f"beds-{run}@riverside.example.org"
    # Registered 12 hours and a minute ago: the reminder is news when it fires now.
    clock = AdjustableClock(datetime.now(UTC) - timedelta(hours=12, minutes=1))
    notification_settings = NotificationSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        smtp_host=mail_sink.host,
        smtp_port=mail_sink.port,
        mail_scan_seconds=0.5,
    )
    placement = build(without_seed(placement_settings), clock=clock)
    async with (
        running_app(build_notifications(notification_settings), from_now=True),
        running_app(placement) as client,
    ):
        created = await client.post(
            URL, json=a_facility(facility_id, contact=contact), headers=ADMIN
        )
        assert created.status_code == 201, created.text

        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
        addresses = mongo[notification_settings.mongo_database]["mail_addresses"]

        async def contact_known() -> bool:
            found = await addresses.find_one({"_id": f"facility:{facility_id}"})
            return found is not None and found["address"] == contact

        try:
            await eventually(contact_known, timeout=60, interval=0.5)
        finally:
            await mongo.close()

        clock.advance(timedelta(hours=12, minutes=1))
        await placement.state.placement.emit_due()

        async def mailed() -> bool:
            return len(mail_sink.messages_to(contact)) == 1

        await eventually(mailed, timeout=90, interval=0.5)
        [mail] = mail_sink.messages_to(contact)
        assert mail["Subject"] == "CMHL: please update your facility's bed numbers"
        text = mail.get_content()
        assert facility_id in text
        assert "older than 12 hours" in text
        # A second pass (or replica) finds the reminder claimed: nothing is mailed twice.
        await placement.state.placement.emit_due()
        await asyncio.sleep(2)
    assert len(mail_sink.messages_to(contact)) == 1
