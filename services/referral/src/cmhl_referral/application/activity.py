"""Consultation and barrier use cases: record (idempotently, with the event in the same write)
and list, scoped to what the caller may see and audited where a record is tied to a person."""

import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from cmhl_contracts import BarrierRecordedV1, ConsultationRecordedV1, IntegrationEvent
from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.vocabulary import ReferralSource
from cmhl_referral.application.ports import EventsWritten
from cmhl_referral.application.service import Actor, NotAllowed
from cmhl_referral.domain.activity import (
    Barrier,
    Consultation,
    IdempotencyKeyReused,
    InvalidActivity,
    Recorder,
    check_link,
    check_occurred_on,
    record_id_for,
)
from cmhl_referral.domain.referral import Referral
from cmhl_servicekit.audit import AuditEntry, AuditLog
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import Clock, to_millis

PRODUCER = "referral"


@dataclass(frozen=True)
class ActivityQuery:
    """Filters of a listing; the scope (recorder, CMHC or all) is set by the use case, never by
    the caller. `after` is the (occurred_on, id) of the last row seen."""

    recorded_by: str | None = None
    cmhc_id: str | None = None
    county_fips: str | None = None
    referral_id: uuid.UUID | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None
    after: tuple[date, str] | None = None
    limit: int = 50


class ReferralLookup(Protocol):
    """The referral service's own check of who may see a referral (ReferralService)."""

    async def visible_for(self, referral_id: uuid.UUID, actor: Actor, action: str) -> Referral:
        """The referral if the actor may see it; NotVisible (the refusal audited) if not."""

    async def record_access(
        self, actor: Actor, action: str, referral: Referral, outcome: str
    ) -> None: ...


class ActivityRepository(Protocol):
    async def add_consultation(
        self, consultation: Consultation, events: list[IntegrationEvent]
    ) -> bool:
        """Store with its event in one write; False if the id exists."""

    async def get_consultation(self, consultation_id: uuid.UUID) -> Consultation | None: ...

    async def find_consultations(self, query: ActivityQuery) -> list[Consultation]:
        """Newest `occurred_on` first, then by id."""

    async def add_barrier(self, barrier: Barrier, events: list[IntegrationEvent]) -> bool: ...

    async def get_barrier(self, barrier_id: uuid.UUID) -> Barrier | None: ...

    async def find_barriers(self, query: ActivityQuery) -> list[Barrier]: ...


@dataclass(frozen=True)
class RecordConsultation:
    county_fips: str
    occurred_on: date
    asked_by: ReferralSource
    topic: ConsultationTopic
    referral_id: uuid.UUID | None
    idempotency_key: str | None
    correlation_id: str


@dataclass(frozen=True)
class RecordBarrier:
    kind: BarrierKind
    occurred_on: date
    referral_id: uuid.UUID | None
    county_fips: str | None
    idempotency_key: str | None
    correlation_id: str


Record = TypeVar("Record", Consultation, Barrier)


class ActivityService:
    def __init__(
        self,
        repository: ActivityRepository,
        referrals: ReferralLookup,
        audit: AuditLog,
        clock: Clock,
        zone: ZoneInfo,
        events_written: EventsWritten,
    ) -> None:
        self._repository = repository
        self._referrals = referrals
        self._audit = audit
        self._clock = clock
        self._zone = zone
        self._events_written = events_written

    def today(self) -> date:
        return self._clock.now().astimezone(self._zone).date()

    async def record_consultation(
        self, command: RecordConsultation, actor: Actor
    ) -> tuple[Consultation, bool]:
        """Returns the consultation and whether it is new: the same Idempotency-Key again
        returns the stored one and stores nothing."""
        recorder = _recorder(actor)
        check_occurred_on(command.occurred_on, self.today())
        person_id = None
        if command.referral_id is not None:
            referral = await self._tied(command.referral_id, actor, "record_consultation")
            if referral.county_fips != command.county_fips:
                raise InvalidActivity(
                    "county_fips must be the referral's county when a referral_id is given"
                )
            person_id = referral.person_id
        consultation = Consultation(
            consultation_id=_record_id("consultation", recorder, command.idempotency_key),
            county_fips=command.county_fips,
            asked_by=command.asked_by,
            topic=command.topic,
            referral_id=command.referral_id,
            person_id=person_id,
            occurred_on=command.occurred_on,
            recorded_by=recorder.staff_id,
            cmhc_id=recorder.cmhc_id,
            recorded_at=to_millis(self._clock.now()),
        )
        event = consultation_recorded(consultation, command.correlation_id)
        if await self._repository.add_consultation(consultation, [event]):
            self._events_written()
            return consultation, True
        stored = await self._repository.get_consultation(consultation.consultation_id)
        return _retried(consultation, stored), False

    async def record_barrier(self, command: RecordBarrier, actor: Actor) -> tuple[Barrier, bool]:
        recorder = _recorder(actor)
        check_link(command.referral_id, command.county_fips)
        check_occurred_on(command.occurred_on, self.today())
        person_id = None
        county = command.county_fips
        if command.referral_id is not None:
            referral = await self._tied(command.referral_id, actor, "record_barrier")
            county, person_id = referral.county_fips, referral.person_id
        assert county is not None
        barrier = Barrier(
            barrier_id=_record_id("barrier", recorder, command.idempotency_key),
            kind=command.kind,
            county_fips=county,
            referral_id=command.referral_id,
            person_id=person_id,
            occurred_on=command.occurred_on,
            recorded_by=recorder.staff_id,
            cmhc_id=recorder.cmhc_id,
            recorded_at=to_millis(self._clock.now()),
        )
        event = barrier_recorded(barrier, command.correlation_id)
        if await self._repository.add_barrier(barrier, [event]):
            self._events_written()
            return barrier, True
        stored = await self._repository.get_barrier(barrier.barrier_id)
        return _retried(barrier, stored), False

    async def consultations(self, query: ActivityQuery, actor: Actor) -> list[Consultation]:
        """Yours (liaison), your CMHC's (supervisor) or all (program admin); those tied to a
        referral are audited as reads of the person's record."""
        found = await self._repository.find_consultations(_scoped(query, actor))
        await self._audit_reads(actor, "list_consultations", "consultation", found)
        return found

    async def barriers(self, query: ActivityQuery, actor: Actor) -> list[Barrier]:
        """A referral's barriers (whoever may see the referral sees all of them; the read is
        audited on the referral), or a county's within the caller's scope."""
        if query.referral_id is not None:
            await self._tied(query.referral_id, actor, "list_barriers")
            scoped = replace(query, recorded_by=None, cmhc_id=None, county_fips=None)
        else:
            scoped = _scoped(query, actor)
        found = await self._repository.find_barriers(scoped)
        await self._audit_reads(actor, "list_barriers", "barrier", found)
        return found

    async def _tied(self, referral_id: uuid.UUID, actor: Actor, action: str) -> Referral:
        """The referral a record is tied to: checked like a read, and the access audited on the
        referral under `action`, allowed or denied, like the referral's own reads and writes."""
        referral = await self._referrals.visible_for(referral_id, actor, action)
        await self._referrals.record_access(actor, action, referral, "allowed")
        return referral

    async def _audit_reads(
        self,
        actor: Actor,
        action: str,
        kind: str,
        records: list[Consultation] | list[Barrier],
    ) -> None:
        now = self._clock.now()
        entries = [
            AuditEntry(
                actor=actor.name,
                actor_roles=actor.roles,
                action=action,
                record=f"{kind}/{_id_of(r)}",
                person_ids=(r.person_id,),
                at=now,
                outcome="allowed",
                source_address=actor.source_address,
                referral_id=str(r.referral_id),
            )
            for r in records
            if r.person_id is not None
        ]
        await self._audit.record(entries)


def _id_of(record: Consultation | Barrier) -> uuid.UUID:
    return record.consultation_id if isinstance(record, Consultation) else record.barrier_id


def _recorder(actor: Actor) -> Recorder:
    principal = actor.principal
    if principal is None or not principal.roles & {Role.LIAISON, Role.SUPERVISOR}:
        raise NotAllowed("only liaisons and supervisors record consultations and barriers")
    return Recorder(principal.subject, principal.cmhc_id)


def _record_id(kind: str, recorder: Recorder, idempotency_key: str | None) -> uuid.UUID:
    if idempotency_key is None:
        return uuid.uuid4()
    return record_id_for(kind, recorder.staff_id, idempotency_key)


def _retried(submitted: Record, stored: Record | None) -> Record:
    """A retry hands back what was stored; the same key for something else is refused."""
    if stored is None:  # pragma: no cover - an insert refused for an id that is not there
        raise IdempotencyKeyReused("the record could not be stored; retry")
    if not submitted.same_request(stored):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used before for a different record; use a new key"
        )
    return stored


def _scoped(query: ActivityQuery, actor: Actor) -> ActivityQuery:
    principal = actor.principal
    if principal is None:
        raise NotAllowed("agency systems cannot list consultations or barriers")
    if principal.has(Role.PROGRAM_ADMIN):
        return replace(query, recorded_by=None, cmhc_id=None)
    if principal.has(Role.SUPERVISOR) and principal.cmhc_id:
        return replace(query, recorded_by=None, cmhc_id=principal.cmhc_id)
    if principal.has(Role.LIAISON):
        return replace(query, recorded_by=principal.subject, cmhc_id=None)
    raise NotAllowed("your role sees no consultations or barriers")


def consultation_recorded(
    consultation: Consultation, correlation_id: str
) -> ConsultationRecordedV1:
    return ConsultationRecordedV1.create(
        about=(str(consultation.consultation_id),),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=consultation.recorded_at,
        consultation_id=consultation.consultation_id,
        county_fips=consultation.county_fips,
        asked_by=consultation.asked_by,
        question_topic=consultation.topic,
        referral_id=consultation.referral_id,
        occurred_on=consultation.occurred_on,
        recorded_by=consultation.recorded_by,
        cmhc_id=consultation.cmhc_id,
        recorded_at=consultation.recorded_at,
    )


def barrier_recorded(barrier: Barrier, correlation_id: str) -> BarrierRecordedV1:
    return BarrierRecordedV1.create(
        about=(str(barrier.barrier_id),),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=barrier.recorded_at,
        barrier_id=barrier.barrier_id,
        kind=barrier.kind,
        county_fips=barrier.county_fips,
        referral_id=barrier.referral_id,
        occurred_on=barrier.occurred_on,
        recorded_by=barrier.recorded_by,
        cmhc_id=barrier.cmhc_id,
        recorded_at=barrier.recorded_at,
    )
