"""What the training use cases need from the outside world, named by role."""

from typing import Protocol

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit.audit import AuditLog, AuditReader
from cmhl_training.domain.catalog import Course
from cmhl_training.domain.session import Session


class ConcurrentChange(Exception):
    """The session changed between read and write; the caller reads it again."""


class SessionRepository(Protocol):
    async def add(self, session: Session, events: list[IntegrationEvent]) -> bool:
        """Store a new session with its pending events in one write; False if the id exists."""

    async def get(self, session_id: str) -> Session | None: ...

    async def save(self, session: Session, events: list[IntegrationEvent]) -> None:
        """Store a changed session and its new events in one write if nobody changed it since
        it was read (its version); raise ConcurrentChange otherwise."""

    async def of_trainer(self, liaison_id: str, limit: int) -> list[Session]:
        """The liaison's sessions, latest date first."""

    async def of_cmhc(self, cmhc_id: str, limit: int) -> list[Session]:
        """Sessions given by the CMHC's liaisons, latest date first."""


class CourseCatalog(Protocol):
    async def seed(self, courses: tuple[Course, ...]) -> None:
        """Add the courses that are missing; never changes a stored one (it may be retired)."""

    async def all(self) -> list[Course]: ...

    async def get(self, course_id: str) -> Course | None: ...

    async def add(self, course: Course) -> bool:
        """False if a course with this id exists (retired or not)."""

    async def retire(self, course_id: str) -> Course | None:
        """Mark retired (idempotent); None if there is no such course."""


class OfficerLedger(Protocol):
    """Which sessions list an officer. Entries are only ever added: a reader checks each named
    session's current attendance, so a corrected-away officer needs no delete."""

    async def register(self, session_id: str, officer_ids: list[str]) -> None: ...

    async def sessions_of(self, officer_id: str) -> list[str]: ...


# An audit entry's record for a training session: `training_session/<id>`.
SESSION_RECORD = "training_session/"


class AuditTrail(AuditLog, AuditReader, Protocol):
    """Servicekit's audit log, which this service also reads for an officer's accounting."""
