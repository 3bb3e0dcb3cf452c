"""Consultations and barriers by county and fiscal year: pure projections and published tables.

Each record counts once, on the day it happened (a date the liaison gave, already the program's
day), under `consultations|county=<fips>|topic=<topic>` or `barriers|county=<fips>|kind=<kind>`.
The increment rides on a claim keyed by the record id, so a redelivered event, or the same record
re-sent under another event id, counts once (the projector's `e|<event_id>` claim drops plain
duplicates already).

A table is published for one fiscal year, the only period these counts are published for: with
no cumulative totals, quarters or months beside it, no other published number overlaps it. Its
cells, county totals, category totals and the statewide total are suppressed together by
`protect` (domain/protection.py): counts 1 to 10 hidden, and complementary cells hidden so that
no row, column or total gives one away."""

from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from cmhl_contracts import BarrierRecordedV1, ConsultationRecordedV1, IntegrationEvent
from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_reporting.domain.protection import Relations, protect
from cmhl_reporting.domain.suppression import SUPPRESSED, Published
from cmhl_reporting.domain.window import Window

Increment = tuple[str, str]
Claimed = list[tuple[str, list[Increment]]]

ACTIVITY_COUNTED_EVENTS: tuple[type[IntegrationEvent], ...] = (
    ConsultationRecordedV1,
    BarrierRecordedV1,
)
# Each family: its metric prefix, the name of its category, and every category (zeros shown).
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "consultations": ("topic", tuple(t.value for t in ConsultationTopic)),
    "barriers": ("kind", tuple(k.value for k in BarrierKind)),
}
ALL = "all"
TOTAL = "total"


def project_activity(event: IntegrationEvent, zone: ZoneInfo) -> tuple[list[Increment], Claimed]:
    """(always, claimed) increments of a consultation or a barrier; `zone` is unused: the day
    is the one the liaison recorded, in the program's calendar already."""
    del zone
    match event:
        case ConsultationRecordedV1():
            metric = f"consultations|county={event.county_fips}|topic={event.question_topic.value}"
            claim = f"k|consultation|{event.consultation_id}"
        case BarrierRecordedV1():
            metric = f"barriers|county={event.county_fips}|kind={event.kind.value}"
            claim = f"k|barrier|{event.barrier_id}"
        case _:
            raise TypeError(f"not an activity event: {type(event).__name__}")
    return [], [(claim, [(metric, event.occurred_on.isoformat())])]


RawTable = dict[str, dict[str, int]]
"""county -> category -> count (non-zero cells)."""


def raw_activity(series: Mapping[str, Mapping[str, int]], window: Window) -> dict[str, RawTable]:
    """Exact counts by family, county and category over the window; unsuppressed."""
    out: dict[str, RawTable] = {}
    for family, (category, _) in FAMILIES.items():
        head = f"{family}|county="
        table: dict[str, dict[str, int]] = defaultdict(dict)
        for metric, days in series.items():
            if not metric.startswith(head):
                continue
            county, _, rest = metric[len(head) :].partition("|")
            name, _, value = rest.partition("=")
            count = sum(n for day, n in days.items() if window.contains(day))
            if name == category and count:
                table[county][value] = table[county].get(value, 0) + count
        out[family] = {county: dict(cells) for county, cells in sorted(table.items())}
    return out


def _relations(family: str, table: RawTable) -> Relations:
    """Nodes `(family, county or all, category or total)` and how they add up."""
    _, categories = FAMILIES[family]
    relations = Relations()
    for county, cells in table.items():
        for category in categories:
            relations.node((family, county, category), cells.get(category, 0))
        relations.node((family, county, TOTAL), sum(cells.values()))
        relations.sums((family, county, TOTAL), [(family, county, c) for c in categories])
    for category in categories:
        relations.node(
            (family, ALL, category), sum(cells.get(category, 0) for cells in table.values())
        )
        relations.sums((family, ALL, category), [(family, county, category) for county in table])
    grand = relations.node((family, ALL, TOTAL), sum(sum(c.values()) for c in table.values()))
    relations.sums(grand, [(family, county, TOTAL) for county in table])
    relations.sums(grand, [(family, ALL, category) for category in categories])
    return relations


def publish_activity(raw: Mapping[str, RawTable]) -> dict[str, Any]:
    """Every family's table with cells, county totals, category totals and total, suppressed so
    that no count from 1 to 10 is shown or can be worked out from what is shown."""
    return {family: _published(family, raw.get(family, {})) for family in FAMILIES}


def _published(family: str, table: RawTable) -> dict[str, Any]:
    category, categories = FAMILIES[family]
    relations = _relations(family, table)
    hidden = protect(relations)

    def shown(node: tuple[str, str, str]) -> Published:
        return SUPPRESSED if node in hidden else relations.values[node]

    return {
        "total": shown((family, ALL, TOTAL)),
        f"by_{category}": {c: shown((family, ALL, c)) for c in categories},
        "by_county": [
            {
                "county_fips": county,
                "total": shown((family, county, TOTAL)),
                f"by_{category}": {c: shown((family, county, c)) for c in categories},
            }
            for county in table
        ],
    }
