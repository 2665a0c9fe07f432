"""Capturing misses where they happen: a product looked for on the map with no cart near that has
it, and a product a customer tried to buy that was sold out.

Both are best-effort: a miss that cannot be written is logged, never a failed page. Both are
written outside the transaction of what failed (a sale rolled back by OutOfStock), so the miss
survives it. Neither keeps a position finer than the public cell: the map's centre is turned into
its cell here and then forgotten.
"""

import logging

from django.db import DatabaseError
from django.http import HttpRequest

from o2o.accounts.throttle import client_address
from o2o.geo import cell_of
from vendors.services import OutOfStock

from .models import MissKind
from .services import asker_key, miss_record

logger = logging.getLogger(__name__)

# A cart whose area's centre is this close to where someone looked counts as "near".
NEAR_M = 1_000
NEAR_LIMIT = 200


def asker_of(request: HttpRequest) -> str:
    """Who asked, as a one-way key: the account, else the session, else the address."""
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    return asker_key(
        session_key=session.session_key if session is not None else None,
        user_id=user.pk if user is not None and user.is_authenticated else None,
        ip=client_address(request),
    )


def _best_effort(**kwargs) -> bool:
    try:
        return miss_record(**kwargs)
    except DatabaseError:
        logger.warning("a miss could not be recorded", exc_info=True)
        return False


def sold_out_record(*, request: HttpRequest, exc: OutOfStock) -> bool:
    """The product `exc` names was sold out on its cart when this customer tried to buy it: a miss
    in the cart's public cell now. Call it after the failed sale's transaction is over."""
    from tracking.models import VendorPosition

    if not exc.vendor_id:
        return False
    try:
        cell = (
            VendorPosition.objects.filter(vendor_id=exc.vendor_id)
            .values_list("public_cell", flat=True)
            .first()
        )
    except DatabaseError:
        logger.warning("a sold-out miss could not be placed", exc_info=True)
        return False
    return _best_effort(
        kind=MissKind.SOLD_OUT,
        product_id=exc.product_id,
        vendor_id=exc.vendor_id,
        cell=cell or "",
        asker=asker_of(request),
    )


def carts_near_have(*, product_id: int, lat: float, lng: float) -> bool:
    """Whether a live cart within NEAR_M has the product on it now."""
    from tracking.selectors import vendors_nearby

    near = vendors_nearby(lat=lat, lng=lng, radius_m=NEAR_M, limit=NEAR_LIMIT)
    return any(product_id in v["products"] for v in near)


def search_miss_record(*, request: HttpRequest, product_id: int, lat: float, lng: float) -> bool:
    """Someone looked for a product on the map around (lat, lng): a miss in that point's public
    cell, unless a live cart near has it (checked here, whatever the page believed). Returns
    whether a new miss was recorded."""
    if carts_near_have(product_id=product_id, lat=lat, lng=lng):
        return False
    return _best_effort(
        kind=MissKind.NONE_NEAR,
        product_id=product_id,
        cell=cell_of(lat, lng),
        asker=asker_of(request),
    )
