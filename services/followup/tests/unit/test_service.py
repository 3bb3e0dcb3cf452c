"""Follow-up use cases on a simulated clock with in-memory fakes: 90 days in milliseconds."""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmhl_contracts import (
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpReassignedV1,
    FollowUpScheduledV1,
    IntegrationEvent,
)
from cmhl_contracts.vocabulary import FollowUpOutcome, ReferralStatus
from cmhl_followup.application.ports import FollowUpQuery
from cmhl_followup.application.service import (
    FollowUpService,
    InvalidFollowUp,
    NotAllowed,
    NotFound,
    ReferralClosed,
)
from cmhl_followup.domain.policy import OutcomeRefused, State
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.timers import InMemoryTimerStore, Timer

from ..conftest import reassigned, referral_created, status_changed

REFERRED = datetime(2018, 3, 5, 9, tzinfo=UTC)
LIAISON = Principal("liaison-11", frozenset({Role.LIAISON}), "cmhc-09")
OTHER = Principal("liaison-12", frozenset({Role.LIAISON}), "cmhc-09")


class InMemoryFollowUps:
    """Mimics the Mongo repository's rules: inserts keyed by id, versioned updates."""

    def __init__(self) -> None:
        self.follow_ups: dict[str, dict[str, Any]] = {}
        self.timers = InMemoryTimerStore()
        self.claims: dict[tuple[str, str], IntegrationEvent] = {}
        self.closures: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.events: list[IntegrationEvent] = []

    async def schedule(
        self, follow_ups: list[tuple[dict[str, Any], FollowUpScheduledV1]], now: datetime
    ) -> int:
        created = 0
        for document, event in follow_ups:
            await self.timers.schedule(
                [
                    Timer(f"{document['_id']}|{stage}", stage, document["_id"], at, now)
                    for stage, at in (
                        ("due", document["due_at"]),
                        ("overdue", document["overdue_at"]),
                    )
                ]
            )
            if document["_id"] not in self.follow_ups:
                self.follow_ups[document["_id"]] = document | {"version": 1}
                self.events.append(event)
                created += 1
        return created

    async def get(self, follow_up_id: str) -> dict[str, Any] | None:
        found = self.follow_ups.get(follow_up_id)
        return dict(found) if found else None

    async def claim(self, stage: str, follow_up: dict[str, Any], event: IntegrationEvent) -> bool:
        if (stage, follow_up["_id"]) in self.claims:
            return False
        self.claims[(stage, follow_up["_id"])] = event
        self.events.append(event)
        return True

    async def update(
        self,
        follow_up_id: str,
        expected_version: int,
        changes: Mapping[str, Any],
        events: list[IntegrationEvent],
    ) -> bool:
        current = self.follow_ups[follow_up_id]
        if current["version"] != expected_version:
            return False
        self.follow_ups[follow_up_id] = current | dict(changes) | {"version": expected_version + 1}
        self.events.extend(events)
        return True

    async def note_closure(self, referral_id: str, status: str, at: datetime) -> None:
        self.closures.setdefault(referral_id, {"status": status, "at": at})

    async def closure_of(self, referral_id: str) -> dict[str, Any] | None:
        return self.closures.get(referral_id)

    async def pending_of(self, referral_id: str) -> list[dict[str, Any]]:
        return [
            d
            for d in self.follow_ups.values()
            if d["referral_id"] == referral_id and d["status"] == "scheduled"
        ]

    async def note_assignment(self, referral_id: str, liaison_id: str, sequence: int) -> None:
        current = self.assignments.get(referral_id)
        if current is None or current["sequence"] < sequence:
            self.assignments[referral_id] = {"liaison_id": liaison_id, "sequence": sequence}

    async def assignment_of(self, referral_id: str) -> dict[str, Any] | None:
        return self.assignments.get(referral_id)

    async def list_follow_ups(self, query: FollowUpQuery) -> list[dict[str, Any]]:
        def selected(d: dict[str, Any]) -> bool:
            bounds = [
                query.due_by is None or d["due_at"] <= query.due_by,
                query.due_after is None or d["due_at"] > query.due_after,
                query.overdue_before is None or d["overdue_at"] < query.overdue_before,
                query.overdue_from is None or d["overdue_at"] >= query.overdue_from,
            ]
            scope = {
                "referral_id": query.referral_id,
                "liaison_id": query.liaison_id,
                "cmhc_id": query.cmhc_id,
                "status": query.status,
            }
            in_scope = all(d.get(k) == v for k, v in scope.items() if v is not None)
            return in_scope and all(bounds)

        mine = [d for d in self.follow_ups.values() if selected(d)]
        return sorted(mine, key=lambda d: d["due_at"])[: query.limit]

    async def liaisons_of(self, query: FollowUpQuery) -> list[str]:
        return [d["liaison_id"] for d in await self.list_follow_ups(query)]

    def of_type(self, event_type: type[IntegrationEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, event_type)]


@pytest.fixture
def clock() -> AdjustableClock:
    return AdjustableClock(REFERRED)


@pytest.fixture
def repository() -> InMemoryFollowUps:
    return InMemoryFollowUps()


@pytest.fixture
def audit() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def service(
    repository: InMemoryFollowUps, audit: InMemoryAuditLog, clock: AdjustableClock
) -> FollowUpService:
    return FollowUpService(repository, audit, clock, (7, 30, 90), timedelta(days=3))


async def test_ninety_days_announce_each_follow_up_due_once_and_overdue_once(
    service: FollowUpService, repository: InMemoryFollowUps, clock: AdjustableClock
) -> None:
    referral_id = uuid.uuid4()
    await service.on_referral_created([referral_created(referral_id, REFERRED)] * 2)
    assert len(repository.of_type(FollowUpScheduledV1)) == 3
    for day in range(100):
        clock.advance(timedelta(days=1) if day else timedelta(0))
        await service.emit_due()
        await service.emit_due()  # a second pass (or replica) announces nothing more
    announced = [
        ((e.occurred_at - REFERRED).days, type(e).__name__)
        for e in repository.events
        if isinstance(e, FollowUpDueV1 | FollowUpOverdueV1)
    ]
    assert announced == [
        (7, "FollowUpDueV1"),
        (10, "FollowUpOverdueV1"),
        (30, "FollowUpDueV1"),
        (33, "FollowUpOverdueV1"),
        (90, "FollowUpDueV1"),
        (93, "FollowUpOverdueV1"),
    ]
    assert not repository.timers.timers


async def test_an_outcome_is_recorded_once_and_flagged_overdue_after_the_grace(
    service: FollowUpService,
    repository: InMemoryFollowUps,
    clock: AdjustableClock,
    audit: InMemoryAuditLog,
) -> None:
    referral_id = uuid.uuid4()
    await service.on_referral_created([referral_created(referral_id, REFERRED)])
    day7, day30, day90 = sorted(repository.follow_ups.values(), key=lambda d: d["due_at"])
    with pytest.raises(OutcomeRefused, match="not due within 3 days"):
        await service.record_outcome(day7["_id"], FollowUpOutcome.REACHED, LIAISON)
    clock.advance(timedelta(days=7))
    _, changed = await service.record_outcome(day7["_id"], FollowUpOutcome.REACHED, LIAISON)
    assert changed
    _, again = await service.record_outcome(day7["_id"], FollowUpOutcome.REACHED, LIAISON)
    assert not again
    with pytest.raises(OutcomeRefused, match="recorded already"):
        await service.record_outcome(day7["_id"], FollowUpOutcome.HOSPITALIZED, LIAISON)
    with pytest.raises(NotFound):
        await service.record_outcome(day30["_id"], FollowUpOutcome.REACHED, OTHER)
    clock.advance(timedelta(days=26, seconds=1))  # day 33 and a second: past the grace
    await service.record_outcome(day30["_id"], FollowUpOutcome.ENGAGED_IN_TREATMENT, LIAISON)
    completed = repository.of_type(FollowUpCompletedV1)
    assert [(e.outcome, e.overdue) for e in completed] == [
        ("reached", False),
        ("engaged_in_treatment", True),
    ]
    assert len({e.event_id for e in completed}) == 2
    completed_ids = [r.document["_id"] for r in await service.list_for(LIAISON, State.COMPLETED, 9)]
    assert completed_ids == [day7["_id"], day30["_id"]]
    assert [r.document["_id"] for r in await service.list_for(LIAISON, None, 9)] == [day90["_id"]]
    outcomes = [e.outcome for e in audit.entries if e.action == "record_outcome"]
    assert outcomes == ["refused", "changed", "unchanged", "refused", "not_found", "changed"]


async def test_a_closure_cancels_pending_follow_ups_even_when_read_before_the_referral(
    service: FollowUpService, repository: InMemoryFollowUps, clock: AdjustableClock
) -> None:
    referral_id = uuid.uuid4()
    clock.advance(timedelta(days=8))
    closed = status_changed(referral_id, REFERRED, 4, ReferralStatus.LOST_TO_FOLLOW_UP, clock.now())
    await service.on_status_changed([closed])  # the other topic was read first
    await service.on_referral_created([referral_created(referral_id, REFERRED)])
    cancelled = repository.of_type(FollowUpCancelledV1)
    assert len(cancelled) == 3
    assert {e.reason for e in cancelled} == {"referral_closed"}
    await service.on_status_changed([closed])  # redelivered: nothing more
    assert len(repository.of_type(FollowUpCancelledV1)) == 3
    [day7, *_] = sorted(repository.follow_ups.values(), key=lambda d: d["due_at"])
    with pytest.raises(OutcomeRefused, match="cancelled"):
        await service.record_outcome(day7["_id"], FollowUpOutcome.REACHED, LIAISON)
    await service.emit_due()
    assert not repository.of_type(FollowUpDueV1)  # cancelled follow-ups never come due


@pytest.mark.parametrize("closure_read_first", [True, False])
async def test_after_a_connection_to_treatment_the_retention_checks_and_own_follow_ups_go_on(
    service: FollowUpService,
    repository: InMemoryFollowUps,
    clock: AdjustableClock,
    closure_read_first: bool,
) -> None:
    referral_id = uuid.uuid4()
    clock.advance(timedelta(days=2))
    created = referral_created(referral_id, REFERRED)
    if not closure_read_first:
        await service.on_referral_created([created])
        await service.add_follow_up(referral_id, clock.now() + timedelta(days=2), LIAISON)
    connected = status_changed(
        referral_id, REFERRED, 4, ReferralStatus.CONNECTED_TO_TREATMENT, clock.now()
    )
    await service.on_status_changed([connected])
    if closure_read_first:
        await service.on_referral_created([created])
        await service.add_follow_up(referral_id, clock.now() + timedelta(days=2), LIAISON)
    await service.on_status_changed([connected])  # redelivered: nothing more
    by_kind = sorted(
        (d["kind"], (d["due_at"] - REFERRED).days, d["status"])
        for d in repository.follow_ups.values()
    )
    assert by_kind == [
        ("ad_hoc", 4, "scheduled"),
        ("scheduled_check", 7, "cancelled"),
        ("scheduled_check", 30, "scheduled"),
        ("scheduled_check", 90, "scheduled"),
    ]
    assert len(repository.of_type(FollowUpCancelledV1)) == 1


async def test_a_liaison_adds_own_follow_ups_to_their_open_referrals_only(
    service: FollowUpService, repository: InMemoryFollowUps, clock: AdjustableClock
) -> None:
    referral_id = uuid.uuid4()
    await service.on_referral_created([referral_created(referral_id, REFERRED)])
    due = clock.now() + timedelta(days=3)
    listed, created = await service.add_follow_up(referral_id, due, LIAISON)
    assert created
    assert (listed.document["kind"], listed.document["due_at"], listed.state) == (
        "ad_hoc",
        due,
        State.SCHEDULED,
    )
    again, created_again = await service.add_follow_up(referral_id, due, LIAISON)
    assert (again.document["_id"], created_again) == (listed.document["_id"], False)
    assert len(repository.of_type(FollowUpScheduledV1)) == 4
    with pytest.raises(NotFound):
        await service.add_follow_up(referral_id, due, OTHER)
    with pytest.raises(NotFound):
        await service.add_follow_up(uuid.uuid4(), due, LIAISON)
    for wrong in (clock.now() - timedelta(days=1), clock.now() + timedelta(days=401)):
        with pytest.raises(InvalidFollowUp, match="400 days"):
            await service.add_follow_up(referral_id, wrong, LIAISON)
    declined = status_changed(referral_id, REFERRED, 2, ReferralStatus.DECLINED, clock.now())
    await service.on_status_changed([declined])
    assert repository.follow_ups[listed.document["_id"]]["status"] == "cancelled"
    with pytest.raises(ReferralClosed, match="declined"):
        await service.add_follow_up(referral_id, due + timedelta(days=1), LIAISON)


async def test_an_appointment_adds_a_check_the_day_after_and_a_moved_one_replaces_it(
    service: FollowUpService, repository: InMemoryFollowUps, clock: AdjustableClock
) -> None:
    referral_id = uuid.uuid4()
    await service.on_referral_created([referral_created(referral_id, REFERRED)])
    first = REFERRED + timedelta(days=12, hours=3)
    moved = REFERRED + timedelta(days=15, hours=3)
    await service.on_status_changed(
        [
            status_changed(
                referral_id, REFERRED, 3, ReferralStatus.APPOINTMENT_SCHEDULED, REFERRED, first
            ),
            status_changed(
                referral_id, REFERRED, 5, ReferralStatus.APPOINTMENT_SCHEDULED, REFERRED, moved
            ),
        ]
    )
    checks = [d for d in repository.follow_ups.values() if d["kind"] == "appointment_check"]
    assert sorted((d["due_at"], d["status"]) for d in checks) == [
        (first + timedelta(days=1), "cancelled"),
        (moved + timedelta(days=1), "scheduled"),
    ]
    assert [e.reason for e in repository.of_type(FollowUpCancelledV1)] == ["appointment_moved"]


async def test_a_reassignment_moves_pending_follow_ups_in_either_order(
    service: FollowUpService, repository: InMemoryFollowUps, clock: AdjustableClock
) -> None:
    early, late = uuid.uuid4(), uuid.uuid4()
    await service.on_referral_reassigned([reassigned(early, 2, "liaison-12", REFERRED)])
    await service.on_referral_created(
        [referral_created(early, REFERRED), referral_created(late, REFERRED)]
    )
    await service.on_referral_reassigned([reassigned(late, 2, "liaison-12", REFERRED)])
    await service.on_referral_reassigned([reassigned(late, 2, "liaison-12", REFERRED)])
    assert {d["liaison_id"] for d in repository.follow_ups.values()} == {"liaison-12"}
    moved = repository.of_type(FollowUpReassignedV1)
    assert len({e.follow_up_id for e in moved}) == len(moved) == 6  # each follow-up moved once
    assert {(e.from_liaison_id, e.liaison_id) for e in moved} == {("liaison-11", "liaison-12")}
    assert len(repository.of_type(FollowUpScheduledV1)) == 6  # scheduled once, never again
    clock.advance(timedelta(days=7))
    await service.emit_due()
    assert [e.liaison_id for e in repository.of_type(FollowUpDueV1)] == ["liaison-12"] * 2
    assert len(await service.list_for(OTHER, State.DUE, 10)) == 2
    assert await service.list_for(LIAISON, None, 10) == []


async def test_lists_are_selected_by_state_as_the_clock_moves(
    service: FollowUpService, clock: AdjustableClock
) -> None:
    await service.on_referral_created([referral_created(uuid.uuid4(), REFERRED)])

    async def listed(state: State | None) -> list[int]:
        return [
            (r.document["due_at"] - REFERRED).days
            for r in await service.list_for(LIAISON, state, 9)
        ]

    assert await listed(None) == [7, 30, 90]
    assert await listed(State.SCHEDULED) == [7, 30, 90]
    clock.advance(timedelta(days=31))
    assert await listed(State.DUE) == [30]
    assert await listed(State.OVERDUE) == [7]
    assert await listed(State.SCHEDULED) == [90]
    assert await listed(State.CANCELLED) == []


SUPERVISOR = Principal("supervisor-09", frozenset({Role.SUPERVISOR}), "cmhc-09")


async def test_who_lists_which_follow_ups(service: FollowUpService, clock: AdjustableClock) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await service.on_referral_created(
        [referral_created(mine, REFERRED), referral_created(theirs, REFERRED, "liaison-12")]
    )
    clock.advance(timedelta(days=8))

    def referrals(rows: list[Any]) -> set[str]:
        return {r.document["referral_id"] for r in rows}

    # A supervisor sees the CMHC's follow-ups, or one liaison's; another CMHC's supervisor none.
    assert referrals(await service.list_for(SUPERVISOR, State.DUE, 10)) == {str(mine), str(theirs)}
    one = await service.list_for(SUPERVISOR, None, 10, liaison_id="liaison-12")
    assert referrals(one) == {str(theirs)}
    elsewhere = Principal("supervisor-01", frozenset({Role.SUPERVISOR}), "cmhc-01")
    assert await service.list_for(elsewhere, None, 10) == []
    # A liaison sees their own only, and cannot ask for a colleague's.
    assert referrals(await service.list_for(LIAISON, None, 10)) == {str(mine)}
    with pytest.raises(NotAllowed):
        await service.list_for(LIAISON, None, 10, liaison_id="liaison-12")
    assert await service.list_for(LIAISON, None, 10, referral_id=str(theirs)) == []
    analyst = Principal("dmh-analyst", frozenset({Role.METRICS_CONSUMER}), None)
    with pytest.raises(NotAllowed):
        await service.list_for(analyst, None, 10)


async def test_a_referrals_follow_ups_are_listed_in_every_state(
    service: FollowUpService, clock: AdjustableClock
) -> None:
    referral = uuid.uuid4()
    await service.on_referral_created([referral_created(referral, REFERRED)])
    clock.advance(timedelta(days=8))
    [due] = await service.list_for(LIAISON, State.DUE, 10)
    await service.record_outcome(due.document["_id"], FollowUpOutcome.REACHED, LIAISON)
    rows = await service.list_for(LIAISON, None, 10, referral_id=str(referral))
    assert [r.state for r in rows] == [State.COMPLETED, State.SCHEDULED, State.SCHEDULED]
    assert [r.state for r in await service.list_for(LIAISON, None, 10)] == [State.SCHEDULED] * 2


async def test_the_overview_counts_due_and_overdue_per_liaison(
    service: FollowUpService, clock: AdjustableClock
) -> None:
    await service.on_referral_created(
        [
            referral_created(uuid.uuid4(), REFERRED),
            referral_created(uuid.uuid4(), REFERRED),
            referral_created(uuid.uuid4(), REFERRED, "liaison-12"),
        ]
    )
    clock.advance(timedelta(days=31))  # day-7 checks overdue, day-30 checks due
    team = await service.overview(SUPERVISOR, 100, [])
    assert dict(team["overdue"]) == {"liaison-11": 2, "liaison-12": 1}
    assert dict(team["due"]) == {"liaison-11": 2, "liaison-12": 1}
    named = await service.overview(SUPERVISOR, 100, ["liaison-11", "liaison-12", "liaison-40"])
    assert dict(named["overdue"]) == {"liaison-11": 2, "liaison-12": 1}
    assert dict((await service.overview(LIAISON, 100, []))["overdue"]) == {"liaison-11": 2}
    with pytest.raises(NotAllowed):
        await service.overview(LIAISON, 100, ["liaison-12"])
    capped = await service.overview(SUPERVISOR, 1, ["liaison-11", "liaison-12"])
    assert dict(capped["overdue"]) == {"liaison-11": 1, "liaison-12": 1}  # up to 1 each
