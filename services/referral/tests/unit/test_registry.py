"""The registry's rules: effective dates, overlaps and gaps, coverage, and both assignment
strategies, with an in-memory registry."""

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cmhl_contracts import CmhcServiceAreaChangedV1, IntegrationEvent, LiaisonChangedV1
from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.registry import LiaisonStatus
from cmhl_referral.application.ports import ConcurrentChange
from cmhl_referral.application.registry import (
    AlreadyRegistered,
    NotAdmin,
    RegistryAssignments,
    RegistryService,
)
from cmhl_referral.domain.assignment import assignment_for
from cmhl_referral.domain.referral import Assignment
from cmhl_referral.domain.registry import (
    UNASSIGNED,
    AreaChange,
    Cmhc,
    InvalidRegistryChange,
    Liaison,
    LiaisonTerms,
    OverlappingArea,
    Registry,
    Strategy,
    check_counties,
    least_loaded,
    round_robin,
)
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock

JAN = date(2026, 1, 1)
JUL = date(2026, 7, 1)
BOONE, CALLAWAY, COLE = "29019", "29027", "29051"
ADMIN = Principal("admin-1", frozenset({Role.PROGRAM_ADMIN}), None)
ZONE = ZoneInfo("America/Chicago")


class InMemoryRegistryRepository:
    def __init__(self) -> None:
        self.cmhcs: dict[str, Cmhc] = {}
        self.liaisons: dict[str, Liaison] = {}
        self.events: list[IntegrationEvent] = []
        self.tickets: dict[str, int] = {}
        self.open: dict[str, int] = {}

    async def registry(self) -> Registry:
        return Registry(
            [_copy_cmhc(c) for _, c in sorted(self.cmhcs.items())],
            [_copy_liaison(li) for _, li in sorted(self.liaisons.items())],
        )

    async def cmhc(self, cmhc_id: str) -> Cmhc | None:
        found = self.cmhcs.get(cmhc_id)
        return _copy_cmhc(found) if found else None

    async def liaison(self, liaison_id: str) -> Liaison | None:
        found = self.liaisons.get(liaison_id)
        return _copy_liaison(found) if found else None

    async def add_cmhc(self, cmhc: Cmhc, events: list[IntegrationEvent]) -> bool:
        if cmhc.cmhc_id in self.cmhcs:
            return False
        cmhc.version = 1
        self.cmhcs[cmhc.cmhc_id] = _copy_cmhc(cmhc)
        self.events += events
        return True

    async def save_cmhc(self, cmhc: Cmhc, events: list[IntegrationEvent]) -> None:
        if self.cmhcs[cmhc.cmhc_id].version != cmhc.version:
            raise ConcurrentChange
        cmhc.version += 1
        self.cmhcs[cmhc.cmhc_id] = _copy_cmhc(cmhc)
        self.events += events

    async def add_liaison(self, liaison: Liaison, events: list[IntegrationEvent]) -> bool:
        if liaison.liaison_id in self.liaisons:
            return False
        liaison.version = 1
        self.liaisons[liaison.liaison_id] = _copy_liaison(liaison)
        self.events += events
        return True

    async def save_liaison(self, liaison: Liaison, events: list[IntegrationEvent]) -> None:
        if self.liaisons[liaison.liaison_id].version != liaison.version:
            raise ConcurrentChange
        liaison.version += 1
        self.liaisons[liaison.liaison_id] = _copy_liaison(liaison)
        self.events += events

    async def next_ticket(self, pool: str) -> int:
        self.tickets[pool] = self.tickets.get(pool, -1) + 1
        return self.tickets[pool]

    async def open_referrals(self, liaison_ids: list[str]) -> dict[str, int]:
        return {liaison: self.open.get(liaison, 0) for liaison in liaison_ids}

    async def unassigned_open(self) -> int:
        return 0


def _copy_cmhc(cmhc: Cmhc) -> Cmhc:
    return Cmhc(cmhc.cmhc_id, cmhc.name, list(cmhc.areas), cmhc.version)


def _copy_liaison(liaison: Liaison) -> Liaison:
    return Liaison(liaison.liaison_id, list(liaison.terms), liaison.version)


def service(repository: InMemoryRegistryRepository) -> RegistryService:
    clock = AdjustableClock(datetime(2026, 3, 1, tzinfo=UTC))
    return RegistryService(repository, None, InMemoryAuditLog(), clock, lambda: None)  # type: ignore[arg-type]


def terms(cmhc: str, day: date = JAN, *coverage: str, status: str = "active") -> LiaisonTerms:
    return LiaisonTerms(day, cmhc, LiaisonStatus(status), frozenset(coverage))


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 15, tzinfo=UTC)


# --- effective dates -------------------------------------------------------------------------


def test_a_service_area_holds_from_its_day_until_the_next_change() -> None:
    cmhc = Cmhc("cmhc-a", "A")
    cmhc.change_area(frozenset({BOONE}), JAN)
    cmhc.change_area(frozenset({BOONE, CALLAWAY}), JUL)
    assert cmhc.area_on(date(2025, 12, 31)) == frozenset()
    assert cmhc.area_on(JAN) == {BOONE}
    assert cmhc.area_on(date(2026, 6, 30)) == {BOONE}
    assert cmhc.area_on(JUL) == {BOONE, CALLAWAY}


def test_history_is_not_rewritten_but_the_same_day_replaces() -> None:
    cmhc = Cmhc("cmhc-a", "A")
    cmhc.change_area(frozenset({BOONE}), JUL)
    with pytest.raises(InvalidRegistryChange, match="on or after the latest"):
        cmhc.change_area(frozenset({CALLAWAY}), JAN)
    cmhc.change_area(frozenset({CALLAWAY}), JUL)
    assert [a.counties for a in cmhc.areas] == [{CALLAWAY}]


def test_a_liaisons_terms_change_from_their_day() -> None:
    liaison = Liaison("liaison-01")
    liaison.change(terms("cmhc-a"))
    liaison.change(terms("cmhc-a", JUL, status="on_leave"))
    on_jan, on_jul = liaison.on(JAN), liaison.on(JUL)
    assert on_jan is not None
    assert on_jan.status is LiaisonStatus.ACTIVE
    assert on_jul is not None
    assert on_jul.status is LiaisonStatus.ON_LEAVE
    assert liaison.on(date(2025, 1, 1)) is None
    with pytest.raises(InvalidRegistryChange):
        liaison.change(terms("cmhc-a", JAN))


def test_an_unknown_county_is_named() -> None:
    with pytest.raises(InvalidRegistryChange, match="county 29999 is not a Missouri county"):
        check_counties([BOONE, "29999"])
    assert check_counties([BOONE, BOONE]) == {BOONE}


# --- overlaps and gaps -----------------------------------------------------------------------


async def test_an_overlap_is_refused_naming_the_county_and_the_other_cmhc() -> None:
    repository = InMemoryRegistryRepository()
    registry = service(repository)
    await registry.register_cmhc("cmhc-a", "A", [BOONE, COLE], JAN, ADMIN, "c")
    with pytest.raises(OverlappingArea, match="county 29051 is served by CMHC cmhc-a"):
        await registry.register_cmhc("cmhc-b", "B", [CALLAWAY, COLE], JAN, ADMIN, "c")
    # From July A gives Cole up: B may take it from then, not before.
    await registry.change_service_area("cmhc-a", [BOONE], JUL, ADMIN, "c")
    with pytest.raises(OverlappingArea):
        await registry.register_cmhc("cmhc-b", "B", [COLE], JAN, ADMIN, "c")
    await registry.register_cmhc("cmhc-b", "B", [COLE], JUL, ADMIN, "c")


async def test_an_area_may_not_meet_another_cmhcs_later_change() -> None:
    repository = InMemoryRegistryRepository()
    registry = service(repository)
    await registry.register_cmhc("cmhc-a", "A", [BOONE], JAN, ADMIN, "c")
    await registry.change_service_area("cmhc-a", [BOONE, COLE], JUL, ADMIN, "c")
    with pytest.raises(OverlappingArea, match="on 2026-07-01"):
        await registry.register_cmhc("cmhc-b", "B", [COLE], JAN, ADMIN, "c")


async def test_coverage_reports_uncovered_counties_and_counties_without_a_liaison() -> None:
    repository = InMemoryRegistryRepository()
    registry = service(repository)
    await registry.register_cmhc("cmhc-a", "A", [BOONE, COLE], JAN, ADMIN, "c")
    await registry.register_liaison("liaison-01", terms("cmhc-a", JAN, BOONE), ADMIN, "c")
    report = (await registry.coverage(JAN)).coverage
    assert len(report.uncovered) == len(MISSOURI_COUNTIES) - 2
    assert BOONE not in report.uncovered
    assert COLE not in report.uncovered
    assert report.without_liaison == [COLE]
    assert report.overlaps == {}
    # An overlap that slipped in (two replicas at once) is reported, never resolved silently.
    sneaked = Cmhc("cmhc-b", "B")
    sneaked.change_area(frozenset({COLE}), JAN)
    both = Registry([*(await repository.registry()).cmhcs, sneaked], [])
    assert both.coverage(JAN).overlaps == {COLE: ["cmhc-a", "cmhc-b"]}


async def test_a_liaison_covers_counties_of_their_cmhc_only() -> None:
    repository = InMemoryRegistryRepository()
    registry = service(repository)
    await registry.register_cmhc("cmhc-a", "A", [BOONE], JAN, ADMIN, "c")
    with pytest.raises(InvalidRegistryChange, match="county 29051 is outside CMHC cmhc-a"):
        await registry.register_liaison("liaison-01", terms("cmhc-a", JAN, COLE), ADMIN, "c")
    with pytest.raises(InvalidRegistryChange, match="CMHC cmhc-z is not registered"):
        await registry.register_liaison("liaison-01", terms("cmhc-z"), ADMIN, "c")
    with pytest.raises(InvalidRegistryChange, match="serves no county on 2025-01-01"):
        await registry.register_liaison("liaison-01", terms("cmhc-a", date(2025, 1, 1)), ADMIN, "c")


async def test_only_a_program_admin_changes_the_registry_and_ids_are_unique() -> None:
    repository = InMemoryRegistryRepository()
    registry = service(repository)
    supervisor = Principal("sup-1", frozenset({Role.SUPERVISOR}), "cmhc-a")
    with pytest.raises(NotAdmin):
        await registry.register_cmhc("cmhc-a", "A", [BOONE], JAN, supervisor, "c")
    await registry.register_cmhc("cmhc-a", "A", [BOONE], JAN, ADMIN, "c")
    with pytest.raises(AlreadyRegistered):
        await registry.register_cmhc("cmhc-a", "A", [COLE], JAN, ADMIN, "c")


async def test_changes_are_published_with_their_effective_dates() -> None:
    repository = InMemoryRegistryRepository()
    registry = service(repository)
    await registry.register_cmhc("cmhc-a", "A", [COLE, BOONE], JAN, ADMIN, "c")
    await registry.change_service_area("cmhc-a", [BOONE], JUL, ADMIN, "c")
    await registry.register_liaison("liaison-01", terms("cmhc-a"), ADMIN, "c")
    first, second, liaison = repository.events
    assert isinstance(first, CmhcServiceAreaChangedV1)
    assert isinstance(second, CmhcServiceAreaChangedV1)
    assert (first.sequence, first.effective_from, first.counties) == (1, JAN, [BOONE, COLE])
    assert (second.sequence, second.effective_from, second.counties) == (2, JUL, [BOONE])
    assert first.event_id != second.event_id
    assert isinstance(liaison, LiaisonChangedV1)
    assert liaison.coverage == []
    assert CmhcServiceAreaChangedV1.topic() == "cmhl.referral.cmhc-service-area-changed.v1"


# --- assignment ------------------------------------------------------------------------------


def test_round_robin_takes_turns_and_least_loaded_takes_the_fewest() -> None:
    team = ["liaison-01", "liaison-02", "liaison-03"]
    assert [round_robin(team, n) for n in range(4)] == [*team, "liaison-01"]
    assert least_loaded(team, {"liaison-01": 3, "liaison-02": 1, "liaison-03": 1}) == "liaison-02"
    assert least_loaded(team, {}) == "liaison-01"


async def _two_cmhcs(repository: InMemoryRegistryRepository) -> None:
    registry = service(repository)
    await registry.register_cmhc("cmhc-a", "A", [BOONE, COLE], JAN, ADMIN, "c")
    await registry.register_cmhc("cmhc-b", "B", [CALLAWAY], JAN, ADMIN, "c")
    await registry.change_service_area("cmhc-a", [BOONE], JUL, ADMIN, "c")
    await registry.change_service_area("cmhc-b", [CALLAWAY, COLE], JUL, ADMIN, "c")
    for liaison, cmhc, coverage in [
        ("liaison-01", "cmhc-a", ()),
        ("liaison-02", "cmhc-a", (BOONE,)),
        ("liaison-03", "cmhc-b", ()),
    ]:
        await registry.register_liaison(liaison, terms(cmhc, JAN, *coverage), ADMIN, "c")


async def test_assignment_follows_the_area_in_force_on_the_day() -> None:
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    assign = RegistryAssignments(repository, Strategy.ROUND_ROBIN, ZONE)
    assert await assign.assign(COLE, at(date(2026, 6, 30))) == Assignment("liaison-01", "cmhc-a")
    assert await assign.assign(COLE, at(JUL)) == Assignment("liaison-03", "cmhc-b")


async def test_the_program_day_decides_not_the_utc_day() -> None:
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    assign = RegistryAssignments(repository, Strategy.ROUND_ROBIN, ZONE)
    # 03:00 UTC on July 1st is still June 30th in Missouri.
    evening = datetime(2026, 7, 1, 3, tzinfo=UTC)
    assert (await assign.assign(COLE, evening)).cmhc_id == "cmhc-a"


async def test_round_robin_rotates_over_the_liaisons_who_take_the_county() -> None:
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    assign = RegistryAssignments(repository, Strategy.ROUND_ROBIN, ZONE)
    boone = [(await assign.assign(BOONE, at(JAN))).liaison_id for _ in range(4)]
    assert boone == ["liaison-01", "liaison-02", "liaison-01", "liaison-02"]
    # Cole is liaison-01's only (liaison-02 covers Boone alone): no turn is taken for it.
    assert {(await assign.assign(COLE, at(JAN))).liaison_id for _ in range(3)} == {"liaison-01"}
    assert repository.tickets == {f"cmhc-a|{BOONE}": 3}


async def test_least_loaded_picks_the_liaison_with_fewest_open_referrals() -> None:
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    repository.open = {"liaison-01": 5, "liaison-02": 2}
    assign = RegistryAssignments(repository, Strategy.LEAST_LOADED, ZONE)
    assert (await assign.assign(BOONE, at(JAN))).liaison_id == "liaison-02"


async def test_only_active_liaisons_are_assigned_and_a_gap_is_never_refused() -> None:
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    registry = service(repository)
    await registry.change_liaison("liaison-03", terms("cmhc-b", JUL, status="on_leave"), ADMIN, "c")
    assign = RegistryAssignments(repository, Strategy.ROUND_ROBIN, ZONE)
    # Cmhc-b has nobody active from July: its referral waits, unassigned, in its CMHC.
    assert await assign.assign(CALLAWAY, at(JUL)) == Assignment(UNASSIGNED, "cmhc-b")
    # A county no CMHC serves: kept, with neither a CMHC nor a liaison.
    assert await assign.assign("29510", at(JUL)) == Assignment(UNASSIGNED, UNASSIGNED)
    assert await assign.cmhc_of("liaison-03", at(JUL)) == "cmhc-b"
    assert await assign.liaisons_of("cmhc-a", at(JUL)) == ["liaison-01", "liaison-02"]


async def test_least_loaded_spreads_a_batch_assigned_side_by_side() -> None:
    """Eight referrals assigned concurrently all read the counts before any is stored: they
    spread over the two Boone liaisons instead of all going to the least loaded one."""
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    repository.open = {"liaison-01": 1, "liaison-02": 0}
    assign = RegistryAssignments(repository, Strategy.LEAST_LOADED, ZONE)
    chosen = await asyncio.gather(*(assign.assign(BOONE, at(JAN)) for _ in range(8)))
    # Level: liaison-01 had one open already, so 1 + 4 against 0 + 4.
    assert Counter(a.liaison_id for a in chosen) == Counter({"liaison-02": 4, "liaison-01": 4})


async def test_round_robin_counts_turns_per_county_so_no_liaison_is_starved() -> None:
    """Liaison-02 takes Boone only; liaison-01 all of cmhc-a. Alternating Boone and Cole
    referrals with one counter for the CMHC would give every Boone turn to liaison-01."""
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    assign = RegistryAssignments(repository, Strategy.ROUND_ROBIN, ZONE)
    boone = []
    for _ in range(4):
        boone.append((await assign.assign(BOONE, at(JAN))).liaison_id)
        await assign.assign(COLE, at(JAN))
    assert sorted(boone) == ["liaison-01", "liaison-01", "liaison-02", "liaison-02"]


async def test_unassigned_is_reserved_and_a_liaison_can_leave_a_cmhc_that_serves_nothing() -> None:
    repository = InMemoryRegistryRepository()
    await _two_cmhcs(repository)
    registry = service(repository)
    with pytest.raises(InvalidRegistryChange, match="reserved"):
        await registry.register_cmhc(UNASSIGNED, "X", [COLE], JAN, ADMIN, "c")
    with pytest.raises(InvalidRegistryChange, match="reserved"):
        await registry.register_liaison(UNASSIGNED, terms("cmhc-a", JAN), ADMIN, "c")
    wound_down = date(2026, 9, 1)
    await registry.change_service_area("cmhc-b", [], wound_down, ADMIN, "c")
    with pytest.raises(InvalidRegistryChange, match="serves no county"):
        await registry.change_liaison("liaison-03", terms("cmhc-b", wound_down), ADMIN, "c")
    await registry.change_liaison(
        "liaison-03", terms("cmhc-b", wound_down, status="inactive"), ADMIN, "c"
    )
    assign = RegistryAssignments(repository, Strategy.ROUND_ROBIN, ZONE)
    assert await assign.liaisons_of("cmhc-b", at(wound_down)) == []


async def test_an_empty_registry_falls_back_to_the_default_table() -> None:
    assign = RegistryAssignments(InMemoryRegistryRepository(), Strategy.ROUND_ROBIN, ZONE)
    assert await assign.assign(BOONE, at(JAN)) == assignment_for(BOONE)
    liaison = assignment_for(BOONE).liaison_id
    assert await assign.cmhc_of(liaison, at(JAN)) == assignment_for(BOONE).cmhc_id


def test_the_demo_registry_reproduces_the_default_table_and_the_demo_sign_ins() -> None:
    """The demo loads deploy/local/data/registry_illustrative.json through the API; assigned by
    it, every county goes where the default table (and the demo users' CMHC claims) say."""
    root = Path(__file__).resolve().parents[4]
    demo = json.loads((root / "deploy/local/data/registry_illustrative.json").read_text())
    since = date.fromisoformat(demo["effective_from"])
    registry = Registry(
        [
            Cmhc(c["cmhc_id"], c["name"], [AreaChange(since, check_counties(c["counties"]))])
            for c in demo["cmhcs"]
        ],
        [
            Liaison(
                row["liaison_id"],
                [terms(row["cmhc_id"], since, *row["coverage"], status=row["status"])],
            )
            for row in demo["liaisons"]
        ],
    )
    coverage = registry.coverage(since)
    assert (coverage.uncovered, coverage.overlaps, coverage.without_liaison) == ([], {}, [])
    for county in MISSOURI_COUNTIES:
        [cmhc] = registry.serving(county, since)
        [liaison] = registry.candidates(cmhc, county, since)
        assert Assignment(liaison, cmhc) == assignment_for(county)
    realm = json.loads((root / "deploy/local/keycloak/cmhl-realm.json").read_text())
    claims = {
        user["username"]: user["attributes"]["cmhc"][0]
        for user in realm["users"]
        if user["username"].startswith("liaison-")
    }
    assert claims == {row["liaison_id"]: row["cmhc_id"] for row in demo["liaisons"]}
