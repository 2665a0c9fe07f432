"""/ws/vendors/<slug>/stock/: a vendor's public stock, live, for the vendor's page.

Public (routed before the session middleware, like the map): anyone may follow an approved
vendor's stock, which the page shows anyway. On every connection the socket sends a snapshot
(`stock.update` with every product), so a page that reconnects resyncs; then each change. Clients
send nothing; anything they send closes the socket with 4400. Unknown or unapproved vendors: 4404.
Sockets per client address are bounded as the map's (MAP_SOCKETS_PER_ADDRESS, per process)."""

import asyncio
import collections

from channels.db import database_sync_to_async
from django.conf import settings

from o2o.consumers import CLOSE_NOT_FOUND, refuse
from o2o.realtime import broadcaster
from tracking.consumers import (
    CLOSE_BAD_MESSAGE,
    CLOSE_TOO_FAST,
    BoundedJsonConsumer,
    client_address,
)

from .models import Vendor
from .realtime import stock_group, stock_message

_stock_sockets: collections.Counter[str] = collections.Counter()


@database_sync_to_async
def _public_vendor_id(slug: str) -> int | None:
    return (
        Vendor.objects.filter(slug=slug, status=Vendor.Status.APPROVED)
        .values_list("pk", flat=True)
        .first()
    )


@database_sync_to_async
def _snapshot(vendor_id: int) -> dict[str, object]:
    return stock_message(vendor_id=vendor_id)


class VendorStockConsumer(BoundedJsonConsumer):
    rate_limit = (1.0, 5)
    group: str | None = None
    address: str | None = None  # counted in _stock_sockets while set

    async def __call__(self, scope, receive, send) -> None:
        # Whatever the way out (a raise, a cancelled task), give back the socket's place.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()

    async def connect(self) -> None:
        address = client_address(self.scope)
        if _stock_sockets[address] >= settings.MAP_SOCKETS_PER_ADDRESS:
            await refuse(self, CLOSE_TOO_FAST)
            return
        vendor_id = await _public_vendor_id(self.scope["url_route"]["kwargs"]["slug"])
        if vendor_id is None:
            await refuse(self, CLOSE_NOT_FOUND)
            return
        _stock_sockets[address] += 1
        self.address = address
        broadcaster.register_server_loop(asyncio.get_running_loop())
        self.group = stock_group(vendor_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # After joining: a change committed meanwhile comes as a message, or is in the snapshot.
        await self.send_json(await _snapshot(vendor_id))

    async def disconnect(self, code) -> None:
        await self._release()

    async def _release(self) -> None:
        """Give back what the socket holds; idempotent."""
        address, self.address = self.address, None
        if address is not None:
            _stock_sockets[address] -= 1
            if _stock_sockets[address] <= 0:
                del _stock_sockets[address]
        group, self.group = self.group, None
        if group is not None and self.channel_layer is not None:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        await self.close(code=CLOSE_BAD_MESSAGE)

    async def stock_update(self, event) -> None:
        await self.send_json({"type": "stock.update", "stock": event["stock"]})
