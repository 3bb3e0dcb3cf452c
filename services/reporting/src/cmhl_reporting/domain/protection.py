"""Suppression that holds across every published table: no count of 1 to 10 can be worked out by
adding or subtracting published numbers (docs/adr/0009-publication-grid.md).

The published numbers are *nodes*; what an outsider knows about how they relate is a list of
*groups*, each saying `total = cell + cell + ...` (fiscal quarters add up to their fiscal year,
sources add up to the referrals, a county's referrals by need add up to its referrals...). A
relation between two numbers that is an inequality (people referred in a quarter are among those
referred in its fiscal year; connected to treatment is among accepted) is a group too, whose
other cell is *virtual*: the difference, a count that is never published.

`protect` hides (i) every count from 1 to 10 (primary suppression), then (ii) one more member of
any group that would give a count away, until none does. A group gives a count away when exactly
one of its members is hidden (it is the total minus the rest) and that member is a real number
(which other groups rely on being unknown) or a count from 1 to 10; or when its total is shown
and its hidden cells add up to 1..10. The member hidden next is the group's smallest shown cell
that is not zero, else its total. A worklist re-checks only the groups of each newly hidden
number. Zeros are published: a zero reveals no one.

Afterwards every group has no hidden member or at least two, so an attacker who adds and
subtracts published numbers group by group (the closure the tests run) derives nothing; a hidden
number that is derivable through a virtual remainder alone is at least 11.

Groups alone miss sums that span levels and tables (a county's cumulative total minus its first
fiscal year minus its police referrals of the second). So `protect` also audits *splits*: every
group splits its total into disjoint parts, and a number may be split several ways (a fiscal
year into quarters, or by source, or by need). An attacker peels a shown number: takes away its
shown parts and, inside a hidden part, whatever that part's best split shows. What is left (the
*remainder*) must not be 1..10, for every shown number and each of its splits. Where the splits
form a tree, the counts an attacker can work out are unions of shown numbers and remainders,
which are disjoint, so none is then 1..10; the ADR says what is left where they do not."""

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

LOW, HIGH = 1, 10

Node = Hashable


def is_small(count: int) -> bool:
    return LOW <= count <= HIGH


@dataclass
class Relations:
    """Nodes with their true values, the virtual ones, and the groups relating them."""

    values: dict[Node, int] = field(default_factory=dict)
    virtual: set[Node] = field(default_factory=set)
    groups: list[tuple[Node, tuple[Node, ...]]] = field(default_factory=list)
    splits: dict[Node, list[tuple[Node, ...]]] = field(default_factory=dict)
    """Each group's total split into its cells: ways a node divides into disjoint parts."""

    def node(self, node: Node, value: int) -> Node:
        self.values[node] = value
        return node

    def sums(self, total: Node, cells: Iterable[Node]) -> None:
        """`total` is the sum of `cells` (all nodes already added)."""
        members = tuple(cells)
        if members:
            self.groups.append((total, members))
            self.splits.setdefault(total, []).append(members)

    def contains(self, outer: Node, inner: Node, remainder: Node) -> None:
        """`inner` counts a subset of what `outer` counts; `remainder` (virtual) the rest."""
        self.values[remainder] = self.values[outer] - self.values[inner]
        self.virtual.add(remainder)
        self.groups.append((outer, (inner, remainder)))
        self.splits.setdefault(outer, []).append((inner, remainder))


def protect(relations: Relations) -> set[Node]:
    """The nodes to publish as suppressed (virtual ones excluded: they are never published)."""
    values = relations.values
    hidden = {n for n, v in values.items() if is_small(v)} | set(relations.virtual)
    groups_of: dict[Node, list[int]] = defaultdict(list)
    for index, (total, cells) in enumerate(relations.groups):
        for member in (total, *cells):
            groups_of[member].append(index)
    pending = list(range(len(relations.groups)))
    while True:
        _settle(relations, hidden, groups_of, pending)
        more = _split_audit(relations, hidden)
        if not more:
            return hidden - relations.virtual
        hidden |= more
        pending = sorted({i for node in more for i in groups_of[node]})


def _settle(
    relations: Relations, hidden: set[Node], groups_of: dict[Node, list[int]], pending: list[int]
) -> None:
    """Hides until no group gives a count away (a worklist over the groups of what changed)."""
    queued = set(pending)
    while pending:
        index = pending.pop()
        queued.discard(index)
        if not _gives_away(relations, index, hidden):
            continue
        choice = _one_more(relations, index, hidden)
        if choice is None:
            continue  # every member is hidden or zero: nothing is given away
        hidden.add(choice)
        for other in groups_of[choice]:
            if other not in queued:
                queued.add(other)
                pending.append(other)


def _split_audit(relations: Relations, hidden: set[Node]) -> set[Node]:
    """For each shown node and split whose remainder is 1..10, one more part to hide: the
    smallest shown part the attacker peeled off (its value then joins the remainder)."""
    values = relations.values
    best: dict[Node, tuple[int, tuple[Node, ...]]] = {}
    visiting: set[Node] = set()

    def peel(node: Node) -> tuple[int, tuple[Node, ...]]:
        """How much of `node` shown numbers account for, and which ones (all of it, by itself,
        when shown; else through the split of it that accounts for most)."""
        if node not in hidden:
            return values[node], (node,)
        if node in best:
            return best[node]
        if node in visiting:
            return 0, ()  # a loop of equal numbers: nothing more to peel
        visiting.add(node)
        found: tuple[int, tuple[Node, ...]] = (0, ())
        for parts in relations.splits.get(node, ()):
            peeled = [peel(p) for p in parts]
            covered = sum(n for n, _ in peeled)
            if covered > found[0]:
                found = (covered, tuple(x for _, shown in peeled for x in shown))
        visiting.discard(node)
        best[node] = found
        return found

    more: set[Node] = set()
    for whole, splits in relations.splits.items():
        if whole in hidden:
            continue
        for parts in splits:
            peeled = [peel(p) for p in parts]
            remainder = values[whole] - sum(n for n, _ in peeled)
            if not is_small(remainder):
                continue
            shown = [x for _, xs in peeled for x in xs if values[x] != 0]
            more.add(min(shown, key=lambda x: (values[x], str(x))) if shown else whole)
            break
    return more


def _gives_away(relations: Relations, index: int, hidden: set[Node]) -> bool:
    values = relations.values
    total, cells = relations.groups[index]
    members = (total, *cells)
    unknown = [m for m in members if m in hidden]
    if len(unknown) == 1:
        only = unknown[0]
        return only not in relations.virtual or is_small(values[only])
    if unknown and total not in hidden:
        return is_small(sum(values[c] for c in unknown))
    return False


def _one_more(relations: Relations, index: int, hidden: set[Node]) -> Node | None:
    """The smallest shown non-zero cell of the group, else its total."""
    values = relations.values
    total, cells = relations.groups[index]
    shown = sorted((values[c], str(c), c) for c in cells if c not in hidden and values[c] != 0)
    if shown:
        return shown[0][2]
    if total not in hidden and values[total] != 0:
        return total
    return None
