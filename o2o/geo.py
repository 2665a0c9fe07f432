"""Location helpers shared by every app: coordinate validation and H3 cells."""

import h3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def validate_lat_lng(lat: float, lng: float) -> None:
    if lat is None or lng is None:
        raise ValidationError(_("A location needs both latitude and longitude."))
    if not (-90.0 <= lat <= 90.0):
        raise ValidationError(_("Latitude must be between -90 and 90."))
    if not (-180.0 <= lng <= 180.0):
        raise ValidationError(_("Longitude must be between -180 and 180."))


def cell_of(lat: float, lng: float, res: int | None = None) -> str:
    """The H3 cell (hex string) containing the point, at `res` (default: the public resolution)."""
    validate_lat_lng(lat, lng)
    return h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES if res is None else res)


def cell_centre(cell: str) -> tuple[float, float]:
    return h3.cell_to_latlng(cell)


def is_valid_cell(cell: str) -> bool:
    try:
        return bool(h3.is_valid_cell(cell))
    except (TypeError, ValueError):
        return False


def disk(cell: str, k: int) -> list[str]:
    return list(h3.grid_disk(cell, k))


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    return h3.great_circle_distance((lat1, lng1), (lat2, lng2), unit="m")


def cell_boundary(cell: str) -> list[list[float]]:
    """The hexagon's corners, rounded: derived from the cell alone, safe to publish."""
    return [[round(lat, 6), round(lng, 6)] for lat, lng in h3.cell_to_boundary(cell)]
