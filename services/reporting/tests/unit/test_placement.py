"""Placement views on in-memory stores: projections, derivations, suppression, freshness."""

import random
from datetime import UTC, datetime, timedelta
from statistics import median_low

from cmhl_reporting.application.placement import FacilityFreshnessProjector
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.domain.placement import (
    FacilityState,
    facility_state,
    freshness,
    mean_of,
    median_of,
    newest,
    publish_placement,
    raw_placement,
)
from cmhl_reporting.domain.suppression import SUPPRESSED
from cmhl_reporting.domain.views import Counters
from cmhl_reporting.domain.window import Window, parse_period
from cmhl_servicekit.consuming import Delivery

from ..conftest import with_duplicates
from ..placement_stream import CHICAGO, bed_update, expected_placement, make_placement_stream
from .fakes import InMemoryViewStore, by_topic, deliveries

NOW = datetime(2007, 3, 10, 12, tzinfo=UTC)


class InMemoryFacilityStates:
    def __init__(self) -> None:
        self.states: dict[str, FacilityState] = {}

    async def keep_newest(self, states: list[FacilityState]) -> None:
        for state in states:
            if state.is_newer_than(self.states.get(state.facility_id)):
                self.states[state.facility_id] = state

    async def all(self) -> list[FacilityState]:
        return list(self.states.values())


def test_median_from_a_histogram_equals_the_median_of_the_values() -> None:
    rng = random.Random(3)
    for _ in range(200):
        values = [rng.randrange(0, 140) for _ in range(rng.randrange(1, 60))]
        histogram: dict[int, int] = {}
        for v in values:
            histogram[v] = histogram.get(v, 0) + 1
        assert median_of(histogram) == float(median_low(values))
        assert mean_of(histogram) == round(sum(values) / len(values), 2)
    assert median_of({}) is None
    assert median_of({5: 0}) is None
    assert median_of({3: 2, 40: 2}) == 3.0  # an even count: the lower middle value


async def test_views_equal_the_distinct_events_with_duplicates_in_random_batches() -> None:
    stream = make_placement_stream(requests=80, seed=21)
    sent = with_duplicates(stream.events, share=0.1, seed=22)
    store = InMemoryViewStore()
    projector = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
    rng = random.Random(23)
    for group in by_topic(deliveries(sent)).values():
        start = 0
        while start < len(group):
            size = rng.randrange(1, 15)
            await projector.apply(group[start : start + size])
            start += size
    raw = raw_placement(store.counters(), parse_period(stream.month))
    truth = expected_placement(stream.events)
    assert raw == truth
    assert truth["requests"] == 80
    assert truth["completed"]["placed"] > 10
    assert truth["past_96_hours"]["completed"]["placed"]
    # Nothing of this month shows in the next one.
    following = raw_placement(store.counters(), Window(stream.end, None))
    assert following["requests"] == 0
    assert following["hours_to_placement"]["median_hours"] is None


def _raw(placed: int, failed: int, out: int, inside: int) -> dict[str, object]:
    return {
        "requests": placed + failed,
        "attempts": {"total": 40, "by_result": {"accepted": placed, "no_answer": 40 - placed}},
        "completed": {"placed": placed, "failed": failed},
        "hours_to_placement": {"placements": placed, "median_hours": 30.0},
        "past_96_hours": {
            "completed": {"placed": 2, "failed": 0},
            "flagged": {"due_soon": 12, "overdue": 3},
        },
        "facilities_contacted": {
            "placements": placed,
            "mean_per_placement": 2.5,
            "failed_searches": failed,
            "mean_per_failed_search": 4.0,
        },
        "region": {"out_of_region": out, "in_region": inside, "unknown": placed - out - inside},
    }


def test_out_of_region_share_and_figures_are_published_from_shown_counts() -> None:
    published = publish_placement(_raw(placed=40, failed=20, out=12, inside=28))
    region = published["region"]
    assert region["counts"] == {"out_of_region": 12, "in_region": 28, "unknown": 0}
    assert region["out_of_region_percent"] == 30.0
    assert published["hours_to_placement"] == {"placements": 40, "median_hours": 30.0}
    assert published["facilities_contacted"]["mean_per_placement"] == 2.5
    assert published["past_96_hours"]["completed"] == SUPPRESSED
    assert published["past_96_hours"]["flagged"] == {"due_soon": 12, "overdue": SUPPRESSED}


def test_small_counts_hide_their_statistics_and_shares() -> None:
    published = publish_placement(_raw(placed=40, failed=4, out=5, inside=35))
    # 4 failed searches are hidden, so are their mean and (complementary) the placements.
    assert published["completed"]["by_outcome"] == {"placed": SUPPRESSED, "failed": SUPPRESSED}
    assert published["facilities_contacted"]["mean_per_failed_search"] is None
    assert published["hours_to_placement"]["median_hours"] is None
    assert published["region"]["placements"] == SUPPRESSED
    assert published["region"]["out_of_region_percent"] is None
    few = publish_placement(_raw(placed=30, failed=30, out=5, inside=25))
    assert few["region"]["counts"]["out_of_region"] == SUPPRESSED
    assert few["region"]["counts"]["in_region"] == SUPPRESSED  # else 30 - 25 gives it away
    assert few["region"]["out_of_region_percent"] is None
    assert few["hours_to_placement"]["median_hours"] == 30.0


def test_the_newest_facility_state_wins_in_any_order() -> None:
    start = datetime(2006, 5, 1, tzinfo=UTC)
    updates = [
        facility_state(bed_update("fac-a", "region-1", s, start + timedelta(hours=s)))
        for s in range(1, 6)
    ]
    for seed in range(20):
        shuffled = list(updates)
        random.Random(seed).shuffle(shuffled)
        assert newest(shuffled)["fac-a"].sequence == 5


async def test_a_redelivered_older_update_never_replaces_the_newest() -> None:
    start = datetime(2006, 5, 1, tzinfo=UTC)
    states = InMemoryFacilityStates()
    projector = FacilityFreshnessProjector(states)
    old = bed_update("fac-a", "region-1", 1, start, available=7)
    new = bed_update("fac-a", "region-1", 2, start + timedelta(hours=3), available=1)
    topic = type(old).topic()
    await projector.apply([Delivery(old, topic, 0, 0), Delivery(new, topic, 0, 1)])
    await projector.apply([Delivery(old, topic, 0, 0)])  # replayed after a crash
    kept = states.states["fac-a"]
    assert (kept.sequence, kept.units[0].available) == (2, 1)

    counters = Counters()
    counters.add([("beds|updates|facility=fac-a", "2006-05-01", 2)])
    counters.add([("beds|stale|facility=fac-b", "2006-05-02", 1)])
    rows = freshness(await states.all(), counters, parse_period("2006-05"), NOW)
    assert [r["facility_id"] for r in rows] == ["fac-a", "fac-b"]
    a, b = rows
    assert a["last_reported_at"] == (start + timedelta(hours=3)).isoformat()
    assert a["age_hours"] == round((NOW - start - timedelta(hours=3)).total_seconds() / 3600, 2)
    assert (a["updates"], a["stale_reminders"], a["units"][0]["available"]) == (2, 0, 1)
    assert (b["last_reported_at"], b["stale_reminders"]) == (None, 1)
    assert freshness(await states.all(), counters, parse_period("2006-06"), NOW)[0]["updates"] == 0
