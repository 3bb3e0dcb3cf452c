"""Training use cases with in-memory ports: events, revisions, hours, access and audit."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from cmhl_contracts import TrainingCompletedV1
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_training.application.service import (
    Actor,
    CreateSession,
    NotAllowed,
    NotFound,
    TrainingService,
)
from cmhl_training.domain.catalog import Course, PostCategory
from cmhl_training.domain.session import (
    InvalidSession,
    Officer,
    Rule,
    Session,
    SessionConflict,
)

from .fakes import (
    InMemoryCourseCatalog,
    InMemoryOfficerLedger,
    InMemorySessionRepository,
)

TODAY = date(2018, 10, 1)


def sid(n: int) -> str:
    return str(uuid.UUID(int=n))


LIAISON = Actor(Principal("liaison-01", frozenset({Role.LIAISON}), "cmhc-01"), None, "10.0.0.1")
OTHER_LIAISON = Actor(Principal("liaison-02", frozenset({Role.LIAISON}), "cmhc-01"), None, None)
SUPERVISOR = Actor(Principal("sup-01", frozenset({Role.SUPERVISOR}), "cmhc-01"), None, None)
STL_PD = Actor(None, "stl-pd", "10.0.0.9")
A, B, C = Officer.of("stl-pd", "1001"), Officer.of("stl-pd", "1002"), Officer.of("kc-pd", "1001")


class World:
    def __init__(self) -> None:
        self.sessions = InMemorySessionRepository()
        self.courses = InMemoryCourseCatalog()
        self.ledger = InMemoryOfficerLedger()
        self.audit = InMemoryAuditLog()
        self.service = TrainingService(
            sessions=self.sessions,
            courses=self.courses,
            ledger=self.ledger,
            audit=self.audit,
            clock=AdjustableClock(datetime(2018, 10, 1, 15, tzinfo=UTC)),
            pseudonym_key=b"unit-test-key",
        )

    def events(self) -> list[TrainingCompletedV1]:
        return [e for e in self.sessions.published if isinstance(e, TrainingCompletedV1)]


@pytest.fixture
async def world() -> World:
    w = World()
    await w.service.seed_catalog()
    return w


def command(session_id: str, roster: list[Officer], **overrides: object) -> CreateSession:
    fields: dict[str, object] = {
        "session_id": session_id,
        "course_id": "umh",
        "held_on": TODAY - timedelta(days=2),
        "county_fips": "29019",
        "host_agency_id": "stl-pd",
        "capacity": 10,
        "roster": roster,
        "completed": True,
        "correlation_id": "c-1",
    } | overrides
    return CreateSession(**fields)  # type: ignore[arg-type]


async def test_a_held_session_publishes_pseudonyms_and_a_retry_records_nothing(
    world: World,
) -> None:
    session, created = await world.service.create(command(sid(1), [A, B, C]), LIAISON)
    again, created_again = await world.service.create(command(sid(1), [A]), LIAISON)
    assert created
    assert not created_again
    assert again.attended == session.attended
    [event] = world.events()
    assert event.revision == 1
    assert event.credit_hours == 4
    assert event.officer_ids == [world.service.officer_id(o) for o in (A, B, C)]
    assert event.officer_agency_ids == ["stl-pd", "stl-pd", "kc-pd"]
    assert "1001" not in event.model_dump_json()


async def test_scheduled_then_completed_with_a_walk_in(world: World) -> None:
    await world.service.create(command(sid(2), [A, B], completed=False), LIAISON)
    assert world.events() == []
    walk_in = Officer.of("boone-so", "S-7")
    session, changed = await world.service.complete(sid(2), [A, walk_in], LIAISON, "c-2")
    assert changed
    assert session.walk_ins() == [walk_in]
    _, repeated = await world.service.complete(sid(2), [walk_in, A], LIAISON, "c-3")
    assert not repeated
    assert [e.revision for e in world.events()] == [1]


async def test_corrections_publish_the_next_revision_once(world: World) -> None:
    await world.service.create(command(sid(3), [A, B]), LIAISON)
    _, changed = await world.service.correct_attendance(sid(3), [A, C], LIAISON, "c-4")
    _, unchanged = await world.service.correct_attendance(sid(3), [C, A], LIAISON, "c-5")
    assert changed
    assert not unchanged
    first, second = world.events()
    assert (first.revision, second.revision) == (1, 2)
    assert first.event_id != second.event_id
    assert set(second.officer_ids) == {world.service.officer_id(o) for o in (A, C)}


async def test_only_the_trainer_changes_a_session(world: World) -> None:
    await world.service.create(command(sid(4), [A], completed=False), LIAISON)
    with pytest.raises(NotFound):
        await world.service.complete(sid(4), [A], OTHER_LIAISON, "c")
    with pytest.raises(NotAllowed):
        await world.service.complete(sid(4), [A], SUPERVISOR, "c")
    assert (await world.service.get(sid(4), SUPERVISOR)).session_id == sid(4)


async def test_retired_and_unknown_courses_take_no_new_sessions(world: World) -> None:
    with pytest.raises(NotAllowed):
        await world.service.retire_course("umh", LIAISON)
    await world.service.create(command(sid(5), [A]), LIAISON)
    await world.service.retire_course("umh", SUPERVISOR)
    with pytest.raises(InvalidSession) as retired:
        await world.service.create(command(sid(6), [A]), LIAISON)
    assert retired.value.rule is Rule.RETIRED_COURSE
    with pytest.raises(InvalidSession) as unknown:
        await world.service.create(command(sid(7), [A], course_id="nope"), LIAISON)
    assert unknown.value.rule is Rule.UNKNOWN_COURSE
    # History stays: the officer keeps the hours of the retired course.
    record = await world.service.agency_officer_record("1001", STL_PD)
    assert [t.course_id for t in record.trainings] == ["umh"]
    assert [c.course_id for c in await world.service.list_courses(False)].count("umh") == 0
    assert any(c.retired for c in await world.service.list_courses(True))


async def test_supervisors_add_courses_once(world: World) -> None:
    course = Course("cit-refresher", "CIT Refresher", PostCategory.SKILLS, 3)
    await world.service.add_course(course, SUPERVISOR)
    with pytest.raises(SessionConflict) as exists:
        await world.service.add_course(course, SUPERVISOR)
    assert exists.value.rule is Rule.COURSE_EXISTS
    await world.service.create(command(sid(8), [A], course_id="cit-refresher"), LIAISON)
    [event] = world.events()
    assert event.credit_hours == 3


async def test_hours_follow_corrections_and_every_read_is_audited(world: World) -> None:
    await world.service.create(command(sid(9), [A, B]), LIAISON)
    await world.service.create(
        command(sid(10), [A], course_id="civil-detention", held_on=TODAY - timedelta(days=300)),
        LIAISON,
    )
    await world.service.correct_attendance(sid(9), [B], LIAISON, "c")
    officer_a = world.service.officer_id(A)
    record = await world.service.officer_record(officer_a, SUPERVISOR)
    assert [t.session_id for t in record.trainings] == [sid(10)]
    [year] = record.hours
    assert (year.year, year.by_category, year.total) == (2017, {PostCategory.LEGAL: 2}, 2)
    with pytest.raises(NotAllowed):
        await world.service.officer_record(officer_a, LIAISON)
    reads = [(e.actor, e.action, e.outcome) for e in await world.audit.for_person(officer_a)]
    assert ("sup-01", "officer.read", "allowed") in reads
    assert ("liaison-01", "officer.read", "denied") in reads


async def test_agencies_see_only_their_own_officers_certificates(world: World) -> None:
    await world.service.create(command(sid(11), [A, C]), LIAISON)
    certificate = await world.service.agency_certificate(sid(11), " 1001", STL_PD)
    assert certificate.officer == A
    kc_pd = Actor(None, "kc-pd", None)
    assert (await world.service.agency_certificate(sid(11), "1001", kc_pd)).officer == C
    with pytest.raises(NotFound):
        await world.service.agency_certificate(sid(11), "1002", STL_PD)
    with pytest.raises(NotFound):
        await world.service.certificate(sid(11), world.service.officer_id(A), OTHER_LIAISON)
    outcomes = [e.outcome for e in world.audit.entries if e.action == "certificate.read"]
    assert outcomes == ["allowed", "allowed", "not_found", "not_found"]


async def test_a_concurrent_write_is_retried_on_the_fresh_session(world: World) -> None:
    await world.service.create(command(sid(12), [A, B]), LIAISON)
    stored = world.sessions.sessions[sid(12)]
    real_get = world.sessions.get
    raced = False

    async def get_while_another_writer_saves(session_id: str) -> Session | None:
        nonlocal raced
        read = await real_get(session_id)
        if not raced:  # another replica saves right after this read
            raced = True
            stored.version += 1
        return read

    world.sessions.get = get_while_another_writer_saves  # type: ignore[method-assign]
    session, changed = await world.service.correct_attendance(sid(12), [A], LIAISON, "c")
    assert changed
    assert session.revision == 2
    assert [e.revision for e in world.events()] == [1, 2]
