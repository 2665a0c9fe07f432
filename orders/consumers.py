"""Live order sockets. They only listen: a page is told that its order changed and fetches what it
shows over HTTP (with the same permission checks as the page). Clients send nothing; anything
they send closes the socket. Close codes as on the map: 4400 bad message, 4401 not logged in,
4403 not allowed (not an approved vendor), 4404 no such order (or not yours: the same answer, so
nobody learns which orders exist).

One thing is pushed rather than fetched: for the customer of a meet order, the vendor's street-
level position while within the last few hundred metres of the meeting point
(`nearby_position`, then `nearby_position_end`). The socket re-checks the order and the vendor's
latest fix every ORDER_NEARBY_POLL_S seconds and at once on every change of the order; the rule
is orders.selectors.vendor_nearby_state, so nobody else ever gets it."""

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from o2o.consumers import CLOSE_NOT_FOUND, refuse
from o2o.realtime import broadcaster
from tracking.consumers import (
    CLOSE_BAD_MESSAGE,
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    BoundedJsonConsumer,
)

from . import selectors
from .notifications import order_group, vendor_group

log = logging.getLogger(__name__)


@database_sync_to_async
def _may_follow(user, order_id: int) -> bool:
    watchers = selectors.order_watchers(order_id=order_id)
    return watchers is not None and (user.is_staff or user.pk in watchers)


@database_sync_to_async
def _nearby(user_id: int, order_id: int) -> tuple[dict | None, bool]:
    return selectors.vendor_nearby_state(order_id=order_id, user_id=user_id)


@database_sync_to_async
def _approved_vendor_id(user) -> int | None:
    vendor = getattr(user, "vendor", None) if hasattr(user, "vendor") else None
    return vendor.pk if vendor is not None and vendor.can_sell else None


class _ListeningConsumer(BoundedJsonConsumer):
    rate_limit = (1.0, 5)

    async def _join(self, group: str) -> None:
        broadcaster.register_server_loop(asyncio.get_running_loop())
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code) -> None:
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        await self.close(code=CLOSE_BAD_MESSAGE)

    async def order_changed(self, event) -> None:
        await self.send_json(
            {
                "type": "order.changed",
                "order_id": event["order_id"],
                "status": event["status"],
                "by": event.get("by", ""),
            }
        )


class OrderConsumer(_ListeningConsumer):
    """/ws/orders/<id>/: the order's customer, its vendor, or staff."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await refuse(self, CLOSE_UNAUTHENTICATED)
            return
        order_id = self.scope["url_route"]["kwargs"]["order_id"]
        if not await _may_follow(user, order_id):
            await refuse(self, CLOSE_NOT_FOUND)
            return
        await self._join(order_group(order_id))
        _payload, over = await _nearby(user.pk, order_id)
        if not over:  # the customer of a meet order still on its way
            self.nearby_wake = asyncio.Event()
            self.nearby_task = asyncio.create_task(self._watch_nearby(user.pk, order_id))

    async def disconnect(self, code) -> None:
        task = getattr(self, "nearby_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await super().disconnect(code)

    async def order_changed(self, event) -> None:
        await super().order_changed(event)
        wake = getattr(self, "nearby_wake", None)
        if wake is not None:
            wake.set()  # handed over or cancelled: stop showing the vendor now, not in 5 s

    async def _watch_nearby(self, user_id: int, order_id: int) -> None:
        """Send the vendor's street-level position while the rule allows it, the end when it
        stops; the first check always answers (a page that reconnects learns where things are)."""
        shown: dict | None | bool = False  # False: nothing sent yet
        while True:
            self.nearby_wake.clear()  # before the read: a change during it wakes the next one
            try:
                payload, over = await _nearby(user_id, order_id)
            except Exception:  # noqa: BLE001 - a failed read must not kill the socket
                log.exception("nearby check of order #%s failed", order_id)
                payload, over = None, False
            if payload is not None and payload != shown:
                await self.send_json({"type": "nearby_position", **payload})
            elif payload is None and shown is not None:
                await self.send_json({"type": "nearby_position_end"})
            shown = payload
            if over:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.nearby_wake.wait(), settings.ORDER_NEARBY_POLL_S)


class VendorOrdersConsumer(_ListeningConsumer):
    """/ws/vendor/orders/: an approved vendor's inbox."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await refuse(self, CLOSE_UNAUTHENTICATED)
            return
        vendor_id = await _approved_vendor_id(user)
        if vendor_id is None:
            await refuse(self, CLOSE_FORBIDDEN)
            return
        await self._join(vendor_group(vendor_id))
