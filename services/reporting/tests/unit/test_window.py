"""Time windows: periods (calendar and fiscal), start/end and as_of rounded to whole days in the
program's time zone, reasons for bad input."""

from datetime import UTC, date, datetime

import pytest

from cmhl_reporting.domain.calendar import period_keys, program_day
from cmhl_reporting.domain.window import Window, WindowError, parse_period, window_from

from ..conftest import CHICAGO


@pytest.mark.parametrize(
    ("period", "window", "kind"),
    [
        ("all", Window(), "all"),
        ("2018", Window(date(2018, 1, 1), date(2019, 1, 1)), "year"),
        ("2018-12", Window(date(2018, 12, 1), date(2019, 1, 1)), "month"),
        ("2018-09-15", Window(date(2018, 9, 15), date(2018, 9, 16)), None),
        ("fy2025", Window(date(2024, 7, 1), date(2025, 7, 1)), "fy"),
        ("fy2025-q1", Window(date(2024, 7, 1), date(2024, 10, 1)), "fq"),
        ("fy2025-q2", Window(date(2024, 10, 1), date(2025, 1, 1)), "fq"),
        ("fy2025-q3", Window(date(2025, 1, 1), date(2025, 4, 1)), "fq"),
        ("fy2025-q4", Window(date(2025, 4, 1), date(2025, 7, 1)), "fq"),
    ],
)
def test_periods(period: str, window: Window, kind: str | None) -> None:
    assert parse_period(period) == window
    assert window.period_kind == kind


@pytest.mark.parametrize(
    "bad", ["2018-13", "18", "last-year", "2018-02-30", "fy25", "fy2025-q5", "fy2025-q0", "FY2025"]
)
def test_bad_periods_are_refused_with_the_accepted_forms(bad: str) -> None:
    with pytest.raises(WindowError, match=r"all, YYYY, YYYY-MM, YYYY-MM-DD, fyYYYY or fyYYYY-qN"):
        parse_period(bad)


def test_a_day_is_a_chicago_day_at_the_fiscal_year_boundary() -> None:
    """7 pm Central on June 30 is already July 1 in UTC: it belongs to the fiscal year that ends
    that day. Daylight saving time is followed (CDT is UTC-5, CST is UTC-6)."""
    june_30_evening = datetime(2025, 7, 1, 0, 0, tzinfo=UTC)  # 19:00 CDT on June 30
    assert program_day(june_30_evening, CHICAGO) == "2025-06-30"
    assert period_keys("2025-06-30")["fy"] == "fy2025"
    assert period_keys("2025-06-30")["fq"] == "fy2025-q4"
    july_1 = datetime(2025, 7, 1, 5, 0, tzinfo=UTC)  # midnight CDT
    assert program_day(july_1, CHICAGO) == "2025-07-01"
    assert period_keys("2025-07-01") == {
        "all": "all",
        "fy": "fy2026",
        "fq": "fy2026-q1",
        "year": "2025",
        "month": "2025-07",
    }
    new_years_eve = datetime(2025, 1, 1, 5, 59, tzinfo=UTC)  # 23:59 CST on December 31
    assert program_day(new_years_eve, CHICAGO) == "2024-12-31"
    assert period_keys("2024-12-31")["fq"] == "fy2025-q2"
    assert parse_period("fy2025").contains("2025-06-30")
    assert not parse_period("fy2025").contains("2025-07-01")


def test_start_rounds_down_and_end_rounds_up_to_program_days() -> None:
    window = window_from(
        None,
        datetime(2018, 9, 2, 1, tzinfo=UTC),  # 20:00 CDT on September 1
        datetime(2018, 9, 30, 6, tzinfo=UTC),  # 01:00 CDT on September 30
        CHICAGO,
    )
    assert window == Window(date(2018, 9, 1), date(2018, 10, 1))
    exact = window_from(
        None,
        datetime(2018, 9, 1, tzinfo=CHICAGO),
        datetime(2018, 10, 1, tzinfo=CHICAGO),
        CHICAGO,
    )
    assert exact.period_kind == "month"


def test_as_of_is_everything_up_to_and_including_that_day() -> None:
    window = window_from(None, None, None, CHICAGO, as_of=date(2025, 6, 30), today=date(2025, 7, 2))
    assert window == Window(None, date(2025, 7, 1))
    assert window.contains("2005-01-01")
    assert window.contains("2025-06-30")
    assert not window.contains("2025-07-01")
    assert window.period_kind is None  # unique people are exact only for periods


def test_refusals() -> None:
    with pytest.raises(WindowError, match="time zone"):
        window_from(None, datetime(2018, 1, 1), None, CHICAGO)  # noqa: DTZ001
    with pytest.raises(WindowError, match="before"):
        window_from(
            None, datetime(2018, 2, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC), CHICAGO
        )
    with pytest.raises(WindowError, match="one of period, start/end or as_of"):
        window_from("2018", datetime(2018, 2, 1, tzinfo=UTC), None, CHICAGO)
    with pytest.raises(WindowError, match="one of period, start/end or as_of"):
        window_from("fy2018", None, None, CHICAGO, as_of=date(2018, 1, 1))
    with pytest.raises(WindowError, match="must not be in the future"):
        window_from(None, None, None, CHICAGO, as_of=date(2025, 7, 3), today=date(2025, 7, 2))
