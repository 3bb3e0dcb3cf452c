"""Referral use cases with in-memory fakes: idempotent create, access rules, audit."""

import asyncio
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cmhl_contracts import IntegrationEvent, ReferralCreatedV1
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.ports import CaseloadQuery, PersonRegistration
from cmhl_referral.application.service import (
    Actor,
    Created,
    NotVisible,
    ReferralService,
    Rejected,
    ResubmissionNotVisible,
)
from cmhl_referral.domain.consent import Consent, ConsentScope, ConsentTerms, InvalidConsent
from cmhl_referral.domain.referral import InvalidReferral, Person, Referral
from cmhl_servicekit.audit import AuditEntry, InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock


class InMemoryReferralRepository:
    def __init__(self) -> None:
        self.referrals: dict[uuid.UUID, Referral] = {}
        self.events: list[IntegrationEvent] = []
        self.consents: list[tuple[uuid.UUID, Consent]] = []
        self.writes: list[int] = []  # the size of each add_many

    async def add_many(
        self, referrals: list[tuple[Referral, list[IntegrationEvent]]]
    ) -> list[bool]:
        self.writes.append(len(referrals))
        stored = []
        for referral, events in referrals:
            stored.append(referral.referral_id not in self.referrals)
            if stored[-1]:
                self.referrals[referral.referral_id] = referral
                self.events.extend(events)
        return stored

    async def get(self, referral_id: uuid.UUID) -> Referral | None:
        return self.referrals.get(referral_id)

    async def get_many(self, referral_ids: list[uuid.UUID]) -> list[Referral]:
        return [self.referrals[r] for r in referral_ids if r in self.referrals]

    async def count_up_to(self, liaison_id: str, status: str, cap: int) -> int:
        found = [
            r
            for r in self.referrals.values()
            if r.assignment.liaison_id == liaison_id and r.status == status
        ]
        return min(len(found), cap)

    async def newest_received(self, liaison_id: str | None, cmhc_id: str | None) -> datetime | None:
        mine = [
            r.received_at
            for r in self.referrals.values()
            if (liaison_id and r.assignment.liaison_id == liaison_id)
            or (cmhc_id and r.assignment.cmhc_id == cmhc_id)
        ]
        return max(mine, default=None)

    async def earlier_referrals_of_people(
        self,
        registrations: Sequence[PersonRegistration],
        counted_by_caller: Collection[uuid.UUID] = (),
    ) -> list[list[datetime]]:
        assert len({r.person_id for r in registrations}) == len(registrations)
        return [
            [
                r.referred_at
                for r in self.referrals.values()
                if r.person_id == registration.person_id
                and r.referral_id != registration.referral_id
            ]
            for registration in registrations
        ]

    async def note_consent(self, referral_id: uuid.UUID, consent: Consent) -> None:
        self.consents.append((referral_id, consent))

    async def consented_referrals(
        self, recipient: str, scope: ConsentScope, in_force_from: date
    ) -> list[uuid.UUID]:
        return [
            r
            for r, c in self.consents
            if c.terms.recipient == recipient
            and scope in c.terms.scope
            and c.terms.expires_on >= in_force_from
        ]

    async def save(self, referral: Referral, events: list[IntegrationEvent]) -> None:
        referral.version += 1
        self.referrals[referral.referral_id] = referral
        self.events.extend(events)

    async def find(self, query: CaseloadQuery) -> list[Referral]:
        return [
            r
            for r in self.referrals.values()
            if query.liaison_id in (None, r.assignment.liaison_id)
            and query.cmhc_id in (None, r.assignment.cmhc_id)
        ][: query.limit]


CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2018, 9, 30, 15, tzinfo=UTC)


def liaison(name: str, cmhc: str = "cmhc-03") -> Actor:
    return Actor(Principal(name, frozenset({Role.LIAISON}), cmhc), None, "10.0.0.1")


def command(reference: str | None = None, **overrides: object) -> CreateReferral:
    fields: dict[str, object] = {
        "agency_id": "jc-pd",
        "source": ReferralSource.MUNICIPAL_POLICE,
        "court_type": None,
        "agency_reference": reference,
        "officer_reference": "badge-12",
        "county_fips": "29051",
        "primary_need": PresentingNeed.BEHAVIORAL_NEEDS,
        "other_needs": [],
        "person_location": PersonLocation.COMMUNITY,
        "person": Person("Mia", "Vale", date(2001, 2, 3)),
        "narrative": "n",
        "consent": None,
        "referred_at": None,
        "correlation_id": "corr-1",
    } | overrides
    return CreateReferral(**fields)  # type: ignore[arg-type]


Parts = tuple[ReferralService, InMemoryReferralRepository, InMemoryAuditLog, list[int]]


@pytest.fixture
def parts() -> Parts:
    repository, audit, woken = InMemoryReferralRepository(), InMemoryAuditLog(), []
    service = ReferralService(
        repository, audit, AdjustableClock(NOW), b"key", lambda: woken.append(1), CHICAGO
    )
    return service, repository, audit, woken


async def test_create_stores_one_event_with_a_pseudonym_and_wakes_the_relay(parts: Parts) -> None:
    service, repository, audit, woken = parts
    result = await service.create(command(), liaison("liaison-05"))
    assert result.created
    [event] = repository.events
    assert isinstance(event, ReferralCreatedV1)
    assert event.liaison_id == "liaison-05"
    assert event.person_id == result.referral.person_id != "Mia"
    assert woken == [1]
    assert [(e.action, e.outcome) for e in audit.entries] == [("create", "created")]


async def test_a_resubmitted_reference_returns_the_first_referral_and_publishes_nothing(
    parts: Parts,
) -> None:
    service, repository, _, _ = parts
    first = await service.create(command("R-9"), liaison("liaison-05"))
    again = await service.create(command("R-9"), liaison("liaison-05"))
    assert not again.created
    assert again.referral.referral_id == first.referral.referral_id
    assert len(repository.events) == 1


class LookupsRecorded(InMemoryReferralRepository):
    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[list[uuid.UUID]] = []

    async def get_many(self, referral_ids: list[uuid.UUID]) -> list[Referral]:
        self.looked_up.append(list(referral_ids))
        return await super().get_many(referral_ids)


async def test_only_referrals_named_by_an_agency_reference_are_looked_up_before_creating() -> None:
    """A referral without an agency reference gets a new random id, which nothing stored can
    have: its creation costs no read (a round trip per POST from a liaison's form)."""
    repository = LookupsRecorded()
    service = ReferralService(
        repository, InMemoryAuditLog(), AdjustableClock(NOW), b"key", lambda: None, CHICAGO
    )
    created = await service.create_many(
        [
            (command(), liaison("liaison-05")),
            (command("R-1", person=Person("Ana", "Roe", date(1990, 1, 1))), liaison("liaison-05")),
        ]
    )
    without, referenced = created
    assert isinstance(without, Created)
    assert without.created
    assert isinstance(referenced, Created)
    assert referenced.created
    # (An empty list is no read: find_by_ids makes none.)
    assert [ids for ids in repository.looked_up if ids] == [[referenced.referral.referral_id]]
    repository.looked_up.clear()
    alone = await service.create(
        command(person=Person("Bo", "Poe", date(1980, 5, 6))), liaison("liaison-05")
    )
    assert alone.created
    assert not any(repository.looked_up)


SUPERVISOR_03 = Actor(Principal("sup-03", frozenset({Role.SUPERVISOR}), "cmhc-03"), None, None)
SUPERVISOR_04 = Actor(Principal("sup-04", frozenset({Role.SUPERVISOR}), "cmhc-04"), None, None)


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        (liaison("liaison-05", "cmhc-03"), True),
        (SUPERVISOR_03, True),
        (liaison("liaison-06", "cmhc-03"), False),
        (liaison("liaison-07", "cmhc-04"), False),
        (SUPERVISOR_04, False),
        (Actor(None, "other-pd", None), False),
    ],
    ids=["owner", "own-supervisor", "colleague", "other-cmhc", "other-supervisor", "other-agency"],
)
async def test_a_resubmission_returns_the_stored_referral_only_to_whom_may_read_it(
    parts: Parts, actor: Actor, sees: bool
) -> None:
    service, repository, audit, _ = parts
    first = await service.create(command("R-7"), liaison("liaison-05", "cmhc-03"))
    audit.entries.clear()
    if sees:
        again = await service.create(command("R-7"), actor)
        assert not again.created
        assert again.referral.referral_id == first.referral.referral_id
    else:
        with pytest.raises(ResubmissionNotVisible) as refused:
            await service.create(command("R-7"), actor)
        assert "Mia" not in str(refused.value)
        assert "Vale" not in str(refused.value)
    [entry] = audit.entries
    assert (entry.actor, entry.action, entry.outcome) == (
        actor.name,
        "read_resubmitted",
        "allowed" if sees else "denied",
    )
    assert entry.referral_id == str(first.referral.referral_id)
    assert len(repository.events) == 1


class RacingRepository(InMemoryReferralRepository):
    """Another replica stores the same submission between our look-up and our insert."""

    def __init__(self, winner: Referral) -> None:
        super().__init__()
        self.winner = winner
        self.looked_up = False

    async def get_many(self, referral_ids: list[uuid.UUID]) -> list[Referral]:
        if not self.looked_up:
            self.looked_up = True
            return []
        return [self.winner]

    async def add_many(
        self, referrals: list[tuple[Referral, list[IntegrationEvent]]]
    ) -> list[bool]:
        return [False] * len(referrals)


async def test_a_lost_race_returns_the_winner_only_to_whom_may_read_it(parts: Parts) -> None:
    service, _, _, _ = parts
    winner = (await service.create(command("R-8"), liaison("liaison-05", "cmhc-03"))).referral
    audit = InMemoryAuditLog()
    racing = ReferralService(
        RacingRepository(winner), audit, AdjustableClock(NOW), b"key", lambda: None, CHICAGO
    )
    with pytest.raises(ResubmissionNotVisible):
        await racing.create(command("R-8"), liaison("liaison-06", "cmhc-03"))
    racing = ReferralService(
        RacingRepository(winner), audit, AdjustableClock(NOW), b"key", lambda: None, CHICAGO
    )
    assert (await racing.create(command("R-8"), SUPERVISOR_03)).referral is winner
    assert [(e.actor, e.outcome) for e in audit.entries] == [
        ("liaison-06", "denied"),
        ("sup-03", "allowed"),
    ]


async def test_identifiers_are_normalised_before_hashing(parts: Parts) -> None:
    service, _, _, _ = parts
    a = await service.create(command(referred_at=NOW - timedelta(days=1)), liaison("l"))
    b = await service.create(
        command(person=Person("  mia ", "VALE", date(2001, 2, 3))), liaison("l")
    )
    c = await service.create(command(person=Person("Mia", "Vale", date(2001, 2, 4))), liaison("l"))
    assert a.referral.person_id == b.referral.person_id != c.referral.person_id
    assert b.referral.repeat_involvement


async def test_reads_are_limited_to_own_caseload_or_cmhc_and_audited(parts: Parts) -> None:
    service, _, audit, _ = parts
    created = await service.create(command(), liaison("liaison-05", "cmhc-03"))
    referral_id = created.referral.referral_id
    assert (await service.get(referral_id, liaison("liaison-05"))).referral_id == referral_id
    supervisor = Actor(Principal("s", frozenset({Role.SUPERVISOR}), "cmhc-03"), None, None)
    await service.get(referral_id, supervisor)
    for stranger in (
        liaison("liaison-06", "cmhc-03"),
        Actor(Principal("s2", frozenset({Role.SUPERVISOR}), "cmhc-04"), None, None),
    ):
        with pytest.raises(NotVisible):
            await service.get(referral_id, stranger)
    with pytest.raises(NotVisible):
        await service.get(uuid.uuid4(), liaison("liaison-05"))
    outcomes = [(e.actor, e.outcome) for e in audit.entries if e.action == "read"]
    assert outcomes == [
        ("liaison-05", "allowed"),
        ("s", "allowed"),
        ("liaison-06", "denied"),
        ("s2", "denied"),
        ("liaison-05", "not_found"),
    ]


async def test_agency_submissions_go_to_the_countys_liaison(parts: Parts) -> None:
    service, _, _, _ = parts
    result = await service.create(
        command(referred_at=NOW - timedelta(days=2)), Actor(None, "jc-pd", None)
    )
    assert result.referral.assignment.liaison_id.startswith("liaison-")
    assert result.referral.referred_at == NOW - timedelta(days=2)


def consent_for(recipient: str, signed_on: date, expires_on: date) -> ConsentTerms:
    return ConsentTerms(
        recipient=recipient,
        purpose="coordination",
        scope=frozenset({ConsentScope.REFERRAL_STATUS}),
        signed_on=signed_on,
        expires_on=expires_on,
    )


def with_feedback_to_jc_pd(
    repository: InMemoryReferralRepository, audit: InMemoryAuditLog
) -> ReferralService:
    """The service with jc-pd reading feedback on Kafka, so creations also disclose."""
    return ReferralService(
        repository,
        audit,
        AdjustableClock(NOW),
        b"key",
        lambda: None,
        CHICAGO,
        feedback_agencies=frozenset({"jc-pd"}),
    )


def mixed_submissions() -> list[tuple[CreateReferral, Actor]]:
    """A batch with every kind of answer: new referrals of people with and without earlier
    ones (stored, and earlier in the batch), resubmissions (of a stored referral, of one earlier
    in the batch; seen and not seen by the asker), and each rule a submission can break."""
    agency = Actor(None, "jc-pd", None)
    mia = Person("Mia", "Vale", date(2001, 2, 3))
    ann = Person("Ann", "Lark", date(1980, 5, 6))
    bo = Person("Bo", "Reed", date(1990, 7, 8))
    today = date(2018, 9, 30)

    def at(days_ago: int) -> datetime:
        return NOW - timedelta(days=days_ago)

    return [
        (command("R-2", person=mia, referred_at=at(30)), agency),
        (command("R-1", person=mia, referred_at=at(40)), agency),
        (command("R-3", person=mia, referred_at=at(1)), liaison("liaison-05")),
        (command("R-4", person=ann, referred_at=at(200)), agency),
        (command("R-4", person=ann, referred_at=at(200)), agency),
        (command("R-5", person=ann, referred_at=at(150)), liaison("liaison-07", "cmhc-04")),
        (command("R-6", person=bo, referred_at=NOW + timedelta(days=1)), agency),
        (command("R-1", person=mia, referred_at=at(40)), liaison("liaison-06")),
        (
            command("R-7", person=bo, consent=consent_for("jc-pd", today, today.replace(day=1))),
            agency,
        ),
        (
            command(
                "R-8",
                person=bo,
                referred_at=at(10),
                consent=consent_for("jc-pd", today, today + timedelta(days=90)),
            ),
            agency,
        ),
        (command("R-9", person=bo, referred_at=at(4000)), agency),
        (command("R-6", person=bo, referred_at=at(2)), agency),
    ]


async def test_a_batch_of_submissions_is_answered_as_creating_them_one_by_one_would() -> None:
    """The agency intake's batch path and the one-by-one path give the same answers, store the
    same referrals (repeat flags included), publish the same events and audit the same accesses,
    for every kind of submission."""

    def new_service() -> tuple[ReferralService, InMemoryReferralRepository, InMemoryAuditLog]:
        repository, audit = InMemoryReferralRepository(), InMemoryAuditLog()
        return with_feedback_to_jc_pd(repository, audit), repository, audit

    mia = Person("Mia", "Vale", date(2001, 2, 3))
    before = command("R-1", person=mia, referred_at=NOW - timedelta(days=40))
    submissions = mixed_submissions()

    def answers(outcomes: Sequence[Created | Rejected | Exception]) -> list[tuple[object, ...]]:
        return [
            (o.referral.agency_reference, o.created)
            if isinstance(o, Created)
            else (type(o.error if isinstance(o, Rejected) else o).__name__, str(o))
            for o in outcomes
        ]

    def stored(repository: InMemoryReferralRepository) -> dict[str | None, tuple[object, ...]]:
        return {
            r.agency_reference: (r.referral_id, r.person_id, r.repeat_involvement, r.assignment)
            for r in repository.referrals.values()
        }

    def audited(audit: InMemoryAuditLog) -> list[tuple[str, ...]]:
        return sorted((e.actor, e.action, e.outcome, str(e.referral_id)) for e in audit.entries)

    def published(repository: InMemoryReferralRepository) -> list[tuple[str, str]]:
        # occurred_at is the wall clock's moment of writing, not the service clock's
        return sorted(
            (e.event_type, e.model_dump_json(exclude={"occurred_at"})) for e in repository.events
        )

    batch, batch_repository, batch_audit = new_service()
    await batch.create(before, liaison("liaison-05"))
    batch_answers = answers(await batch.create_many(submissions))

    one_by_one, repository, audit = new_service()
    await one_by_one.create(before, liaison("liaison-05"))
    outcomes: list[Created | Rejected | Exception] = []
    for submission, actor in submissions:
        try:
            outcomes.append(await one_by_one.create(submission, actor))
        except (InvalidReferral, InvalidConsent, ResubmissionNotVisible) as exc:
            outcomes.append(exc)

    # Liaisons' POSTs arriving together: each `create` alone, the service groups them.
    concurrent, concurrent_repository, concurrent_audit = new_service()
    await concurrent.create(before, liaison("liaison-05"))
    writes = len(concurrent_repository.writes)
    concurrent_outcomes = await asyncio.gather(
        *(concurrent.create(submission, actor) for submission, actor in submissions),
        return_exceptions=True,
    )

    assert batch_answers == answers(outcomes)
    assert answers([o for o in concurrent_outcomes if isinstance(o, Created | Exception)]) == (
        batch_answers
    )
    assert len(concurrent_repository.writes) - writes == 1  # one write for them all
    assert stored(concurrent_repository) == stored(repository)
    assert published(concurrent_repository) == published(repository)
    assert audited(concurrent_audit) == audited(audit)
    assert batch_answers == [
        ("R-2", True),
        ("R-1", False),
        ("R-3", True),
        ("R-4", True),
        ("R-4", False),
        ("R-5", True),
        ("InvalidReferral", "referred_at is in the future"),
        ("ResubmissionNotVisible", str(ResubmissionNotVisible())),
        ("InvalidConsent", "a consent cannot expire before it was signed"),
        ("R-8", True),
        ("InvalidReferral", "referred_at is more than 10 years in the past"),
        ("R-6", True),
    ]
    assert stored(batch_repository) == stored(repository)
    repeats = {ref: flags[2] for ref, flags in stored(batch_repository).items()}
    assert repeats == {
        "R-1": False,
        "R-2": True,
        "R-3": True,
        "R-4": False,
        "R-5": True,
        "R-8": False,
        "R-6": True,
    }
    assert published(batch_repository) == published(repository)
    assert audited(batch_audit) == audited(audit)
    assert ("agency:jc-pd", "disclose_status", "disclosed") in {e[:3] for e in audited(audit)}
    assert ("liaison-06", "read_resubmitted", "denied") in {e[:3] for e in audited(audit)}


class AuditLogDownOnce(InMemoryAuditLog):
    """An audit database that fails its first write (after the referrals were stored)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def record(self, entries: Sequence[AuditEntry]) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("audit database went away")
        await super().record(entries)


async def test_a_batch_applied_again_after_its_write_landed_is_audited_as_created_once() -> None:
    """The intake re-applies a batch whose referrals were stored but whose audit write failed
    (and again, as a redelivery after everything landed): each creation and each feedback
    disclosure is in the accounting exactly once, none turned into a read. The same reference
    sent again as another submission is still the audited read it is."""
    repository, audit = InMemoryReferralRepository(), AuditLogDownOnce()
    service = with_feedback_to_jc_pd(repository, audit)
    agency = Actor(None, "jc-pd", None)
    submissions = [(command(f"R-{n}", causation_id=f"event-{n}"), agency) for n in range(3)]
    with pytest.raises(ConnectionError):
        await service.create_many(submissions)
    assert len(repository.referrals) == 3
    for _ in range(2):
        outcomes = await service.create_many(submissions)
        assert all(isinstance(o, Created) and o.created for o in outcomes)
    assert sorted((e.action, e.outcome, e.referral_id) for e in audit.entries) == sorted(
        (action, outcome, str(referral_id))
        for referral_id in repository.referrals
        for action, outcome in (("create", "created"), ("disclose_status", "withheld"))
    )
    again = await service.create(command("R-1", causation_id="event-9"), agency)
    assert not again.created
    assert audit.entries[-1].action == "read_resubmitted"
    assert len(repository.events) == 6  # each referral's created and feedback events, once


async def test_a_submission_raced_by_its_own_redelivery_is_one_creation() -> None:
    """Two replicas apply the same Kafka submission at once (a rebalance): the one that loses
    the insert answers the creation the other made, and the accounting holds it once."""
    audit = InMemoryAuditLog()
    agency = Actor(None, "jc-pd", None)
    submission = command("R-5", causation_id="event-5")
    first = ReferralService(
        InMemoryReferralRepository(), audit, AdjustableClock(NOW), b"key", lambda: None, CHICAGO
    )
    winner = (await first.create(submission, agency)).referral
    racing = ReferralService(
        RacingRepository(winner), audit, AdjustableClock(NOW), b"key", lambda: None, CHICAGO
    )
    assert (await racing.create(submission, agency)).created
    assert [(e.action, e.outcome) for e in audit.entries] == [("create", "created")]
