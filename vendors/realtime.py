"""A vendor's public stock, live: what is left of each product on the cart, pushed to the vendor's
page after every change that commits (vendors.services), on the group `stock.<vendor id>`.

Public data only: product ids and quantities left, never where the cart is. Best-effort (a lost
message is made good by the snapshot a page gets on every (re)connection)."""

import logging

from o2o.realtime import broadcaster

log = logging.getLogger(__name__)


def stock_group(vendor_id: int) -> str:
    return f"stock.{vendor_id}"


def stock_message(*, vendor_id: int) -> dict[str, object]:
    """The message a page gets: {"type": "stock.update", "stock": {"<product id>": left}}."""
    from .selectors import vendor_stock_left

    left = vendor_stock_left(vendor_id=vendor_id)
    return {"type": "stock.update", "stock": {str(pid): n for pid, n in left.items()}}


def stock_publish(*, vendor_id: int | None) -> None:
    """Tell the vendor's open pages what is left now. Called after commit; never raises."""
    if vendor_id is None:
        return
    try:
        broadcaster.send(stock_group(vendor_id), stock_message(vendor_id=vendor_id))
    except Exception:  # noqa: BLE001 - best-effort: the write already committed
        log.exception("stock broadcast for vendor %s failed", vendor_id)
