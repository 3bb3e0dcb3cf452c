"""Training rules: the POST catalog, roster and date rules, officer pseudonyms."""

from datetime import date, timedelta

import pytest

from cmhl_servicekit.crypto import pseudonym
from cmhl_training.domain.catalog import POST_COURSES, PostCategory
from cmhl_training.domain.session import Attendee, InvalidSession, check_session

TODAY = date(2018, 10, 1)
ROSTER = [Attendee("stl-pd", "1001"), Attendee("stl-pd", "1002"), Attendee("kc-pd", "1001")]


def test_catalog_has_the_eight_post_courses_with_categories_and_hours() -> None:
    assert len(POST_COURSES) == 8
    assert len({c.course_id for c in POST_COURSES}) == 8
    assert {c.category for c in POST_COURSES} <= set(PostCategory)
    assert all(c.credit_hours > 0 for c in POST_COURSES)


def test_a_valid_session_passes() -> None:
    check_session(TODAY - timedelta(days=3), TODAY, ROSTER, capacity=3)


@pytest.mark.parametrize(
    ("held_on", "roster", "capacity", "rule"),
    [
        (TODAY + timedelta(days=1), ROSTER, 30, "on or after"),
        (TODAY - timedelta(days=366), ROSTER, 30, "more than a year"),
        (TODAY, ROSTER, 2, "over the capacity"),
        (TODAY, [*ROSTER, Attendee("stl-pd", "1001")], 30, "twice"),
    ],
)
def test_bad_sessions_are_refused_with_the_rule(
    held_on: date, roster: list[Attendee], capacity: int, rule: str
) -> None:
    with pytest.raises(InvalidSession, match=rule):
        check_session(held_on, TODAY, roster, capacity)


def test_the_same_officer_number_at_two_agencies_is_two_officers() -> None:
    assert pseudonym(b"k", "stl-pd", "1001") != pseudonym(b"k", "kc-pd", "1001")
    assert pseudonym(b"k", "stl-pd", "1001") == pseudonym(b"k", "STL-PD ", "1001")
