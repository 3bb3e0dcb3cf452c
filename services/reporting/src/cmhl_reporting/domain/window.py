"""Time windows of the metrics API, at the views' resolution: whole UTC days.

A window is `[start, end)` in days. Unique people are exact only for a calendar period (all
time, a year, a month), because each period kind has its own claims; `period_kind` says which."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


class WindowError(ValueError):
    """A window the API cannot serve; the message is the reason given to the caller."""


@dataclass(frozen=True)
class Window:
    start: date | None = None
    end: date | None = None

    @property
    def period_kind(self) -> str | None:
        """`all`, `year` or `month` when the window is exactly such a period, else None."""
        if self.start is None and self.end is None:
            return "all"
        if self.start is None or self.end is None or self.start.day != 1:
            return None
        if self.end == _next_month(self.start):
            return "month"
        if self.start.month == 1 and self.end == date(self.start.year + 1, 1, 1):
            return "year"
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


def parse_period(period: str) -> Window:
    """`all`, `YYYY`, `YYYY-MM` or `YYYY-MM-DD`."""
    try:
        if period == "all":
            return Window()
        if len(period) == 4:
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
    raise WindowError("period must be all, YYYY, YYYY-MM or YYYY-MM-DD")


def _utc_day(moment: datetime) -> tuple[date, bool]:
    if moment.tzinfo is None:
        raise WindowError("start and end need a time zone, e.g. 2018-01-01T00:00:00Z")
    utc = moment.astimezone(UTC)
    return utc.date(), utc.time() == datetime.min.time()


def window_from(period: str | None, start: datetime | None, end: datetime | None) -> Window:
    """Either a period or start/end. Start rounds down and end rounds up to a UTC day, so a
    window never silently drops part of the days it touches."""
    if period is not None:
        if start is not None or end is not None:
            raise WindowError("give either period or start/end, not both")
        return parse_period(period)
    first = _utc_day(start)[0] if start else None
    last: date | None = None
    if end is not None:
        day, midnight = _utc_day(end)
        last = day if midnight else day + timedelta(days=1)
    if first and last and first >= last:
        raise WindowError("start must be before end")
    return Window(first, last)
