"""Time windows of the metrics API, at the views' resolution: whole days in the program's time
zone (domain/calendar.py).

A window is `[start, end)` in days. Unique people are exact for the periods that have their own
claims (all time, a fiscal year, a fiscal quarter, a calendar year, a month); `period_kind` says
which, and other windows get `people: null` rather than a wrong number."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cmhl_reporting.domain.calendar import fiscal_quarter_start, fiscal_year_start

ACCEPTED_PERIODS = (
    "period must be all, YYYY, YYYY-MM, YYYY-MM-DD, fyYYYY or fyYYYY-qN "
    "(fiscal year YYYY runs from July 1 of YYYY-1 to June 30 of YYYY; days in the program's "
    "time zone)"
)


class WindowError(ValueError):
    """A window the API cannot serve; the message is the reason given to the caller."""


@dataclass(frozen=True)
class Window:
    start: date | None = None
    end: date | None = None

    @property
    def period_kind(self) -> str | None:
        """`all`, `fy`, `fq`, `year` or `month` when the window is exactly such a period."""
        if self.start is None and self.end is None:
            return "all"
        if self.start is None or self.end is None or self.start.day != 1:
            return None
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        if self.end.day != 1:
            return None
        if months == 1:
            return "month"
        if months == 3 and self.start.month in (1, 4, 7, 10):
            return "fq"
        if months == 12 and self.start.month == 1:
            return "year"
        if months == 12 and self.start.month == 7:
            return "fy"
        return None

    def contains(self, day: str) -> bool:
        return (self.start is None or day >= self.start.isoformat()) and (
            self.end is None or day < self.end.isoformat()
        )

    def describe(self) -> dict[str, str | None]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "period": self.period_kind,
        }


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _months_after(day: date, months: int) -> date:
    for _ in range(months):
        day = _next_month(day)
    return day


def parse_period(period: str) -> Window:
    """`all`, `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `fyYYYY` or `fyYYYY-qN`."""
    try:
        if period == "all":
            return Window()
        if len(period) == 6 and period.startswith("fy") and period[2:].isdigit():
            start = fiscal_year_start(int(period[2:]))
            return Window(start, date(start.year + 1, 7, 1))
        if len(period) == 9 and period.startswith("fy") and period[6:8] == "-q":
            quarter = int(period[8])
            if period[2:6].isdigit() and 1 <= quarter <= 4:
                start = fiscal_quarter_start(int(period[2:6]), quarter)
                return Window(start, _months_after(start, 3))
        if len(period) == 4 and period.isdigit():
            year = int(period)
            return Window(date(year, 1, 1), date(year + 1, 1, 1))
        if len(period) == 7:
            start = date.fromisoformat(period + "-01")
            return Window(start, _next_month(start))
        if len(period) == 10:
            day = date.fromisoformat(period)
            return Window(day, day + timedelta(days=1))
    except ValueError:
        pass
    raise WindowError(ACCEPTED_PERIODS)


def _local_day(moment: datetime, zone: ZoneInfo) -> tuple[date, bool]:
    if moment.tzinfo is None:
        raise WindowError("start and end need a time zone, e.g. 2018-01-01T00:00:00-06:00")
    local = moment.astimezone(zone)
    return local.date(), local.time() == datetime.min.time()


def window_from(
    period: str | None,
    start: datetime | None,
    end: datetime | None,
    zone: ZoneInfo,
    as_of: date | None = None,
    today: date | None = None,
) -> Window:
    """One of a period, start/end, or `as_of` (cumulative: everything up to and including that
    day). Start rounds down and end rounds up to a day in `zone`, so a window never silently
    drops part of the days it touches."""
    if sum(x is not None for x in (period, as_of)) + (start is not None or end is not None) > 1:
        raise WindowError("give one of period, start/end or as_of")
    if as_of is not None:
        if today is not None and as_of > today:
            raise WindowError(
                f"as_of must not be in the future (today is {today.isoformat()} in the "
                "program's time zone); cumulative totals are as of a day that has begun"
            )
        return Window(None, as_of + timedelta(days=1))
    if period is not None:
        return parse_period(period)
    first = _local_day(start, zone)[0] if start else None
    last: date | None = None
    if end is not None:
        day, midnight = _local_day(end, zone)
        last = day if midnight else day + timedelta(days=1)
    if first and last and first >= last:
        raise WindowError("start must be before end")
    return Window(first, last)
