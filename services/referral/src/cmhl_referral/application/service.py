"""Referral use cases: create (liaison or agency) and read, with access control and audit."""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cmhl_contracts import FollowUpCompletedV1, IntegrationEvent, ReferralFeedbackV1
from cmhl_contracts.vocabulary import ContactPlace, FeedbackStatus, ReferralStatus
from cmhl_referral.application.commands import CreateReferral, ImportReferral
from cmhl_referral.application.events import (
    contact_attempted,
    imported_history,
    reassigned,
    referral_created,
    referral_feedback,
    status_changed,
)
from cmhl_referral.application.ports import (
    AuditTrail,
    CaseloadQuery,
    ConcurrentChange,
    EventsWritten,
    PersonRegistration,
    ReferralRepository,
)
from cmhl_referral.application.registry import Assignments, DefaultAssignments
from cmhl_referral.domain.consent import (
    Consent,
    ConsentScope,
    ConsentTerms,
    InvalidConsent,
    consent_covering,
    feedback_status,
)
from cmhl_referral.domain.lifecycle import IllegalTransition
from cmhl_referral.domain.progress import Progress, progress_in
from cmhl_referral.domain.referral import (
    Assignment,
    ImportSource,
    InvalidReferral,
    Referral,
    check_referred_at,
    is_repeat_involvement,
    referral_id_for,
)
from cmhl_referral.domain.registry import UNASSIGNED
from cmhl_servicekit.audit import AuditEntry
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import Clock, to_millis
from cmhl_servicekit.consuming import run_bounded
from cmhl_servicekit.crypto import pseudonym
from cmhl_servicekit.group_commit import GroupCommit
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict

IMPORT_NAMESPACE = uuid.UUID("5d0f7c3e-2b9a-4e61-8f4d-1c7a9b3e6d20")
"""Fixed: an imported record's referral id derives from its system and its id there."""


# People whose past referrals an import reads and writes side by side.
IMPORTS_IN_FLIGHT = 16


@dataclass(frozen=True)
class Rejected:
    """A record refused, with the rule it breaks (a 4xx over HTTP, a dead letter on Kafka)."""

    error: "InvalidReferral | IllegalTransition | InvalidConsent | ResubmissionNotVisible"

    def __str__(self) -> str:
        return str(self.error)


@dataclass(frozen=True)
class Created:
    referral: Referral
    created: bool
    """False when the same agency reference was submitted before: the existing one is returned."""


@dataclass(frozen=True)
class Actor:
    """Whoever asks: a person with a token, an agency system, or another of the program's
    services acting on an event."""

    principal: Principal | None
    agency_id: str | None
    source_address: str | None
    service: str | None = None

    @classmethod
    def of_service(cls, service: str) -> "Actor":
        return cls(None, None, None, service)

    @property
    def name(self) -> str:
        if self.principal is not None:
            return self.principal.subject
        if self.service is not None:
            return f"service:{self.service}"
        return f"agency:{self.agency_id}"

    @property
    def roles(self) -> tuple[str, ...]:
        if self.principal is not None:
            return tuple(sorted(self.principal.roles))
        return ("service",) if self.service is not None else ("agency_system",)


@dataclass(frozen=True)
class Overview:
    waiting_by_liaison: dict[str, int]
    newest_received_at: datetime | None


@dataclass(frozen=True)
class AgencyView:
    status: FeedbackStatus | None
    consent: Consent | None

    @property
    def said(self) -> tuple[FeedbackStatus | None, date | None]:
        """What the agency is told: the status and until when the consent lets it know."""
        return self.status, self.consent.terms.expires_on if self.consent else None


@dataclass(frozen=True)
class ProgressLine:
    agency_reference: str
    progress: Progress
    consent_expires_on: date


@dataclass(frozen=True)
class Feedback:
    referral: Referral
    status: FeedbackStatus | None
    """None while no consent covers the asking agency: the status is withheld."""
    consent: Consent | None


class NotVisible(Exception):
    """The referral does not exist or the actor may not see it: the same answer for both."""


class ResubmissionNotVisible(Exception):
    """The agency reference was submitted before, as a referral the actor may not see (409)."""

    def __str__(self) -> str:
        return (
            "this agency_reference was submitted before and the referral is not in your caseload;"
            " ask its liaison or supervisor, or check the agency and reference"
        )


class NotAllowed(Exception):
    """The actor's role does not allow the action (403); says which rule, never whose record."""


class ReferralService:
    def __init__(
        self,
        repository: ReferralRepository,
        audit: AuditTrail,
        clock: Clock,
        pseudonym_key: bytes,
        events_written: EventsWritten,
        zone: ZoneInfo,
        feedback_agencies: frozenset[str] = frozenset(),
        assignments: Assignments | None = None,
    ) -> None:
        # The registry's (application/registry.py); the default table when none is given.
        self._assignments = assignments or DefaultAssignments()
        self._zone = zone
        self._feedback_agencies = feedback_agencies
        self._repository = repository
        self._audit = audit
        self._clock = clock
        self._pseudonym_key = pseudonym_key
        self._events_written = events_written
        # Liaisons' submissions arriving together are created together (see `create`).
        self._live_creations = GroupCommit(self.create_many, span_name="referral.create")

    def person_id(self, command: CreateReferral) -> str:
        person = command.person
        return pseudonym(
            self._pseudonym_key,
            person.family_name,
            person.given_name,
            person.birth_date.isoformat(),
        )

    async def create(self, command: CreateReferral, actor: Actor) -> Created:
        """One referral, submitted live; raises the rule it breaks (InvalidReferral,
        InvalidConsent, ResubmissionNotVisible).

        Submissions that arrive while others are being written are created together, in one
        `create_many` (a group commit): under load a liaison's POST then shares its round trips
        with the others instead of queueing its own behind theirs."""
        outcome = await self._live_creations.submit((command, actor))
        if isinstance(outcome, Rejected):
            raise outcome.error
        return outcome

    async def create_many(
        self, submissions: Sequence[tuple[CreateReferral, Actor]]
    ) -> list[Created | Rejected]:
        """Live referrals (an agency's batch, a liaison's one), answered in order as creating
        them one after another would: Created (with created=False for an agency reference
        submitted before, the stored referral handed back as an audited read), or Rejected with
        the rule a submission breaks. (Which liaison a referral goes to may differ: the registry's
        round robin takes them person by person.)

        A batch costs one existence check, the people's ledgers read and claimed together (each
        person's first submission, then the second, ...), one write of its referrals with their
        events and one audit write, instead of some seven round trips per referral. A reference
        repeated within the batch is answered as the resubmission it is, of what its first copy
        stored."""
        now = self._clock.now()
        ids = [
            referral_id_for(command.agency_id, command.agency_reference)
            if command.agency_reference
            else uuid.uuid4()
            for command, _ in submissions
        ]
        referred = [to_millis(command.referred_at or now) for command, _ in submissions]
        # Only an id derived from an agency reference can name a referral stored before; a new
        # random one cannot, so a batch without references skips the read.
        referenced = {
            ids[i] for i, (command, _) in enumerate(submissions) if command.agency_reference
        }
        stored = {r.referral_id: r for r in await self._repository.get_many(list(referenced))}
        outcomes: list[Created | Rejected | None] = [None] * len(submissions)
        audit: list[AuditEntry] = []
        new: dict[uuid.UUID, int] = {}  # the batch's first submission of each new referral
        repeated: list[int] = []
        by_person: dict[str, list[int]] = {}
        for index, (command, actor) in enumerate(submissions):
            try:
                check_referred_at(referred[index], now)
                if ids[index] in new:
                    repeated.append(index)
                    continue
                if (existing := stored.get(ids[index])) is not None:
                    outcomes[index] = self._answer_stored(existing, command, actor, audit)
                    continue
                if command.consent is not None:
                    command.consent.check(self.today())
            except (InvalidReferral, InvalidConsent) as exc:
                outcomes[index] = Rejected(exc)
                continue
            new[ids[index]] = index
            by_person.setdefault(self.person_id(command), []).append(index)
        stored_earlier = await self._register_in_ledgers(
            {
                index: PersonRegistration(person_id, ids[index], referred[index])
                for person_id, indexes in by_person.items()
                for index in indexes
            }
        )
        prepared: dict[int, tuple[Referral, list[IntegrationEvent]]] = {}
        for indexes in by_person.values():
            in_batch: list[datetime] = []  # see import_referrals: not in the ledger's answer
            for index in indexes:
                command, actor = submissions[index]
                referral = await self._new_referral(
                    command,
                    ids[index],
                    referred[index],
                    now,
                    consents=(
                        [Consent.record(ids[index], command.consent, now)]
                        if command.consent
                        else []
                    ),
                    assignment=await self._assign(command.county_fips, actor, now),
                    earlier=stored_earlier[index] + in_batch,
                )
                for consent in referral.consents:
                    await self._repository.note_consent(referral.referral_id, consent)
                prepared[index] = (
                    referral,
                    [
                        referral_created(referral, command.correlation_id, command.causation_id),
                        *self._feedback(referral, None, command.correlation_id),
                    ],
                )
                in_batch.append(referral.referred_at)
        order = sorted(prepared)
        written = await self._repository.add_many([prepared[i] for i in order])
        if any(written):
            self._events_written()
        # Lost a race with the same submission elsewhere: what the winner stored is answered.
        winners = {
            r.referral_id: r
            for r in await self._repository.get_many(
                [ids[i] for i, was in zip(order, written, strict=True) if not was]
            )
        }
        now_stored: dict[uuid.UUID, Referral] = {}
        for index, was_written in zip(order, written, strict=True):
            referral, events = prepared[index]
            actor = submissions[index][1]
            if was_written:
                audit += self._creation_entries(referral, actor, events)
                outcomes[index] = Created(referral, created=True)
                now_stored[referral.referral_id] = referral
            else:
                now_stored[referral.referral_id] = winners[ids[index]]
                outcomes[index] = self._answer_stored(
                    winners[ids[index]], submissions[index][0], actor, audit
                )
        for index in repeated:
            outcomes[index] = self._resubmission(
                now_stored[ids[index]], submissions[index][1], audit
            )
        await self._audit.record(audit)
        answered = [outcome for outcome in outcomes if outcome is not None]
        assert len(answered) == len(submissions)  # every submission has its answer
        return answered

    async def import_referrals(
        self, commands: Sequence[ImportReferral], actor: Actor
    ) -> list[bool | Rejected]:
        """Past referrals with their known history (a history import), answered in order: True
        if stored now, False if that system's record was imported before (its id derives from
        both, so a re-run stores nothing twice), Rejected with the rule a record breaks. Status
        changes are published with their own dates; the follow-up service schedules nothing for
        a referral closed or past the follow-ups' horizon.

        A batch costs one existence check, one write of its referrals and one audit write; the
        people's ledgers are read and claimed together, the first record of every person, then
        the second, and so on (whether one is a repeat involvement depends on the person's
        records before it), a few round trips each."""
        now = self._clock.now()
        ids = [
            uuid.uuid5(IMPORT_NAMESPACE, f"{c.source.system}\x1f{c.source.record_id}")
            for c in commands
        ]
        stored_before = {
            r.referral_id for r in await self._repository.get_many(list(dict.fromkeys(ids)))
        }
        outcomes: list[bool | Rejected] = [False] * len(commands)
        by_person: dict[str, list[int]] = {}
        for index, command in enumerate(commands):
            # A record that contradicts itself is refused even if its id was imported before.
            if (when := command.referral.referred_at) is None:
                outcomes[index] = Rejected(
                    InvalidReferral("referred_at is required for an imported referral")
                )
            elif to_millis(when) > now:
                outcomes[index] = Rejected(InvalidReferral("referred_at is in the future"))
            elif ids[index] not in stored_before:
                # The same record twice in a batch is imported once, by its first copy.
                stored_before.add(ids[index])
                by_person.setdefault(self.person_id(command.referral), []).append(index)
        stored_earlier = await self._register_in_ledgers(
            {
                index: PersonRegistration(person_id, ids[index], self._referred_at(commands[index]))
                for person_id, indexes in by_person.items()
                for index in indexes
            }
        )
        prepared: dict[int, tuple[Referral, list[IntegrationEvent]]] = {}

        async def one_person(indexes: list[int]) -> None:
            # The person's records prepared before in this batch are not stored yet, so the
            # ledger does not count them: whether a record is a repeat involvement counts them
            # here, as the record-by-record import did by storing each before the next.
            in_batch: list[datetime] = []
            for index in indexes:
                try:
                    prepared[index] = await self._imported(
                        commands[index], ids[index], now, stored_earlier[index] + in_batch
                    )
                except (InvalidReferral, IllegalTransition) as exc:
                    outcomes[index] = Rejected(exc)
                    continue
                in_batch.append(prepared[index][0].referred_at)

        await run_bounded((one_person(i) for i in by_person.values()), IMPORTS_IN_FLIGHT)
        order = sorted(prepared)
        # False for a record stored meanwhile by a concurrent import, or twice in this batch.
        stored = await self._repository.add_many([prepared[i] for i in order])
        for index, was_stored in zip(order, stored, strict=True):
            outcomes[index] = was_stored
        if any(stored):
            self._events_written()
        await self._audit.record(
            [
                self._entry(actor, "import", prepared[index][0], "created")
                for index, was_stored in zip(order, stored, strict=True)
                if was_stored
            ]
        )
        return outcomes

    async def _register_in_ledgers(
        self, registrations: dict[int, PersonRegistration]
    ) -> dict[int, list[datetime]]:
        """Enters records in their people's ledgers, by index (each person's in the order
        given): each person's first record (all people in one call), then each person's
        second, and so on, as storing them one by one would. Returns when each record's person
        was referred before, as stored."""
        waves: list[list[int]] = []
        per_person: dict[str, int] = {}
        for index, registration in registrations.items():
            position = per_person.get(registration.person_id, 0)
            per_person[registration.person_id] = position + 1
            if position == len(waves):
                waves.append([])
            waves[position].append(index)
        earlier: dict[int, list[datetime]] = {}
        # The batch's own records are not stored yet; the caller counts those it keeps.
        batch = {registration.referral_id for registration in registrations.values()}
        for wave in waves:
            found = await self._repository.earlier_referrals_of_people(
                [registrations[index] for index in wave], batch
            )
            earlier.update(zip(wave, found, strict=True))
        return earlier

    @staticmethod
    def _referred_at(command: ImportReferral) -> datetime:
        assert command.referral.referred_at is not None  # checked before
        return to_millis(command.referral.referred_at)

    async def _imported(
        self,
        command: ImportReferral,
        referral_id: uuid.UUID,
        now: datetime,
        earlier: list[datetime],
    ) -> tuple[Referral, list[IntegrationEvent]]:
        """One past referral (its referral date checked, its person's ledger entered already)
        and its events; raises InvalidReferral or IllegalTransition for a record whose history
        contradicts itself. `earlier`: when its person was referred before, stored or earlier in
        the batch."""
        submitted = command.referral
        referred_at = self._referred_at(command)
        referral = await self._new_referral(
            submitted,
            referral_id,
            referred_at,
            now,
            consents=[],
            # By the registry of the day it was referred: the CMHC that served it then.
            assignment=command.assignment
            or await self._assignments.assign(submitted.county_fips, referred_at),
            imported_from=command.source,
            earlier=earlier,
        )
        steps = [replace(step, at=to_millis(step.at)) for step in command.history]
        moves = referral.replay(steps, now)
        events: list[IntegrationEvent] = [
            referral_created(referral, submitted.correlation_id, None),
            *imported_history(referral, moves, submitted.correlation_id),
        ]
        return referral, events

    async def _new_referral(
        self,
        command: CreateReferral,
        referral_id: uuid.UUID,
        referred_at: datetime,
        now: datetime,
        *,
        consents: list[Consent],
        assignment: Assignment,
        imported_from: ImportSource | None = None,
        earlier: list[datetime] | None = None,
    ) -> Referral:
        """A referral as submitted (live or imported): the person's pseudonym, and whether the
        same person was referred in the 90 days before. `earlier`: when, for an import, whose
        batch entered the ledgers; a live referral enters its person's ledger here."""
        person_id = self.person_id(command)
        if earlier is None:
            [earlier] = await self._repository.earlier_referrals_of_people(
                [PersonRegistration(person_id, referral_id, referred_at)]
            )
        return Referral(
            referral_id=referral_id,
            agency_id=command.agency_id,
            agency_reference=command.agency_reference,
            source=command.source,
            court_type=command.court_type,
            officer_reference=command.officer_reference,
            county_fips=command.county_fips,
            primary_need=command.primary_need,
            other_needs=command.other_needs,
            person_location=command.person_location,
            person=command.person,
            person_id=person_id,
            narrative=command.narrative,
            consents=consents,
            assignment=assignment,
            referred_at=referred_at,
            received_at=now,
            repeat_involvement=is_repeat_involvement(referred_at, earlier),
            imported_from=imported_from,
            submission_id=command.causation_id,
        )

    def _answer_stored(
        self, stored: Referral, command: CreateReferral, actor: Actor, audit: list[AuditEntry]
    ) -> Created | Rejected:
        """A referral stored under this submission's id already. The same submission applied
        again (a batch re-applied after its write landed, or raced by its own redelivery) is
        the creation it made: recorded again, and kept once by the audit log. Any other
        submission is a resubmission."""
        if command.causation_id and stored.submission_id == command.causation_id:
            feedback = self._feedback(stored, None, command.correlation_id)
            audit += self._creation_entries(stored, actor, feedback)
            return Created(stored, created=True)
        return self._resubmission(stored, actor, audit)

    def _resubmission(
        self, stored: Referral, actor: Actor, audit: list[AuditEntry]
    ) -> Created | Rejected:
        """A resubmitted agency reference hands back the stored referral: that is a read, so it
        gets the read's visibility check and is audited (into `audit`) as a read. Agency
        references are easy to guess, so whoever may not see the record learns only that the
        reference is taken."""
        if not may_see(actor, stored):
            audit.append(self._entry(actor, "read_resubmitted", stored, "denied"))
            return Rejected(ResubmissionNotVisible())
        audit.append(self._entry(actor, "read_resubmitted", stored, "allowed"))
        return Created(stored, created=False)

    async def get(self, referral_id: uuid.UUID, actor: Actor) -> Referral:
        referral = await self._visible(referral_id, actor, "read")
        await self._record(actor, "read", referral, "allowed")
        return referral

    async def change_status(
        self,
        referral_id: uuid.UUID,
        to: ReferralStatus,
        reason: str | None,
        appointment_at: datetime | None,
        actor: Actor,
        correlation_id: str,
    ) -> Referral:

        async def attempt() -> Referral | Conflict:
            referral = await self._visible(referral_id, actor, "change_status")
            before = self._agency_view(referral)
            previous = referral.status
            now = self._clock.now()
            appointment = to_millis(appointment_at) if appointment_at else None
            sequence = referral.change_status(to, now, reason, appointment)
            event = status_changed(
                referral, sequence, previous, now, reason, appointment, correlation_id
            )
            events = [event, *self._feedback(referral, before, correlation_id)]
            return await self._save(referral, events, actor, "change_status")

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def record_contact(
        self,
        referral_id: uuid.UUID,
        place: ContactPlace,
        reached: bool,
        attempted_at: datetime | None,
        actor: Actor,
        correlation_id: str,
    ) -> Referral:

        async def attempt() -> Referral | Conflict:
            referral = await self._visible(referral_id, actor, "record_contact")
            now = self._clock.now()
            at = to_millis(attempted_at or now)
            if at > now + timedelta(minutes=5):
                raise InvalidReferral("attempted_at is in the future")
            sequence = referral.record_contact(place, reached, at)
            event = contact_attempted(referral, sequence, place, reached, at, correlation_id)
            return await self._save(referral, [event], actor, "record_contact")

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def apply_follow_up_outcome(self, event: FollowUpCompletedV1) -> bool:
        """A follow-up's outcome, published by the follow-up service, noted on the referral and
        moving its status where the outcome says, through a status change like any other (so
        the funnel and the outcomes agree). Idempotent per follow-up; returns whether the
        referral changed."""
        actor = Actor.of_service("followup")

        async def attempt() -> bool | Conflict:
            referral = await self._repository.get(event.referral_id)
            if referral is None:
                # Follow-ups exist only for stored referrals: this is not ours to apply.
                await self._record_missing(actor, "follow_up_outcome", event.referral_id)
                return False
            before = self._agency_view(referral)
            noted = referral.record_follow_up_outcome(
                str(event.follow_up_id), event.outcome, event.completed_at
            )
            if noted is None:
                return False  # applied before: a redelivery
            events: list[IntegrationEvent] = []
            if noted.moved is not None:
                previous, sequence = noted.moved
                events.append(
                    status_changed(
                        referral,
                        sequence,
                        previous,
                        event.completed_at,
                        referral.history[-1]["reason"],
                        None,
                        event.correlation_id,
                    )
                )
                events += self._feedback(referral, before, event.correlation_id)
            saved = await self._save(referral, events, actor, "follow_up_outcome")
            return CONFLICT if saved is CONFLICT else True

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def record_consent(
        self, referral_id: uuid.UUID, terms: ConsentTerms, actor: Actor, correlation_id: str
    ) -> tuple[Consent, bool]:
        """Records a consent the person signed; returns it and whether it is new. The same
        terms again (a retried request) return the stored consent and change nothing."""

        async def attempt() -> tuple[Consent, bool] | Conflict:
            referral = await self._visible(referral_id, actor, "record_consent")
            before = self._agency_view(referral)
            try:
                terms.check(self.today())
                stored = referral.record_consent(
                    Consent.record(referral_id, terms, self._clock.now())
                )
            except InvalidConsent:
                await self._record(actor, "record_consent", referral, "refused")
                raise
            if stored is None:
                await self._repository.note_consent(referral_id, referral.consents[-1])
                events = self._feedback(referral, before, correlation_id)
                saved = await self._save(referral, events, actor, "record_consent")
                return CONFLICT if saved is CONFLICT else (referral.consents[-1], True)
            await self._record(actor, "record_consent", referral, "unchanged")
            return stored, False

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def revoke_consent(
        self, referral_id: uuid.UUID, consent_id: uuid.UUID, actor: Actor, correlation_id: str
    ) -> Referral:
        """The person revoked a consent: nothing it allowed is disclosed from now on."""

        async def attempt() -> Referral | Conflict:
            referral = await self._visible(referral_id, actor, "revoke_consent")
            consents = list(referral.consents)
            before = self._agency_view(referral)
            referral.revoke_consent(consent_id, self._clock.now())
            if referral.consents == consents:
                await self._record(actor, "revoke_consent", referral, "unchanged")
                return referral
            events = self._feedback(referral, before, correlation_id)
            return await self._save(referral, events, actor, "revoke_consent")

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def feedback(self, agency_reference: str, actor: Actor) -> "Feedback":
        """What the referring agency may learn about the referral it sent under its own
        reference: that it was received, and its coarse status only while a consent of the
        person covers that agency. Another agency's reference is not found, exactly like one
        never sent (the id derives from the asking agency). Every answer is audited as a
        disclosure, or as withheld."""
        agency_id = actor.agency_id
        if agency_id is None:
            raise NotAllowed("only an agency's own system asks for feedback on its referrals")
        referral_id = referral_id_for(agency_id, agency_reference)
        referral = await self._visible(referral_id, actor, "disclose_status")
        view = self._agency_view(referral)
        await self._record(
            actor, "disclose_status", referral, "withheld" if view.status is None else "disclosed"
        )
        return Feedback(referral=referral, status=view.status, consent=view.consent)

    async def progress_report(
        self, start: datetime, end: datetime, actor: Actor
    ) -> list["ProgressLine"]:
        """A court's progress report over [start, end): for each participant it referred whose
        consent, in force now, lets it learn attendance and compliance (§2.35), the
        appointments kept and missed and whether they engage with treatment. Nothing else is
        told, and each participant's line is audited as a disclosure."""
        court = actor.agency_id
        if court is None:
            raise NotAllowed("only a court's own system asks for its progress report")
        today = self.today()
        scope = ConsentScope.ATTENDANCE_COMPLIANCE
        candidates = await self._repository.consented_referrals(court, scope, today)
        lines = []
        for referral in await self._repository.get_many(candidates):
            consent = consent_covering(referral.consents, court, scope, today)
            if consent is None or referral.agency_id != court or not referral.agency_reference:
                continue  # revoked, or not this court's own referral: not its to know
            lines.append(
                ProgressLine(
                    referral.agency_reference,
                    progress_in(referral.history, start, end),
                    consent.terms.expires_on,
                )
            )
            await self._record(actor, "disclose_progress", referral, "disclosed")
        return sorted(lines, key=lambda line: line.agency_reference)

    def _agency_view(self, referral: Referral) -> "AgencyView":
        """What the referring agency may learn now: the coarse status while a consent covers
        it."""
        consent = consent_covering(
            referral.consents, referral.agency_id, ConsentScope.REFERRAL_STATUS, self.today()
        )
        status = feedback_status(referral.status) if consent else None
        return AgencyView(status, consent)

    def _feedback(
        self, referral: Referral, before: "AgencyView | None", correlation_id: str
    ) -> list[IntegrationEvent]:
        """A feedback event for the referring agency's own topic when what it may learn
        changed (None before: the referral is new), if the agency reads feedback on Kafka."""
        if referral.agency_reference is None or referral.agency_id not in self._feedback_agencies:
            return []
        after = self._agency_view(referral)
        if before is not None and after.said == before.said:
            return []
        return [referral_feedback(referral, after.status, after.consent, correlation_id)]

    def _feedback_entries(
        self, referral: Referral, events: list[IntegrationEvent], entry_id: str | None = None
    ) -> list[AuditEntry]:
        """A feedback event published is a disclosure (or a notice that the status is
        withheld): audited like the same answer over HTTP."""
        agency = Actor(None, referral.agency_id, "kafka")
        return [
            self._entry(
                agency,
                "disclose_status",
                referral,
                "withheld" if event.status is None else "disclosed",
                entry_id,
            )
            for event in events
            if isinstance(event, ReferralFeedbackV1)
        ]

    def _creation_entries(
        self, referral: Referral, actor: Actor, events: list[IntegrationEvent]
    ) -> list[AuditEntry]:
        """A new referral's accesses: its creation, and the feedback its agency is sent with
        it (among `events`). Keyed by the referral, so a creation recorded again (its batch
        applied a second time) is kept once."""
        record = f"referral/{referral.referral_id}"
        created = self._entry(actor, "create", referral, "created", f"{record}|create")
        return [created, *self._feedback_entries(referral, events, f"{record}|feedback@create")]

    def today(self) -> date:
        """The program's day: a consent signed or ending "today" means today in its zone."""
        return self._clock.now().astimezone(self._zone).date()

    async def reassign(
        self, referral_id: uuid.UUID, to_liaison: str, actor: Actor, correlation_id: str
    ) -> Referral:
        """A supervisor hands a referral to another liaison of their CMHC."""

        async def attempt() -> Referral | Conflict:
            referral = await self._visible(referral_id, actor, "reassign", may_take)
            principal = actor.principal
            if principal is None or not principal.has(Role.SUPERVISOR):
                await self._record(actor, "reassign", referral, "denied")
                raise NotAllowed("only a supervisor can reassign a referral")
            now = self._clock.now()
            own = principal.cmhc_id
            if own is None or await self._assignments.cmhc_of(to_liaison, now) != own:
                # Otherwise a supervisor could hand a person's record to another CMHC's liaison.
                await self._record(actor, "reassign", referral, "denied")
                raise NotAllowed("a supervisor can reassign only to a liaison of their own CMHC")
            previous = referral.assignment.liaison_id
            # A referral of a county no CMHC served is taken into the supervisor's CMHC.
            cmhc = referral.assignment.cmhc_id
            cmhc = own if cmhc == UNASSIGNED else cmhc
            sequence = referral.reassign(Assignment(to_liaison, cmhc), now)
            event = reassigned(referral, sequence, previous, now, correlation_id)
            return await self._save(referral, [event], actor, "reassign")

        return await retry_on_conflict(attempt, ConcurrentChange)

    async def summaries(self, referral_ids: list[uuid.UUID], actor: Actor) -> list[Referral]:
        """The referrals among `referral_ids` this person may see, in the order asked: a page
        listing other services' records (follow-ups, bed searches) shows whose they are. Each
        record is checked like a read and audited, those refused as denied."""
        principal = actor.principal
        if principal is None or not principal.roles & {Role.LIAISON, Role.SUPERVISOR}:
            raise NotAllowed("only liaisons and supervisors look up referrals")
        asked = list(dict.fromkeys(referral_ids))
        found = await self._repository.get_many(asked)
        visible = [r for r in found if may_see(actor, r)]
        await self._audit.record(
            [
                self._entry(actor, "summary", r, "allowed" if r in visible else "denied")
                for r in found
            ]
        )
        stored = {r.referral_id for r in found}
        missing = [self._missing_entry(actor, "summary", r) for r in asked if r not in stored]
        if missing:
            await self._audit.record(missing)
        return visible

    async def overview(self, actor: Actor, cap: int) -> Overview:
        """How many referrals wait for each liaison (yours, or your CMHC's liaisons'), counted
        up to `cap`, and when the newest arrived. Counts and a time, no record: not audited."""
        principal = actor.principal
        if principal is not None and principal.has(Role.SUPERVISOR) and principal.cmhc_id:
            team = await self._assignments.liaisons_of(principal.cmhc_id, self._clock.now())
            newest = await self._repository.newest_received(None, principal.cmhc_id)
        elif principal is not None and principal.has(Role.LIAISON):
            team = [principal.subject]
            newest = await self._repository.newest_received(principal.subject, None)
        else:
            raise NotAllowed("your role has no caseload")
        waiting = await run_bounded(
            (
                self._repository.count_up_to(liaison, ReferralStatus.RECEIVED.value, cap)
                for liaison in team
            ),
            8,
        )
        return Overview(dict(zip(team, waiting, strict=True)), newest)

    async def caseload(self, query: CaseloadQuery, actor: Actor) -> list[Referral]:
        """A liaison's own referrals, or a supervisor's CMHC's; each listed record is audited."""
        principal = actor.principal
        if principal is None:
            raise NotAllowed("agency systems cannot list referrals")
        if principal.has(Role.SUPERVISOR) and principal.cmhc_id:
            scoped = replace(query, liaison_id=query.liaison_id, cmhc_id=principal.cmhc_id)
        elif principal.has(Role.LIAISON):
            scoped = replace(query, liaison_id=principal.subject, cmhc_id=None)
        else:
            raise NotAllowed("your role has no caseload")
        referrals = await self._repository.find(scoped)
        await self._audit.record([self._entry(actor, "list", r, "allowed") for r in referrals])
        return referrals

    async def accounting(self, person_id: str, actor: Actor) -> list[AuditEntry]:
        """Every recorded access to one person's records, in every service, for the privacy
        officer."""
        principal = actor.principal
        if principal is None or not principal.has(Role.PRIVACY_OFFICER):
            raise NotAllowed("only a privacy officer can produce an accounting of disclosures")
        entries = await self._audit.for_person(person_id)
        await self._audit.record(
            [
                AuditEntry(
                    actor=actor.name,
                    actor_roles=actor.roles,
                    action="accounting",
                    record="person/*",
                    person_ids=(person_id,),
                    at=self._clock.now(),
                    outcome="allowed",
                    source_address=actor.source_address,
                )
            ]
        )
        return entries

    def person_id_of(self, family_name: str, given_name: str, birth_date: date) -> str:
        return pseudonym(self._pseudonym_key, family_name, given_name, birth_date.isoformat())

    async def visible_for(self, referral_id: uuid.UUID, actor: Actor, action: str) -> Referral:
        """For this service's other use cases that act on a referral (a connection to a
        directory service): the same visibility check, a refusal audited as for any write."""
        return await self._visible(referral_id, actor, action)

    async def record_access(
        self, actor: Actor, action: str, referral: Referral, outcome: str
    ) -> None:
        await self._record(actor, action, referral, outcome)

    async def _visible(
        self,
        referral_id: uuid.UUID,
        actor: Actor,
        action: str,
        also: Callable[[Actor, Referral], bool] | None = None,
    ) -> Referral:
        """The referral, if this person may see it (or `also` admits them for this action);
        audited as denied otherwise."""
        referral = await self._repository.get(referral_id)
        if referral is None:
            await self._record_missing(actor, action, referral_id)
            raise NotVisible
        if not (may_see(actor, referral) or (also is not None and also(actor, referral))):
            await self._record(actor, action, referral, "denied")
            raise NotVisible
        return referral

    async def _save(
        self, referral: Referral, events: list[IntegrationEvent], actor: Actor, action: str
    ) -> Referral | Conflict:
        try:
            await self._repository.save(referral, events)
        except ConcurrentChange:
            await self._record(actor, action, referral, "conflict")
            return CONFLICT
        self._events_written()
        await self._audit.record(
            [
                self._entry(actor, action, referral, "changed"),
                *self._feedback_entries(referral, events),
            ]
        )
        return referral

    async def _assign(self, county_fips: str, actor: Actor, at: datetime) -> Assignment:
        """A liaison who records a referral keeps it; otherwise the county's CMHC and one of
        its liaisons, by the registry in force when it is received."""
        principal = actor.principal
        if principal is not None and principal.has(Role.LIAISON):
            cmhc = principal.cmhc_id or (await self._assignments.assign(county_fips, at)).cmhc_id
            return Assignment(principal.subject, cmhc)
        return await self._assignments.assign(county_fips, at)

    def _entry(
        self,
        actor: Actor,
        action: str,
        referral: Referral,
        outcome: str,
        entry_id: str | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            actor=actor.name,
            actor_roles=actor.roles,
            action=action,
            record=f"referral/{referral.referral_id}",
            person_ids=(referral.person_id,),
            at=self._clock.now(),
            outcome=outcome,
            source_address=actor.source_address,
            referral_id=str(referral.referral_id),
            entry_id=entry_id,
        )

    async def _record(self, actor: Actor, action: str, referral: Referral, outcome: str) -> None:
        await self._audit.record([self._entry(actor, action, referral, outcome)])

    async def _record_missing(self, actor: Actor, action: str, referral_id: uuid.UUID) -> None:
        await self._audit.record([self._missing_entry(actor, action, referral_id)])

    def _missing_entry(self, actor: Actor, action: str, referral_id: uuid.UUID) -> AuditEntry:
        return AuditEntry(
            actor=actor.name,
            actor_roles=actor.roles,
            action=action,
            record=f"referral/{referral_id}",
            person_ids=(),
            at=self._clock.now(),
            outcome="not_found",
            source_address=actor.source_address,
            referral_id=str(referral_id),
        )


def may_see(actor: Actor, referral: Referral) -> bool:
    """Minimum necessary: a liaison sees their own caseload, a supervisor their CMHC's."""
    principal = actor.principal
    if principal is None:
        return actor.agency_id == referral.agency_id
    if principal.has(Role.LIAISON) and referral.assignment.liaison_id == principal.subject:
        return True
    # A referral of a county no CMHC serves is nobody's record yet: supervisors see it in the
    # unassigned list (no name) and take it into their CMHC, and only then read it.
    return (
        principal.has(Role.SUPERVISOR)
        and principal.cmhc_id is not None
        and referral.assignment.cmhc_id == principal.cmhc_id
    )


def may_take(actor: Actor, referral: Referral) -> bool:
    """A supervisor of a CMHC may take a referral no CMHC holds (a county nobody serves)."""
    principal = actor.principal
    return (
        principal is not None
        and principal.has(Role.SUPERVISOR)
        and principal.cmhc_id is not None
        and referral.assignment.cmhc_id == UNASSIGNED
    )
