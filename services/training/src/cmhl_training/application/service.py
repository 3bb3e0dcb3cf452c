"""Training use cases: the course catalog, sessions and their attendance (which publishes
training-completed and its corrections), officers' POST hours and certificates, all audited."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from cmhl_contracts import IntegrationEvent, TrainingCompletedV1
from cmhl_servicekit.audit import AuditEntry
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import Clock
from cmhl_servicekit.crypto import pseudonym
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict
from cmhl_training.application.ports import (
    SESSION_RECORD,
    AuditTrail,
    ConcurrentChange,
    CourseCatalog,
    OfficerLedger,
    SessionRepository,
)
from cmhl_training.domain.catalog import POST_COURSES, Course
from cmhl_training.domain.hours import CompletedTraining, YearHours, post_hours
from cmhl_training.domain.session import (
    Officer,
    Rule,
    Session,
    SessionConflict,
    SessionStatus,
)

PRODUCER = "cmhl-training"
LIST_LIMIT = 200


class NotFound(LookupError):
    """No such session or course, or not one the actor may see (the answer does not tell)."""


class NotAllowed(PermissionError):
    """The actor may see it but not do this."""


@dataclass(frozen=True)
class Actor:
    """A person (token principal) or an agency system (its client's token), and where the
    request came from."""

    principal: Principal | None
    agency_id: str | None
    source_address: str | None

    @property
    def name(self) -> str:
        return self.principal.subject if self.principal else f"agency:{self.agency_id}"

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted(self.principal.roles)) if self.principal else ("agency",)

    def has(self, role: Role) -> bool:
        return self.principal is not None and self.principal.has(role)


@dataclass(frozen=True)
class CreateSession:
    session_id: str
    course_id: str
    held_on: date
    county_fips: str
    host_agency_id: str
    capacity: int
    roster: list[Officer]
    completed: bool
    """True records a session already held, the roster being who attended."""
    correlation_id: str


@dataclass(frozen=True)
class ImportSession:
    """A past session with who attended, as the earlier system recorded it."""

    system: str
    record_id: str
    course_id: str
    held_on: date
    county_fips: str
    host_agency_id: str
    trainer_liaison_id: str
    roster: list[Officer]
    correlation_id: str


IMPORT_NAMESPACE = uuid.UUID("0b6e4d2a-9c1f-4a8e-b7d3-5f2e8a1c9d47")
"""Fixed: an imported session's id derives from its system and its id there."""


@dataclass(frozen=True)
class OfficerRecord:
    officer_id: str
    trainings: list[CompletedTraining]
    hours: list[YearHours]


@dataclass(frozen=True)
class Certificate:
    session: Session
    officer: Officer
    officer_id: str


class TrainingService:
    def __init__(
        self,
        *,
        sessions: SessionRepository,
        courses: CourseCatalog,
        ledger: OfficerLedger,
        audit: AuditTrail,
        clock: Clock,
        pseudonym_key: bytes,
    ) -> None:
        self._sessions = sessions
        self._courses = courses
        self._ledger = ledger
        self._audit = audit
        self._clock = clock
        self._key = pseudonym_key

    def officer_person_id(self, officer: Officer) -> str:
        """Who the officer is across agencies: their POST license's pseudonym when known (the
        same keyed hash, in a namespace of its own), else their officer id."""
        if officer.post_license:
            return pseudonym(self._key, "mo-post-license", officer.post_license)
        return self.officer_id(officer)

    def officer_id(self, officer: Officer) -> str:
        """The pseudonym events and reports carry; stable for the same agency and officer id
        whatever their case and spacing."""
        return pseudonym(self._key, officer.agency_id, officer.officer_ref)

    # The catalog ---------------------------------------------------------------------------

    async def seed_catalog(self) -> None:
        await self._courses.seed(POST_COURSES)

    async def list_courses(self, include_retired: bool) -> list[Course]:
        courses = await self._courses.all()
        return [c for c in courses if include_retired or not c.retired]

    async def add_course(self, course: Course, actor: Actor) -> Course:
        self._require(actor, Role.SUPERVISOR, "only supervisors manage the course catalog")
        if not await self._courses.add(course):
            raise SessionConflict(Rule.COURSE_EXISTS, f"course {course.course_id!r} exists")
        return course

    async def retire_course(self, course_id: str, actor: Actor) -> Course:
        self._require(actor, Role.SUPERVISOR, "only supervisors manage the course catalog")
        course = await self._courses.retire(course_id)
        if course is None:
            raise NotFound("course not found")
        return course

    # Sessions ------------------------------------------------------------------------------

    async def create(self, command: CreateSession, actor: Actor) -> tuple[Session, bool]:
        """A new session, scheduled or already held. A repeated session id returns the stored
        session unchanged, so a client's retry records nothing twice."""
        principal = self._require(actor, Role.LIAISON, "only liaisons record their sessions")
        existing = await self._sessions.get(command.session_id)
        if existing is not None:
            return await self._unchanged(existing, actor), False
        today = self._clock.now().date()
        session = Session.schedule(
            session_id=command.session_id,
            course=await self._courses.get(command.course_id),
            course_id=command.course_id,
            held_on=command.held_on,
            today=today,
            county_fips=command.county_fips,
            host_agency_id=command.host_agency_id,
            trainer_liaison_id=principal.subject,
            trainer_cmhc_id=principal.cmhc_id,
            capacity=command.capacity,
            registered=command.roster,
        )
        events: list[IntegrationEvent] = []
        if command.completed:
            session.complete(command.roster, today)
            events = await self._attendance_published(session, command.correlation_id)
        if not await self._sessions.add(session, events):
            stored = await self._sessions.get(command.session_id)
            if stored is None:  # pragma: no cover - an id taken and gone again
                raise ConcurrentChange
            return await self._unchanged(stored, actor), False
        await self._audit_change(actor, "session.create", session)
        return session, True

    async def import_session(self, command: ImportSession, actor: Actor) -> bool:
        """A session from the program's earlier records, held with its roster (a history
        import, by a program admin): True if stored now, False if imported before (its id
        derives from the earlier system and its record id). Published like any held session."""
        self._require(actor, Role.PROGRAM_ADMIN, "only program admins import records")
        session_id = str(uuid.uuid5(IMPORT_NAMESPACE, f"{command.system}\x1f{command.record_id}"))
        if await self._sessions.get(session_id) is not None:
            return False
        today = self._clock.now().date()
        session = Session.schedule(
            session_id=session_id,
            course=await self._courses.get(command.course_id),
            course_id=command.course_id,
            held_on=command.held_on,
            today=today,
            county_fips=command.county_fips,
            host_agency_id=command.host_agency_id,
            trainer_liaison_id=command.trainer_liaison_id,
            trainer_cmhc_id=None,
            capacity=max(len(command.roster), 1),
            registered=command.roster,
            imported=True,
        )
        session.complete(command.roster, today)
        events = await self._attendance_published(session, command.correlation_id)
        if not await self._sessions.add(session, events):
            return False  # the same record in a concurrent import: stored once, by the other
        await self._audit_change(actor, "session.import", session)
        return True

    async def replace_registrations(
        self, session_id: str, roster: list[Officer], actor: Actor
    ) -> Session:
        async def change(session: Session) -> list[IntegrationEvent]:
            session.replace_registrations(roster)
            return []

        session, _ = await self._change(session_id, actor, "session.registrations", change)
        return session

    async def complete(
        self, session_id: str, attended: list[Officer], actor: Actor, correlation_id: str
    ) -> tuple[Session, bool]:
        """Record attendance; walk-ins (officers not registered) are welcome. Publishes revision 1
        of training-completed; repeating the same completion changes nothing."""
        today = self._clock.now().date()

        async def change(session: Session) -> list[IntegrationEvent]:
            if not session.complete(attended, today):
                return []
            return await self._attendance_published(session, correlation_id)

        return await self._change(session_id, actor, "session.complete", change)

    async def correct_attendance(
        self, session_id: str, attended: list[Officer], actor: Actor, correlation_id: str
    ) -> tuple[Session, bool]:
        """Replace a completed session's attendance. Publishes the next revision, which reporting
        applies in place of the earlier one; the same officers again publish nothing."""

        async def change(session: Session) -> list[IntegrationEvent]:
            if not session.correct_attendance(attended):
                return []
            return await self._attendance_published(session, correlation_id)

        return await self._change(session_id, actor, "session.correct_attendance", change)

    async def get(self, session_id: str, actor: Actor) -> Session:
        """A session with its roster; the read is audited because the roster names officers."""
        session = await self._sessions.get(session_id)
        if session is None:
            raise NotFound("session not found")
        self._check_can_read(session, actor)
        await self._record(actor, "session.read", session, self._officer_ids(session), "allowed")
        return session

    async def list_sessions(self, actor: Actor) -> list[Session]:
        """Liaisons: the sessions they gave; supervisors: their CMHC's. Summaries only."""
        if actor.has(Role.SUPERVISOR) and actor.principal and actor.principal.cmhc_id:
            return await self._sessions.of_cmhc(actor.principal.cmhc_id, LIST_LIMIT)
        principal = self._require(actor, Role.LIAISON, "only liaisons and supervisors")
        return await self._sessions.of_trainer(principal.subject, LIST_LIMIT)

    # Officers' records ---------------------------------------------------------------------

    async def officer_record(self, officer_id: str, actor: Actor) -> OfficerRecord:
        """Supervisors read any officer's record by pseudonym."""
        if not actor.has(Role.SUPERVISOR):
            await self._audit_officer(actor, "officer.read", officer_id, "denied")
            raise NotAllowed("only supervisors read officers' training records")
        return await self._record_of(officer_id, actor)

    async def agency_officer_record(self, officer_ref: str, actor: Actor) -> OfficerRecord:
        """An agency reads its own officer's record by the id it issued; the pseudonym is derived
        from the agency the key belongs to, so no other agency's officer can be named."""
        assert actor.agency_id is not None
        officer_id = self.officer_id(Officer.of(actor.agency_id, officer_ref))
        return await self._record_of(officer_id, actor)

    async def certificate(self, session_id: str, officer_id: str, actor: Actor) -> Certificate:
        """A certificate of completion for one officer of a completed session, for staff who may
        read the session. Agencies come through `agency_certificate`."""
        return await self._certificate(session_id, officer_id, actor)

    async def agency_certificate(
        self, session_id: str, officer_ref: str, actor: Actor
    ) -> Certificate:
        """An agency's own officer's certificate: the pseudonym is derived from the key's agency,
        so a session without that agency's officer is simply not found."""
        assert actor.agency_id is not None
        return await self._certificate(
            session_id, self.officer_id(Officer.of(actor.agency_id, officer_ref)), actor
        )

    async def accounting(self, officer_id: str, actor: Actor) -> list[AuditEntry]:
        """Every recorded access to one officer's training records (privacy officers)."""
        self._require(actor, Role.PRIVACY_OFFICER, "only privacy officers read the accounting")
        # Officers are in the same audit log as patients, by a pseudonym of their own.
        return await self._audit.for_person(officer_id)

    # Internals -----------------------------------------------------------------------------

    async def _certificate(self, session_id: str, officer_id: str, actor: Actor) -> Certificate:
        session = await self._sessions.get(session_id)
        attendee = None
        if session is not None and session.status is SessionStatus.COMPLETED:
            attendee = next((o for o in session.attended if self.officer_id(o) == officer_id), None)
        staff_may_not = actor.principal is not None and (
            session is None or not self._can_read(session, actor)
        )
        if session is None or attendee is None or staff_may_not:
            await self._audit_officer(actor, "certificate.read", officer_id, "not_found")
            raise NotFound("no completed session of yours lists this officer")
        await self._record(actor, "certificate.read", session, (officer_id,), "allowed")
        return Certificate(session, attendee, officer_id)

    async def _record_of(self, officer_id: str, actor: Actor) -> OfficerRecord:
        trainings = []
        for session_id in sorted(set(await self._ledger.sessions_of(officer_id))):
            session = await self._sessions.get(session_id)
            if session is None or session.status is not SessionStatus.COMPLETED:
                continue
            if officer_id not in self._officer_ids(session, attended_only=True):
                continue  # corrected away after the ledger entry was written
            trainings.append(
                CompletedTraining(
                    session_id=session.session_id,
                    course_id=session.course_id,
                    course_title=session.course_title,
                    category=session.category,
                    credit_hours=session.credit_hours,
                    held_on=session.held_on,
                )
            )
        trainings.sort(key=lambda t: (t.held_on, t.session_id), reverse=True)
        await self._audit_officer(actor, "officer.read", officer_id, "allowed")
        return OfficerRecord(officer_id, trainings, post_hours(trainings))

    async def _change(
        self,
        session_id: str,
        actor: Actor,
        action: str,
        change: Callable[[Session], Awaitable[list[IntegrationEvent]]],
    ) -> tuple[Session, bool]:
        """Read, change and save one session; a concurrent writer makes it read again."""

        async def attempt() -> tuple[Session, bool] | Conflict:
            session = await self._sessions.get(session_id)
            if session is None:
                raise NotFound("session not found")
            self._check_can_read(session, actor)
            if not (actor.principal and actor.principal.subject == session.trainer_liaison_id):
                raise NotAllowed("only the liaison who gives a session changes it")
            before = (session.registered, session.attended, session.status, session.revision)
            events = await change(session)
            if (session.registered, session.attended, session.status, session.revision) == before:
                return await self._unchanged(session, actor), False
            try:
                await self._sessions.save(session, events)
            except ConcurrentChange:
                return CONFLICT
            await self._audit_change(actor, action, session)
            return session, True

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def _attendance_published(
        self, session: Session, correlation_id: str
    ) -> list[IntegrationEvent]:
        """The event for the session's current attendance. Its id derives from session and
        revision, so a retried write republishes the same id and consumers drop it. The ledger
        entries go first: if the session write then fails they point at a session that does not
        list the officer, and readers skip them."""
        officer_ids = [self.officer_id(o) for o in session.attended]
        person_ids = [self.officer_person_id(o) for o in session.attended]
        await self._ledger.register(session.session_id, officer_ids)
        return [
            TrainingCompletedV1.create(
                about=(session.session_id, str(session.revision)),
                producer=PRODUCER,
                correlation_id=correlation_id,
                occurred_at=self._clock.now(),
                session_id=session.session_id,
                revision=session.revision,
                course_id=session.course_id,
                county_fips=session.county_fips,
                host_agency_id=session.host_agency_id,
                trainer_liaison_id=session.trainer_liaison_id,
                held_on=session.held_on,
                credit_hours=session.credit_hours,
                officer_ids=officer_ids,
                officer_agency_ids=[o.agency_id for o in session.attended],
                officer_person_ids=person_ids,
            )
        ]

    def _officer_ids(self, session: Session, attended_only: bool = False) -> tuple[str, ...]:
        officers = session.attended if attended_only else [*session.registered, *session.attended]
        return tuple(dict.fromkeys(self.officer_id(o) for o in officers))

    def _can_read(self, session: Session, actor: Actor) -> bool:
        principal = actor.principal
        if principal is None:
            return False
        if principal.subject == session.trainer_liaison_id:
            return True
        return (
            principal.has(Role.SUPERVISOR)
            and principal.cmhc_id is not None
            and principal.cmhc_id == session.trainer_cmhc_id
        )

    async def _unchanged(self, session: Session, actor: Actor) -> Session:
        """A retry or a repeat changes nothing but still shows the session (and its officers):
        the same visibility rule and audit as a read."""
        self._check_can_read(session, actor)
        await self._record(actor, "session.read", session, self._officer_ids(session), "allowed")
        return session

    def _check_can_read(self, session: Session, actor: Actor) -> None:
        if not self._can_read(session, actor):
            raise NotFound("session not found")

    @staticmethod
    def _require(actor: Actor, role: Role, reason: str) -> Principal:
        if actor.principal is None or not actor.principal.has(role):
            raise NotAllowed(reason)
        return actor.principal

    async def _audit_change(self, actor: Actor, action: str, session: Session) -> None:
        await self._record(actor, action, session, self._officer_ids(session), "changed")

    async def _audit_officer(
        self, actor: Actor, action: str, officer_id: str, outcome: str
    ) -> None:
        await self._audit_access(actor, action, f"officer/{officer_id}", (officer_id,), outcome)

    async def _record(
        self,
        actor: Actor,
        action: str,
        session: Session,
        officer_ids: tuple[str, ...],
        outcome: str,
    ) -> None:
        record = f"{SESSION_RECORD}{session.session_id}"
        await self._audit_access(actor, action, record, officer_ids, outcome)

    async def _audit_access(
        self, actor: Actor, action: str, record: str, officer_ids: tuple[str, ...], outcome: str
    ) -> None:
        entry = AuditEntry(
            actor=actor.name,
            actor_roles=actor.roles,
            action=action,
            record=record,
            person_ids=officer_ids,
            at=self._clock.now(),
            outcome=outcome,
            source_address=actor.source_address,
        )
        await self._audit.record([entry])
