"""The annual report: the brochure's page for a period on the publication grid, as figures that
both renderers (HTML with a print stylesheet, and PDF) lay out. Every count comes from the grid's
plan, so the report shows exactly what the dashboard and the metrics API publish for the period
(suppressed alike); trainings and officers are public servants' records and are not suppressed."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cmhl_reporting.domain.grid import GridPeriod
from cmhl_reporting.domain.suppression import Published

LABELS = {
    "municipal_police": "Municipal police",
    "sheriff": "Sheriff's departments",
    "court": "Courts",
    "other": "Other",
    "threat_to_self_or_others": "Threat to self or others",
    "behavioral_needs": "Behavioral needs",
    "substance_use": "Substance use",
    "engaged_in_treatment": "Engaged in treatment",
    "hospitalized": "Hospitalized",
    "arrested_or_jailed": "Arrested or jailed",
    "housing_stable": "Housing stable",
    "declined_services": "Declined services",
    "moved_away": "Moved away",
    "appointment_kept": "Appointment kept",
    "appointment_missed": "Appointment missed",
}


@dataclass(frozen=True)
class Share:
    label: str
    count: Published
    percent: float | None


@dataclass(frozen=True)
class AnnualReport:
    title: str
    period: str  # e.g. "State fiscal year 2018: July 1, 2017 to June 30, 2018"
    figures_read_at: str
    referrals: Published
    sources: list[Share]
    needs: list[Share]
    trainings: int
    seats_filled: int
    officers_trained: int
    follow_ups_completed: Published
    outcomes: list[Share]
    placement_requests: Published
    placed: Published
    not_placed: Published
    median_hours_to_placement: float | None
    completed_past_96_hours: Published


def _day(value: date) -> str:
    return f"{value:%B} {value.day}, {value.year}"


def describe(period: GridPeriod) -> str:
    window = period.window
    assert window.end is not None
    last = window.end - timedelta(days=1)
    if period.kind == "fy":
        assert window.start is not None
        return f"State fiscal year {period.key[2:]}: {_day(window.start)} to {_day(last)}"
    if period.kind == "fq":
        assert window.start is not None
        year, quarter = period.key[2:].split("-q")
        return f"Fiscal year {year}, quarter {quarter}: {_day(window.start)} to {_day(last)}"
    return f"Since the program began, as of {_day(last)}"


def _shares(counts: dict[str, Published], percents: dict[str, float | None]) -> list[Share]:
    rank = sorted(counts, key=lambda k: (-(percents.get(k) or -1), k))
    return [
        Share(LABELS.get(k, k.replace("_", " ").capitalize()), counts[k], percents.get(k))
        for k in rank
    ]


def annual_report(
    period: GridPeriod, statewide: dict[str, Any], placement: dict[str, Any], read_at: str
) -> AnnualReport:
    """From the grid's statewide and placement answers for the period."""
    referrals = statewide["referrals"]
    trainings = statewide["trainings"]
    follow_ups = statewide["follow_ups"]
    return AnnualReport(
        title="Community Mental Health Liaisons: making the connection",
        period=describe(period),
        figures_read_at=read_at,
        referrals=referrals["total"],
        sources=_shares(referrals["by_source"], referrals["by_source_percent"]),
        needs=_shares(referrals["by_presenting_need"], referrals["by_presenting_need_percent"]),
        trainings=trainings["sessions"],
        seats_filled=trainings["seats_filled"],
        officers_trained=trainings["officers_trained"],
        follow_ups_completed=follow_ups["completed"],
        outcomes=_shares(follow_ups["outcomes"], follow_ups["outcomes_percent"]),
        placement_requests=placement["requests"],
        placed=placement["completed"]["by_outcome"]["placed"],
        not_placed=placement["completed"]["by_outcome"]["failed"],
        median_hours_to_placement=placement["hours_to_placement"]["median_hours"],
        completed_past_96_hours=placement["past_96_hours"]["completed"],
    )
