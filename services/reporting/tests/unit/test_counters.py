"""The counters hold the whole history's daily series in the serving process: they must add up
as before and stay out of the garbage collector's way (a full collection walks every entry of
every container it tracks, which paused requests at the full history)."""

import gc

from cmhl_reporting.domain.views import Counters
from cmhl_reporting.domain.window import Window


def test_counts_add_up_per_metric_and_day_in_any_order() -> None:
    counters = Counters()
    counters.add([("referrals", "2026-11-01", 2), ("referrals", "2026-11-02", 1)])
    counters.add([("referrals", "2026-11-01", 3), ("follow_ups|due", "2026-11-01", 4)])

    assert counters.series() == {
        "referrals": {"2026-11-01": 5, "2026-11-02": 1},
        "follow_ups|due": {"2026-11-01": 4},
    }
    assert counters.total("referrals", Window(None, None)) == 6
    assert counters.total("not counted", Window(None, None)) == 0
    assert counters.version == 2


def test_daily_series_are_not_tracked_by_the_garbage_collector_once_collected() -> None:
    counters = Counters()
    counters.add(
        (f"referrals|county=29{n % 115:03d}", f"2026-{1 + n % 12:02d}-01", 1) for n in range(2_000)
    )
    gc.collect()

    series = counters.series()
    assert series
    assert not any(gc.is_tracked(days) for days in series.values())
