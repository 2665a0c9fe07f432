"""The minimum-count rule: no figure about an area is shown unless at least
settings.INSIGHT_MIN_BUYERS distinct buyers stand behind it.

An area with too few buyers is merged with its neighbours into the parent cell one resolution
coarser, and again up to INSIGHT_MERGE_LEVELS times; what is still too small is pooled as
"elsewhere" (no place), and dropped altogether when even that pool is too small. Distinct means
distinct: a buyer in two merged cells counts once (the sets are united, never their sizes added).
"""

from collections.abc import Iterable, Mapping

import h3
from django.conf import settings

ELSEWHERE = ""  # the pooled remainder: a figure with no place
INSIGHT_MERGE_LEVELS = 2


def areas_for(
    buyers_by_cell: Mapping[str, Iterable[int]], *, k: int | None = None
) -> dict[str, str | None]:
    """Each cell → the area it is shown in: itself, a coarser parent cell, ELSEWHERE, or None
    (hidden). Every area returned has at least `k` distinct buyers across its cells."""
    k = settings.INSIGHT_MIN_BUYERS if k is None else k
    sets = {cell: set(buyers) for cell, buyers in buyers_by_cell.items()}
    area: dict[str, str | None] = {}
    pending = {cell for cell in sets if cell}
    for level in range(INSIGHT_MERGE_LEVELS + 1):
        groups: dict[str, list[str]] = {}
        for cell in pending:
            res = h3.get_resolution(cell)
            parent = h3.cell_to_parent(cell, max(res - level, 0)) if level else cell
            groups.setdefault(parent, []).append(cell)
        pending = set()
        for parent, cells in groups.items():
            if len(set().union(*(sets[c] for c in cells))) >= k:
                area.update(dict.fromkeys(cells, parent))
            else:
                pending.update(cells)
    rest = pending | ({""} if "" in sets else set())
    pooled = set().union(*(sets[c] for c in rest)) if rest else set()
    for cell in rest:
        area[cell] = ELSEWHERE if len(pooled) >= k else None
    return area


def merge(
    figures: Mapping[str, Mapping[str, int]], areas: Mapping[str, str | None]
) -> dict[str, dict[str, int]]:
    """Figures by cell ({cell: {"units": .., "amount": ..}}) added up by area; hidden cells and
    cells no buyer stands behind are left out."""
    out: dict[str, dict[str, int]] = {}
    for cell, values in figures.items():
        target = areas.get(cell)
        if target is None:
            continue
        row = out.setdefault(target, {})
        for name, value in values.items():
            row[name] = row.get(name, 0) + value
    return out
