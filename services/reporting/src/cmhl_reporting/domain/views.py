"""The views as read: day-bucketed counters summed over a window, and trainings from their facts.

`Counters` is the sum of every applied segment (see projections); reads sum a few metrics over
the days of a window in memory, so no request scans the event facts."""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from statistics import median_low
from typing import Any

from cmhl_reporting.domain.projections import TrainingFact
from cmhl_reporting.domain.suppression import (
    SUPPRESSED,
    Published,
    is_small,
    percents,
    suppress_count,
    suppress_group,
)
from cmhl_reporting.domain.window import Window

FUNNEL = (
    "accepted",
    "declined",
    "contacted",
    "appointment_scheduled",
    "attended",
    "connected_to_treatment",
    "declined_by_person",
    "unable_to_contact",
    "referred_elsewhere",
    "lost_to_follow_up",
)
FOLLOW_UP_STAGES = ("scheduled", "due", "completed", "overdue", "cancelled", "completed_late")
DIMENSIONS = ("source", "court_type", "need", "county", "cmhc", "liaison", "agency", "month")
TRAINING_DIMENSIONS = ("course", "training_county", "training_agency")


class Counters:
    """metric -> day -> count, built by adding segments in any order (addition commutes)."""

    def __init__(self) -> None:
        # Plain dicts, not defaultdicts: Python's collector stops tracking a plain dict that holds
        # only strings and numbers, but walks every entry of a defaultdict on each full collection
        # (at the full history, 5,000 series and 780,000 days: a full collection of a process
        # holding them took 33 ms, 22 ms with plain dicts; docs/benchmarks.md).
        self._by_metric: dict[str, dict[str, int]] = {}
        self.version = 0  # moves with every add: whoever derives from the counters sees a change

    def add(self, rows: Iterable[tuple[str, str, int]]) -> None:
        by_metric = self._by_metric
        for metric, day, count in rows:
            days = by_metric.get(metric)
            if days is None:
                days = by_metric[metric] = {}
            days[day] = days.get(day, 0) + count
        self.version += 1

    def total(self, metric: str, window: Window) -> int:
        days = self._by_metric.get(metric)
        if not days:
            return 0
        if window.start is None and window.end is None:
            return sum(days.values())
        return sum(n for day, n in days.items() if window.contains(day))

    def by_day(self, metric: str, window: Window) -> dict[str, int]:
        days = self._by_metric.get(metric, {})
        return {day: n for day, n in days.items() if window.contains(day) and n}

    def values(self, prefix: str) -> list[str]:
        """The values seen for `<prefix>=<value>` metrics (no further parts)."""
        head = prefix + "="
        return sorted(
            m[len(head) :]
            for m in self._by_metric
            if m.startswith(head) and "|" not in m[len(head) :] and "@" not in m[len(head) :]
        )

    def series(self) -> Mapping[str, Mapping[str, int]]:
        """metric -> day -> count, read-only (the publication grid's input)."""
        return self._by_metric

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {m: dict(d) for m, d in self._by_metric.items() if any(d.values())}


def _people(counters: Counters, metric: str, window: Window) -> int | None:
    kind = window.period_kind
    if kind is None:
        return None
    return counters.total(f"{metric}@{kind}", window)


def _by(counters: Counters, family: str, dim: str, window: Window) -> dict[str, int]:
    """Non-zero cells only: values seen in other windows are not listed as zeros."""
    cells = {
        v: counters.total(f"{family}|{dim}={v}", window) for v in counters.values(f"{family}|{dim}")
    }
    return {v: n for v, n in cells.items() if n}


def _median_days(counters: Counters, window: Window) -> tuple[int, float | None]:
    histogram = {
        int(v): counters.total(f"first_contact_days={v}", window)
        for v in counters.values("first_contact_days")
    }
    days = [d for d, n in sorted(histogram.items()) for _ in range(n)]
    return len(days), (float(median_low(days)) if days else None)


def raw_statewide(
    counters: Counters, trainings: list[TrainingFact], window: Window, county: str | None = None
) -> dict[str, Any]:
    """Exact counts before publication; `county` narrows referrals and trainings to one county."""
    base = f"referrals|county={county}" if county else "referrals"
    people_base = f"people|county={county}" if county else "people"
    month_total: dict[str, int] = defaultdict(int)
    for day, n in counters.by_day(base, window).items():
        month_total[day[:7]] += n
    contacted, median = _median_days(counters, window)
    referring = set(_by(counters, "referrals", "agency", window).items())
    referring_agencies = {a for a, n in referring if n}
    trained = trainings_in(trainings, Window(None, window.end))
    trained_agencies = {a for t in trained for a in t.officer_agency_ids}
    raw: dict[str, Any] = {
        "referrals": {
            "total": counters.total(base, window),
            "people": _people(counters, people_base, window),
            "by_source": _by(counters, base, "source", window),
            "by_presenting_need": _by(counters, base, "need", window),
            "by_month": dict(sorted(month_total.items())),
        },
        "trainings": training_totals(trainings_in(trainings, window, county)),
    }
    if county is None:
        raw["referrals"] |= {
            "repeat_involvement": counters.total("referrals|repeat", window),
            "people_with_repeat_involvement": _people(counters, "people|repeat", window),
            "by_court_type": _by(counters, base, "court_type", window),
        }
        raw["funnel"] = {s: counters.total(f"funnel|{s}", window) for s in FUNNEL}
        raw["first_contact"] = {"referrals": contacted, "median_days": median}
        raw["follow_ups"] = {
            s: counters.total(f"follow_ups|{s}", window) for s in FOLLOW_UP_STAGES
        } | {"outcomes": _by(counters, "follow_ups", "outcome", window)}
        raw["trainings"]["referring_agencies"] = len(referring_agencies)
        raw["trainings"]["referring_agencies_with_trained_officers"] = len(
            referring_agencies & trained_agencies
        )
    return raw


def trainings_in(
    trainings: list[TrainingFact], window: Window, county: str | None = None
) -> list[TrainingFact]:
    return [
        t
        for t in trainings
        if window.contains(t.held_on) and (county is None or t.county_fips == county)
    ]


def training_totals(sessions: list[TrainingFact]) -> dict[str, Any]:
    """Sessions, seats filled (an officer in two sessions fills two) and unique officers (one
    who moved between agencies counts once when the rosters gave their POST license)."""
    return {
        "sessions": len(sessions),
        "seats_filled": sum(len(t.officer_ids) for t in sessions),
        "officers_trained": len({o for t in sessions for o in t.officers()}),
    }


def training_rows(sessions: list[TrainingFact], dimension: str) -> dict[str, dict[str, int]]:
    """Sessions and unique officers per course, county or agency (an officer's own agency)."""
    held: dict[str, set[str]] = defaultdict(set)
    officers: dict[str, set[str]] = defaultdict(set)
    for t in sessions:
        if dimension == "training_agency":
            for officer, agency in zip(t.officers(), t.officer_agency_ids, strict=True):
                held[agency].add(t.session_id)
                officers[agency].add(officer)
            continue
        key = t.course_id if dimension == "course" else t.county_fips
        held[key].add(t.session_id)
        officers[key].update(t.officers())
    return {
        k: {"sessions": len(held[k]), "officers_trained": len(officers[k])} for k in sorted(held)
    }


def raw_dimension(counters: Counters, window: Window, dimension: str) -> dict[str, Any]:
    """Referrals and unique people per value of a dimension (month: per calendar month)."""
    if dimension == "month":
        months: dict[str, int] = defaultdict(int)
        people: dict[str, int] = defaultdict(int)
        for day, n in counters.by_day("referrals", window).items():
            months[day[:7]] += n
        for day, n in counters.by_day("people@month", window).items():
            people[day[:7]] += n
        rows: dict[str, dict[str, int | None]] = {
            m: {"referrals": n, "people": people[m]} for m, n in sorted(months.items())
        }
    else:
        rows = {
            v: {"referrals": n, "people": _people(counters, f"people|{dimension}={v}", window)}
            for v, n in _by(counters, "referrals", dimension, window).items()
            if n
        }
    return {
        "total": {
            "referrals": counters.total("referrals", window),
            "people": _people(counters, "people", window),
        },
        "rows": rows,
    }


# ---------------------------------------------------------------- publication


def _published_group(cells: Mapping[str, int], total: int) -> dict[str, Any]:
    shown, total_shown = suppress_group(cells, total)
    return {"counts": shown, "percent": percents(shown, total_shown), "total": total_shown}


def _people_shown(count: int | None) -> Published | None:
    return None if count is None else suppress_count(count)


def publish_statewide(raw: dict[str, Any]) -> dict[str, Any]:
    """Suppressed counts of referrals and people; trainings are counts of sessions and of
    officers (public servants, not the people served), published as they are."""
    referrals = raw["referrals"]
    total = referrals["total"]
    source = _published_group(referrals["by_source"], total)
    need = _published_group(referrals["by_presenting_need"], total)
    month = _published_group(referrals["by_month"], total)
    hidden_total = SUPPRESSED in (source["total"], need["total"], month["total"])
    out_total: Published = SUPPRESSED if hidden_total else total
    published: dict[str, Any] = {
        "referrals": {
            "total": out_total,
            "people": _people_shown(referrals["people"]),
            "by_source": source["counts"],
            "by_source_percent": percents(source["counts"], out_total),
            "by_presenting_need": need["counts"],
            "by_presenting_need_percent": percents(need["counts"], out_total),
            "by_month": month["counts"],
        },
        "trainings": dict(raw["trainings"]),
    }
    if "repeat_involvement" in referrals:
        court = referrals["by_court_type"]
        courts = referrals["by_source"].get("court", 0)
        published["referrals"] |= {
            "repeat_involvement": suppress_count(referrals["repeat_involvement"]),
            "people_with_repeat_involvement": _people_shown(
                referrals["people_with_repeat_involvement"]
            ),
            "by_court_type": suppress_group(court, courts)[0] if court else {},
        }
        published["funnel"] = {k: suppress_count(v) for k, v in raw["funnel"].items()}
        contacted = raw["first_contact"]["referrals"]
        published["first_contact"] = {
            "referrals": suppress_count(contacted),
            # A median of a handful of people describes them: published only with the count.
            "median_days": None if is_small(contacted) else raw["first_contact"]["median_days"],
        }
        follow_ups = raw["follow_ups"]
        outcomes = _published_group(follow_ups["outcomes"], sum(follow_ups["outcomes"].values()))
        published["follow_ups"] = {
            k: suppress_count(v) for k, v in follow_ups.items() if k != "outcomes"
        } | {"outcomes": outcomes["counts"], "outcomes_percent": outcomes["percent"]}
        trainings = published["trainings"]
        agencies = trainings.pop("referring_agencies")
        with_trained = trainings.pop("referring_agencies_with_trained_officers")
        trainings["referring_agencies_with_trained_officers_percent"] = (
            round(100 * with_trained / agencies, 1) if agencies else None
        )
    return published


def publish_dimension(raw: dict[str, Any]) -> dict[str, Any]:
    rows = raw["rows"]
    total = raw["total"]["referrals"]
    group = _published_group({k: r["referrals"] for k, r in rows.items()}, total)
    return {
        "total": {"referrals": group["total"], "people": _people_shown(raw["total"]["people"])},
        "rows": [
            {
                "key": key,
                "referrals": group["counts"][key],
                "referrals_percent": group["percent"][key],
                "people": _people_shown(row["people"]),
            }
            for key, row in rows.items()
        ],
    }
