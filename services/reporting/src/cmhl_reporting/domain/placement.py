"""Inpatient placement views: pure projections of placement events and their published figures.

Placement events become day-bucketed counter increments like referrals do (see projections.py
and docs/adr/0003-reporting-counters.md): each event counts on the day it happened in the
program's time zone (a request on the day it was opened, a completion on the day it ended, a
flag on the day it was raised). What is counted once per request (opened, ended, flagged) rides
on a claim keyed by the request, so a re-sent event with another id cannot count the request
twice. Hours to placement and facilities contacted are histograms of whole numbers, so the
median and the mean over any window are exact sums of days.

Bed availability is facility data, not about a person: its latest state per facility is kept
apart (`FacilityState`, newest sequence wins) and is published without suppression."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cmhl_contracts import (
    BedAvailabilityStaleV1,
    BedAvailabilityUpdatedV1,
    IntegrationEvent,
    PlacementAttemptedV1,
    PlacementCompletedV1,
    PlacementDeadlineFlaggedV1,
    PlacementRequestedV1,
)
from cmhl_reporting.domain.calendar import program_day
from cmhl_reporting.domain.suppression import (
    SUPPRESSED,
    Published,
    percent,
    suppress_count,
    suppress_group,
)
from cmhl_reporting.domain.window import Window

Increment = tuple[str, str]
Claimed = list[tuple[str, list[Increment]]]

DEADLINE_HOURS = 96
"""The detention limit (RSMo 632.305): a request still open after it ran past the deadline."""

PLACEMENT_COUNTED_EVENTS: tuple[type[IntegrationEvent], ...] = (
    BedAvailabilityUpdatedV1,
    BedAvailabilityStaleV1,
    PlacementRequestedV1,
    PlacementAttemptedV1,
    PlacementCompletedV1,
    PlacementDeadlineFlaggedV1,
)
OUTCOMES = ("placed", "failed")
REGIONS = ("out_of_region", "in_region", "unknown")
FLAGS = ("due_soon", "overdue")


def _region(event: PlacementCompletedV1) -> str:
    """Out of region as the placement service judged it, else from the two regions it names."""
    out = event.out_of_region
    if out is None and event.facility_cmhc_region is not None:
        out = event.facility_cmhc_region != event.cmhc_region
    if out is None:
        return "unknown"
    return "out_of_region" if out else "in_region"


def project_placement(event: IntegrationEvent, zone: ZoneInfo) -> tuple[list[Increment], Claimed]:
    """(always, claimed) increments of a placement event: the parts of an `Effects`."""
    match event:
        case BedAvailabilityUpdatedV1():
            return [
                (f"beds|updates|facility={event.facility_id}", program_day(event.updated_at, zone))
            ], []
        case BedAvailabilityStaleV1():
            return [
                (f"beds|stale|facility={event.facility_id}", program_day(event.flagged_at, zone))
            ], []
        case PlacementRequestedV1():
            day = program_day(event.requested_at, zone)
            return [], [(f"pl|{event.request_id}|requested", [("placement|requested", day)])]
        case PlacementAttemptedV1():
            day = program_day(event.attempted_at, zone)
            result = event.result.value
            return [("placement|attempts", day), (f"placement|attempts|result={result}", day)], []
        case PlacementCompletedV1():
            return [], [(f"pl|{event.request_id}|completed", _completion(event, zone))]
        case PlacementDeadlineFlaggedV1():
            increments = [(f"placement|flagged={event.flag}", program_day(event.flagged_at, zone))]
            return [], [(f"pl|{event.request_id}|flag={event.flag}", increments)]
    raise TypeError(f"no placement projection for {type(event).__name__}")


def _completion(event: PlacementCompletedV1, zone: ZoneInfo) -> list[Increment]:
    day = program_day(event.completed_at, zone)
    outcome = event.outcome
    increments = [
        (f"placement|completed|outcome={outcome}", day),
        (f"{outcome}_contacted={event.facilities_contacted}", day),
    ]
    if event.hours_from_detention > DEADLINE_HOURS:
        increments.append((f"placement|past_96h|outcome={outcome}", day))
    if outcome == "placed":
        increments.append((f"placed_hours={math.floor(event.hours_from_detention)}", day))
        increments.append((f"placement|region={_region(event)}", day))
    return increments


# ------------------------------------------------------------------ derivations


def median_of(histogram: Mapping[int, int]) -> float | None:
    """The (low) median of the values a histogram counts, without expanding it."""
    count = sum(histogram.values())
    if count == 0:
        return None
    rank = (count - 1) // 2  # median_low: the lower middle value when the count is even
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            return float(value)
    raise AssertionError("unreachable: ranks stay below the count")  # pragma: no cover


def mean_of(histogram: Mapping[int, int]) -> float | None:
    count = sum(histogram.values())
    if count == 0:
        return None
    return round(sum(value * n for value, n in histogram.items()) / count, 2)


class CounterView(Protocol):
    """What the placement figures read from the counters (domain.views.Counters)."""

    def total(self, metric: str, window: Window) -> int: ...

    def values(self, prefix: str) -> list[str]: ...


def _histogram(counters: CounterView, family: str, window: Window) -> dict[int, int]:
    cells = {int(v): counters.total(f"{family}={v}", window) for v in counters.values(family)}
    return {v: n for v, n in cells.items() if n}


def _cells(
    counters: CounterView, metric: str, keys: Iterable[str], window: Window
) -> dict[str, int]:
    return {k: counters.total(f"{metric}={k}", window) for k in keys}


def raw_placement(counters: CounterView, window: Window) -> dict[str, Any]:
    """Exact figures of a window before publication."""
    hours = _histogram(counters, "placed_hours", window)
    contacted = _histogram(counters, "placed_contacted", window)
    failed_contacted = _histogram(counters, "failed_contacted", window)
    results = {
        v: n
        for v in counters.values("placement|attempts|result")
        if (n := counters.total(f"placement|attempts|result={v}", window))
    }
    return {
        "requests": counters.total("placement|requested", window),
        "attempts": {"total": counters.total("placement|attempts", window), "by_result": results},
        "completed": _cells(counters, "placement|completed|outcome", OUTCOMES, window),
        "hours_to_placement": {
            "placements": sum(hours.values()),
            "median_hours": median_of(hours),
        },
        "past_96_hours": {
            "completed": _cells(counters, "placement|past_96h|outcome", OUTCOMES, window),
            "flagged": _cells(counters, "placement|flagged", FLAGS, window),
        },
        "facilities_contacted": {
            "placements": sum(contacted.values()),
            "mean_per_placement": mean_of(contacted),
            "failed_searches": sum(failed_contacted.values()),
            "mean_per_failed_search": mean_of(failed_contacted),
        },
        "region": _cells(counters, "placement|region", REGIONS, window),
    }


def _statistic(count: Published, value: float | None) -> float | None:
    """A median or mean of a handful of people describes them: shown only with its count."""
    return None if isinstance(count, str) or count == 0 else value


def publish_placement(raw: dict[str, Any]) -> dict[str, Any]:
    """Counts of requests (people) from 1 to 10 are suppressed, with complementary suppression
    in groups that add up to a shown total, and no statistic or share from a hidden count."""
    completed = raw["completed"]
    outcomes, completed_total = suppress_group(completed, sum(completed.values()))
    placed = outcomes["placed"]
    attempts = raw["attempts"]
    results, attempts_total = suppress_group(attempts["by_result"], attempts["total"])
    past = raw["past_96_hours"]["completed"]
    past_cells, past_total = suppress_group(past, sum(past.values()))
    region = raw["region"]
    region_cells, region_total = suppress_group(region, sum(region.values()))
    if isinstance(placed, str):
        # The region cells add up to the placements: with those hidden, no cell may show them.
        region_cells = {k: SUPPRESSED if n else 0 for k, n in region.items()}
        region_total = SUPPRESSED
    known: Published = (
        SUPPRESSED
        if SUPPRESSED in (region_cells["out_of_region"], region_cells["in_region"])
        else region["out_of_region"] + region["in_region"]
    )
    hours = raw["hours_to_placement"]
    contacted = raw["facilities_contacted"]
    failed = outcomes["failed"]
    return {
        "requests": suppress_count(raw["requests"]),
        "attempts": {"total": attempts_total, "by_result": results},
        "completed": {"total": completed_total, "by_outcome": outcomes},
        "hours_to_placement": {
            "placements": placed,
            "median_hours": _statistic(placed, hours["median_hours"]),
        },
        "past_96_hours": {
            "completed": past_total,
            "completed_by_outcome": past_cells,
            "flagged": {k: suppress_count(v) for k, v in raw["past_96_hours"]["flagged"].items()},
        },
        "facilities_contacted": {
            "placements": placed,
            "mean_per_placement": _statistic(placed, contacted["mean_per_placement"]),
            "failed_searches": failed,
            "mean_per_failed_search": _statistic(failed, contacted["mean_per_failed_search"]),
        },
        "region": {
            "placements": region_total,
            "counts": region_cells,
            # Share among placements whose region is known: only from shown counts.
            "out_of_region_percent": percent(region_cells["out_of_region"], known),
        },
    }


# ------------------------------------------------------------------ bed-availability freshness


@dataclass(frozen=True)
class UnitState:
    unit_type: str
    capacity: int
    available: int
    reported_at: datetime


@dataclass(frozen=True)
class FacilityState:
    """A facility's latest bed numbers, as its highest-sequence update says."""

    facility_id: str
    county_fips: str
    cmhc_region: str
    sequence: int
    updated_at: datetime
    units: tuple[UnitState, ...]

    def is_newer_than(self, other: "FacilityState | None") -> bool:
        """Sequence orders a facility's updates (its events share one partition); an equal or
        lower one is a redelivery or an older update and never replaces what is kept."""
        return other is None or self.sequence > other.sequence


def facility_state(event: BedAvailabilityUpdatedV1) -> FacilityState:
    return FacilityState(
        event.facility_id,
        event.county_fips,
        event.cmhc_region,
        event.sequence,
        event.updated_at,
        tuple(
            UnitState(u.unit_type.value, u.capacity, u.available, u.reported_at)
            for u in event.units
        ),
    )


def newest(states: Iterable[FacilityState]) -> dict[str, FacilityState]:
    """The newest state per facility, whatever order the states come in."""
    kept: dict[str, FacilityState] = {}
    for state in states:
        if state.is_newer_than(kept.get(state.facility_id)):
            kept[state.facility_id] = state
    return kept


def _hours(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds() / 3600, 2)


def freshness(
    states: Iterable[FacilityState], counters: CounterView, window: Window, now: datetime
) -> list[dict[str, Any]]:
    """Per facility: its latest report and how old it is now, and its updates and stale
    reminders in the window. Facilities with updates in the window but no state kept yet (the
    state consumer lags) are listed with `last_reported_at: null`."""
    kept = newest(states)
    families = ("beds|updates|facility", "beds|stale|facility")
    ids = set(kept) | {v for family in families for v in counters.values(family)}
    rows = []
    for facility in sorted(ids):
        state = kept.get(facility)
        row: dict[str, Any] = {
            "facility_id": facility,
            "updates": counters.total(f"beds|updates|facility={facility}", window),
            "stale_reminders": counters.total(f"beds|stale|facility={facility}", window),
        }
        if state is None:
            row |= {"last_reported_at": None, "age_hours": None, "units": []}
        else:
            oldest = min((u.reported_at for u in state.units), default=state.updated_at)
            row |= {
                "county_fips": state.county_fips,
                "cmhc_region": state.cmhc_region,
                "sequence": state.sequence,
                "last_reported_at": state.updated_at.isoformat(),
                "age_hours": _hours(now, state.updated_at),
                "oldest_unit_age_hours": _hours(now, oldest),
                "units": [
                    {
                        "unit_type": u.unit_type,
                        "available": u.available,
                        "capacity": u.capacity,
                        "reported_at": u.reported_at.isoformat(),
                        "age_hours": _hours(now, u.reported_at),
                    }
                    for u in state.units
                ],
            }
        rows.append(row)
    return rows
