"""Bed availability on the real stack: facility keys, rules, the event, ages and reminders."""

import uuid
from datetime import timedelta

import pytest

from cmhl_contracts import BedAvailabilityStaleV1, BedAvailabilityUpdatedV1
from cmhl_contracts.placement import UnitType
from cmhl_placement.bootstrap import build
from cmhl_placement.config import PlacementSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, bearer, running_app

from ..conftest import a_past_day, key_of

pytestmark = pytest.mark.integration

BOONE = "fac-boone-riverbend"
ST_LOUIS = "fac-stl-gateway"
LIAISON = bearer("liaison-31", Role.LIAISON, cmhc_id="cmhc-02")


async def test_facility_staff_update_their_own_beds_and_the_update_is_published(
    placement_settings: PlacementSettings, kafka_probe: KafkaProbe
) -> None:
    start = a_past_day()
    clock = AdjustableClock(start)
    staff = f"staff-{uuid.uuid4().hex[:8]}"
    url = f"/api/v1/facilities/{BOONE}/availability"
    app = build(placement_settings, clock=clock)
    async with running_app(app) as client:
        listed = (await client.get("/api/v1/facilities", headers=LIAISON)).json()
        assert listed["count"] == 7
        assert listed["stale_after_hours"] == 12
        assert all(u["age_hours"] == 0 for f in listed["data"] for u in f["units"])

        clock.advance(timedelta(hours=1))
        body = {"units": [{"unit_type": "adult_acute", "available": 5}], "reported_by": staff}
        ok = await client.put(url, json=body, headers=key_of(BOONE))
        assert ok.status_code == 200, ok.text
        units = {u["unit_type"]: u for u in ok.json()["units"]}
        assert units["adult_acute"]["available"] == 5
        assert units["adult_acute"]["reported_by"] == staff
        assert units["geriatric"]["age_hours"] == 1.0  # untouched: keeps its age

        other = await client.put(url, json=body, headers=key_of(ST_LOUIS))
        assert other.status_code == 403
        assert "its own facility" in other.json()["detail"]
        assert (await client.put(url, json=body)).status_code == 401
        forged = {"Authorization": "Bearer guess"}
        assert (await client.put(url, json=body, headers=forged)).status_code == 401
        # A person's token names no facility.
        assert (await client.put(url, json=body, headers=LIAISON)).status_code == 403

        bad = {
            -1: "below 0",
            25: "above the unit's capacity of 24",
        }
        for available, rule in bad.items():
            answer = await client.put(
                url,
                json={"units": [{"unit_type": "adult_acute", "available": available}]},
                headers=key_of(BOONE),
            )
            assert answer.status_code == 422
            assert rule in answer.json()["detail"]
        not_here = await client.put(
            url,
            json={"units": [{"unit_type": "youth_acute", "available": 1}]},
            headers=key_of(BOONE),
        )
        assert not_here.status_code == 422
        assert "unknown unit" in not_here.json()["detail"]
        no_such = await client.put(
            url, json={"units": [{"unit_type": "ward-9", "available": 1}]}, headers=key_of(BOONE)
        )
        assert no_such.status_code == 422

        # Every number shows its age; past 12 hours it is stale and staff are reminded, once.
        service = app.state.placement
        clock.advance(timedelta(hours=11, seconds=1))  # seed numbers are 12 h + 1 s old
        await service.emit_due()
        await service.emit_due()
        shown = (await client.get(f"/api/v1/facilities/{BOONE}", headers=LIAISON)).json()
        ages = {u["unit_type"]: (u["age_hours"], u["stale"]) for u in shown["units"]}
        assert ages == {"adult_acute": (11.0, False), "geriatric": (12.0, True)}
        assert shown["stale"] is True
        clock.advance(timedelta(hours=1))
        await service.emit_due()

        updates = await kafka_probe.collect(
            [BedAvailabilityUpdatedV1.topic()],
            lambda r: r.key == BOONE.encode() and staff.encode() in r.value,
            expect=1,
            settle=2.0,
        )
        stale = await kafka_probe.collect(
            [BedAvailabilityStaleV1.topic()],
            lambda r: (
                r.key == BOONE.encode()
                and BedAvailabilityStaleV1.model_validate_json(r.value).last_updated_at
                in (start, start + timedelta(hours=1))
            ),
            expect=2,
            settle=2.0,
        )

    assert len(updates) == 1  # refused updates publish nothing
    event = BedAvailabilityUpdatedV1.model_validate_json(updates[0].value)
    assert event.sequence == 2
    assert event.updated_units == [UnitType.ADULT_ACUTE]
    assert {(u.unit_type, u.available) for u in event.units} == {
        (UnitType.ADULT_ACUTE, 5),
        (UnitType.GERIATRIC, 1),
    }
    assert event.updated_at == start + timedelta(hours=1)
    reminders = sorted(
        (BedAvailabilityStaleV1.model_validate_json(r.value) for r in stale),
        key=lambda e: e.sequence,
    )
    assert len({e.event_id for e in reminders}) == 2
    assert [(e.sequence, e.stale_units) for e in reminders[:1]] == [(1, [UnitType.GERIATRIC])]
    assert reminders[-1].sequence == 2
    assert set(reminders[-1].stale_units) == {UnitType.ADULT_ACUTE, UnitType.GERIATRIC}
