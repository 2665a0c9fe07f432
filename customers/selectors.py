"""Reads about customers' addresses: where a vendor delivers, drawn on the address map."""

from django.conf import settings

from o2o.geo import cell_boundary, cell_of
from vendors.models import ServiceCell


def vendor_area_cells(*, vendor_id: int) -> list[str]:
    """The H3 cells (at SERVICE_AREA_RES) a vendor delivers to."""
    return list(
        ServiceCell.objects.filter(vendor_id=vendor_id)
        .order_by("cell")
        .values_list("cell", flat=True)
    )


def vendor_area_shapes(*, vendor_id: int) -> list[dict[str, object]]:
    """The vendor's area as hexagons for a map: each cell and its corners (lat, lng)."""
    return [
        {"cell": cell, "boundary": cell_boundary(cell)}
        for cell in vendor_area_cells(vendor_id=vendor_id)
    ]


def in_vendor_area(*, vendor_id: int, lat: float, lng: float) -> bool:
    """Whether a point lies in the vendor's area: the rule order placement applies too."""
    cell = cell_of(lat, lng, res=settings.SERVICE_AREA_RES)
    return ServiceCell.objects.filter(vendor_id=vendor_id, cell=cell).exists()
