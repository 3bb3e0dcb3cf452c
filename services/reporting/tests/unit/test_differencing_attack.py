"""The differencing attack (tests/differencing.py) on the publication grid as built in memory.

Every number the public and metrics consumers can get (every grid period: all, each fiscal
quarter and fiscal year that has ended, as of each fiscal year's end; statewide,
each county, every dimension, placement) is collected with the set of referrals, people or
follow-ups it counts, known here from the generated facts rather than from the service's code.
An attacker then adds and subtracts what is shown:
- pairs: a shown count inside another shown count (their difference counts the rest);
- triples: two disjoint shown counts of referrals or follow-ups inside a third;
- people: the referrals of a scope minus the people of the same scope;
- the closure: every table whose cells partition a published count, and every difference that
  equals a published count, is an equation; an equation with one unknown gives it away, and so
  on until nothing new is learnt.
No derivation may yield a count from 1 to 10, and every shown number is exact."""

from datetime import date, timedelta

import pytest

from cmhl_reporting.application.projector import Projector
from cmhl_reporting.domain import grid
from cmhl_reporting.domain.grid import GridPeriod, Plan
from cmhl_reporting.domain.protection import is_small
from cmhl_reporting.domain.suppression import SUPPRESSED
from cmhl_reporting.domain.window import parse_period

from ..conftest import CHICAGO
from ..differencing import Answer, Truth, attack, numbers
from ..history import History, make_history
from .fakes import InMemoryViewStore, by_topic, deliveries

TODAY = date(2024, 2, 15)  # fy2024-q3 is running: the grid ends with fy2024-q2 (Dec 31, 2023)


async def _plan(history: History) -> Plan:
    store = InMemoryViewStore()
    projector = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
    for items in by_topic(deliveries(history.events)).values():
        await projector.apply(items)
    return Plan(store.counters(), TODAY)


def _last_day(quarter: str) -> date:
    end = parse_period(quarter).end
    assert end is not None
    return end - timedelta(days=1)


def _periods(plan: Plan) -> list[GridPeriod]:
    asked: list[tuple[str | None, date | None]] = [("all", None)]
    asked += [(q, None) for q in plan.quarters]
    years = {q.split("-")[0] for q in plan.quarters}
    asked += [(fy, None) for fy in sorted(years) if f"{fy}-q4" in plan.quarters]
    asked += [(None, _last_day(q)) for q in plan.quarters]
    return [grid.resolve(p, a, plan.quarters, TODAY) for p, a in asked]


def answers(plan: Plan, history: History) -> list[Answer]:
    """Every grid answer: statewide, each county, every dimension, for every grid period."""
    out: list[Answer] = []
    counties = sorted({r.county for r in history.referrals})
    for period in _periods(plan):
        for county in [None, *counties]:
            out.append((period, "statewide", county, grid.statewide(plan, period, county)))
        for dim in grid.REFERRAL_DIMENSIONS:
            out.append((period, "dimension", dim, grid.dimension(plan, period, dim)))
    return out


SHAPES = {
    "many small cells": {"referrals": 700, "counties": 12, "agencies": 14, "liaisons": 9},
    "demo-like": {"referrals": 2500, "counties": 40, "agencies": 30, "liaisons": 31},
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_no_small_count_can_be_derived_from_the_grid(shape: str) -> None:
    history = make_history(
        seed=11,
        first=date(2021, 7, 1),
        days=955,
        **SHAPES[shape],  # into the running quarter
    )
    plan = await _plan(history)
    assert plan.quarters[0] == "fy2022-q1"
    assert plan.quarters[-1] == "fy2024-q2"
    published = list(numbers(answers(plan, history), Truth(history, TODAY)))
    findings = attack(published)
    assert findings == [], f"{len(findings)} derivations, e.g. {findings[:10]}"
    shown = [n for n in published if n.value != SUPPRESSED]
    # Not everything is hidden: the statewide totals of every period are shown.
    totals = [n for n in published if n.key.endswith("|state|referrals")]
    assert all(isinstance(n.value, int) for n in totals), "a statewide total is hidden"
    # Nor what the brochure shows for a fiscal year: referrals by source and by need.
    fiscal = [n for n in published if n.key.startswith("fy2023|state|") and n.table]
    brochure = [n for n in fiscal if "|source=" in n.key or "|need=" in n.key]
    assert brochure
    if shape == "demo-like":
        assert all(isinstance(n.value, int) for n in brochure), brochure
    assert len(shown) > len(published) // 6


async def test_the_attack_finds_small_counts_when_only_small_cells_are_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The attack is not toothless: with primary suppression alone (every count of 1 to 10
    hidden, nothing more), it works small counts out of the same history."""
    monkeypatch.setattr(
        grid, "protect", lambda relations: {n for n, v in relations.values.items() if is_small(v)}
    )
    history = make_history(seed=11, first=date(2021, 7, 1), days=955, **SHAPES["many small cells"])
    plan = await _plan(history)
    findings = attack(list(numbers(answers(plan, history), Truth(history, TODAY))))
    assert len(findings) > 20
    assert any(" - " in f for f in findings)  # by subtraction
    assert any("derived" in f for f in findings)  # by solving the tables
