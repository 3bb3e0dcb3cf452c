"""The publication grid: what the public and metrics consumers may ask for, and every number on it
suppressed once, consistently, for all of them (docs/adr/0009-publication-grid.md).

Periods on the grid are made of whole fiscal quarters that have ended (in the program's time
zone): a fiscal quarter `fyYYYY-qN`, a fiscal year `fyYYYY`, and cumulative totals as of a
quarter's last day (`as_of=`; `all` is as of the last quarter that has ended). A period
still running is not on the grid: asked for again and again, it would give away each referral as
it arrives. Each published number is a *node* `(series, period)`; `Relations` lists how nodes
add up (quarters to years and to cumulative totals, sources and needs and counties to referrals,
county cross-tabs to both margins, outcomes to completions...) and which counts lie inside
others; `protect` hides what must be hidden across all of it at once. Every response for a grid
period is read from that one plan, so the same number is shown or hidden alike in every table,
in JSON and CSV, for the public and for metrics consumers."""

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median_low
from typing import Any, Protocol

from cmhl_reporting.domain.calendar import (
    fiscal_quarter,
    fiscal_quarter_start,
    fiscal_year,
    period_keys,
)
from cmhl_reporting.domain.placement import FLAGS, OUTCOMES, REGIONS, mean_of, median_of
from cmhl_reporting.domain.projections import TrainingFact
from cmhl_reporting.domain.protection import Relations, protect
from cmhl_reporting.domain.suppression import SUPPRESSED, Published, percent, percents
from cmhl_reporting.domain.views import FUNNEL, training_totals, trainings_in
from cmhl_reporting.domain.window import ACCEPTED_PERIODS, Window, WindowError, parse_period

Node = tuple[str, str]

REFERRAL_DIMENSIONS = ("source", "need", "court_type", "county", "cmhc", "liaison", "agency")
CROSS_TABS = ("source", "need")  # by county, for the dashboard's county view
FUNNEL_NESTED_IN_ACCEPTED = (
    "unable_to_contact",
    "appointment_scheduled",
    "declined_by_person",
    "connected_to_treatment",
    "lost_to_follow_up",
    "attended",
)
CLOSED = (
    "declined",
    "connected_to_treatment",
    "declined_by_person",
    "referred_elsewhere",
    "lost_to_follow_up",
)
CLOSED_AFTER_ACCEPTED = ("connected_to_treatment", "declined_by_person", "lost_to_follow_up")
FOLLOW_UP_STAGES = ("scheduled", "due", "completed", "overdue", "cancelled", "completed_late")
FIRST_CONTACT = "first_contact"
PLACEMENT_COMPLETED = "placement|completed"
PLACEMENT_PAST = "placement|past_96h"

GRID_FORMS = (
    "on the publication grid (the public and metrics consumers) a period must have ended and be "
    "all, fyYYYY or fyYYYY-qN, or as_of the last day of a fiscal quarter (Sep 30, Dec 31, "
    "Mar 31, Jun 30) that has ended; calendar years, months, days and start/end are for roles "
    "that may see records"
)


class CounterSource(Protocol):
    def series(self) -> Mapping[str, Mapping[str, int]]:
        """metric -> day -> count."""
        ...


@functools.cache
def quarter_of(day: str) -> str:
    return period_keys(day)["fq"]


@functools.cache
def _period_of(day: str, kind: str) -> str:
    return period_keys(day)[kind]


def _quarter_bounds(key: str) -> tuple[date, date]:
    window = parse_period(key)
    assert window.start is not None
    assert window.end is not None
    return window.start, window.end


def _next_quarter(key: str) -> str:
    return quarter_of(_quarter_bounds(key)[1].isoformat())


@dataclass(frozen=True)
class GridPeriod:
    """A period on the grid: `key` names its nodes, `quarters` are what it adds up."""

    key: str
    label: str
    quarters: tuple[str, ...]
    window: Window
    kind: str  # fq, fy, upto

    def describe(self) -> dict[str, Any]:
        return {
            "period": self.label,
            "start": self.window.start.isoformat() if self.window.start else None,
            "end": self.window.end.isoformat() if self.window.end else None,
            "grid": True,
        }


def running_quarter_start(today: date) -> date:
    """The first day of the quarter `today` is in: every quarter that ends by then has ended."""
    return fiscal_quarter_start(fiscal_year(today), fiscal_quarter(today))


def closed_quarters(first_day: str | None, today: date) -> list[str]:
    """Fiscal quarters from the one holding `first_day` to the last that ended before `today`."""
    last_end = running_quarter_start(today)
    if first_day is None:
        return []
    quarters: list[str] = []
    key = quarter_of(first_day)
    while _quarter_bounds(key)[1] <= last_end:
        quarters.append(key)
        key = _next_quarter(key)
    return quarters


def resolve(period: str | None, as_of: date | None, quarters: list[str], today: date) -> GridPeriod:
    """The grid period asked for, or a WindowError naming the grid's forms."""
    if period is not None and as_of is not None:
        raise WindowError("give one of period or as_of")
    last_end = running_quarter_start(today)
    if as_of is not None:
        key = quarter_of(as_of.isoformat())
        if _quarter_bounds(key)[1] != as_of + timedelta(days=1):
            raise WindowError(
                f"as_of {as_of.isoformat()} is not a quarter's last day; {GRID_FORMS}"
            )
        if as_of + timedelta(days=1) > last_end:
            raise WindowError(f"the quarter ending {as_of.isoformat()} has not ended; {GRID_FORMS}")
        return _upto(key, quarters, f"as_of {as_of.isoformat()}")
    if period is None or period == "all":
        previous = quarter_of((last_end - timedelta(days=1)).isoformat())
        return _upto(previous, quarters, "all")
    try:
        window = parse_period(period)
    except WindowError as exc:
        raise WindowError(f"{ACCEPTED_PERIODS}; {GRID_FORMS}") from exc
    kind = window.period_kind
    if kind not in ("fy", "fq"):
        raise WindowError(GRID_FORMS)
    assert window.start is not None
    assert window.end is not None
    if window.end > last_end:
        raise WindowError(
            f"{period} has not ended (the last quarter that has is "
            f"{quarter_of((last_end - timedelta(days=1)).isoformat())}); {GRID_FORMS}"
        )
    inside: list[str] = []
    key = quarter_of(window.start.isoformat())
    while _quarter_bounds(key)[0] < window.end:
        inside.append(key)
        key = _next_quarter(key)
    return GridPeriod(period, period, tuple(inside), window, kind)


def _upto(last: str, quarters: list[str], label: str) -> GridPeriod:
    end = _quarter_bounds(last)[1]
    inside = tuple(q for q in quarters if _quarter_bounds(q)[1] <= end)
    return GridPeriod(f"upto:{last}", label, inside, Window(None, end), "upto")


# ------------------------------------------------------------------ the relations


COUNTED_FAMILIES = ("referrals", "funnel|", "follow_ups|", "placement|")
HISTOGRAMS = {
    # histogram family -> the count it adds up to (a series of its own on the grid)
    "first_contact_days": FIRST_CONTACT,
    "placed_hours": None,
    "placed_contacted": None,
    "failed_contacted": None,
}


class Plan:
    """Every grid node's published value, from one read of the counters."""

    def __init__(self, counters: CounterSource, today: date) -> None:
        self.today = today
        series = counters.series()
        days = [d for m, by_day in series.items() for d, n in by_day.items() if n]
        self.quarters = closed_quarters(min(days) if days else None, today)
        closed = set(self.quarters)
        self._additive: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._people: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._histograms: dict[str, dict[str, int]] = {}
        for metric, by_day in series.items():
            if "@" in metric:
                family, _, kind = metric.partition("@")
                if kind in ("fy", "fq"):
                    for day, n in by_day.items():
                        if n and quarter_of(day) in closed:
                            self._people[family][_period_of(day, kind)] += n
                continue
            family = metric.partition("=")[0]
            if family in HISTOGRAMS:
                self._histograms[metric] = dict(by_day)
                sum_into = HISTOGRAMS[family]
            elif metric.startswith(COUNTED_FAMILIES):
                sum_into = metric
            else:
                continue
            if sum_into is None:
                continue
            target = self._additive[sum_into]
            for day, n in by_day.items():
                if n and quarter_of(day) in closed:
                    target[quarter_of(day)] += n
        self._derive_sums()
        self._periods = self._grid_periods()
        relations = self._relations()
        hidden = protect(relations)
        self.published: dict[Node, Published] = {}
        for node, value in relations.values.items():
            if node not in relations.virtual:
                assert isinstance(node, tuple)
                self.published[node] = SUPPRESSED if node in hidden else value
        self.nodes = len(self.published)
        self.hidden = len(hidden)
        self._by_period: dict[str, dict[str, Published]] = defaultdict(dict)
        for (metric, key), shown in self.published.items():
            self._by_period[key][metric] = shown

    # ---- values

    def _derive_sums(self) -> None:
        """Series the responses publish that no event counts directly."""
        for prefix, target in (
            ("placement|completed|outcome=", PLACEMENT_COMPLETED),
            ("placement|past_96h|outcome=", PLACEMENT_PAST),
        ):
            acc = self._additive[target]
            for metric, quarters in list(self._additive.items()):
                if metric.startswith(prefix):
                    for q, n in quarters.items():
                        acc[q] += n

    def _grid_periods(self) -> list[GridPeriod]:
        periods = [GridPeriod(q, q, (q,), parse_period(q), "fq") for q in self.quarters]
        fiscal = sorted({q.split("-")[0] for q in self.quarters})
        for fy in fiscal:
            quarters = tuple(f"{fy}-q{n}" for n in range(1, 5))
            if quarters[-1] in self.quarters:
                periods.append(GridPeriod(fy, fy, quarters, parse_period(fy), "fy"))
        periods += [_upto(q, self.quarters, q) for q in self.quarters]
        return periods

    # ---- relations

    def _relations(self) -> Relations:
        relations = Relations()
        metrics = sorted(m for m, by_q in self._additive.items() if any(by_q.values()))
        self._by_prefix: dict[str, list[str]] = defaultdict(list)
        for metric in metrics:
            head, equals, _ = metric.rpartition("=")
            if equals:
                self._by_prefix[head + "="].append(metric)
        sums = [p for p in self._periods if p.kind == "fy"]
        ends = {p.key for p in self._periods if p.kind == "upto"}  # every quarter's end
        for metric in metrics:
            by_quarter = self._additive[metric]
            running = 0
            for q in self.quarters:
                value = by_quarter.get(q, 0)
                running += value
                if value:
                    relations.node((metric, q), value)
                if running and f"upto:{q}" in ends:
                    relations.node((metric, f"upto:{q}"), running)
            for period in sums:
                value = sum(by_quarter.get(q, 0) for q in period.quarters)
                if value:
                    relations.node((metric, period.key), value)
        for period in self._periods:
            self._category_groups(relations, period, metrics)
            if period.kind in ("fy", "fq"):
                self._people_groups(relations, period)
        for metric in metrics:
            self._time_groups(relations, metric)
        return relations

    def _time_groups(self, relations: Relations, metric: str) -> None:
        """One series over time: quarters add up to their fiscal year; each cumulative total is
        the one a quarter before plus that quarter, and at a fiscal year's end also the one a
        year before plus the fiscal year (two splits of one number: the audit peels either)."""
        for period in self._periods:
            if period.kind == "fy":
                _sums(relations, (metric, period.key), [(metric, q) for q in period.quarters])
        previous: str | None = None
        for q in self.quarters:
            parts = [(metric, q)] + ([(metric, f"upto:{previous}")] if previous else [])
            _sums(relations, (metric, f"upto:{q}"), parts)
            fiscal = q.split("-")[0]
            if q.endswith("-q4"):
                year_before = f"fy{int(fiscal[2:]) - 1}-q4"
                # (a missing node is zero: nothing before, or nothing counted)
                _sums(
                    relations,
                    (metric, f"upto:{q}"),
                    [(metric, f"upto:{year_before}"), (metric, fiscal)],
                )
            previous = q

    def _values_of(self, prefix: str) -> list[str]:
        """The metrics `<prefix><value>` (no further parts)."""
        return self._by_prefix.get(prefix, [])

    def _category_groups(
        self, relations: Relations, period: GridPeriod, metrics: list[str]
    ) -> None:
        p = period.key

        def node(metric: str) -> Node:
            return (metric, p)

        for dim in REFERRAL_DIMENSIONS:
            cells = self._values_of(f"referrals|{dim}=")
            total = "referrals|source=court" if dim == "court_type" else "referrals"
            _sums(relations, node(total), [node(c) for c in cells])
        counties = self._values_of("referrals|county=")
        for dim in CROSS_TABS:
            for county in counties:
                cells = self._values_of(f"{county}|{dim}=")
                _sums(relations, node(county), [node(c) for c in cells])
            for margin in self._values_of(f"referrals|{dim}="):
                value = margin.split("=", 1)[1]
                _sums(
                    relations,
                    node(margin),
                    [node(f"{c}|{dim}={value}") for c in counties],
                )
        _contains(relations, node("referrals"), node("referrals|repeat"))
        _contains(relations, node("referrals"), node(FIRST_CONTACT))
        _sums(
            relations,
            node("referrals"),
            [node("funnel|accepted"), node("funnel|declined"), ("~referrals-open", p)],
            virtual=("~referrals-open", p),
        )
        # A referral ends in at most one closed status: they are disjoint parts of the referrals.
        _sums(
            relations,
            node("referrals"),
            [node(f"funnel|{s}") for s in CLOSED] + [("~referrals-not-closed", p)],
            virtual=("~referrals-not-closed", p),
        )
        _contains(relations, node("referrals"), node("funnel|contacted"))
        # A referral ends in one closed status: those after acceptance are disjoint parts of it.
        _sums(
            relations,
            node("funnel|accepted"),
            [node(f"funnel|{s}") for s in CLOSED_AFTER_ACCEPTED] + [("~accepted-open", p)],
            virtual=("~accepted-open", p),
        )
        for stage in FUNNEL_NESTED_IN_ACCEPTED:
            _contains(relations, node("funnel|accepted"), node(f"funnel|{stage}"))
        _contains(relations, node("funnel|appointment_scheduled"), node("funnel|attended"))
        outcomes = self._values_of("follow_ups|outcome=")
        _sums(relations, node("follow_ups|completed"), [node(c) for c in outcomes])
        _contains(relations, node("follow_ups|completed"), node("follow_ups|completed_late"))
        _contains(relations, node("follow_ups|overdue"), node("follow_ups|completed_late"))
        _contains(relations, node("follow_ups|scheduled"), node("follow_ups|due"))
        _contains(relations, node("follow_ups|due"), node("follow_ups|overdue"))
        # Most follow-ups are completed once due; an attacker may take that for all of them.
        _contains(relations, node("follow_ups|due"), node("follow_ups|completed"))
        _sums(
            relations,
            node("follow_ups|scheduled"),
            [node("follow_ups|completed"), node("follow_ups|cancelled"), ("~follow_ups-open", p)],
            virtual=("~follow_ups-open", p),
        )
        # Placement: outcomes add up to completions, results to attempts, regions to placements.
        _sums(
            relations,
            node(PLACEMENT_COMPLETED),
            [node(f"placement|completed|outcome={o}") for o in OUTCOMES],
        )
        _sums(
            relations,
            node(PLACEMENT_PAST),
            [node(f"{PLACEMENT_PAST}|outcome={o}") for o in OUTCOMES],
        )
        for o in OUTCOMES:
            _contains(
                relations,
                node(f"placement|completed|outcome={o}"),
                node(f"{PLACEMENT_PAST}|outcome={o}"),
            )
        results = self._values_of("placement|attempts|result=")
        _sums(relations, node("placement|attempts"), [node(r) for r in results])
        _sums(
            relations,
            node("placement|completed|outcome=placed"),
            [node(f"placement|region={r}") for r in REGIONS],
        )

    def _people_groups(self, relations: Relations, period: GridPeriod) -> None:
        p = period.key
        for family, by_period in self._people.items():
            value = by_period.get(p, 0)
            if value:
                relations.node((family, p), value)
        for family in self._people:
            scope = family[len("people") :]
            referrals = ("referrals" + scope, p)
            _contains(relations, referrals, (family, p))
            if family != "people":
                _contains(relations, ("people", p), (family, p))
            if period.kind == "fy":
                for q in period.quarters:
                    _contains(relations, (family, p), (family, q))

    # ---- reading the plan

    def count(self, series: str, period: GridPeriod) -> Published:
        return self.published.get((series, period.key), 0)

    def people(self, family: str, period: GridPeriod) -> Published | None:
        if period.kind == "upto":
            return None  # unique people are counted per period, not cumulatively
        return self.published.get((family, period.key), 0)

    def cells(self, prefix: str, period: GridPeriod) -> dict[str, Published]:
        """Non-zero `<prefix>=<value>` cells of a period (values seen in other periods and zero
        here are left out, as the free windows do)."""
        head = prefix + "="
        shown = self._by_period.get(period.key, {})
        return {
            m[len(head) :]: value
            for m, value in sorted(shown.items())
            if m.startswith(head) and "|" not in m[len(head) :]
        }

    def histogram(self, family: str, window: Window) -> dict[int, int]:
        out: dict[int, int] = {}
        for metric, by_day in self._histograms.items():
            name, _, value = metric.partition("=")
            if name == family:
                n = sum(c for d, c in by_day.items() if window.contains(d))
                if n:
                    out[int(value)] = n
        return out


def _sums(
    relations: Relations, total: Node, cells: list[Node], virtual: Node | None = None
) -> None:
    """`total = Σ cells`, with zero nodes left out (a zero is known and adds nothing)."""
    values = relations.values
    if total not in values:
        return
    present = [c for c in cells if c in values]
    if virtual is not None:
        rest = values[total] - sum(values[c] for c in present if c != virtual)
        if rest:
            relations.values[virtual] = rest
            relations.virtual.add(virtual)
            present.append(virtual)
    relations.sums(total, present)


def _contains(relations: Relations, outer: Node, inner: Node) -> None:
    values = relations.values
    if outer not in values or inner not in values:
        return
    remainder = (f"~{outer[0]}-{inner[0]}", outer[1])
    if values[outer] == values[inner]:
        relations.sums(outer, [inner])
    else:
        relations.contains(outer, inner, remainder)


# ------------------------------------------------------------------ responses


def _group(cells: Mapping[str, Published], total: Published) -> dict[str, float | None]:
    return percents(cells, total)


def statewide(plan: Plan, period: GridPeriod, county: str | None) -> dict[str, Any]:
    base = f"referrals|county={county}" if county else "referrals"
    people = f"people|county={county}" if county else "people"
    total = plan.count(base, period)
    by_source = plan.cells(f"{base}|source", period)
    by_need = plan.cells(f"{base}|need", period)
    body: dict[str, Any] = {
        "referrals": {
            "total": total,
            "people": plan.people(people, period),
            "by_source": by_source,
            "by_source_percent": _group(by_source, total),
            "by_presenting_need": by_need,
            "by_presenting_need_percent": _group(by_need, total),
            "by_quarter": {q: plan.count(base, _quarter(q)) for q in period.quarters},
        }
    }
    if county is not None:
        return body
    body["referrals"] |= {
        "repeat_involvement": plan.count("referrals|repeat", period),
        "people_with_repeat_involvement": plan.people("people|repeat", period),
        "by_court_type": plan.cells("referrals|court_type", period),
    }
    body["funnel"] = {s: plan.count(f"funnel|{s}", period) for s in FUNNEL}
    contacted = plan.count(FIRST_CONTACT, period)
    histogram = plan.histogram("first_contact_days", period.window)
    days = [d for d, n in sorted(histogram.items()) for _ in range(n)]
    body["first_contact"] = {
        "referrals": contacted,
        "median_days": float(median_low(days)) if days and not isinstance(contacted, str) else None,
    }
    outcomes = plan.cells("follow_ups|outcome", period)
    body["follow_ups"] = {s: plan.count(f"follow_ups|{s}", period) for s in FOLLOW_UP_STAGES} | {
        "outcomes": outcomes,
        "outcomes_percent": _group(outcomes, plan.count("follow_ups|completed", period)),
    }
    return body


def trainings(
    plan: Plan, period: GridPeriod, sessions: list[TrainingFact], county: str | None
) -> dict[str, Any]:
    """Sessions and officers (public servants: not suppressed) and, statewide, the share of the
    agencies referring in the period whose officers were trained by its end."""
    out: dict[str, Any] = training_totals(trainings_in(sessions, period.window, county))
    if county is None:
        referring = set(plan.cells("referrals|agency", period))
        before_end = trainings_in(sessions, Window(None, period.window.end))
        trained = {a for t in before_end for a in t.officer_agency_ids}
        out["referring_agencies_with_trained_officers_percent"] = (
            round(100 * len(referring & trained) / len(referring), 1) if referring else None
        )
    return out


def _quarter(key: str) -> GridPeriod:
    return GridPeriod(key, key, (key,), parse_period(key), "fq")


def dimension(plan: Plan, period: GridPeriod, dim: str) -> dict[str, Any]:
    total = plan.count("referrals", period)
    cells = plan.cells(f"referrals|{dim}", period)
    shares = percents(cells, total)
    return {
        "total": {"referrals": total, "people": plan.people("people", period)},
        "rows": [
            {
                "key": key,
                "referrals": value,
                "referrals_percent": shares[key],
                "people": plan.people(f"people|{dim}={key}", period),
            }
            for key, value in cells.items()
        ],
    }


def _statistic(count: Published, value: float | None) -> float | None:
    return None if isinstance(count, str) or count == 0 else value


def placement(plan: Plan, period: GridPeriod) -> dict[str, Any]:
    outcomes = {o: plan.count(f"placement|completed|outcome={o}", period) for o in OUTCOMES}
    placed, failed = outcomes["placed"], outcomes["failed"]
    past = {o: plan.count(f"{PLACEMENT_PAST}|outcome={o}", period) for o in OUTCOMES}
    region = {r: plan.count(f"placement|region={r}", period) for r in REGIONS}
    known: Published = (
        SUPPRESSED
        if SUPPRESSED in (region["out_of_region"], region["in_region"])
        else int(region["out_of_region"]) + int(region["in_region"])
    )
    window = period.window
    return {
        "requests": plan.count("placement|requested", period),
        "attempts": {
            "total": plan.count("placement|attempts", period),
            "by_result": plan.cells("placement|attempts|result", period),
        },
        "completed": {"total": plan.count(PLACEMENT_COMPLETED, period), "by_outcome": outcomes},
        "hours_to_placement": {
            "placements": placed,
            "median_hours": _statistic(placed, median_of(plan.histogram("placed_hours", window))),
        },
        "past_96_hours": {
            "completed": plan.count(PLACEMENT_PAST, period),
            "completed_by_outcome": past,
            "flagged": {f: plan.count(f"placement|flagged={f}", period) for f in FLAGS},
        },
        "facilities_contacted": {
            "placements": placed,
            "mean_per_placement": _statistic(
                placed, mean_of(plan.histogram("placed_contacted", window))
            ),
            "failed_searches": failed,
            "mean_per_failed_search": _statistic(
                failed, mean_of(plan.histogram("failed_contacted", window))
            ),
        },
        "region": {
            "placements": placed,
            "counts": region,
            "out_of_region_percent": percent(region["out_of_region"], known),
        },
    }
