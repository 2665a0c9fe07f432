"""Fan-out to map sockets. Called after commit with ids; a failed broadcast never undoes a write.

Group names: `map.<coarse cell>` (ASCII). Messages carry the vendor's public payload only.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from vendors.models import Vendor

log = logging.getLogger(__name__)


def group_for(coarse_cell: str) -> str:
    return f"map.{coarse_cell}"


def publish_vendor(*, vendor_id: int, old_coarse: str = "") -> None:
    """Tell map clients watching the vendor's old and new area what they should now show."""
    from .selectors import vendor_public_state

    try:
        payload, coarse = vendor_public_state(vendor_id=vendor_id)
        layer = get_channel_layer()
        if layer is None:
            return
        send = async_to_sync(layer.group_send)
        if payload is None:
            gone_from = old_coarse or coarse
            if gone_from:
                slug = Vendor.objects.filter(pk=vendor_id).values_list("slug", flat=True).first()
                send(group_for(gone_from), {"type": "map.remove", "id": slug, "coarse": gone_from})
            return
        if old_coarse and old_coarse != payload["coarse"]:
            send(
                group_for(old_coarse),
                {"type": "map.remove", "id": payload["id"], "coarse": old_coarse},
            )
        send(group_for(payload["coarse"]), {"type": "map.upsert", "vendor": payload})
    except Exception:  # noqa: BLE001 - the map is best-effort; the write already committed
        log.exception("map broadcast for vendor %s failed", vendor_id)


def on_stock_changed(sender, *, vendor_id: int, **kwargs) -> None:
    publish_vendor(vendor_id=vendor_id)
