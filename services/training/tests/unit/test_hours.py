"""POST hours by year and category (no I/O)."""

from datetime import date

from cmhl_training.domain.catalog import PostCategory
from cmhl_training.domain.hours import CompletedTraining, post_hours


def training(
    session_id: str, category: PostCategory, hours: float, held_on: date
) -> CompletedTraining:
    return CompletedTraining(session_id, "c", "Course", category, hours, held_on)


def test_hours_are_summed_per_calendar_year_and_category() -> None:
    years = post_hours(
        [
            training("s1", PostCategory.INTERPERSONAL, 4, date(2018, 1, 5)),
            training("s2", PostCategory.INTERPERSONAL, 2, date(2018, 12, 31)),
            training("s3", PostCategory.LEGAL, 2, date(2018, 6, 1)),
            training("s4", PostCategory.SKILLS, 4, date(2017, 12, 31)),
        ]
    )
    assert [y.year for y in years] == [2018, 2017]
    assert years[0].by_category == {PostCategory.INTERPERSONAL: 6, PostCategory.LEGAL: 2}
    assert (years[0].total, years[0].required, years[0].remaining) == (8, 24, 16)
    assert years[1].by_category == {PostCategory.SKILLS: 4}


def test_a_session_counts_once_and_a_full_year_owes_nothing() -> None:
    same = training("s1", PostCategory.LEGAL, 4, date(2018, 3, 3))
    assert post_hours([same, same])[0].total == 4
    many = [training(f"s{n}", PostCategory.SKILLS, 4, date(2018, 3, n + 1)) for n in range(7)]
    assert post_hours(many)[0].remaining == 0


def test_no_trainings_no_years() -> None:
    assert post_hours([]) == []
