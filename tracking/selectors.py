"""Reads of the live map. Everything here that leaves for the public is built from the H3 cell
alone: no coordinate, and no value derived from one, finer than the cell."""

import bisect
import functools
import math
from datetime import UTC, datetime
from typing import Any, cast

import h3
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from o2o.geo import cell_boundary, distance_m
from vendors.models import Product, Stock, StockLot, Vendor

from .models import Ping, Presence, VendorPosition


def positions_live() -> QuerySet[VendorPosition]:
    """Vendors the public may see now: on shift, not offline, approved, with a cell."""
    return (
        VendorPosition.objects.filter(on_shift=True, vendor__status=Vendor.Status.APPROVED)
        .exclude(presence=Presence.OFFLINE)
        .exclude(public_cell="")
    )


def _products_key(vendor_id: int) -> str:
    return f"tracking:in-stock:{vendor_id}"


def products_in_stock(*, vendor_id: int) -> list[int]:
    """Ids of the products on a vendor's cart now; cached, dropped when the stock changes."""
    key = _products_key(vendor_id)
    cached: list[int] | None = cache.get(key)
    if cached is None:
        cached = sorted(_on_sale([vendor_id]).values_list("product_id", flat=True))
        cache.set(key, cached, timeout=60)  # also dropped on every stock change
    return cached


def products_in_stock_many(*, vendor_ids: list[int]) -> dict[int, list[int]]:
    """products_in_stock for several vendors: one cache round trip, one query for the misses."""
    keys = {vid: _products_key(vid) for vid in vendor_ids}
    cached = cache.get_many(list(keys.values()))
    out = {vid: cached[key] for vid, key in keys.items() if key in cached}
    missing = [vid for vid in vendor_ids if vid not in out]
    if missing:
        fresh = {vid: sorted(ids) for vid, ids in _in_stock(missing).items()}
        cache.set_many({keys[vid]: ids for vid, ids in fresh.items()}, timeout=60)
        out.update(fresh)
    return out


def products_in_stock_forget(*, vendor_id: int) -> None:
    cache.delete(_products_key(vendor_id))


def _on_sale(vendor_ids: list[int]) -> QuerySet[Stock]:
    """The stock rows of these carts with units that may be sold now: an active product with a
    lot not past its sell-by time (units of expired lots are on the cart, but not for sale)."""
    sellable = StockLot.objects.filter(
        vendor_id=OuterRef("vendor_id"),
        product_id=OuterRef("product_id"),
        quantity__gt=0,
        sell_by__gt=timezone.now(),
    )
    return Stock.objects.filter(
        Exists(sellable), vendor_id__in=vendor_ids, quantity__gt=0, product__is_active=True
    )


def _in_stock(vendor_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {vid: [] for vid in vendor_ids}
    for vendor_id, product_id in _on_sale(vendor_ids).values_list("vendor_id", "product_id"):
        out[vendor_id].append(product_id)
    return out


@functools.cache
def _vendor_url_template() -> str:
    return reverse("vendors:detail", args=["SLUG"])


def _vendor_url(slug: str) -> str:
    # reverse() per broadcast is measurable on the ping path; the pattern never changes.
    return _vendor_url_template().replace("SLUG", slug)


# A cell's shape never changes: a nearby search measures hundreds of cells and a page of payloads
# draws fifty, mostly the same ones call after call. Bounded (a country's worth of busy cells).
_centre = functools.lru_cache(maxsize=200_000)(h3.cell_to_latlng)
_boundary = functools.lru_cache(maxsize=50_000)(lambda cell: tuple(map(tuple, cell_boundary(cell))))


def public_payload(
    *,
    slug: str,
    name: str,
    cell: str,
    coarse: str,
    presence: str,
    last_seen: datetime | None,
    products: list[int],
) -> dict[str, Any]:
    """What the public sees of one vendor on the map, built from the cell alone. JSON-safe."""
    (centre_lat, centre_lng), boundary = _centre(cell), _boundary(cell)
    return {
        "id": slug,
        "name": name,
        "url": _vendor_url(slug),
        "cell": cell,
        "coarse": coarse,
        "centre": [round(centre_lat, 6), round(centre_lng, 6)],
        "boundary": [list(corner) for corner in boundary],  # a copy: callers may change it
        "presence": presence,
        "last_seen": public_time(last_seen),
        "products": sorted(products),
    }


def public_time(moment: datetime | None) -> str | None:
    """A vendor's last-seen time as the public may see it: rounded down to PUBLIC_TIME_STEP_S
    (whole seconds at the finest), so it says no more than the cell when a ping came."""
    if moment is None:
        return None
    moment = _aware(moment)
    step = max(int(settings.PUBLIC_TIME_STEP_S), 1)
    seconds = math.floor(moment.timestamp() / step) * step
    return datetime.fromtimestamp(seconds, tz=moment.tzinfo).isoformat()


def _aware(moment: datetime) -> datetime:
    """Raw SQL on SQLite hands back naive datetimes (stored in UTC); clients need the offset."""
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


def public_payloads(positions: list[VendorPosition]) -> list[dict[str, Any]]:
    stock = _in_stock([p.vendor_id for p in positions])
    return [
        public_payload(
            slug=p.vendor.slug,
            name=p.vendor.name,
            cell=p.public_cell,
            coarse=p.coarse_cell,
            presence=p.presence,
            last_seen=p.last_ping_at,
            products=stock[p.vendor_id],
        )
        for p in positions
    ]


def vendor_public_state(*, vendor_id: int) -> tuple[dict[str, Any] | None, str]:
    """(payload or None when the vendor is not public, its coarse cell)."""
    pos = positions_live().select_related("vendor").filter(vendor_id=vendor_id).first()
    if pos is None:
        coarse = (
            VendorPosition.objects.filter(vendor_id=vendor_id)
            .values_list("coarse_cell", flat=True)
            .first()
        )
        return None, coarse or ""
    return public_payloads([pos])[0], pos.coarse_cell


def public_states(*, vendor_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The public payload of each of these vendors that is on the map now (the others are
    absent: off shift, offline, not approved). Three queries whatever the number."""
    positions = list(positions_live().filter(vendor_id__in=vendor_ids).select_related("vendor"))
    return {
        p.vendor_id: payload
        for p, payload in zip(positions, public_payloads(positions), strict=True)
    }


def map_snapshot(*, coarse_cells: list[str]) -> list[dict[str, Any]]:
    positions = list(positions_live().filter(coarse_cell__in=coarse_cells).select_related("vendor"))
    return public_payloads(positions)


# Nearby search: cells within the radius in tiers of growing distance; a tier is read only while
# the nearer ones hold fewer than the page. Fine (public resolution) cells up to FINE_MAX_M, then
# one tier of coarse cells for what lies beyond.
FINE_MAX_M = 3_000.0
FIRST_TIER_M = 300.0
_METRES_PER_RADIAN = 6_371_007.180918475  # H3's earth radius, as in distance_m
# The flat distance with this point's scale is within a metre of the great circle up to
# FINE_MAX_M (the scale changes by ~0.03 % over 3 km of latitude); five for good measure.
_FLAT_MARGIN_M = 5.0
TIER_GROWTH = 2.0
TIER_GROWTH_MIN = 1.5


def _edge_m(cell: str) -> float:
    """The cell's circumradius (centre to farthest corner), measured, not the world average."""
    centre = h3.cell_to_latlng(cell)
    return max(distance_m(*centre, *corner) for corner in h3.cell_to_boundary(cell))


def _disk_for(lat: float, lng: float, radius_m: float, res: int) -> list[str]:
    """Cells at `res` that may have their centre within radius_m of the point: rows of hexagons
    are 1.5 circumradii apart and the point is up to one circumradius from its cell's centre;
    one ring more covers the grid's distortion over a few kilometres."""
    origin = h3.latlng_to_cell(lat, lng, res)
    edge = _edge_m(origin)
    return cast(
        list[str], h3.grid_disk(origin, max(1, math.ceil((radius_m + edge) / (edge * 1.5)) + 1))
    )


def _nearby_tiers(lat: float, lng: float, radius_m: float) -> list[tuple[str, list[str]]]:
    """[(column, cells)] nearest first. Each fine tier is an annulus of public cells by the
    distance of their centres (300 m, then doubling, up to the radius or FINE_MAX_M); a radius
    beyond FINE_MAX_M adds one tier of coarse cells covering the rest.

    Hundreds of cells are sorted into tiers on every call, so by a flat-earth distance (a few
    arithmetic operations), and by the great-circle distance itself for the few cells within
    _FLAT_MARGIN_M of a tier's bound: the tiers are exactly those of the great circle."""
    fine_m = min(radius_m, FINE_MAX_M)
    bounds = []
    bound = FIRST_TIER_M
    while bound * TIER_GROWTH_MIN < fine_m:  # no thin last annulus: one tier more to plan
        bounds.append(bound)
        bound *= TIER_GROWTH
    bounds.append(fine_m)
    fine: list[list[str]] = [[] for _ in bounds]
    # Metres per degree here; away from the poles and the antimeridian, else always exact.
    ky = math.radians(1) * _METRES_PER_RADIAN
    kx = ky * math.cos(math.radians(lat))
    margin = _FLAT_MARGIN_M if abs(lat) < 80 and abs(lng) < 179 else math.inf
    last = len(bounds)
    for cell in _disk_for(lat, lng, fine_m, settings.PUBLIC_CELL_RES):
        c_lat, c_lng = _centre(cell)
        d = math.hypot((c_lat - lat) * ky, (c_lng - lng) * kx)
        n = bisect.bisect_left(bounds, d)
        if (n < last and bounds[n] - d < margin) or (n and d - bounds[n - 1] < margin):
            n = bisect.bisect_left(bounds, distance_m(lat, lng, c_lat, c_lng))
        if n < last:
            fine[n].append(cell)
    tiers = [("public_cell", cells) for cells in fine if cells]
    if radius_m > FINE_MAX_M:
        tiers.append(("coarse_cell", _disk_for(lat, lng, radius_m, settings.MAP_GROUP_RES)))
    return tiers


def _live_in_tiers(tiers: list[tuple[str, list[str]]], need: int) -> list[tuple[Any, ...]]:
    """(tier, vendor_id, slug, name, public_cell, coarse_cell, presence, last_ping_at, products
    in stock) of the approved vendors on the map in the tiers, from the partial indexes on the
    cell columns, in one statement. A tier is read only while the tiers before it found fewer than `need`: each later
    tier is gated on the counts of the earlier ones, a condition PostgreSQL evaluates once,
    before the scan, and skips the scan when it is false. Raw SQL: the ORM spends longer
    compiling a few hundred cells than this runs."""
    postgres = connection.vendor == "postgresql"
    ctes: list[str] = []
    params: list[Any] = []
    for n, (column, cells) in enumerate(tiers):
        cell_params: list[Any]
        if postgres:
            # The array behind a sub-select: the planner then does not estimate every element's
            # selectivity (milliseconds for a few hundred cells), and the index scan is the same.
            match, cell_params = f"p.{column} = ANY((SELECT %s::varchar[])::varchar[])", [cells]
        else:
            match, cell_params = f"p.{column} IN ({', '.join(['%s'] * len(cells))})", list(cells)
        gate = ""
        if n:
            counts = " + ".join(f"(SELECT count(*) FROM t{k})" for k in range(n))  # noqa: S608
            gate = f" AND {counts} < %s"
        ctes.append(
            f"t{n} AS MATERIALIZED (SELECT {n} AS tier, p.vendor_id, v.slug, v.name, "  # noqa: S608
            "p.public_cell, p.coarse_cell, p.presence, p.last_ping_at "
            f"FROM {VendorPosition._meta.db_table} p JOIN {Vendor._meta.db_table} v"
            " ON v.id = p.vendor_id WHERE p.on_shift = %s AND NOT (p.presence = %s)"
            f" AND v.status = %s AND {match}{gate})"
        )
        params += [True, Presence.OFFLINE, Vendor.Status.APPROVED, *cell_params]
        params += [need] if gate else []
    union = " UNION ALL ".join(f"SELECT * FROM t{n}" for n in range(len(tiers)))  # noqa: S608
    # What each found vendor has on the cart, in the same round trip (as _in_stock reads it).
    stock = (
        f"SELECT s.product_id FROM {Stock._meta.db_table} s"  # noqa: S608 - model names
        f" JOIN {Product._meta.db_table} pr ON pr.id = s.product_id"
        " WHERE s.vendor_id = c.vendor_id AND s.quantity > 0 AND pr.is_active"
        f" AND EXISTS (SELECT 1 FROM {StockLot._meta.db_table} l WHERE l.vendor_id = s.vendor_id"
        " AND l.product_id = s.product_id AND l.quantity > 0 AND l.sell_by > %s)"
    )
    if postgres:
        products = f"ARRAY({stock})"
    else:
        products = f"(SELECT group_concat(product_id) FROM ({stock}))"  # noqa: S608
    sql = f"WITH {', '.join(ctes)} SELECT c.*, {products} FROM ({union}) c"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, timezone.now()])
        return cast(list[tuple[Any, ...]], cursor.fetchall())


def _product_ids(value: list[int] | str | None) -> list[int]:
    """An ARRAY from PostgreSQL; SQLite has none and answers a comma-separated text (or NULL)."""
    if isinstance(value, list):
        return value
    return [int(x) for x in value.split(",")] if value else []


def vendors_nearby(
    *, lat: float, lng: float, radius_m: float, limit: int = 50
) -> list[dict[str, Any]]:
    """Approved vendors on the map whose public cell's centre is within radius_m of a point,
    nearest first (then by name), at most `limit`.

    By cells, never a table scan, and reading only as far out as the page needs: the vendors
    come from the partial indexes on the cell columns, tier by tier outwards (see
    _nearby_tiers), in one statement that stops at the first tier by which `limit` vendors were
    found. Every cell of a later tier is farther than every cell of an earlier one, so the
    nearest `limit` are among those read. Then one query for their stock. The distance given back
    is from the point to the vendor's cell centre, rounded to 100 m.
    """
    tiers = _nearby_tiers(lat, lng, radius_m)
    if not tiers:
        return []
    distance: dict[str, float] = {}
    found = {}  # by vendor: one of a fine tier can come again from the coarse one
    for _tier, vendor_id, slug, name, cell, *rest in _live_in_tiers(tiers, need=limit):
        d = distance.get(cell)
        if d is None:
            d = distance[cell] = distance_m(lat, lng, *_centre(cell))
        if d <= radius_m:
            found[vendor_id] = (d, name, slug, vendor_id, cell, *rest)
    nearest = sorted(found.values())[:limit]  # distance, then name, then slug (unique)
    payloads = []
    for d, name, slug, _vendor_id, cell, coarse, presence, last_seen, products in nearest:
        payload = public_payload(
            slug=slug,
            name=name,
            cell=cell,
            coarse=coarse,
            presence=presence,
            last_seen=last_seen,
            products=_product_ids(products),
        )
        payload["distance_m"] = int(round(d / 100.0) * 100)
        payloads.append(payload)
    return payloads


# A viewport's box is refused (the client is asked to zoom in) without computing a cell when it
# spans more than this in latitude or longitude, or when more than MAP_MAX_GROUPS times
# VIEWPORT_BOUND_SLACK cells could overlap it: h3 then visits at most that many (~3 ms of CPU).
VIEWPORT_MAX_SPAN_DEG = 2.0
VIEWPORT_BOUND_SLACK = 8
EARTH_RADIUS_KM = 6371.0088  # h3's


def viewport_cells_at_most(
    *, south: float, west: float, north: float, east: float, res: int
) -> float:
    """An upper bound on the cells at `res` that overlap the box, from its true (spherical) size:
    every such cell lies inside the box grown by a cell's diameter, so there are at most that grown
    area over the smallest cell's area. Infinite for a box that is inverted, wraps the
    antimeridian or spans more than VIEWPORT_MAX_SPAN_DEG."""
    if not (south < north and west < east):
        return math.inf
    if north - south > VIEWPORT_MAX_SPAN_DEG or east - west > VIEWPORT_MAX_SPAN_DEG:
        return math.inf
    s, n, dlng = math.radians(south), math.radians(north), math.radians(east - west)
    area = EARTH_RADIUS_KM**2 * dlng * (math.sin(n) - math.sin(s))
    # The longest parallel of the box is the one nearest the equator.
    widest = 0.0 if south <= 0 <= north else min(abs(s), abs(n))
    perimeter = 2 * EARTH_RADIUS_KM * ((n - s) + dlng * math.cos(widest))
    # Cells vary in size: a diameter of 2.6 average edges, half the average area (pentagons).
    diameter = 2.6 * h3.average_hexagon_edge_length(res, unit="km")
    smallest = 0.5 * h3.average_hexagon_area(res, unit="km^2")
    return cast(float, (area + perimeter * diameter + math.pi * diameter**2) / smallest)


def coarse_cells_for_bbox(
    *, south: float, west: float, north: float, east: float
) -> list[str] | None:
    """The coarse cells covering a viewport, or None when there would be too many."""
    res = settings.MAP_GROUP_RES
    # Size guard before asking h3 to fill the polygon: its work grows with the cells it visits.
    if viewport_cells_at_most(south=south, west=west, north=north, east=east, res=res) > (
        settings.MAP_MAX_GROUPS * VIEWPORT_BOUND_SLACK
    ):
        return None
    poly = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    # Every cell that overlaps the viewport, and no more: a cell subscribed to but not seen costs
    # every delta in it.
    cells = set(h3.h3shape_to_cells_experimental(poly, res, contain="overlap"))
    if len(cells) > settings.MAP_MAX_GROUPS:
        return None
    return sorted(cells)


def vendor_track_today(*, vendor: Vendor, now: datetime | None = None) -> list[dict[str, Any]]:
    """The vendor's own exact track since local midnight: only ever shown to that vendor/staff."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Ping.objects.filter(vendor=vendor, recorded_at__gte=start)
        .order_by("recorded_at")
        .values_list("lat", "lng", "recorded_at")[:5000]
    )
    return [{"lat": lat, "lng": lng, "at": at.isoformat()} for lat, lng, at in rows]
