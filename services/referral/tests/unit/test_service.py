"""Referral use cases with in-memory fakes: idempotent create, access rules, audit."""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cmhl_contracts import IntegrationEvent, ReferralCreatedV1
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.ports import CaseloadQuery, PersonRegistration
from cmhl_referral.application.service import (
    Actor,
    NotVisible,
    ReferralService,
    ResubmissionNotVisible,
)
from cmhl_referral.domain.consent import Consent, ConsentScope
from cmhl_referral.domain.referral import Person, Referral
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock


class InMemoryReferralRepository:
    def __init__(self) -> None:
        self.referrals: dict[uuid.UUID, Referral] = {}
        self.events: list[IntegrationEvent] = []
        self.consents: list[tuple[uuid.UUID, Consent]] = []

    async def add(self, referral: Referral, events: list[IntegrationEvent]) -> bool:
        if referral.referral_id in self.referrals:
            return False
        self.referrals[referral.referral_id] = referral
        self.events.extend(events)
        return True

    async def add_many(
        self, referrals: list[tuple[Referral, list[IntegrationEvent]]]
    ) -> list[bool]:
        return [await self.add(referral, events) for referral, events in referrals]

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
        self, registrations: Sequence[PersonRegistration]
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

    async def get(self, referral_id: uuid.UUID) -> Referral | None:
        if not self.looked_up:
            self.looked_up = True
            return None
        return self.winner

    async def add(self, referral: Referral, events: list[IntegrationEvent]) -> bool:
        return False


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
