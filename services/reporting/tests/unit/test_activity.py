"""Consultation and barrier counts: exact under redelivery, by county and fiscal year, and
published so that no count from 1 to 10 can be worked out from the table."""

import itertools
import random
import uuid
from datetime import UTC, date, datetime
from typing import Any

from cmhl_contracts import BarrierRecordedV1, ConsultationRecordedV1
from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.vocabulary import ReferralSource
from cmhl_reporting.application.activity import fiscal_year_window, is_published, published_from
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.domain.activity import FAMILIES, RawTable, publish_activity, raw_activity
from cmhl_reporting.domain.suppression import SUPPRESSED

from ..conftest import CHICAGO
from .fakes import InMemoryViewStore, deliveries

AT = datetime(2025, 7, 1, 12, tzinfo=UTC)


def consulted(county: str, topic: ConsultationTopic, day: date) -> ConsultationRecordedV1:
    record = uuid.uuid4()
    return ConsultationRecordedV1.create(
        about=(str(record),),
        producer="referral",
        correlation_id="c",
        occurred_at=AT,
        consultation_id=record,
        county_fips=county,
        asked_by=ReferralSource.COURT,
        question_topic=topic,
        occurred_on=day,
        recorded_by="liaison-01",
        recorded_at=AT,
    )


def blocked(county: str, kind: BarrierKind, day: date) -> BarrierRecordedV1:
    record = uuid.uuid4()
    return BarrierRecordedV1.create(
        about=(str(record),),
        producer="referral",
        correlation_id="c",
        occurred_at=AT,
        barrier_id=record,
        kind=kind,
        county_fips=county,
        referral_id=uuid.uuid4(),
        occurred_on=day,
        recorded_by="liaison-01",
        recorded_at=AT,
    )


def test_fiscal_years_run_july_to_june_and_end_on_june_30() -> None:
    window = fiscal_year_window(2026)
    assert (window.start, window.end) == (date(2025, 7, 1), date(2026, 7, 1))
    assert window.contains("2025-07-01")
    assert window.contains("2026-06-30")
    assert not window.contains("2025-06-30")
    assert not window.contains("2026-07-01")
    # Published once the 60 days records may be entered late have passed after June 30.
    assert published_from(2026) == date(2026, 8, 30)
    assert not is_published(2026, date(2026, 8, 29))
    assert is_published(2026, date(2026, 8, 30))


async def test_counts_by_county_and_fiscal_year_are_exact_under_redelivery() -> None:
    events: list[Any] = [
        consulted("29019", ConsultationTopic.RESOURCES, date(2025, 6, 30)),  # FY2025
        consulted("29019", ConsultationTopic.RESOURCES, date(2025, 7, 1)),  # FY2026
        consulted("29019", ConsultationTopic.TRAINING, date(2026, 6, 30)),
        consulted("29510", ConsultationTopic.RESOURCES, date(2025, 12, 1)),
        blocked("29019", BarrierKind.NO_BED, date(2025, 8, 1)),
        blocked("29019", BarrierKind.NO_BED, date(2025, 9, 1)),
        blocked("29095", BarrierKind.WAITLIST, date(2026, 1, 1)),
    ]
    # The same events again (a redelivery), and one re-sent under another event id (a producer
    # that lost its outbox entry's id): every record still counts once.
    resent = events[1].model_copy(update={"event_id": uuid.uuid4()})
    sent = events + events[::-1] + [resent]
    store = InMemoryViewStore()
    projector = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
    items = deliveries(sent)
    await projector.apply(items[:5])
    await projector.apply(items)  # a replay from the start after a crash before the commit
    raw = raw_activity(store.counters().series(), fiscal_year_window(2026))
    assert raw == {
        "consultations": {"29019": {"resources": 1, "training": 1}, "29510": {"resources": 1}},
        "barriers": {"29019": {"no_bed": 2}, "29095": {"waitlist": 1}},
    }
    earlier = raw_activity(store.counters().series(), fiscal_year_window(2025))
    assert earlier == {"consultations": {"29019": {"resources": 1}}, "barriers": {}}


def _numbers(published: dict[str, Any]) -> dict[tuple[str, str, str], int | str]:
    out: dict[tuple[str, str, str], int | str] = {}
    for family, (category, _) in FAMILIES.items():
        table = published[family]
        out[(family, "all", "total")] = table["total"]
        for c, v in table[f"by_{category}"].items():
            out[(family, "all", c)] = v
        for row in table["by_county"]:
            out[(family, row["county_fips"], "total")] = row["total"]
            for c, v in row[f"by_{category}"].items():
                out[(family, row["county_fips"], c)] = v
    return out


def _attack(raw: dict[str, RawTable], published: dict[str, Any]) -> list[str]:
    """Adds and subtracts what the table shows: each row, column and the total is an equation
    `total = sum of cells`; one unknown in an equation gives it away, and so on until nothing
    new is learnt. Also every difference of two shown numbers whose records nest. Returns the
    counts from 1 to 10 worked out (none may be)."""
    shown = _numbers(published)
    known = {k: v for k, v in shown.items() if isinstance(v, int)}
    equations: list[tuple[tuple[str, str, str], list[tuple[str, str, str]]]] = []
    for family, (_, categories) in FAMILIES.items():
        counties = list(raw.get(family, {}))
        for county in counties:
            equations.append(((family, county, "total"), [(family, county, c) for c in categories]))
        for c in categories:
            equations.append(((family, "all", c), [(family, county, c) for county in counties]))
        equations.append(((family, "all", "total"), [(family, "all", c) for c in categories]))
        equations.append(
            ((family, "all", "total"), [(family, county, "total") for county in counties])
        )
    leaks = []
    learnt = True
    while learnt:
        learnt = False
        for total, cells in equations:
            unknown = [n for n in (total, *cells) if n not in known]
            if len(unknown) != 1:
                if unknown and total in known and all(c in known or c in unknown for c in cells):
                    rest = known[total] - sum(known[c] for c in cells if c in known)
                    if 1 <= rest <= 10:
                        leaks.append(f"{unknown} add up to {rest}")
                continue
            [node] = unknown
            value = (
                known[total] - sum(known[c] for c in cells if c != node)
                if node != total
                else sum(known[c] for c in cells)
            )
            known[node] = value
            learnt = True
            if 1 <= value <= 10:
                leaks.append(f"{node} = {value}")
    return leaks


def test_published_table_hides_small_counts_and_every_way_to_work_them_out() -> None:
    raw: dict[str, RawTable] = {
        "consultations": {
            "29019": {"resources": 40, "training": 3, "other": 12},
            "29510": {"resources": 25, "detention_process": 14},
            "29095": {"resources": 2},
        },
        "barriers": {"29019": {"no_bed": 30, "waitlist": 30}, "29510": {"no_bed": 11}},
    }
    published = publish_activity(raw)
    numbers = _numbers(published)
    assert all(not (isinstance(v, int) and 1 <= v <= 10) for v in numbers.values())
    assert numbers[("consultations", "29019", "training")] == SUPPRESSED
    assert numbers[("consultations", "29095", "resources")] == SUPPRESSED
    # Zeros are published; what is large and cannot give a small cell away is shown.
    assert numbers[("barriers", "29019", "insurance")] == 0
    assert numbers[("barriers", "29019", "no_bed")] == 30
    assert published["barriers"]["total"] == 71
    assert _attack(raw, published) == []


def test_random_tables_never_leak_a_small_count() -> None:
    rng = random.Random(19)
    counties = ["29019", "29510", "29095", "29189", "29001"]
    for _ in range(200):
        raw: dict[str, RawTable] = {}
        for family, (_, categories) in FAMILIES.items():
            table: RawTable = {}
            for county, category in itertools.product(counties, categories):
                n = rng.choice([0, 0, 0, 1, 2, 5, 9, 11, 12, 20, 40])
                if n:
                    table.setdefault(county, {})[category] = n
            raw[family] = table
        published = publish_activity(raw)
        numbers = _numbers(published)
        assert all(not (isinstance(v, int) and 1 <= v <= 10) for v in numbers.values())
        assert _attack(raw, published) == []
        # Every shown number is exact.
        for (family, county, category), value in numbers.items():
            if value == SUPPRESSED:
                continue
            table = raw[family]
            rows = table.values() if county == "all" else [table.get(county, {})]
            truth = sum(
                sum(cells.values()) if category == "total" else cells.get(category, 0)
                for cells in rows
            )
            assert value == truth
