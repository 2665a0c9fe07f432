"""Live order sockets. They only listen: a page is told that its order changed and fetches what it
shows over HTTP (with the same permission checks as the page). Clients send nothing; anything
they send closes the socket. Close codes as on the map: 4400 bad message, 4401 not logged in,
4403 not allowed (not an approved vendor), 4404 no such order (or not yours: the same answer, so
nobody learns which orders exist)."""

import asyncio

from channels.db import database_sync_to_async

from o2o.realtime import broadcaster
from tracking.consumers import (
    CLOSE_BAD_MESSAGE,
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    BoundedJsonConsumer,
)

from . import selectors
from .notifications import order_group, vendor_group

CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def _may_follow(user, order_id: int) -> bool:
    watchers = selectors.order_watchers(order_id=order_id)
    return watchers is not None and (user.is_staff or user.pk in watchers)


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
            {"type": "order.changed", "order_id": event["order_id"], "status": event["status"]}
        )


class OrderConsumer(_ListeningConsumer):
    """/ws/orders/<id>/: the order's customer, its vendor, or staff."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        order_id = self.scope["url_route"]["kwargs"]["order_id"]
        if not await _may_follow(user, order_id):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self._join(order_group(order_id))


class VendorOrdersConsumer(_ListeningConsumer):
    """/ws/vendor/orders/: an approved vendor's inbox."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        vendor_id = await _approved_vendor_id(user)
        if vendor_id is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self._join(vendor_group(vendor_id))
