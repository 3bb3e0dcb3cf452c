"""Placement use cases with in-memory fakes and a simulated clock: seeding, keys, reminders,
flags emitted once, who sees which request, and what is audited."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts import (
    BedAvailabilityStaleV1,
    BedAvailabilityUpdatedV1,
    PlacementAttemptedV1,
    PlacementDeadlineFlaggedV1,
    PlacementRequestedV1,
)
from cmhl_contracts.placement import AgeGroup, AttemptResult, UnitType
from cmhl_placement.application.ports import ReferralFacts
from cmhl_placement.application.registry import FacilityRegistry
from cmhl_placement.application.service import (
    Actor,
    NotVisible,
    OpenRequest,
    PlacementService,
    ReferralClosed,
    ReferralNotVisible,
    WrongFacility,
)
from cmhl_placement.domain.demo import DEMO_FACILITIES
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock

from .fakes import (
    InMemoryFacilities,
    InMemoryRequests,
    InMemoryTimers,
    KnownReferrals,
    Published,
)

T0 = datetime(2026, 3, 2, 20, tzinfo=UTC)
LIAISON = Actor(Principal("liaison-05", frozenset({Role.LIAISON}), "cmhc-05"), "10.0.0.5")
OTHER = Actor(Principal("liaison-06", frozenset({Role.LIAISON}), "cmhc-05"), "10.0.0.6")
SUPERVISOR = Actor(Principal("sup-05", frozenset({Role.SUPERVISOR}), "cmhc-05"), None)


class World:
    def __init__(self) -> None:
        self.clock = AdjustableClock(T0)
        self.published = Published()
        self.facilities = InMemoryFacilities(self.published)
        self.requests = InMemoryRequests(self.published)
        self.timers = InMemoryTimers(self.published)
        self.audit = InMemoryAuditLog()
        self.referrals = KnownReferrals()
        self.registry = FacilityRegistry(
            self.facilities, self.timers, self.audit, self.clock, timedelta(hours=12)
        )
        self.service = PlacementService(
            self.facilities,
            self.requests,
            self.timers,
            self.audit,
            self.clock,
            stale_after=timedelta(hours=12),
            referrals=self.referrals,
        )

    def open_command(self, hours_detained: float = 2) -> OpenRequest:
        """A referral of liaison-05 that the referral service shows to the token `t-05`."""
        referral_id = uuid.uuid4()
        self.referrals.add(
            referral_id, "t-05", ReferralFacts("d" * 32, "liaison-05", "cmhc-05", False)
        )
        return OpenRequest(
            referral_id=referral_id,
            credentials="t-05",
            detention_started_at=self.clock.now() - timedelta(hours=hours_detained),
            age_group=AgeGroup.ADULT,
            needs=frozenset(),
            county_fips="29019",
            correlation_id="corr-1",
        )


@pytest.fixture
async def world() -> World:
    w = World()
    await w.registry.seed(DEMO_FACILITIES)
    return w


async def test_seeding_twice_lists_each_demo_facility_once(world: World) -> None:
    assert await world.registry.seed(DEMO_FACILITIES) == 0
    seeded = world.published.of(BedAvailabilityUpdatedV1)
    assert len(seeded) == len(DEMO_FACILITIES)
    assert {e.facility_id for e in seeded} == {f.facility_id for f in DEMO_FACILITIES}


async def test_a_key_updates_only_its_own_facility(world: World) -> None:
    with pytest.raises(WrongFacility):
        await world.service.update_availability(
            "fac-stl-gateway", "fac-boone-riverbend", {UnitType.ADULT_ACUTE: 1}, "s-1", "c"
        )
    stl = await world.service.facility("fac-stl-gateway")
    assert stl.sequence == 1  # untouched
    updated = await world.service.update_availability(
        "fac-stl-gateway", "fac-stl-gateway", {UnitType.ADULT_ACUTE: 1}, "s-1", "c"
    )
    assert updated.sequence == 2
    assert (await world.service.facility("fac-stl-gateway")).units[
        UnitType.ADULT_ACUTE
    ].available == 1


async def test_stale_numbers_remind_each_facility_once(world: World) -> None:
    world.clock.advance(timedelta(hours=12))
    await world.service.emit_due()
    assert world.published.of(BedAvailabilityStaleV1) == []  # exactly 12 h is still fresh
    world.clock.advance(timedelta(milliseconds=1))
    await world.service.emit_due()
    await world.service.emit_due()
    reminders = world.published.of(BedAvailabilityStaleV1)
    assert len(reminders) == len(DEMO_FACILITIES)
    assert world.timers.timers == {}


async def test_an_update_before_the_limit_means_no_reminder_for_those_numbers(world: World) -> None:
    facility = await world.service.facility("fac-boone-riverbend")
    world.clock.advance(timedelta(hours=6))
    await world.service.update_availability(
        facility.facility_id,
        facility.facility_id,
        {UnitType.ADULT_ACUTE: 2, UnitType.GERIATRIC: 0},
        "s-2",
        "c",
    )
    world.clock.advance(timedelta(hours=6, seconds=1))
    await world.service.emit_due()
    stale_ids = {e.facility_id for e in world.published.of(BedAvailabilityStaleV1)}
    assert "fac-boone-riverbend" not in stale_ids
    assert len(stale_ids) == len(DEMO_FACILITIES) - 1


async def test_open_requests_are_flagged_at_72_and_90_hours_once_closed_ones_never(
    world: World,
) -> None:
    open_request, _ = await world.service.open_request(world.open_command(), LIAISON)
    closed, _ = await world.service.open_request(world.open_command(), LIAISON)
    await world.service.complete(closed.request_id, None, "released", LIAISON, "c")

    def flags() -> list[tuple[uuid.UUID, str]]:
        return [(e.request_id, e.flag) for e in world.published.of(PlacementDeadlineFlaggedV1)]

    world.clock.advance(timedelta(hours=70) - timedelta(seconds=1))
    await world.service.emit_due()
    assert flags() == []
    world.clock.advance(timedelta(seconds=1))
    await world.service.emit_due()
    await world.service.emit_due()
    assert flags() == [(open_request.request_id, "due_soon")]
    world.clock.advance(timedelta(hours=18))
    await world.service.emit_due()
    await world.service.emit_due()
    assert flags() == [(open_request.request_id, "due_soon"), (open_request.request_id, "overdue")]


async def test_a_request_opened_late_in_the_clock_is_flagged_at_the_next_scan(world: World) -> None:
    request, _ = await world.service.open_request(world.open_command(hours_detained=91), LIAISON)
    await world.service.emit_due()
    assert sorted(e.flag for e in world.published.of(PlacementDeadlineFlaggedV1)) == [
        "due_soon",
        "overdue",
    ]
    assert request.clock.deadline_at - world.clock.now() == timedelta(hours=5)


async def test_a_liaison_sees_only_their_requests_and_every_access_is_audited(
    world: World,
) -> None:
    request, created = await world.service.open_request(world.open_command(), LIAISON)
    assert created
    with pytest.raises(NotVisible):
        await world.service.get_request(request.request_id, OTHER)
    with pytest.raises(NotVisible):
        await world.service.record_attempt(
            request.request_id,
            None,
            "fac-stl-gateway",
            AttemptResult.NO_ANSWER,
            None,
            None,
            OTHER,
            "c",
        )
    assert await world.service.list_requests(OTHER, 10) == []
    assert [r.request_id for r in await world.service.list_requests(SUPERVISOR, 10)] == [
        request.request_id
    ]
    await world.service.get_request(request.request_id, LIAISON)
    trail = [(e.actor, e.action, e.outcome) for e in world.audit.entries]
    assert trail == [
        ("liaison-05", "open", "created"),
        ("liaison-06", "read", "denied"),
        ("liaison-06", "attempt", "denied"),
        ("sup-05", "list", "allowed"),
        ("liaison-05", "read", "allowed"),
    ]
    assert all(e.person_ids == ("d" * 32,) for e in world.audit.entries)


async def test_retrying_an_open_with_the_same_id_returns_the_first(world: World) -> None:
    command = world.open_command()
    request_id = uuid.uuid4()
    first, created = await world.service.open_request(
        replace(command, request_id=request_id), LIAISON
    )
    again, created_again = await world.service.open_request(
        replace(command, request_id=request_id), LIAISON
    )
    assert (created, created_again) == (True, False)
    assert again.request_id == first.request_id
    assert len(world.published.of(PlacementRequestedV1)) == 1
    with pytest.raises(NotVisible):
        await world.service.open_request(replace(command, request_id=request_id), OTHER)


async def test_a_retried_attempt_with_its_id_is_logged_and_published_once(world: World) -> None:
    request, _ = await world.service.open_request(world.open_command(), LIAISON)
    for _ in range(2):
        logged = await world.service.record_attempt(
            request.request_id,
            "call-1",
            "fac-stl-gateway",
            AttemptResult.NO_ANSWER,
            None,
            None,
            LIAISON,
            "c",
        )
    assert [(a.attempt_id, a.sequence) for a in logged.attempts] == [("call-1", 1)]
    assert len(world.published.of(PlacementAttemptedV1)) == 1
    trail = [(e.action, e.outcome) for e in world.audit.entries if e.action == "attempt"]
    assert trail == [("attempt", "changed"), ("attempt", "unchanged")]


async def test_a_request_names_only_a_referral_the_caller_may_see_and_takes_its_person(
    world: World,
) -> None:
    command = world.open_command()
    stranger = replace(command, credentials="t-06")
    with pytest.raises(ReferralNotVisible):
        await world.service.open_request(stranger, OTHER)
    request, created = await world.service.open_request(command, LIAISON)
    assert created
    assert request.person_id == "d" * 32
    closed = world.open_command()
    world.referrals.add(
        closed.referral_id, "t-05", ReferralFacts("e" * 32, "liaison-05", "cmhc-05", True)
    )
    with pytest.raises(ReferralClosed):
        await world.service.open_request(closed, LIAISON)
    denied = [e for e in world.audit.entries if e.outcome == "denied"]
    assert [(e.actor, e.record) for e in denied] == [
        ("liaison-06", f"referral/{command.referral_id}")
    ]
