"""An officer's POST continuing-education hours by year and category. No I/O."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from cmhl_training.domain.catalog import ANNUAL_POST_HOURS, PostCategory


@dataclass(frozen=True)
class CompletedTraining:
    """One session an officer attended, with the category and hours its course had then (a
    course changed or retired later does not rewrite an officer's history)."""

    session_id: str
    course_id: str
    course_title: str
    category: PostCategory
    credit_hours: float
    held_on: date


@dataclass(frozen=True)
class YearHours:
    year: int
    by_category: dict[PostCategory, float]
    total: float
    required: float
    remaining: float


def post_hours(trainings: list[CompletedTraining]) -> list[YearHours]:
    """Hours per calendar year (POST's reporting period) and category, newest year first.

    A session counted twice (the same id listed twice by a caller) counts once: hours are
    credited per session attended, not per record found."""
    by_year: dict[int, dict[PostCategory, float]] = defaultdict(lambda: defaultdict(float))
    seen: set[str] = set()
    for training in trainings:
        if training.session_id in seen:
            continue
        seen.add(training.session_id)
        by_year[training.held_on.year][training.category] += training.credit_hours
    years = []
    for year in sorted(by_year, reverse=True):
        categories = dict(by_year[year])
        total = sum(categories.values())
        years.append(
            YearHours(
                year=year,
                by_category=categories,
                total=total,
                required=ANNUAL_POST_HOURS,
                remaining=max(0.0, ANNUAL_POST_HOURS - total),
            )
        )
    return years
