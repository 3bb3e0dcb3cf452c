"""Training use cases: record a completed session, which publishes training-completed."""

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from cmhl_contracts import TrainingCompletedV1
from cmhl_servicekit.clock import Clock
from cmhl_servicekit.crypto import pseudonym
from cmhl_training.domain.catalog import COURSES_BY_ID
from cmhl_training.domain.session import Attendee, InvalidSession, check_session

PRODUCER = "cmhl-training"


class SessionRepository(Protocol):
    async def add(self, document: dict[str, Any], event: TrainingCompletedV1) -> bool: ...

    async def get(self, session_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class CompleteSession:
    session_id: uuid.UUID
    course_id: str
    held_on: date
    county_fips: str
    host_agency_id: str
    capacity: int
    roster: list[Attendee]
    trainer_liaison_id: str
    correlation_id: str


class TrainingService:
    def __init__(
        self,
        repository: SessionRepository,
        clock: Clock,
        pseudonym_key: bytes,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._key = pseudonym_key

    def officer_id(self, attendee: Attendee) -> str:
        return pseudonym(self._key, attendee.agency_id, attendee.officer_ref)

    async def complete(self, command: CompleteSession) -> tuple[dict[str, Any], bool]:
        """Returns the stored session and whether it is new (a retry returns the first one)."""
        course = COURSES_BY_ID.get(command.course_id)
        if course is None:
            raise InvalidSession(f"unknown course {command.course_id!r}")
        check_session(command.held_on, self._clock.now().date(), command.roster, command.capacity)
        existing = await self._repository.get(str(command.session_id))
        if existing is not None:
            return existing, False
        officer_ids = [self.officer_id(a) for a in command.roster]
        event = TrainingCompletedV1.create(
            about=(str(command.session_id), "1"),
            producer=PRODUCER,
            correlation_id=command.correlation_id,
            occurred_at=self._clock.now(),
            session_id=command.session_id,
            revision=1,
            course_id=course.course_id,
            county_fips=command.county_fips,
            host_agency_id=command.host_agency_id,
            trainer_liaison_id=command.trainer_liaison_id,
            held_on=command.held_on,
            credit_hours=course.credit_hours,
            officer_ids=officer_ids,
            officer_agency_ids=[a.agency_id for a in command.roster],
        )
        document = {
            "_id": str(command.session_id),
            "course_id": course.course_id,
            "held_on": command.held_on.isoformat(),
            "county_fips": command.county_fips,
            "host_agency_id": command.host_agency_id,
            "trainer_liaison_id": command.trainer_liaison_id,
            "capacity": command.capacity,
            "revision": 1,
            "status": "completed",
            "credit_hours": course.credit_hours,
            # Officer references stay here for certificates; events carry pseudonyms only.
            "roster": [
                {"agency_id": a.agency_id, "officer_ref": a.officer_ref, "officer_id": oid}
                for a, oid in zip(command.roster, officer_ids, strict=True)
            ],
        }
        if not await self._repository.add(document, event):
            stored = await self._repository.get(str(command.session_id))
            assert stored is not None
            return stored, False
        return document, True
