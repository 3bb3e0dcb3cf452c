"""Importing a program's history: a past referral with its known status history becomes one
referral marked as imported, its creation and each status change published with their own
dates; a record that contradicts itself is refused with the rule; a re-run stores nothing."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts import ReferralCreatedV1, ReferralStatusChangedV1
from cmhl_contracts.vocabulary import ReferralStatus as S
from cmhl_referral.application.commands import ImportReferral
from cmhl_referral.application.service import Actor, ReferralService, Rejected
from cmhl_referral.domain.lifecycle import IllegalTransition
from cmhl_referral.domain.referral import Assignment, ImportSource, InvalidReferral, PastStatus
from cmhl_servicekit.auth import Principal, Role

from .test_service import NOW, Parts, command, parts  # noqa: F401  (the fixture)


async def import_one(service: ReferralService, record: ImportReferral, actor: Actor) -> bool:
    """One record through the batch import: its outcome, or the rule it broke, raised."""
    [outcome] = await service.import_referrals([record], actor)
    if isinstance(outcome, Rejected):
        raise outcome.error
    return outcome


ADMIN = Actor(Principal("admin-1", frozenset({Role.PROGRAM_ADMIN}), None), None, "10.0.0.9")
REFERRED = datetime(2015, 3, 2, 14, tzinfo=UTC)


def past(*steps: tuple[S, int], record: str = "r-1") -> ImportReferral:
    return ImportReferral(
        referral=command(referred_at=REFERRED),
        source=ImportSource("dmh-2005", record),
        history=[
            PastStatus(
                status,
                REFERRED + timedelta(days=days),
                appointment_at=REFERRED + timedelta(days=days + 3)
                if status is S.APPOINTMENT_SCHEDULED
                else None,
            )
            for status, days in steps
        ],
        assignment=Assignment("liaison-07", "cmhc-02"),
    )


async def test_a_past_referral_is_stored_once_with_its_history_and_marked_imported(
    parts: Parts,  # noqa: F811
) -> None:
    service, repository, audit, _ = parts
    record = past(
        (S.ACCEPTED, 1),
        (S.APPOINTMENT_SCHEDULED, 2),
        (S.ATTENDED, 5),
        (S.CONNECTED_TO_TREATMENT, 9),
    )
    assert await import_one(service, record, ADMIN) is True
    [referral] = repository.referrals.values()
    assert referral.status is S.CONNECTED_TO_TREATMENT
    assert referral.imported_from == ImportSource("dmh-2005", "r-1")
    assert referral.assignment == Assignment("liaison-07", "cmhc-02")
    created, *changes = repository.events
    assert isinstance(created, ReferralCreatedV1)
    assert (created.imported, created.status_at_import) == (True, S.CONNECTED_TO_TREATMENT)
    assert created.referred_at == REFERRED
    assert all(isinstance(c, ReferralStatusChangedV1) for c in changes)
    assert [(c.from_status, c.to_status, c.sequence) for c in changes] == [  # type: ignore[attr-defined]
        (S.RECEIVED, S.ACCEPTED, 1),
        (S.ACCEPTED, S.APPOINTMENT_SCHEDULED, 2),
        (S.APPOINTMENT_SCHEDULED, S.ATTENDED, 3),
        (S.ATTENDED, S.CONNECTED_TO_TREATMENT, 4),
    ]
    assert changes[-1].changed_at == REFERRED + timedelta(days=9)  # type: ignore[attr-defined]
    assert [(e.action, e.outcome) for e in audit.entries] == [("import", "created")]
    # The same record again (a re-run of the import): nothing stored or published twice.
    assert await import_one(service, record, ADMIN) is False
    assert len(repository.referrals) == 1
    assert len(repository.events) == 5
    # Another system's record with the same id is another referral.
    other = replace(record, source=ImportSource("court-cms", "r-1"))
    assert await import_one(service, other, ADMIN) is True
    assert len(repository.referrals) == 2


@pytest.mark.parametrize(
    ("steps", "error", "rule"),
    [
        (((S.DECLINED, -3),), InvalidReferral, "precedes the referral"),
        (((S.ACCEPTED, 5), (S.CONNECTED_TO_TREATMENT, 2)), InvalidReferral, "not in order"),
        (((S.ATTENDED, 1),), IllegalTransition, "cannot go from received to attended"),
        (((S.ACCEPTED, 1), (S.DECLINED, 2)), IllegalTransition, "from accepted to declined"),
        (((S.ACCEPTED, 5000),), InvalidReferral, "in the future"),
    ],
)
async def test_a_record_that_contradicts_itself_is_refused_and_nothing_is_stored(
    parts: Parts,  # noqa: F811
    steps: tuple[tuple[S, int], ...],
    error: type[Exception],
    rule: str,
) -> None:
    service, repository, audit, _ = parts
    with pytest.raises(error, match=rule):
        await import_one(service, past(*steps), ADMIN)
    assert repository.referrals == {}
    assert repository.events == []
    assert audit.entries == []


async def test_a_reason_the_earlier_system_did_not_keep_is_not_recorded(
    parts: Parts,  # noqa: F811
) -> None:
    service, repository, _, _ = parts
    assert await import_one(service, past((S.DECLINED, 1)), ADMIN)
    [referral] = repository.referrals.values()
    assert referral.history[0]["reason"] == "not_recorded"
    future = replace(past(), referral=command(referred_at=NOW + timedelta(days=1)))
    with pytest.raises(InvalidReferral, match="future"):
        await import_one(service, future, ADMIN)


async def test_a_persons_records_in_one_batch_count_each_other_as_earlier(
    parts: Parts,  # noqa: F811
) -> None:
    """One batch holds a person's referral and another 30 days later: the later one is a repeat
    involvement, as when they came in two batches; a record sent twice is stored once."""
    service, repository, audit, _ = parts
    first = past((S.DECLINED, 1))
    later = replace(past(record="r-2"), referral=command(referred_at=REFERRED + timedelta(days=30)))
    outcomes = await service.import_referrals([first, later, first], ADMIN)
    assert outcomes == [True, True, False]
    stored = sorted(repository.referrals.values(), key=lambda r: r.referred_at)
    assert [r.repeat_involvement for r in stored] == [False, True]
    assert len([e for e in audit.entries if e.action == "import"]) == 2
