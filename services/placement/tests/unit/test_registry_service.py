"""Registry use cases with fakes: who may register and change what, retries that store nothing
twice, optimistic concurrency on the record's version, the events and the audit."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts import BedAvailabilityUpdatedV1, FacilityRecordUpdatedV1
from cmhl_contracts.placement import UnitType
from cmhl_placement.application.registry import (
    FacilityExists,
    FacilityRegistry,
    NotYourFacility,
    StaleVersion,
)
from cmhl_placement.domain.demo import DEMO_FACILITIES
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock

from .fakes import InMemoryFacilities, InMemoryTimers, Published

T0 = datetime(2026, 3, 2, 20, tzinfo=UTC)
ADMIN = Principal("program-admin", frozenset({Role.PROGRAM_ADMIN}), None)
LIAISON = Principal("liaison-05", frozenset({Role.LIAISON}), "cmhc-05")
BOONE_CLIENT = Principal("svc-1", frozenset(), None, "facility-boone")
RECORD = DEMO_FACILITIES[0]  # fac-boone-riverbend


World = tuple[FacilityRegistry, Published, InMemoryAuditLog, InMemoryTimers]


@pytest.fixture
def world() -> World:
    published = Published()
    audit = InMemoryAuditLog()
    timers = InMemoryTimers(published)
    registry = FacilityRegistry(
        InMemoryFacilities(published), timers, audit, AdjustableClock(T0), timedelta(hours=12)
    )
    return registry, published, audit, timers


async def test_an_admin_registers_once_and_a_retry_stores_nothing_twice(world: World) -> None:
    registry, published, audit, timers = world
    facility, created = await registry.register(RECORD, ADMIN, "10.0.0.1", "c-1")
    assert created
    again, created_again = await registry.register(RECORD, ADMIN, "10.0.0.1", "c-1")
    assert not created_again
    assert again.facility_id == facility.facility_id
    records = published.of(FacilityRecordUpdatedV1)
    assert [(e.facility_id, e.record_version, e.contact_email) for e in records] == [
        (RECORD.facility_id, 1, RECORD.contact_email)
    ]
    assert len(published.of(BedAvailabilityUpdatedV1)) == 1
    assert list(timers.timers) == [f"stale|{RECORD.facility_id}|1"]
    with pytest.raises(FacilityExists, match="other settings"):
        await registry.register(replace(RECORD, name="Another name"), ADMIN, None, "c-2")
    with pytest.raises(PermissionError, match="program admin"):
        await registry.register(replace(RECORD, facility_id="fac-x"), LIAISON, None, "c-3")
    outcomes = [(e.actor, e.record, e.outcome) for e in audit.entries]
    assert outcomes == [
        ("program-admin", f"facility/{RECORD.facility_id}", "created"),
        ("program-admin", f"facility/{RECORD.facility_id}", "duplicate_returned"),
        ("liaison-05", "facility/fac-x", "denied"),
    ]
    assert all(e.person_ids == () for e in audit.entries)


async def test_a_facility_changes_only_its_own_record_and_only_on_the_current_version(
    world: World,
) -> None:
    registry, published, audit, _ = world
    await registry.register(RECORD, ADMIN, None, "c-1")
    await registry.register(DEMO_FACILITIES[1], ADMIN, None, "c-1")
    adult, geriatric = RECORD.units
    bigger = replace(
        RECORD,
        units=(replace(adult, capacity=30, available=None), replace(geriatric, available=None)),
    )
    boone = RECORD.facility_id
    with pytest.raises(NotYourFacility):
        await registry.change(
            DEMO_FACILITIES[1].facility_id, bigger, 1, BOONE_CLIENT, boone, None, "c"
        )
    with pytest.raises(PermissionError):
        await registry.change(boone, bigger, 1, LIAISON, None, None, "c")
    changed = await registry.change(boone, bigger, 1, BOONE_CLIENT, boone, None, "c-2")
    assert changed.record_version == 2
    assert changed.units[UnitType.ADULT_ACUTE].capacity == 30
    # The same change sent again (a retry after a lost answer) is stored once.
    retried = await registry.change(boone, bigger, 1, BOONE_CLIENT, boone, None, "c-2")
    assert retried.record_version == 2
    # Another change made on version 1 is a stale write.
    smaller = replace(bigger, units=(replace(bigger.units[0], capacity=26), bigger.units[1]))
    with pytest.raises(StaleVersion, match="version 2"):
        await registry.change(boone, smaller, 1, ADMIN, None, None, "c-3")
    again = await registry.change(boone, bigger, 2, ADMIN, None, None, "c-4")
    assert again.record_version == 3

    versions = [
        e.record_version for e in published.of(FacilityRecordUpdatedV1) if e.facility_id == boone
    ]
    assert versions == [1, 2, 3]
    updates = [e for e in published.of(BedAvailabilityUpdatedV1) if e.facility_id == boone]
    # The capacity change is a bed update (sequence 2); the unchanged third save is not.
    assert [(e.sequence, e.updated_units) for e in updates] == [
        (1, [UnitType.ADULT_ACUTE, UnitType.GERIATRIC]),
        (2, [UnitType.ADULT_ACUTE]),
    ]
    assert updates[1].updated_by == "facility-boone"
    assert [e.outcome for e in audit.entries if e.action == "change"] == [
        "denied",
        "denied",
        "changed",
        "unchanged",
        "conflict",
        "changed",
    ]
