"""Session, roster and attendance rules of the domain (no I/O)."""

from datetime import date, timedelta

import pytest

from cmhl_training.domain.catalog import COURSES_BY_ID, POST_COURSES, Course, PostCategory
from cmhl_training.domain.session import (
    InvalidSession,
    Officer,
    Rule,
    Session,
    SessionConflict,
    SessionStatus,
)

TODAY = date(2018, 10, 1)
A, B, C = Officer.of("stl-pd", "1001"), Officer.of("stl-pd", "1002"), Officer.of("kc-pd", "1001")


def schedule(
    roster: list[Officer],
    *,
    held_on: date = TODAY,
    capacity: int = 3,
    course: Course | None = COURSES_BY_ID["umh"],
) -> Session:
    return Session.schedule(
        session_id="s-1",
        course=course,
        course_id=course.course_id if course else "nope",
        held_on=held_on,
        today=TODAY,
        county_fips="29019",
        host_agency_id="stl-pd",
        trainer_liaison_id="liaison-01",
        trainer_cmhc_id="cmhc-01",
        capacity=capacity,
        registered=roster,
    )


def test_catalog_has_the_eight_post_courses_with_categories_and_hours() -> None:
    assert len(POST_COURSES) == 8
    assert len({c.course_id for c in POST_COURSES}) == 8
    assert {c.category for c in POST_COURSES} <= set(PostCategory)
    assert all(c.credit_hours > 0 and not c.retired for c in POST_COURSES)


def test_a_session_snapshots_its_course() -> None:
    session = schedule([A, B])
    assert (session.course_title, session.category, session.credit_hours) == (
        "Understanding Mental Health",
        PostCategory.INTERPERSONAL,
        4,
    )
    assert session.status is SessionStatus.SCHEDULED
    assert session.revision == 0


@pytest.mark.parametrize(
    ("kwargs", "roster", "rule"),
    [
        ({"course": None}, [A], Rule.UNKNOWN_COURSE),
        (
            {"course": Course("x", "Old", PostCategory.LEGAL, 2, retired=True)},
            [A],
            Rule.RETIRED_COURSE,
        ),
        ({"held_on": TODAY - timedelta(days=366)}, [A], Rule.DATE_OUT_OF_RANGE),
        ({"held_on": TODAY + timedelta(days=366)}, [A], Rule.DATE_OUT_OF_RANGE),
        ({"capacity": 2}, [A, B, C], Rule.OVER_CAPACITY),
        ({}, [A, Officer.of(" STL-PD", " 1001 ")], Rule.OFFICER_TWICE),
    ],
)
def test_bad_sessions_are_refused_with_the_rule(
    kwargs: dict[str, object], roster: list[Officer], rule: Rule
) -> None:
    with pytest.raises(InvalidSession) as refused:
        schedule(roster, **kwargs)  # type: ignore[arg-type]
    assert refused.value.rule is rule


def test_dates_up_to_a_year_either_side_are_accepted() -> None:
    schedule([A], held_on=TODAY - timedelta(days=365))
    schedule([A], held_on=TODAY + timedelta(days=365))


def test_officer_ids_compare_without_case_and_inner_spacing() -> None:
    assert Officer.of("STL-PD", "b  1042").key() == Officer.of("stl-pd", " B 1042 ").key()
    assert Officer.of("stl-pd", "1001").key() != Officer.of("kc-pd", "1001").key()


def test_completion_records_walk_ins_and_starts_revision_one() -> None:
    session = schedule([A, B])
    walk_in = Officer.of("boone-so", "S-7")
    assert session.complete([A, walk_in], TODAY)
    assert session.status is SessionStatus.COMPLETED
    assert session.revision == 1
    assert session.walk_ins() == [walk_in]


def test_completion_respects_capacity_even_with_walk_ins() -> None:
    session = schedule([A, B], capacity=2)
    with pytest.raises(InvalidSession) as refused:
        session.complete([A, B, C], TODAY)
    assert refused.value.rule is Rule.OVER_CAPACITY
    assert session.status is SessionStatus.SCHEDULED


def test_a_session_is_completed_only_once_held_and_with_someone_there() -> None:
    future = schedule([A], held_on=TODAY + timedelta(days=3))
    with pytest.raises(InvalidSession) as early:
        future.complete([A], TODAY)
    assert early.value.rule is Rule.NOT_YET_HELD
    with pytest.raises(InvalidSession) as empty:
        schedule([A]).complete([], TODAY)
    assert empty.value.rule is Rule.NOBODY_ATTENDED


def test_repeating_a_completion_is_a_no_op_but_a_different_one_is_a_conflict() -> None:
    session = schedule([A, B])
    session.complete([A, B], TODAY)
    assert not session.complete([Officer.of("STL-PD", "1002"), A], TODAY)
    assert session.revision == 1
    with pytest.raises(SessionConflict) as conflict:
        session.complete([A], TODAY)
    assert conflict.value.rule is Rule.ALREADY_COMPLETED


def test_corrections_raise_the_revision_only_when_attendance_changes() -> None:
    session = schedule([A, B])
    with pytest.raises(SessionConflict) as early:
        session.correct_attendance([A])
    assert early.value.rule is Rule.NOT_COMPLETED
    session.complete([A, B], TODAY)
    assert session.correct_attendance([A, C])
    assert session.revision == 2
    assert not session.correct_attendance([Officer.of("KC-PD", " 1001"), A])
    assert session.revision == 2
    with pytest.raises(InvalidSession):
        session.correct_attendance([A, A])
    assert session.attended == [A, C]


def test_registrations_change_only_before_completion() -> None:
    session = schedule([A])
    session.replace_registrations([A, B, C])
    with pytest.raises(InvalidSession):
        session.replace_registrations([A, B, C, Officer.of("x", "1")])
    session.complete([A], TODAY)
    with pytest.raises(SessionConflict):
        session.replace_registrations([B])
