"""The program's calendar: days in its time zone, fiscal years and quarters.

A state's fiscal year YYYY runs from July 1 of YYYY-1 to June 30 of YYYY (Missouri's, and most
states'); its quarters q1..q4 start in July, October, January and April. Every count is bucketed
by the day an event happened *in the program's time zone* (America/Chicago by default): a
referral at 7 pm Central on June 30 belongs to the fiscal year that ends that day, not the next."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

PERIOD_KINDS = ("all", "fy", "fq", "year", "month")
"""The period kinds with their own unique-people claims (a distinct count cannot be summed)."""


def program_day(moment: datetime, zone: ZoneInfo) -> str:
    """`YYYY-MM-DD` of `moment` in the program's time zone (an aware datetime)."""
    return moment.astimezone(zone).date().isoformat()


def fiscal_year(day: date) -> int:
    return day.year + 1 if day.month >= 7 else day.year


def fiscal_quarter(day: date) -> int:
    return (day.month - 7) % 12 // 3 + 1


def fiscal_year_start(year: int) -> date:
    return date(year - 1, 7, 1)


def fiscal_quarter_start(year: int, quarter: int) -> date:
    month = 7 + 3 * (quarter - 1)
    return date(year - 1 + (month > 12), (month - 1) % 12 + 1, 1)


def period_keys(day: str) -> dict[str, str]:
    """The periods a day belongs to, by kind: `{"fy": "fy2019", "fq": "fy2019-q1", ...}`."""
    d = date.fromisoformat(day)
    year = fiscal_year(d)
    return {
        "all": "all",
        "fy": f"fy{year}",
        "fq": f"fy{year}-q{fiscal_quarter(d)}",
        "year": day[:4],
        "month": day[:7],
    }
