"""Placement events of one calendar month and the figures they imply, for unit and integration
tests. The truth (`expected_placement`) is recomputed from the distinct events with plain
Python, independently of the projections, so a test compares two separate derivations."""

import math
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median_low
from typing import Any
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

REGIONS = ["region-1", "region-2", "region-3"]
COUNTIES = ["29019", "29510", "29077"]
CHICAGO = ZoneInfo("America/Chicago")
RESULTS = ["no_capacity", "clinical_exclusion", "no_answer"]


@dataclass
class PlacementStream:
    """Distinct events whose every moment falls in `month` (a month of 2005-2008 of its own)."""

    month: str
    facilities: list[str]
    events: list[IntegrationEvent] = field(default_factory=list)

    @property
    def start(self) -> date:
        return date.fromisoformat(self.month + "-01")

    @property
    def end(self) -> date:
        first = self.start
        return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def _header(n: int) -> dict[str, Any]:
    return {"producer": "test", "correlation_id": f"placement-{n}"}


def make_placement_stream(requests: int, seed: int, facilities: int = 3) -> PlacementStream:
    rng = random.Random(seed)
    month = f"{rng.randrange(2005, 2009)}-{rng.randrange(1, 13):02d}"
    tag = uuid.UUID(int=rng.getrandbits(128)).hex[:10]
    stream = PlacementStream(month, [f"fac-{tag}-{i}" for i in range(facilities)])
    first = datetime(stream.start.year, stream.start.month, 1, tzinfo=CHICAGO)
    regions = {f: rng.choice(REGIONS) for f in stream.facilities}
    for n in range(requests):
        request_id = uuid.UUID(int=rng.getrandbits(128))
        region = rng.choice(REGIONS)
        # Completed from day 7 on; at most 130 hours after detention: all inside the month.
        completed_at = first + timedelta(days=7, seconds=rng.randrange(20 * 86_400))
        hours = rng.uniform(2, 130)
        detained = completed_at - timedelta(hours=hours)
        common: dict[str, Any] = {
            "request_id": request_id,
            "referral_id": uuid.UUID(int=rng.getrandbits(128)),
            "detention_started_at": detained,
        }
        about = (str(request_id),)
        requested_at = detained + timedelta(minutes=30)
        stream.events.append(
            PlacementRequestedV1.create(
                about=(*about, "requested"),
                **_header(n),
                **common,
                liaison_id="liaison-01",
                county_fips=rng.choice(COUNTIES),
                cmhc_region=region,
                age_group="adult",
                requested_at=requested_at,
                deadline_at=detained + timedelta(hours=96),
            )
        )
        placed = n % 3 != 0  # two in three placed: both outcomes above the suppression limit
        called = rng.sample(stream.facilities, rng.randrange(1, facilities + 1))
        for seq, facility in enumerate(called, start=1):
            last = seq == len(called)
            stream.events.append(
                PlacementAttemptedV1.create(
                    about=(*about, "attempt", str(seq)),
                    **_header(n),
                    **common,
                    sequence=seq,
                    facility_id=facility,
                    facility_county_fips="29019",
                    facility_cmhc_region=regions[facility],
                    attempted_at=requested_at + (completed_at - requested_at) * seq / (seq + 1),
                    result="accepted" if placed and last else rng.choice(RESULTS),
                )
            )
        for flag, threshold in (("due_soon", 72), ("overdue", 90)):
            if hours > threshold:
                stream.events.append(
                    PlacementDeadlineFlaggedV1.create(
                        about=(*about, flag),
                        **_header(n),
                        **common,
                        liaison_id="liaison-01",
                        flag=flag,
                        threshold_hours=threshold,
                        deadline_at=detained + timedelta(hours=96),
                        flagged_at=detained + timedelta(hours=threshold),
                    )
                )
        placed_at = called[-1] if placed else None
        facility_region = regions[placed_at] if placed_at else None
        stated = rng.random() < 0.5  # else reporting derives it from the two regions
        stream.events.append(
            PlacementCompletedV1.create(
                about=(*about, "completed"),
                **_header(n),
                **common,
                outcome="placed" if placed else "failed",
                completed_at=completed_at,
                hours_from_detention=hours,
                county_fips="29019",
                cmhc_region=region,
                facility_id=placed_at,
                facility_cmhc_region=facility_region,
                out_of_region=(facility_region != region) if placed and stated else None,
                attempts=len(called),
                facilities_contacted=len(called),
                failure_reason=None if placed else "no_bed",
            )
        )
    for f_index, facility in enumerate(stream.facilities):
        for seq in range(1, rng.randrange(2, 5)):
            updated_at = first + timedelta(days=seq, hours=f_index)
            stream.events.append(bed_update(facility, regions[facility], seq, updated_at))
        stream.events.append(
            BedAvailabilityStaleV1.create(
                about=(facility, "stale", "1"),
                **_header(0),
                facility_id=facility,
                county_fips="29019",
                cmhc_region=regions[facility],
                sequence=1,
                stale_units=["adult_acute"],
                last_updated_at=first + timedelta(days=1),
                stale_after_hours=12,
                flagged_at=first + timedelta(days=1, hours=12),
            )
        )
    return stream


def bed_update(
    facility: str, region: str, sequence: int, updated_at: datetime, available: int = 2
) -> BedAvailabilityUpdatedV1:
    return BedAvailabilityUpdatedV1.create(
        about=(facility, str(sequence)),
        **_header(sequence),
        facility_id=facility,
        county_fips="29019",
        cmhc_region=region,
        sequence=sequence,
        updated_units=["adult_acute"],
        units=[
            {
                "unit_type": "adult_acute",
                "capacity": 10,
                "available": available,
                "reported_at": updated_at,
            }
        ],
        updated_at=updated_at,
        updated_by="staff-1",
    )


def expected_placement(events: list[IntegrationEvent]) -> dict[str, Any]:
    """The raw placement view of the stream's month, from the distinct events."""
    distinct = list({e.event_id: e for e in events}.values())
    requested = {e.request_id for e in distinct if isinstance(e, PlacementRequestedV1)}
    attempts = [e for e in distinct if isinstance(e, PlacementAttemptedV1)]
    completions = {e.request_id: e for e in distinct if isinstance(e, PlacementCompletedV1)}
    flags = {(e.request_id, e.flag) for e in distinct if isinstance(e, PlacementDeadlineFlaggedV1)}
    placed = [c for c in completions.values() if c.outcome == "placed"]
    failed = [c for c in completions.values() if c.outcome == "failed"]
    hours = [math.floor(c.hours_from_detention) for c in placed]
    regions: Counter[str] = Counter()
    for c in placed:
        if c.facility_cmhc_region is None:
            regions["unknown"] += 1
        else:
            regions[
                "out_of_region" if c.facility_cmhc_region != c.cmhc_region else "in_region"
            ] += 1

    def mean(values: list[int]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    return {
        "requests": len(requested),
        "attempts": {
            "total": len(attempts),
            "by_result": dict(Counter(a.result.value for a in attempts)),
        },
        "completed": {"placed": len(placed), "failed": len(failed)},
        "hours_to_placement": {
            "placements": len(placed),
            "median_hours": float(median_low(hours)) if hours else None,
        },
        "past_96_hours": {
            "completed": {
                o: sum(
                    1
                    for c in completions.values()
                    if c.outcome == o and c.hours_from_detention > 96
                )
                for o in ("placed", "failed")
            },
            "flagged": {f: sum(1 for _, g in flags if g == f) for f in ("due_soon", "overdue")},
        },
        "facilities_contacted": {
            "placements": len(placed),
            "mean_per_placement": mean([c.facilities_contacted for c in placed]),
            "failed_searches": len(failed),
            "mean_per_failed_search": mean([c.facilities_contacted for c in failed]),
        },
        "region": {k: regions[k] for k in ("out_of_region", "in_region", "unknown")},
    }


def expected_facilities(events: list[IntegrationEvent]) -> dict[str, dict[str, Any]]:
    """Per facility: the newest update's sequence and time, and updates and reminders."""
    distinct = list({e.event_id: e for e in events}.values())
    out: dict[str, dict[str, Any]] = {}
    for e in distinct:
        if isinstance(e, BedAvailabilityUpdatedV1):
            row = out.setdefault(e.facility_id, {"updates": 0, "stale_reminders": 0, "sequence": 0})
            row["updates"] += 1
            if e.sequence > row["sequence"]:
                row["sequence"], row["last_reported_at"] = e.sequence, e.updated_at.isoformat()
        elif isinstance(e, BedAvailabilityStaleV1):
            row = out.setdefault(e.facility_id, {"updates": 0, "stale_reminders": 0, "sequence": 0})
            row["stale_reminders"] += 1
    return out
