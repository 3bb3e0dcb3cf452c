"""The differencing attack on the publication grid (docs/adr/0009-publication-grid.md), shared
by the unit test (the grid's answers built in memory) and the integration test (the answers
the running service gives over HTTP, in JSON and CSV, to the public and to metrics consumers).

Each published number is paired with the set of referrals, people or follow-ups it counts,
known from the generated facts (tests/history.py) rather than from the service's code. An
attacker then adds and subtracts what is shown:
- pairs: a shown count inside another shown count (their difference counts the rest);
- triples: two disjoint shown counts of referrals or follow-ups inside a third;
- people: the referrals of a scope minus the people of the same scope;
- the closure: every table whose cells partition a published count, and every difference that
  equals a published count, is an equation; an equation with one unknown gives it away, and so
  on until nothing new is learnt.
No derivation may yield a count from 1 to 10, and every shown number is exact."""

import itertools
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from cmhl_reporting.domain import grid
from cmhl_reporting.domain.grid import GridPeriod
from cmhl_reporting.domain.protection import Relations
from cmhl_reporting.domain.suppression import SUPPRESSED
from cmhl_reporting.domain.views import FUNNEL

from .history import FollowUp, History, Referral

Kind = str  # "r" referrals, "p" people, "f" follow-ups


@dataclass(frozen=True)
class Number:
    key: str  # what it is, e.g. "fy2023|29001|referrals.by_source.court"
    table: str  # the cells of one table share it; "" for a number in no table
    value: int | str
    kind: Kind
    members: int  # bitmask of the referrals, people or follow-ups it counts


class Truth:
    def __init__(self, history: History, today: date) -> None:
        self.history = history
        self.today = today

    def referrals(self, period: GridPeriod, test: Callable[[Referral], bool]) -> int:
        mask = 0
        for r in self.history.referrals:
            if period.window.contains(r.day.isoformat()) and test(r):
                mask |= 1 << r.index
        return mask

    def people(self, referrals: int) -> int:
        mask = 0
        for r in self.history.referrals:
            if referrals >> r.index & 1:
                mask |= 1 << r.person
        return mask

    def follow_ups(self, period: GridPeriod, test: Callable[[FollowUp], bool]) -> int:
        mask = 0
        for f in self.history.follow_ups:
            if period.window.contains(f.referral.day.isoformat()) and test(f):
                mask |= 1 << f.index
        return mask


def _has(attribute: str, value: str) -> Callable[[Referral], bool]:
    return lambda r: getattr(r, attribute) == value


def _both(
    first: Callable[[Referral], bool], second: Callable[[Referral], bool]
) -> Callable[[Referral], bool]:
    return lambda r: first(r) and second(r)


def _reached(status: str) -> Callable[[Referral], bool]:
    return lambda r: status in r.statuses


def _went_through(stage: str) -> Callable[[FollowUp], bool]:
    return lambda f: stage in f.stages


def _ended(outcome: str) -> Callable[[FollowUp], bool]:
    return lambda f: f.outcome == outcome


Answer = tuple[GridPeriod, str, str | None, dict[str, Any]]
"""A grid answer: its period, `statewide` or `dimension`, the county or dimension, the body."""


def numbers(answers: list[Answer], truth: Truth) -> Iterator[Number]:
    """Every number of every answer, with what it counts."""
    for period, table, arg, body in answers:
        if table == "statewide":
            yield from _statewide(body, period, arg, truth)
            continue
        assert arg is not None
        yield from _dimension(body, period, arg, truth)


def _dimension(
    body: dict[str, Any], period: GridPeriod, dim: str, truth: Truth
) -> Iterator[Number]:
    p = period.key
    everyone = truth.referrals(period, lambda r: True)
    yield Number(f"{p}|referrals", "", body["total"]["referrals"], "r", everyone)
    if body["total"]["people"] is not None:
        yield Number(f"{p}|people", "", body["total"]["people"], "p", truth.people(everyone))
    for row in body["rows"]:
        key = row["key"]
        mask = truth.referrals(period, _has(dim, key))
        yield Number(f"{p}|{dim}={key}|referrals", f"{p}|{dim}", row["referrals"], "r", mask)
        if row["people"] is not None:
            yield Number(f"{p}|{dim}={key}|people", "", row["people"], "p", truth.people(mask))


def _statewide(
    body: dict[str, Any], period: GridPeriod, county: str | None, truth: Truth
) -> Iterator[Number]:
    p = period.key
    scope = f"{p}|{county or 'state'}"

    def here(r: Referral) -> bool:
        return county is None or r.county == county

    referrals = body["referrals"]
    everyone = truth.referrals(period, here)
    yield Number(f"{scope}|referrals", "", referrals["total"], "r", everyone)
    if referrals["people"] is not None:
        yield Number(f"{scope}|people", "", referrals["people"], "p", truth.people(everyone))
    for key, value in referrals["by_source"].items():
        mask = truth.referrals(period, _both(here, _has("source", key)))
        yield Number(f"{scope}|source={key}", f"{scope}|source", value, "r", mask)
    for key, value in referrals["by_presenting_need"].items():
        mask = truth.referrals(period, _both(here, _has("need", key)))
        yield Number(f"{scope}|need={key}", f"{scope}|need", value, "r", mask)
    for quarter, value in referrals["by_quarter"].items():
        mask = truth.referrals(grid.resolve(quarter, None, [], truth.today), here)
        yield Number(
            f"{quarter}|{county or 'state'}|referrals", f"{scope}|quarter", value, "r", mask
        )
    if county is not None:
        return
    repeat = truth.referrals(period, lambda r: r.repeat)
    yield Number(f"{scope}|repeat", "", referrals["repeat_involvement"], "r", repeat)
    if referrals["people_with_repeat_involvement"] is not None:
        value = referrals["people_with_repeat_involvement"]
        yield Number(f"{scope}|people|repeat", "", value, "p", truth.people(repeat))
    for key, value in referrals["by_court_type"].items():
        mask = truth.referrals(period, _has("court_type", key))
        yield Number(f"{scope}|court_type={key}", f"{scope}|court", value, "r", mask)
    for stage in FUNNEL:
        if stage == "contacted":
            mask = truth.referrals(period, lambda r: r.contacted)
        else:
            mask = truth.referrals(period, _reached(stage))
        yield Number(f"{scope}|funnel={stage}", "", body["funnel"][stage], "r", mask)
    contacted = truth.referrals(period, lambda r: r.contacted)
    yield Number(
        f"{scope}|funnel=contacted", "", body["first_contact"]["referrals"], "r", contacted
    )
    follow_ups = body["follow_ups"]
    for stage in grid.FOLLOW_UP_STAGES:
        mask = truth.follow_ups(period, _went_through(stage))
        yield Number(f"{scope}|follow_ups={stage}", "", follow_ups[stage], "f", mask)
    for key, value in follow_ups["outcomes"].items():
        mask = truth.follow_ups(period, _ended(key))
        yield Number(f"{scope}|outcome={key}", f"{scope}|outcome", value, "f", mask)


def _small(n: int) -> bool:
    return 1 <= n <= 10


def attack(numbers: list[Number]) -> list[str]:
    """What an attacker learns that they must not: each finding says how."""
    found: list[str] = []
    by_key: dict[str, set[int | str]] = defaultdict(set)
    for n in numbers:
        by_key[n.key].add(n.value)
        size = n.members.bit_count()
        if n.value != SUPPRESSED and (n.value != size or _small(size)):
            found.append(f"{n.key} shows {n.value}, counts {size}")
    found += [f"{k} is published as {sorted(map(str, v))}" for k, v in by_key.items() if len(v) > 1]
    # One entry per distinct (kind, set): the same count in two tables is one fact.
    shown: dict[tuple[Kind, int], Number] = {}
    hidden: dict[tuple[Kind, int], Number] = {}
    for n in numbers:
        (hidden if n.value == SUPPRESSED else shown).setdefault((n.kind, n.members), n)
    for kind, outer in shown:
        inside = [m for (k, m) in shown if k == kind and m != outer and m & ~outer == 0]
        big = outer.bit_count()
        for inner in inside:
            if _small(big - inner.bit_count()):
                found.append(f"{shown[(kind, outer)].key} - {shown[(kind, inner)].key}")
        if kind == "p":
            # People recur across periods and categories: no two counts of people are known to
            # be disjoint, so only what one holds of another (a pair) can be subtracted.
            continue
        inside.sort(key=int.bit_count, reverse=True)
        for a, b in itertools.combinations(inside, 2):
            if a.bit_count() + b.bit_count() < big - 10:
                continue
            if a & b == 0 and _small(big - a.bit_count() - b.bit_count()):
                found.append(
                    f"{shown[(kind, outer)].key} - {shown[(kind, a)].key} - {shown[(kind, b)].key}"
                )
    found += _people_within_referrals(shown)
    found += _closure(numbers, shown, hidden)
    return found


def _people_within_referrals(shown: dict[tuple[Kind, int], Number]) -> list[str]:
    """Referrals of a scope minus its people counts the repeat referrals in it."""
    found = []
    people = {m: n for (k, m), n in shown.items() if k == "p"}
    for (kind, mask), number in shown.items():
        if kind != "r":
            continue
        # the people behind these referrals, by the same keys the people numbers use
        same_scope = number.key.replace("|referrals", "|people")
        match = next((n for n in people.values() if n.key == same_scope), None)
        if match is not None and _small(mask.bit_count() - match.members.bit_count()):
            found.append(f"{number.key} - {match.key}")
    return found


def _closure(
    numbers: list[Number],
    shown: dict[tuple[Kind, int], Number],
    hidden: dict[tuple[Kind, int], Number],
) -> list[str]:
    """Equations found from the published structure, solved one unknown at a time."""
    every = {**hidden, **shown}
    relations = Relations()
    for (kind, mask), _ in every.items():
        relations.node((kind, mask), mask.bit_count())
    tables: dict[str, list[tuple[Kind, int]]] = defaultdict(list)
    for n in numbers:
        if n.table:
            tables[n.table].append((n.kind, n.members))
    for cells in tables.values():
        cells = list(dict.fromkeys(cells))
        union = 0
        for _, mask in cells:
            union |= mask
        total = (cells[0][0], union)
        # A table whose one non-empty cell is its total says nothing (total = total + 0).
        parts = [] if total in cells else cells
        disjoint = sum(m.bit_count() for _, m in cells) == union.bit_count()
        if total in every and parts and disjoint:
            relations.sums(total, parts)
    for (kind, outer), (kind2, inner) in itertools.permutations(every, 2):
        if kind == kind2 and inner & ~outer == 0 and (kind, outer & ~inner) in every:
            relations.sums((kind, outer), [(kind, inner), (kind, outer & ~inner)])
    known: set[Hashable] = set(shown)
    changed = True
    while changed:
        changed = False
        for group_total, group_cells in relations.groups:
            unknown = [m for m in (group_total, *group_cells) if m not in known]
            if len(unknown) == 1:
                known.add(unknown[0])
                changed = True
    return [
        f"{every[node].key} = {node[1].bit_count()} derived"
        for node in every
        if node in known and node not in shown and _small(node[1].bit_count())
    ]
