"""Small-cell suppression: no count 1-10 shown, none derivable, no percentage from one."""

import itertools

import pytest

from cmhl_reporting.domain.suppression import (
    SUPPRESSED,
    percent,
    percents,
    suppress_count,
    suppress_group,
)


@pytest.mark.parametrize(
    ("count", "shown"), [(0, 0), (1, SUPPRESSED), (10, SUPPRESSED), (11, 11), (43431, 43431)]
)
def test_counts_from_one_to_ten_are_suppressed(count: int, shown: object) -> None:
    assert suppress_count(count) == shown


def test_a_county_with_three_referrals_is_hidden_with_a_complementary_cell() -> None:
    cells = {"29019": 3, "29510": 40, "29189": 25, "29095": 0}
    shown, total = suppress_group(cells, 68)
    assert shown["29019"] == SUPPRESSED
    # Otherwise 68 - 40 - 25 = 3: the smallest other non-zero cell is hidden too.
    assert shown["29189"] == SUPPRESSED
    assert (shown["29510"], shown["29095"], total) == (40, 0, 68)


def test_two_small_cells_hide_each_other_unless_both_must_be_one() -> None:
    shown, _ = suppress_group({"a": 4, "b": 6, "c": 90}, 100)
    assert shown == {"a": SUPPRESSED, "b": SUPPRESSED, "c": 90}
    # Two hidden cells adding up to 2 can only be 1 and 1: one more cell goes.
    shown, total = suppress_group({"a": 1, "b": 1, "c": 30, "d": 50}, 82)
    assert shown == {"a": SUPPRESSED, "b": SUPPRESSED, "c": SUPPRESSED, "d": 50}
    assert total == 82


def test_a_small_total_hides_every_non_zero_cell() -> None:
    shown, total = suppress_group({"court": 2, "sheriff": 0, "police": 7}, 9)
    assert (shown, total) == ({"court": SUPPRESSED, "sheriff": 0, "police": SUPPRESSED}, SUPPRESSED)


def test_when_no_cell_is_left_to_hide_the_total_goes() -> None:
    cells = {str(n): 1 for n in range(11)}
    shown, total = suppress_group(cells, 11)
    assert total == SUPPRESSED
    assert set(shown.values()) == {SUPPRESSED}


def test_cells_must_add_up_to_the_total() -> None:
    with pytest.raises(ValueError, match="add up"):
        suppress_group({"a": 5}, 50)


def test_no_percentage_from_a_hidden_cell_or_total() -> None:
    assert percent(SUPPRESSED, 100) is None
    assert percent(50, SUPPRESSED) is None
    assert percent(0, 0) is None
    assert percents({"a": 76, "b": SUPPRESSED}, 100) == {"a": 76.0, "b": None}


@pytest.mark.parametrize("values", list(itertools.product([0, 1, 2, 5, 10, 11, 30], repeat=3)))
def test_no_hidden_cell_can_be_recovered_from_the_shown_numbers(values: tuple[int, ...]) -> None:
    """Brute force: every assignment of 1-10 to the hidden cells consistent with what is shown
    (and zeros shown as zeros) must leave each hidden cell ambiguous."""
    cells = {f"c{n}": v for n, v in enumerate(values)}
    total = sum(values)
    shown, shown_total = suppress_group(cells, total)
    for value in shown.values():
        if value != SUPPRESSED:
            assert not 1 <= int(value) <= 10
    hidden = [k for k, v in shown.items() if v == SUPPRESSED]
    if not hidden or shown_total == SUPPRESSED:
        return
    rest = total - sum(int(v) for v in shown.values() if v != SUPPRESSED)
    candidates = [
        combo
        for combo in itertools.product(range(1, rest + 1), repeat=len(hidden))
        if sum(combo) == rest
    ]
    for position, key in enumerate(hidden):
        if 1 <= cells[key] <= 10:
            assert len({combo[position] for combo in candidates}) > 1, (cells, shown)
