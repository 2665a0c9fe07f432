"""Fan-out to map sockets. Called after commit; a failed broadcast never undoes a write.

Group names: `map.<coarse cell>` (ASCII). Messages carry the vendor's public payload only.
"""

import logging

from django.utils import timezone

from o2o.realtime import broadcaster
from vendors.models import Vendor

log = logging.getLogger(__name__)


def group_for(coarse_cell: str) -> str:
    return f"map.{coarse_cell}"


def _remove(vendor: str, coarse: str, at: str | None) -> dict:
    """Take the vendor off the map in `coarse`, as of `at` (server time, ISO 8601): broadcasts
    are sent concurrently, and the hub drops an upsert older than a remove it has seen (the last
    ping's upsert landing after the shift's end would put the vendor back for good)."""
    return {"type": "map.remove", "id": vendor, "coarse": coarse, "at": at}


def publish_payload(*, payload: dict, old_coarse: str = "", at: str | None = None) -> None:
    """The vendor is on the map with this payload; tell its old area too if it left it. `at`:
    the exact time of the change (ISO 8601), for the hubs' ordering only; the payload's
    last_seen is rounded (PUBLIC_TIME_STEP_S) and never finer than what the public may see."""
    at = at or timezone.now().isoformat()
    if old_coarse and old_coarse != payload["coarse"]:
        broadcaster.send(group_for(old_coarse), _remove(payload["id"], old_coarse, at))
    broadcaster.send(
        group_for(payload["coarse"]), {"type": "map.upsert", "vendor": payload, "at": at}
    )


def publish_vendor(*, vendor_id: int, old_coarse: str = "") -> None:
    """Read the vendor's public state now and tell map clients what they should show."""
    from .selectors import vendor_public_state

    try:
        payload, coarse = vendor_public_state(vendor_id=vendor_id)
        if payload is not None:
            publish_payload(payload=payload, old_coarse=old_coarse)
            return
        gone_from = old_coarse or coarse
        if gone_from:
            slug = Vendor.objects.filter(pk=vendor_id).values_list("slug", flat=True).first()
            broadcaster.send(
                group_for(gone_from), _remove(slug, gone_from, timezone.now().isoformat())
            )
    except Exception:  # noqa: BLE001 - the map is best-effort; the write already committed
        log.exception("map broadcast for vendor %s failed", vendor_id)


def on_stock_changed(sender, *, vendor_id: int, **kwargs) -> None:
    from .selectors import products_in_stock_forget

    products_in_stock_forget(vendor_id=vendor_id)
    publish_vendor(vendor_id=vendor_id)


def on_vendor_status_changed(sender, *, vendor_id: int, status: str, **kwargs) -> None:
    if status != Vendor.Status.APPROVED:
        from .services import vendor_left_service

        vendor_left_service(vendor_id=vendor_id)
