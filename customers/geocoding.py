"""Finding a place by its name: an adapter chosen by the O2O_GEOCODER setting.

O2O_GEOCODER is the dotted path of a class whose instances have `geocode(query) -> list[Place]`;
None (the default, and the demo) means no geocoder: the address form hides its search box and the
customer places the pin on the map, which always works. Whatever the adapter does (a slow or
broken provider, odd coordinates, too many answers), callers get at most MAX_RESULTS valid places
or GeocoderUnavailable, never the provider's own exception.
"""

import logging
import math
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 100
MIN_QUERY_LENGTH = 2
MAX_RESULTS = 5


@dataclass(frozen=True)
class Place:
    lat: float
    lng: float
    label: str


class Geocoder(Protocol):
    def geocode(self, query: str) -> list[Place]: ...


class NullGeocoder:
    """Finds nothing: for a deployment that wants the endpoint but no provider."""

    def geocode(self, query: str) -> list[Place]:
        return []


class GeocoderUnavailable(Exception):
    """The configured geocoder failed (down, slow, refused): the pin on the map still works."""


def geocoder() -> Geocoder | None:
    """The configured geocoder, or None when there is none."""
    path = getattr(settings, "O2O_GEOCODER", None)
    if not path:
        return None
    cls = import_string(path)
    instance: Geocoder = cls()
    return instance


def geocoder_enabled() -> bool:
    return bool(getattr(settings, "O2O_GEOCODER", None))


def clean_query(query: str) -> str:
    """The query, trimmed and bounded; a ValidationError for one too short or too long."""
    query = " ".join((query or "").split())
    if len(query) < MIN_QUERY_LENGTH:
        raise ValidationError(_("Type at least two characters of the address."))
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationError(_("Type at most %(limit)d characters.") % {"limit": MAX_QUERY_LENGTH})
    return query


def _valid(place: object) -> bool:
    if not isinstance(place, Place):
        return False
    try:
        lat, lng = float(place.lat), float(place.lng)
    except (TypeError, ValueError):
        return False
    return math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180


def geocode(query: str) -> list[Place]:
    """Places matching `query` from the configured geocoder (none configured: no places)."""
    query = clean_query(query)
    adapter = geocoder()
    if adapter is None:
        return []
    try:
        found = adapter.geocode(query)
    except Exception as exc:  # any provider failure is one answer to the customer
        logger.warning("geocoder %s failed: %r", type(adapter).__name__, exc)
        raise GeocoderUnavailable from exc
    return [
        Place(lat=float(p.lat), lng=float(p.lng), label=str(p.label)[:200])
        for p in list(found or [])
        if _valid(p)
    ][:MAX_RESULTS]
