"""Training totals: seats filled count every roster line; unique officers count a person once,
across agencies when the event says who they are (their POST license's pseudonym)."""

from cmhl_reporting.domain.projections import TrainingFact
from cmhl_reporting.domain.views import training_rows, training_totals


def session(n: int, officers: list[str], agencies: list[str], people: list[str]) -> TrainingFact:
    return TrainingFact(
        f"s{n}",
        1,
        "umh",
        "29019",
        agencies[0],
        "2025-01-10",
        tuple(officers),
        tuple(agencies),
        tuple(people),
    )


def test_an_officer_who_moved_is_one_officer_and_two_seats() -> None:
    moved = [
        session(1, ["id-at-a", "colleague-a"], ["agency-a", "agency-a"], ["lic-1", "colleague-a"]),
        session(2, ["id-at-b"], ["agency-b"], ["lic-1"]),
    ]
    assert training_totals(moved) == {"sessions": 2, "seats_filled": 3, "officers_trained": 2}
    # By the officer's agency at the time: one at each.
    rows = training_rows(moved, "training_agency")
    assert rows["agency-a"]["officers_trained"] == 2
    assert rows["agency-b"]["officers_trained"] == 1


def test_events_without_person_ids_count_officer_ids() -> None:
    older = [session(1, ["x", "y"], ["a", "a"], []), session(2, ["x"], ["a"], [])]
    assert training_totals(older) == {"sessions": 2, "seats_filled": 3, "officers_trained": 2}
