"""Time windows: periods, start/end rounded to whole UTC days, reasons for bad input."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cmhl_reporting.domain.window import Window, WindowError, parse_period, window_from


@pytest.mark.parametrize(
    ("period", "window", "kind"),
    [
        ("all", Window(), "all"),
        ("2018", Window(date(2018, 1, 1), date(2019, 1, 1)), "year"),
        ("2018-12", Window(date(2018, 12, 1), date(2019, 1, 1)), "month"),
        ("2018-09-15", Window(date(2018, 9, 15), date(2018, 9, 16)), None),
    ],
)
def test_periods(period: str, window: Window, kind: str | None) -> None:
    assert parse_period(period) == window
    assert window.period_kind == kind


@pytest.mark.parametrize("bad", ["2018-13", "18", "last-year", "2018-02-30"])
def test_bad_periods_are_refused_with_the_accepted_forms(bad: str) -> None:
    with pytest.raises(WindowError, match="YYYY-MM"):
        parse_period(bad)


def test_start_rounds_down_and_end_rounds_up_to_utc_days() -> None:
    central = timezone(timedelta(hours=-6))
    window = window_from(
        None, datetime(2018, 9, 1, 20, tzinfo=central), datetime(2018, 9, 30, 1, tzinfo=UTC)
    )
    assert window == Window(date(2018, 9, 2), date(2018, 10, 1))
    exact = window_from(None, datetime(2018, 9, 1, tzinfo=UTC), datetime(2018, 10, 1, tzinfo=UTC))
    assert exact.period_kind == "month"


def test_refusals() -> None:
    with pytest.raises(WindowError, match="time zone"):
        window_from(None, datetime(2018, 1, 1), None)  # noqa: DTZ001
    with pytest.raises(WindowError, match="before"):
        window_from(None, datetime(2018, 2, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC))
    with pytest.raises(WindowError, match="not both"):
        window_from("2018", datetime(2018, 2, 1, tzinfo=UTC), None)
