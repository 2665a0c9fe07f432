"""The public cell's promise over time (README, "Live location and privacy"): when a cart's new
cell may be shown. Pure rules on the locked latest position, applied by tracking.services while
it records a batch of pings."""

from __future__ import annotations

import functools
import math
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import h3
from django.conf import settings

from .models import Presence

if TYPE_CHECKING:
    from .services import _Position


# The random part of a crossing's delay: the OS's randomness (tests put a seeded Random here).
_rng: random.Random = random.SystemRandom()
_M_PER_DEGREE = 111_320.0
_corners = functools.lru_cache(maxsize=50_000)(h3.cell_to_boundary)


def _depth_m(lat: float, lng: float, cell: str) -> float:
    """How far inside its cell a point lies: metres to the nearest edge (flat at the point's
    scale; an edge is under 200 m long)."""
    ky = _M_PER_DEGREE
    kx = ky * math.cos(math.radians(lat))
    corners = [((c_lng - lng) * kx, (c_lat - lat) * ky) for c_lat, c_lng in _corners(cell)]
    best = math.inf
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        dx, dy = bx - ax, by - ay
        f = min(max(-(ax * dx + ay * dy) / ((dx * dx + dy * dy) or 1.0), 0.0), 1.0)
        best = min(best, math.hypot(ax + f * dx, ay + f * dy))
    return best


def public_cell_after_fix(
    pos: _Position, lat: float, lng: float, accuracy: float, cell: str, now: datetime
) -> None:
    """The public cell's hysteresis (README, "Live location and privacy"), on the locked position
    before its presence moves. Coming on the map (first fix of a shift, or back from offline) shows
    the fix's cell at once. After that another cell is only a candidate (`pending_cell`) while the
    fixes are at least PUBLIC_CELL_MARGIN_M (or their accuracy, up to STATIONARY_JITTER_M) inside
    it; it is shown at the first ping (or publish sweep) after `pending_due_at` = the first such
    fix + PUBLIC_CELL_HOLD_S + a random delay, if every fix until then stayed that deep inside.
    A fix back in the shown cell, or not deep enough in any other, drops the candidate: a cart
    standing still, however its fixes jitter, keeps its cell, and a crossing is shown neither
    where nor when the cart met the edge."""
    if not pos.public_cell or pos.presence == Presence.OFFLINE:
        pos.public_cell, pos.pending_cell, pos.pending_due_at = cell, "", None
        return
    margin = settings.PUBLIC_CELL_MARGIN_M
    if cell == pos.public_cell or (
        margin > 0
        and _depth_m(lat, lng, cell) < max(margin, min(accuracy, settings.STATIONARY_JITTER_M))
    ):
        pos.pending_cell, pos.pending_due_at = "", None
        return
    if cell != pos.pending_cell or pos.pending_due_at is None:
        low, high = settings.PUBLIC_CELL_DELAY_MIN_S, settings.PUBLIC_CELL_DELAY_MAX_S
        wait = settings.PUBLIC_CELL_HOLD_S + (_rng.uniform(low, high) if high > 0 else 0.0)
        pos.pending_cell, pos.pending_due_at = cell, now + timedelta(seconds=wait)
    if now >= pos.pending_due_at:
        pos.public_cell, pos.pending_cell, pos.pending_due_at = cell, "", None
