"""Small-cell suppression of published counts (CMS cell-size rule, DOMAIN.md).

- Primary: a count of people or referrals from 1 to 10 is published as "suppressed".
- Complementary: in a group of cells that add up to a published total (referrals by source, by
  need, by county, by month...), hidden cells must not be derivable. One hidden cell is the total
  minus the shown cells, and k hidden cells summing to k must all be 1; in either case the next
  smallest shown non-zero cell is hidden too, and if none is left the total is hidden.
- No percentage is computed from a hidden cell or a hidden total.
Zeros are published: a zero reveals no one. Groups that do not add up (unique people by
source: a person can be referred by two sources) get primary suppression only."""

from collections.abc import Mapping

SUPPRESSED = "suppressed"
LOW, HIGH = 1, 10

Published = int | str


def is_small(count: int) -> bool:
    return LOW <= count <= HIGH


def suppress_count(count: int) -> Published:
    return SUPPRESSED if is_small(count) else count


def suppress_group(cells: Mapping[str, int], total: int) -> tuple[dict[str, Published], Published]:
    """Publishes `cells` (which add up to `total`) and the total, with complementary suppression."""
    if sum(cells.values()) != total:
        raise ValueError("cells must add up to the total")
    if is_small(total):
        return {k: suppress_count(v) for k, v in cells.items()}, SUPPRESSED
    hidden = {k for k, v in cells.items() if is_small(v)}
    total_hidden = False
    while hidden and _derivable(cells, hidden):
        shown = sorted((v, k) for k, v in cells.items() if k not in hidden and v > 0)
        if not shown:
            total_hidden = True
            break
        hidden.add(shown[0][1])
    published = {k: (SUPPRESSED if k in hidden else v) for k, v in cells.items()}
    return published, SUPPRESSED if total_hidden else total


def _derivable(cells: Mapping[str, int], hidden: set[str]) -> bool:
    hidden_sum = sum(cells[k] for k in hidden)
    return len(hidden) == 1 or hidden_sum == len(hidden)


def percent(cell: Published, total: Published) -> float | None:
    """A share of the total, only from shown numbers."""
    if isinstance(cell, str) or isinstance(total, str) or total == 0:
        return None
    return round(100 * cell / total, 1)


def percents(cells: Mapping[str, Published], total: Published) -> dict[str, float | None]:
    return {k: percent(v, total) for k, v in cells.items()}
