"""Live map sockets. Thin: they authenticate, bound and validate input, and call services and
selectors. Close codes: 4400 bad message, 4401 not logged in, 4403 not allowed, 4429 too fast
(or too many map sockets from one address)."""

import asyncio
import collections
import logging
import math
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from o2o import wsjson
from o2o.consumers import refuse
from o2o.realtime import broadcaster

from . import ingest, selectors, services
from .hub import Subscription, map_hub

CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_FAST = 4429
MAX_MESSAGE_BYTES = 2048
log = logging.getLogger(__name__)


class RateLimit:
    """A token bucket: `rate` messages a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class BoundedJsonConsumer(AsyncJsonWebsocketConsumer):
    rate_limit = (2.0, 10)

    @classmethod
    async def decode_json(cls, text_data):
        # Never RecursionError (a 1,000-deep array fits in 2 KiB): ValueError, closed with 4400.
        return wsjson.loads(text_data)

    async def websocket_connect(self, message):
        self.limiter = RateLimit(*self.rate_limit)
        await super().websocket_connect(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Characters first (cheap; never more than bytes), then the UTF-8 size the limit is about.
        if (
            text_data is None
            or len(text_data) > MAX_MESSAGE_BYTES
            or len(text_data.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES
        ):
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        if not self.limiter.allow():
            await self.close(code=CLOSE_TOO_FAST)
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        await self.receive_json(content)


def _coordinate(value, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        return None
    return value if low <= value <= high else None


# Map sockets open in this process, per client address (MAP_SOCKETS_PER_ADDRESS). Per process: with
# N server processes an address may hold up to N times the limit.
_map_sockets: collections.Counter[str] = collections.Counter()


def client_address(scope) -> str:
    """The client's address as the API's throttles tell clients apart (DRF's get_ident): the
    peer the ASGI server reports (uvicorn has already applied X-Forwarded-For from the proxies in
    FORWARDED_ALLOW_IPS), or with REST_FRAMEWORK["NUM_PROXIES"] set, the X-Forwarded-For entry
    that many hops from the right."""
    client = scope.get("client") or ("", 0)
    remote = str(client[0] or "")
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    if proxies:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                hops = [hop.strip() for hop in value.decode("latin-1").split(",")]
                return hops[-min(proxies, len(hops))] or remote
    return remote


class MapConsumer(BoundedJsonConsumer):
    """Anonymous allowed. The client sends its viewport; it gets a snapshot of the vendors in the
    coarse cells covering it, then batches of deltas for those cells until it sends another
    viewport. The deltas come through this process's map hub (tracking.hub), which follows the
    cells' groups once for all local sockets: the consumer needs no channel of its own."""

    rate_limit = (2.0, 10)
    channel_layer_alias = None

    subscription: Subscription | None = None
    address: str | None = None  # counted in _map_sockets while set
    owner: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        # websocket_disconnect is not called when a handler raises or the task is cancelled:
        # whatever the way out, give back the socket's place and its subscription.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()

    async def connect(self) -> None:
        address = client_address(self.scope)
        if _map_sockets[address] >= settings.MAP_SOCKETS_PER_ADDRESS:
            await refuse(self, CLOSE_TOO_FAST)
            return
        _map_sockets[address] += 1
        self.address = address
        self.owner = asyncio.current_task()
        broadcaster.register_server_loop(asyncio.get_running_loop())
        await self.accept()

    async def disconnect(self, code) -> None:
        await self._release()

    async def _release(self) -> None:
        """Give back what the socket holds; idempotent."""
        address, self.address = self.address, None
        if address is not None:
            _map_sockets[address] -= 1
            if _map_sockets[address] <= 0:
                del _map_sockets[address]
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            try:
                await subscription.close()
            except Exception:  # noqa: BLE001 - the hub's sweep leaves what could not be left now
                log.exception("map socket could not release its subscription")

    def _alive(self) -> bool:
        return self.owner is None or not self.owner.done()

    async def receive_json(self, content, **kwargs) -> None:
        if self.address is None:  # refused (too many sockets) or released: frames in flight
            return
        if content["type"] != "viewport":
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        bbox = content.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        south, north = _coordinate(bbox[0], -90, 90), _coordinate(bbox[2], -90, 90)
        west, east = _coordinate(bbox[1], -180, 180), _coordinate(bbox[3], -180, 180)
        if None in (south, west, north, east) or south >= north or west >= east:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        cells = selectors.coarse_cells_for_bbox(south=south, west=west, north=north, east=east)
        subscription = await self._subscription()
        if subscription is None:  # no channel layer: snapshots only
            await self._answer(cells)
            return
        # Following first, then reading: a delta committed after the read still arrives, and
        # nothing pending goes out before the snapshot that supersedes it.
        async with subscription.viewport(cells or ()):
            await self._answer(cells)

    async def _answer(self, cells: list[str] | None) -> None:
        if cells is None:
            await self.send_json({"type": "zoom_in", "max_groups": settings.MAP_MAX_GROUPS})
            return
        vendors = await database_sync_to_async(selectors.map_snapshot)(coarse_cells=cells)
        await self.send_json({"type": "snapshot", "cells": cells, "vendors": vendors})

    async def _subscription(self) -> Subscription | None:
        current = self.subscription
        if current is not None and not current.hub.dead and not current.closed:
            return current
        if current is not None:  # its hub retired, or the hub's sweep dropped it: a new one
            await current.close()
        hub = await map_hub()
        self.subscription = (
            None if hub is None else Subscription(hub, self._send_text, alive=self._alive)
        )
        return self.subscription

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)


@database_sync_to_async
def _vendor_of(user):
    vendor = getattr(user, "vendor", None) if hasattr(user, "vendor") else None
    return vendor


class VendorLocationConsumer(BoundedJsonConsumer):
    """The vendor's phone sends pings here. Approved vendors only; each ping goes through this
    process's ingest batcher (tracking.ingest) and is answered with its own result."""

    rate_limit = (3.0, 15)
    # It joins no group: no channel on the layer, so no pending layer read per phone (a fleet
    # holds thousands of sockets per process).
    channel_layer_alias = None

    async def dispatch(self, message):
        """channels' dispatch, without its hop to the sync thread before each ping
        (`aclose_old_connections`): that thread is the one the ingest batcher records pings in, so
        under load every ping waited there behind a batch. Pings touch the database only inside
        the batcher's database_sync_to_async, which closes old connections itself."""
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await refuse(self, CLOSE_UNAUTHENTICATED)
            return
        vendor = await _vendor_of(user)
        if vendor is None or not vendor.can_sell:
            await refuse(self, CLOSE_FORBIDDEN)
            return
        self.vendor_id = vendor.pk
        self.pings: set[asyncio.Task] = set()
        await self.accept()

    async def disconnect(self, code) -> None:
        # The phone is gone: stop waiting for its answers (the pings are still recorded).
        for task in getattr(self, "pings", ()):
            task.cancel()

    async def receive_json(self, content, **kwargs) -> None:
        if content["type"] != "ping":
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        # Answered from a task of its own, so the socket reads on meanwhile: uvicorn stops reading
        # a socket after each frame until the app asks for the next one, and a handler waiting
        # out a slow batch left the phone's next frames and its keepalive pongs unread (after
        # 20 s without a pong uvicorn drops the phone: every phone at once when the ingest falls
        # behind). The rate limit bounds the pings in flight.
        task = asyncio.create_task(self._answer_ping(content))
        self.pings.add(task)
        task.add_done_callback(self.pings.discard)

    async def _answer_ping(self, content) -> None:
        ts = content.get("ts")
        # Recorded with the pings of this process's other sockets, in one transaction.
        result = await ingest.submit(
            services.PingIn(
                vendor_id=self.vendor_id,
                lat=content.get("lat"),
                lng=content.get("lng"),
                accuracy_m=content.get("accuracy"),
                recorded_at=services.parse_timestamp(ts),
                source="ws",
            )
        )
        # Echo the phone's own timestamp back, but never NaN/Infinity: not JSON to a browser.
        echo = (
            ts
            if isinstance(ts, str)
            or (isinstance(ts, int) and not isinstance(ts, bool))
            or (isinstance(ts, float) and math.isfinite(ts))
            else None
        )
        if result.accepted:
            answer = {"type": "ack", "ts": echo, "cell": result.public_cell}
        elif result.reason == services.Reject.SERVER_ERROR:
            # Not a refusal: the ping was not recorded and should be sent again.
            answer = {
                "type": "error",
                "ts": echo,
                "reason": result.reason,
                "message": result.message,
            }
        else:
            answer = {
                "type": "rejected",
                "ts": echo,
                "reason": result.reason,
                "message": result.message,
            }
        await self._answer(answer)

    async def _answer(self, content: dict) -> None:
        """The ping's answer. The socket may have closed while the ping waited in the batcher (the
        phone hung up, or the server's keepalive gave up on it): the ping counts all the same and
        its answer has nowhere to go; the disconnect already queued behind it ends the consumer.
        uvicorn says so with an OSError (ClientDisconnected) or, once it sent the close itself,
        a RuntimeError naming it; anything else is still an error."""
        try:
            await self.send_json(content)
        except OSError:
            log.info("vendor %s: the socket closed before a ping's answer", self.vendor_id)
        except RuntimeError as exc:
            if "websocket.close" not in str(exc):
                raise
            log.info("vendor %s: the socket closed before a ping's answer", self.vendor_id)
