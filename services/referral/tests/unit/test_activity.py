"""Consultations and barriers with in-memory fakes: the rules, idempotent records, scopes, audit."""

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from cmhl_contracts import BarrierRecordedV1, ConsultationRecordedV1, IntegrationEvent
from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.application.activity import (
    ActivityQuery,
    ActivityService,
    RecordBarrier,
    RecordConsultation,
)
from cmhl_referral.application.service import Actor, NotAllowed, NotVisible
from cmhl_referral.domain.activity import (
    Barrier,
    Consultation,
    IdempotencyKeyReused,
    InvalidActivity,
    check_link,
    check_occurred_on,
)
from cmhl_referral.domain.referral import Assignment, Person, Referral
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock

CHICAGO = ZoneInfo("America/Chicago")
# 9 pm in Missouri on Sept 29 is already Sept 30 in UTC.
NOW = datetime(2018, 9, 30, 2, tzinfo=UTC)
TODAY = date(2018, 9, 29)


def actor(subject: str, *roles: Role, cmhc: str | None = "cmhc-03") -> Actor:
    return Actor(Principal(subject, frozenset(roles), cmhc), None, "10.0.0.1")


LIAISON = actor("liaison-05", Role.LIAISON)
OTHER_LIAISON = actor("liaison-06", Role.LIAISON)
SUPERVISOR = actor("sup-03", Role.SUPERVISOR)
OTHER_SUPERVISOR = actor("sup-04", Role.SUPERVISOR, cmhc="cmhc-04")
ADMIN = actor("admin-1", Role.PROGRAM_ADMIN, cmhc=None)
METRICS = actor("dmh-1", Role.METRICS_CONSUMER, cmhc=None)


def referral(liaison: str = "liaison-05") -> Referral:
    return Referral(
        referral_id=uuid.uuid4(),
        agency_id="jc-pd",
        agency_reference=None,
        source=ReferralSource.MUNICIPAL_POLICE,
        court_type=None,
        officer_reference=None,
        county_fips="29051",
        primary_need=PresentingNeed.BEHAVIORAL_NEEDS,
        other_needs=[],
        person_location=PersonLocation.COMMUNITY,
        person=Person("Mia", "Vale", date(2001, 2, 3)),
        person_id="p-mia",
        narrative=None,
        consents=[],
        assignment=Assignment(liaison, "cmhc-03"),
        referred_at=NOW,
        received_at=NOW,
        repeat_involvement=False,
    )


class InMemoryReferrals:
    """The referral service's visibility rule, in little: the assigned liaison only."""

    def __init__(self, *referrals: Referral) -> None:
        self.referrals = {r.referral_id: r for r in referrals}
        self.checked: list[tuple[str, str, str]] = []

    async def visible_for(self, referral_id: uuid.UUID, actor: Actor, action: str) -> Referral:
        found = self.referrals.get(referral_id)
        if found is None or found.assignment.liaison_id != actor.name:
            self.checked.append((actor.name, action, "denied"))
            raise NotVisible
        return found

    async def record_access(
        self, actor: Actor, action: str, referral: Referral, outcome: str
    ) -> None:
        self.checked.append((actor.name, action, outcome))


class InMemoryActivityRepository:
    def __init__(self) -> None:
        self.consultations: dict[uuid.UUID, Consultation] = {}
        self.barriers: dict[uuid.UUID, Barrier] = {}
        self.events: list[IntegrationEvent] = []

    async def add_consultation(self, c: Consultation, events: list[IntegrationEvent]) -> bool:
        if c.consultation_id in self.consultations:
            return False
        self.consultations[c.consultation_id] = c
        self.events.extend(events)
        return True

    async def get_consultation(self, consultation_id: uuid.UUID) -> Consultation | None:
        return self.consultations.get(consultation_id)

    async def find_consultations(self, query: ActivityQuery) -> list[Consultation]:
        return [c for c in self.consultations.values() if _matches(c, query)][: query.limit]

    async def add_barrier(self, b: Barrier, events: list[IntegrationEvent]) -> bool:
        if b.barrier_id in self.barriers:
            return False
        self.barriers[b.barrier_id] = b
        self.events.extend(events)
        return True

    async def get_barrier(self, barrier_id: uuid.UUID) -> Barrier | None:
        return self.barriers.get(barrier_id)

    async def find_barriers(self, query: ActivityQuery) -> list[Barrier]:
        return [b for b in self.barriers.values() if _matches(b, query)][: query.limit]


def _matches(record: Consultation | Barrier, query: ActivityQuery) -> bool:
    return (
        query.recorded_by in (None, record.recorded_by)
        and query.cmhc_id in (None, record.cmhc_id)
        and query.county_fips in (None, record.county_fips)
        and query.referral_id in (None, record.referral_id)
    )


Parts = tuple[ActivityService, InMemoryActivityRepository, InMemoryAuditLog, Referral]


@pytest.fixture
def parts() -> Parts:
    mine = referral()
    repository, audit = InMemoryActivityRepository(), InMemoryAuditLog()
    service = ActivityService(
        repository, InMemoryReferrals(mine), audit, AdjustableClock(NOW), CHICAGO, lambda: None
    )
    return service, repository, audit, mine


def consultation(**overrides: object) -> RecordConsultation:
    fields: dict[str, object] = {
        "county_fips": "29019",
        "occurred_on": TODAY,
        "asked_by": ReferralSource.COURT,
        "topic": ConsultationTopic.DETENTION_PROCESS,
        "referral_id": None,
        "idempotency_key": None,
        "correlation_id": "corr-1",
    } | overrides
    return RecordConsultation(**fields)  # type: ignore[arg-type]


def barrier(**overrides: object) -> RecordBarrier:
    fields: dict[str, object] = {
        "kind": BarrierKind.NO_BED,
        "occurred_on": TODAY,
        "referral_id": None,
        "county_fips": "29019",
        "idempotency_key": None,
        "correlation_id": "corr-1",
    } | overrides
    return RecordBarrier(**fields)  # type: ignore[arg-type]


def test_the_day_is_the_programs_never_in_the_future_nor_past_the_late_entry_days() -> None:
    check_occurred_on(TODAY, TODAY)
    with pytest.raises(InvalidActivity, match="occurred_on must not be in the future"):
        check_occurred_on(date(2018, 9, 30), TODAY)
    check_occurred_on(date(2018, 7, 31), TODAY)  # 60 days before
    with pytest.raises(InvalidActivity, match="within the last 60 days"):
        check_occurred_on(date(2018, 7, 30), TODAY)


def test_a_barrier_belongs_to_a_referral_or_a_county_not_both_nor_neither() -> None:
    check_link(uuid.uuid4(), None)
    check_link(None, "29019")
    with pytest.raises(InvalidActivity, match="not both"):
        check_link(uuid.uuid4(), "29019")
    with pytest.raises(InvalidActivity, match="needs one of them"):
        check_link(None, None)


async def test_tomorrow_in_utc_is_today_in_missouri(parts: Parts) -> None:
    service, repository, _, _ = parts
    stored, created = await service.record_consultation(consultation(), LIAISON)
    assert created
    assert stored.occurred_on == TODAY
    with pytest.raises(InvalidActivity, match="future"):
        await service.record_consultation(consultation(occurred_on=date(2018, 9, 30)), LIAISON)
    assert len(repository.consultations) == 1


async def test_a_retry_with_the_same_key_stores_one_record_and_one_event(parts: Parts) -> None:
    service, repository, _, _ = parts
    first, created = await service.record_consultation(consultation(idempotency_key="k-1"), LIAISON)
    again, again_created = await service.record_consultation(
        consultation(idempotency_key="k-1"), LIAISON
    )
    assert created
    assert not again_created
    assert again == first
    assert len(repository.consultations) == 1
    [event] = repository.events
    assert isinstance(event, ConsultationRecordedV1)
    assert event.consultation_id == first.consultation_id
    assert event.question_topic is ConsultationTopic.DETENTION_PROCESS
    # The same key for something else is refused, not silently answered with the first record.
    with pytest.raises(IdempotencyKeyReused):
        await service.record_consultation(
            consultation(idempotency_key="k-1", topic=ConsultationTopic.RESOURCES), LIAISON
        )
    # Another liaison's key of the same text is their own record.
    _, other_created = await service.record_consultation(
        consultation(idempotency_key="k-1"), OTHER_LIAISON
    )
    assert other_created
    assert len(repository.consultations) == 2


async def test_the_event_id_derives_from_the_record_so_a_replay_is_the_same_event(
    parts: Parts,
) -> None:
    service, repository, _, _ = parts
    await service.record_barrier(barrier(idempotency_key="b-1"), LIAISON)
    stored = next(iter(repository.barriers.values()))
    again = InMemoryActivityRepository()
    replayed = ActivityService(
        again, InMemoryReferrals(), InMemoryAuditLog(), AdjustableClock(NOW), CHICAGO, lambda: None
    )
    await replayed.record_barrier(barrier(idempotency_key="b-1"), LIAISON)
    assert again.barriers.keys() == repository.barriers.keys() == {stored.barrier_id}
    assert again.events[0].event_id == repository.events[0].event_id


async def test_a_referrals_barrier_takes_its_county_and_is_checked_and_audited(
    parts: Parts,
) -> None:
    service, repository, audit, mine = parts
    stored, _ = await service.record_barrier(
        barrier(county_fips=None, referral_id=mine.referral_id, kind=BarrierKind.INSURANCE),
        LIAISON,
    )
    assert stored.county_fips == mine.county_fips == "29051"
    [event] = repository.events
    assert isinstance(event, BarrierRecordedV1)
    assert event.referral_id == mine.referral_id
    assert event.county_fips == "29051"
    assert "person" not in event.model_dump_json()  # the pseudonym stays in the service
    with pytest.raises(NotVisible):
        await service.record_barrier(
            barrier(county_fips=None, referral_id=mine.referral_id), OTHER_LIAISON
        )
    with pytest.raises(InvalidActivity, match="not both"):
        await service.record_barrier(barrier(referral_id=mine.referral_id), LIAISON)
    assert len(repository.barriers) == 1

    # Listing the referral's barriers is checked on the referral, and each one is audited.
    listed = await service.barriers(ActivityQuery(referral_id=mine.referral_id), LIAISON)
    assert [b.barrier_id for b in listed] == [stored.barrier_id]
    assert [(e.action, e.person_ids, e.outcome) for e in audit.entries] == [
        ("list_barriers", ("p-mia",), "allowed")
    ]
    with pytest.raises(NotVisible):
        await service.barriers(ActivityQuery(referral_id=mine.referral_id), OTHER_LIAISON)


async def test_a_consultation_about_a_referral_must_name_its_county(parts: Parts) -> None:
    service, _, _, mine = parts
    with pytest.raises(InvalidActivity, match="referral's county"):
        await service.record_consultation(consultation(referral_id=mine.referral_id), LIAISON)
    stored, _ = await service.record_consultation(
        consultation(referral_id=mine.referral_id, county_fips="29051"), LIAISON
    )
    assert stored.person_id == "p-mia"


async def test_lists_are_scoped_to_own_cmhc_or_all(parts: Parts) -> None:
    service, _, audit, _ = parts
    await service.record_consultation(consultation(), LIAISON)
    await service.record_consultation(consultation(), OTHER_LIAISON)
    await service.record_consultation(consultation(), OTHER_SUPERVISOR)

    async def seen(who: Actor) -> list[str]:
        return sorted(c.recorded_by for c in await service.consultations(ActivityQuery(), who))

    assert await seen(LIAISON) == ["liaison-05"]
    assert await seen(SUPERVISOR) == ["liaison-05", "liaison-06"]
    assert await seen(OTHER_SUPERVISOR) == ["sup-04"]
    assert await seen(ADMIN) == ["liaison-05", "liaison-06", "sup-04"]
    with pytest.raises(NotAllowed):
        await seen(METRICS)
    # A caller's filters never widen the scope.
    widened = replace(ActivityQuery(), recorded_by="liaison-06")
    assert [c.recorded_by for c in await service.consultations(widened, LIAISON)] == ["liaison-05"]
    assert audit.entries == []  # none of these is tied to a person


async def test_only_liaisons_and_supervisors_record(parts: Parts) -> None:
    service, repository, _, _ = parts
    for who in (ADMIN, METRICS):
        with pytest.raises(NotAllowed):
            await service.record_consultation(consultation(), who)
        with pytest.raises(NotAllowed):
            await service.record_barrier(barrier(), who)
    await service.record_barrier(barrier(), SUPERVISOR)
    assert len(repository.barriers) == 1
    assert not repository.consultations
