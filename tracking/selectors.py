"""Reads of the live map. Everything here that leaves for the public is built from the H3 cell
alone: no coordinate, and no value derived from one, finer than the cell."""

import functools
import math
from datetime import datetime

import h3
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from o2o.geo import cell_boundary, distance_m
from vendors.models import Stock, Vendor

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
    cached = cache.get(key)
    if cached is None:
        cached = sorted(
            Stock.objects.filter(
                vendor_id=vendor_id, quantity__gt=0, product__is_active=True
            ).values_list("product_id", flat=True)
        )
        cache.set(key, cached, timeout=60)  # also dropped on every stock change
    return cached


def products_in_stock_forget(*, vendor_id: int) -> None:
    cache.delete(_products_key(vendor_id))


def _in_stock(vendor_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {vid: [] for vid in vendor_ids}
    rows = Stock.objects.filter(
        vendor_id__in=vendor_ids, quantity__gt=0, product__is_active=True
    ).values_list("vendor_id", "product_id")
    for vendor_id, product_id in rows:
        out[vendor_id].append(product_id)
    return out


@functools.cache
def _vendor_url_template() -> str:
    return reverse("vendors:detail", args=["SLUG"])


def _vendor_url(slug: str) -> str:
    # reverse() per broadcast is measurable on the ping path; the pattern never changes.
    return _vendor_url_template().replace("SLUG", slug)


def public_payload(
    *,
    slug: str,
    name: str,
    cell: str,
    coarse: str,
    presence: str,
    last_seen: datetime | None,
    products: list[int],
) -> dict:
    """What the public sees of one vendor on the map, built from the cell alone. JSON-safe."""
    centre_lat, centre_lng = h3.cell_to_latlng(cell)
    return {
        "id": slug,
        "name": name,
        "url": _vendor_url(slug),
        "cell": cell,
        "coarse": coarse,
        "centre": [round(centre_lat, 6), round(centre_lng, 6)],
        "boundary": cell_boundary(cell),
        "presence": presence,
        "last_seen": last_seen.isoformat() if last_seen else None,
        "products": sorted(products),
    }


def public_payloads(positions: list[VendorPosition]) -> list[dict]:
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


def vendor_public_state(*, vendor_id: int) -> tuple[dict | None, str]:
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


def map_snapshot(*, coarse_cells: list[str]) -> list[dict]:
    positions = list(positions_live().filter(coarse_cell__in=coarse_cells).select_related("vendor"))
    return public_payloads(positions)


def _rings_for(radius_m: float, res: int) -> int:
    # Edge length is the hexagon's circumradius; rows of hexagons are ~1.5 edges apart.
    edge = h3.average_hexagon_edge_length(res, unit="m")
    return max(1, math.ceil(radius_m / (edge * 1.5)) + 1)


def _live_cells_in(field: str, cells: list[str]) -> list[tuple[int, str]]:
    """(vendor_id, public_cell) of vendors on the map in `cells`, straight from the partial index.
    Raw SQL: compiling an IN list of a few hundred cells through the ORM costs more than running
    it; PostgreSQL takes the list as one array parameter."""
    table = VendorPosition._meta.db_table
    column = {"public_cell": "public_cell", "coarse_cell": "coarse_cell"}[field]
    if connection.vendor == "postgresql":
        match, params = f"{column} = ANY(%s)", [list(cells)]
    else:
        match, params = f"{column} IN ({', '.join(['%s'] * len(cells))})", list(cells)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT vendor_id, public_cell FROM {table} "  # noqa: S608 - names from the model
            f"WHERE on_shift = %s AND NOT (presence = %s) AND {match}",
            [True, Presence.OFFLINE, *params],
        )
        return cursor.fetchall()


def vendors_nearby(*, lat: float, lng: float, radius_m: float, limit: int = 50) -> list[dict]:
    """Vendors on the map within about radius_m of a point, nearest first.

    By cells, never a table scan, and in two steps so a dense city costs what the answer costs:
    1. candidates: only (vendor, cell) pairs from the partial index on the cell (the cells within
       the radius at the public resolution, or at the coarse one for a wide radius), no join and
       no model instances, sorted by the distance to each cell's centre;
    2. details (approved vendors only) for the nearest few, by primary key, until `limit`.
    The distance given back is from the point to the vendor's cell centre, rounded to 100 m.
    """
    res = settings.PUBLIC_CELL_RES
    rings = _rings_for(radius_m, res)
    field = "public_cell"
    if rings > 12:  # wide radius: fewer, bigger cells, matched on the coarse column
        res = settings.MAP_GROUP_RES
        rings = _rings_for(radius_m, res)
        field = "coarse_cell"
    origin = h3.latlng_to_cell(lat, lng, res)
    rows = _live_cells_in(field, h3.grid_disk(origin, rings))
    by_cell: dict[str, float] = {}
    candidates = []
    for vendor_id, cell in rows:
        d = by_cell.get(cell)
        if d is None:
            d = by_cell[cell] = distance_m(lat, lng, *h3.cell_to_latlng(cell))
        if d <= radius_m:
            candidates.append((d, vendor_id))
    candidates.sort()
    found: list[tuple[float, VendorPosition]] = []
    start = 0
    while len(found) < limit and start < len(candidates):
        chunk = candidates[start : start + limit * 2]
        start += len(chunk)
        # Take the whole tie at the chunk's edge (same distance: one cell), for a stable order.
        while start < len(candidates) and candidates[start][0] == chunk[-1][0]:
            chunk.append(candidates[start])
            start += 1
        distance = dict((vid, d) for d, vid in chunk)
        for pos in positions_live().filter(vendor_id__in=distance).select_related("vendor"):
            found.append((distance[pos.vendor_id], pos))
    found.sort(key=lambda item: (item[0], item[1].vendor.name))
    found = found[:limit]
    payloads = public_payloads([pos for _d, pos in found])
    for payload, (d, _pos) in zip(payloads, found, strict=True):
        payload["distance_m"] = int(round(d / 100.0) * 100)
    return payloads


def coarse_cells_for_bbox(
    *, south: float, west: float, north: float, east: float
) -> list[str] | None:
    """The coarse cells covering a viewport, or None when there would be too many."""
    res = settings.MAP_GROUP_RES
    # Cheap size guard before asking h3 to fill a huge polygon.
    area_km2 = (
        (north - south) * 111.0 * (east - west) * 111.0 * max(math.cos(math.radians(south)), 0.01)
    )
    if area_km2 > settings.MAP_MAX_GROUPS * h3.average_hexagon_area(res, unit="km^2") * 1.5:
        return None
    poly = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    # Every cell that overlaps the viewport, and no more: a cell subscribed to but not seen costs
    # every delta in it.
    cells = set(h3.h3shape_to_cells_experimental(poly, res, contain="overlap"))
    if len(cells) > settings.MAP_MAX_GROUPS:
        return None
    return sorted(cells)


def vendor_track_today(*, vendor: Vendor, now: datetime | None = None) -> list[dict]:
    """The vendor's own exact track since local midnight: only ever shown to that vendor/staff."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Ping.objects.filter(vendor=vendor, recorded_at__gte=start)
        .order_by("recorded_at")
        .values_list("lat", "lng", "recorded_at")[:5000]
    )
    return [{"lat": lat, "lng": lng, "at": at.isoformat()} for lat, lng, at in rows]
