"""The map hub: fan-out of map deltas inside one server process.

Map sockets do not join channel-layer groups themselves. Each event loop that serves map sockets
has one hub, which owns ONE channel and joins `map.<coarse cell>` while at least one local socket
follows that cell (reference counts), so a delta crosses Redis once per process, not once per
socket. The hub keeps, for each socket, the deltas it has not sent yet, coalesced per vendor (the
last word about a vendor wins), and sends each socket that has something ONE websocket message,
`{"type": "batch", "events": [<upsert or remove>, ...]}`, at most once every MAP_FLUSH_MS: at once
when the socket has had nothing for that long (a quiet map adds no delay), else when that time is
up since its last message (the snapshot counts). Each socket keeps its own rhythm, on a grid of
TICK_S ticks, so a busy hub's sends are spread over the ticks rather than all due at one instant,
and the loop wakes up once a tick rather than once a socket.

Each socket is written to by its own short task, so a slow or closed socket never holds up the
others; what piles up meanwhile for a slow socket stays coalesced (bounded by the vendors in its
cells) and goes in its next batch. Each event is JSON-encoded once, whatever the number of sockets.

With channels-redis the hub has a layer instance of its own (its own process-local channel prefix
and connections, the same prefix and so the same groups), and it takes what waits on its channel
in bulk: `receive()` costs four Redis round trips per message, one after the other (the backup
queue that makes a message survive a consumer's cancellation), which at full scale on a busy
machine drained fewer deltas a second than arrived. The hub pops up to RECEIVE_MAX messages in
one ZPOPMIN (and blocks in BZPOPMIN when there are none). A delta lost in a crash is acceptable:
the map is best-effort and clients resync on reconnect. With the in-memory layer (embedded demo)
it shares the process's layer, since that is where the broadcaster delivers, and uses receive().

A socket's consumer releases its subscription on every way out (MapConsumer.__call__'s finally),
and every SWEEP_S the hub drops what is left anyway: a subscription that is closed, whose owner
(the consumer's task) has ended, or whose send has not finished for UNREACHABLE_S; then it leaves
the groups no subscription needs (a leave that failed while Redis was away is tried again).
"""

import asyncio
import contextlib
import itertools
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from .realtime import group_for

log = logging.getLogger(__name__)

# channels-redis forgets a group member after group_expiry (a day): the hub joins again well before.
REJOIN_EVERY_S = 3600.0
MAX_BACKOFF_S = 5.0
RECEIVE_MAX = 500
TICK_S = 0.025  # sends are due on a grid of ticks this far apart
SOON = -1.0  # the tick of "at once"
BLOCK_S = 5
SWEEP_S = 30.0  # how often the hub looks for orphaned subscriptions
UNREACHABLE_S = 60.0  # a send not finished after this long: the socket is gone

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_seq = itertools.count()

SendText = Callable[[str], Awaitable[None]]


class Subscription:
    """One map socket: the coarse cells it follows and what it has not been sent yet."""

    def __init__(
        self, hub: "MapHub", send_text: SendText, alive: Callable[[], bool] | None = None
    ) -> None:
        self.hub = hub
        self.send_text = send_text
        self.alive = alive  # False once the socket's consumer is gone (see MapHub.sweep)
        self.sending_since: float | None = None  # loop time the send in progress began
        self.cells: frozenset[str] = frozenset()
        # vendor id -> [(seq, kind, coarse, json)]: one upsert, or the removes not yet superseded
        self.pending: dict[str, list[tuple[int, str, str, str]]] = {}
        self.held = False
        self.sending = False
        self.closed = False
        self.last_sent = float("-inf")  # loop time of the last message to the socket
        self.due: float | None = None  # the tick of the next send, when one is scheduled

    def add(self, seq: int, kind: str, vendor_id: str, coarse: str, text: str) -> None:
        """Coalesce one delta, as map.js would apply it: an upsert replaces whatever was said
        about the vendor; a remove cancels a pending upsert in the same coarse cell and is moot
        after an upsert in another one (the client only removes a vendor still shown there)."""
        current = self.pending.get(vendor_id)
        if kind == "upsert" or current is None:
            self.pending[vendor_id] = [(seq, kind, coarse, text)]
            return
        first = current[0]
        if first[1] == "upsert":
            if first[2] == coarse:
                self.pending[vendor_id] = [(seq, kind, coarse, text)]
            return
        if all(item[2] != coarse for item in current):
            current.append((seq, kind, coarse, text))

    def take_batch(self) -> str:
        """The pending deltas as one message, oldest first; nothing is pending afterwards."""
        items = sorted(item for entries in self.pending.values() for item in entries)
        self.pending = {}
        return '{"type":"batch","events":[' + ",".join(item[3] for item in items) + "]}"

    @contextlib.asynccontextmanager
    async def viewport(self, cells: Iterable[str]):
        """Follow `cells` instead; nothing is sent to the socket until the block ends (the caller
        sends its snapshot in it, which is the truth for what was pending)."""
        self.held = True
        try:
            await self.hub.follow(self, frozenset(cells))
            yield self
        finally:
            self.held = False
            self.last_sent = asyncio.get_running_loop().time()  # the snapshot just went out
            if self.pending:
                self.hub.schedule(self)

    def orphaned(self, now: float) -> bool:
        """Nobody will read what is sent here: closed, its owner gone, or unreachable."""
        if self.closed or (self.alive is not None and not self.alive()):
            return True
        return self.sending_since is not None and now - self.sending_since > UNREACHABLE_S

    async def close(self) -> None:
        """Stop following; idempotent."""
        self.closed = True
        self.pending = {}
        self.hub.unschedule(self)
        # Shielded: a consumer cancelled while it hangs up must still leave its groups.
        await asyncio.shield(self.hub.follow(self, frozenset()))


class MapHub:
    """One per event loop (see map_hub): the channel, the cells joined, the sockets following."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel = ""
        self.followers: dict[str, set[Subscription]] = {}
        self.joined: set[str] = set()
        self.dead = False
        self.received = 0
        self.restarts = 0
        self.out_of_order = 0
        self.newest: dict[str, datetime] = {}  # vendor id -> newest last_seen upserted
        self._cell_locks: dict[str, asyncio.Lock] = {}
        self._due: dict[float, set[Subscription]] = {}  # tick -> sockets to send to then
        self._refresh_at: asyncio.TimerHandle | None = None
        self._sweep_at: asyncio.TimerHandle | None = None
        self._leave_failed: set[str] = set()  # cells left here whose group_discard failed
        self.swept = 0  # orphaned subscriptions dropped by the sweep
        self._started: asyncio.Future | None = None
        self._receiver: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.flush_s = settings.MAP_FLUSH_MS / 1000.0

    # --- Life cycle ------------------------------------------------------------------------------

    async def ready(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel("maphub")
        self._start_receiver()
        loop = asyncio.get_running_loop()
        self._refresh_at = loop.call_later(REJOIN_EVERY_S, self._refresh)
        self._sweep_at = loop.call_later(SWEEP_S, self._sweep_tick)

    def _start_receiver(self) -> None:
        self._receiver = asyncio.ensure_future(self._receive_loop())
        self._receiver.add_done_callback(self._receiver_done)

    def _receiver_done(self, task: asyncio.Task) -> None:
        if task.cancelled():  # the loop is shutting down (or someone stopped the hub): retire
            self.retire()
            return
        exc = task.exception()
        log.error("map hub receive loop ended: %r; restarting it", exc)
        try:
            self.restarts += 1
            self._start_receiver()
        except RuntimeError:  # the loop is closed
            self.retire()

    def retire(self) -> None:
        """Forget this hub: sockets that change viewport next get a new one."""
        self.dead = True
        for timer in (self._refresh_at, self._sweep_at):
            if timer is not None:
                timer.cancel()
        if self._receiver is not None and not self._receiver.done():
            self._receiver.cancel()
        for loop, hub in list(_hubs.items()):
            if hub is self:
                del _hubs[loop]

    async def close(self, timeout: float = 2.0) -> None:
        """Stop for good (the server is shutting down): cancel the reader and the sends, leave the
        cells' groups, close the connections of the hub's own layer. Each step is bounded: a Redis
        that does not answer must not hold the shutdown up."""
        self.retire()
        tasks = [t for t in (self._receiver, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        joined, self.joined = list(self.joined), set()
        self.followers.clear()
        if self.channel and joined:
            leave = (self.layer.group_discard(group_for(cell), self.channel) for cell in joined)
            with contextlib.suppress(Exception):  # TimeoutError, Redis gone: its expiry cleans up
                await asyncio.wait_for(asyncio.gather(*leave), timeout)
        if self.layer is not get_channel_layer() and hasattr(self.layer, "close_pools"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.layer.close_pools(), timeout)
        log.info("map hub closed (left %d cell group(s))", len(joined))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- Receiving -------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        failures = 0
        receive = self._receive_redis if isinstance(self.layer, RedisChannelLayer) else None
        while True:
            try:
                messages = await receive() if receive else [await self.layer.receive(self.channel)]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: wait, rejoin, go on
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Cancelled, but the client turned it into an error: stop, or a loop's
                    # shutdown waits on this task forever (it was told once and never again).
                    raise asyncio.CancelledError from exc
                failures += 1
                log.warning("map hub receive failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(min(MAX_BACKOFF_S, 0.05 * 2**failures))
                # Redis may have restarted and lost the group members (and the messages).
                await self._rejoin()
                continue
            failures = 0
            self.received += len(messages)
            for message in messages:
                try:
                    self.on_message(message)
                except Exception:  # noqa: BLE001 - one bad message must not stop the map
                    log.exception("map hub could not handle %r", message.get("type"))

    async def _receive_redis(self) -> list[dict]:
        """What waits on the hub's channel, oldest first (at most RECEIVE_MAX), or [] after
        BLOCK_S of nothing. Where channels-redis keeps it: a sorted set, keyed by the channel's
        process-local part, of serialized messages scored by their send time."""
        layer = self.layer
        local = layer.non_local_name(self.channel)
        key = layer.prefix + local
        connection = layer.connection(layer.consistent_hash(local))
        popped = await connection.zpopmin(key, RECEIVE_MAX)
        if not popped:
            blocked = await connection.bzpopmin(key, timeout=BLOCK_S)
            if blocked is None:
                return []
            popped = [(blocked[1], blocked[2])]
        messages = []
        for member, _score in popped:
            message = layer.deserialize(member)
            message.pop("__asgi_channel__", None)
            messages.append(message)
        return messages

    def on_message(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "map.upsert":
            vendor = message["vendor"]
            vendor_id, coarse = vendor["id"], vendor["coarse"]
            # The exact time of the broadcast (server-side only: the public last_seen is rounded).
            stamp = message.get("at") or vendor["last_seen"]
            if stamp:
                # Broadcasts run concurrently and may land out of order: an upsert older than
                # one already seen would put the vendor back where they were.
                seen = datetime.fromisoformat(stamp)
                newest = self.newest.get(vendor_id)
                if newest is not None and seen < newest:
                    self.out_of_order += 1
                    return
                self.newest[vendor_id] = seen
            text = _dumps({"type": "upsert", "vendor": vendor})
            kind = "upsert"
        elif kind == "map.remove":
            vendor_id, coarse = message["id"], message["coarse"]
            if message.get("at"):
                # As of its time: a remove older than an upsert already seen is stale (the vendor
                # came back), and an upsert older than this remove will be dropped above.
                at = datetime.fromisoformat(message["at"])
                newest = self.newest.get(vendor_id)
                if newest is not None and at < newest:
                    self.out_of_order += 1
                    return
                self.newest[vendor_id] = at
            text = _dumps({"type": "remove", "id": vendor_id, "coarse": coarse})
            kind = "remove"
        else:
            log.warning("map hub ignored a message of type %r", kind)
            return
        followers = self.followers.get(coarse)
        if not followers:
            return
        seq = next(_seq)
        for sub in followers:
            if sub.closed:  # its consumer is leaving, or the sweep will drop it
                continue
            sub.add(seq, kind, vendor_id, coarse, text)
            if sub.due is None:
                self.schedule(sub)

    # --- Sending ---------------------------------------------------------------------------------

    def schedule(self, sub: Subscription) -> None:
        """Send what is pending for `sub` as soon as its rhythm allows (see the module doc)."""
        if sub.due is not None or sub.held or sub.sending or sub.closed or self.dead:
            return
        loop = asyncio.get_running_loop()
        when = sub.last_sent + self.flush_s
        # "At once" is still a callback, so the rest of a bulk receive joins the batch. Later
        # sends are put on a grid of ticks: the sockets due about together go out in one
        # callback, one wake-up of the loop rather than one per socket (on a busy machine each
        # wake-up may wait for a core).
        tick = SOON if when <= loop.time() else math.ceil(when / TICK_S) * TICK_S
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = set()
            if tick == SOON:
                loop.call_soon(self._flush, tick)
            else:
                loop.call_at(tick, self._flush, tick)
        due.add(sub)
        sub.due = tick

    def unschedule(self, sub: Subscription) -> None:
        if sub.due is not None:
            self._due.get(sub.due, set()).discard(sub)
            sub.due = None

    def _flush(self, tick: float) -> None:
        now = asyncio.get_running_loop().time()
        for sub in self._due.pop(tick, ()):
            sub.due = None
            if sub.pending and not (sub.held or sub.sending or sub.closed):
                sub.sending = True
                sub.sending_since = sub.last_sent = now
                self._spawn(self._deliver(sub))

    async def _deliver(self, sub: Subscription) -> None:
        try:
            await sub.send_text(sub.take_batch())
        except Exception as exc:  # noqa: BLE001 - a closed socket: its consumer leaves anyway
            log.info("map socket send failed: %s: %s", type(exc).__name__, exc)
            sub.closed = True
            sub.pending = {}
            return
        finally:
            sub.sending = False
            sub.sending_since = None
        if sub.pending:  # arrived while the socket was slow: as soon as its rhythm allows
            self.schedule(sub)

    # --- Following cells -------------------------------------------------------------------------

    async def follow(self, sub: Subscription, cells: frozenset[str]) -> None:
        """`sub` now follows exactly `cells`; returns once this hub receives them."""
        old, sub.cells = sub.cells, cells
        sub.pending = {}
        for cell in old - cells:
            followers = self.followers.get(cell)
            if followers is not None:
                followers.discard(sub)
                if not followers:
                    del self.followers[cell]
        for cell in cells - old:
            self.followers.setdefault(cell, set()).add(sub)
        changed = old ^ cells
        if changed:
            await asyncio.gather(*(self._reconcile(cell) for cell in changed))

    async def _reconcile(self, cell: str) -> None:
        """Join or leave the cell's group so that membership matches the followers."""
        lock = self._cell_locks.setdefault(cell, asyncio.Lock())
        async with lock:
            wanted = cell in self.followers
            if wanted and cell not in self.joined:
                await self.layer.group_add(group_for(cell), self.channel)
                self.joined.add(cell)
            elif not wanted and (cell in self.joined or cell in self._leave_failed):
                self.joined.discard(cell)
                try:
                    await self.layer.group_discard(group_for(cell), self.channel)
                except Exception as exc:  # noqa: BLE001 - Redis away: the sweep tries again
                    log.warning("map hub could not leave %s: %s", cell, exc)
                    self._leave_failed.add(cell)
                else:
                    self._leave_failed.discard(cell)

    async def _rejoin(self) -> None:
        for cell in list(self.joined):
            try:
                await self.layer.group_add(group_for(cell), self.channel)
            except Exception as exc:  # noqa: BLE001 - tried again on the next failure/refresh
                log.warning("map hub could not rejoin %s: %s", cell, exc)
                return

    # --- Orphans ---------------------------------------------------------------------------------

    def subscriptions(self) -> set[Subscription]:
        """The subscriptions that follow at least one cell."""
        return {sub for followers in self.followers.values() for sub in followers}

    async def sweep(self) -> int:
        """Drop orphaned subscriptions (see Subscription.orphaned) and leave the groups nobody
        here needs; the number dropped."""
        now = asyncio.get_running_loop().time()
        orphans = [sub for sub in self.subscriptions() if sub.orphaned(now)]
        for sub in orphans:
            await sub.close()
        if orphans:
            self.swept += len(orphans)
            log.warning("map hub dropped %d orphaned subscription(s)", len(orphans))
        stray = (self.joined - self.followers.keys()) | (self._leave_failed - self.followers.keys())
        if stray:
            await asyncio.gather(*(self._reconcile(cell) for cell in stray))
        return len(orphans)

    def _sweep_tick(self) -> None:
        self._spawn(self.sweep())
        self._sweep_at = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep_tick)

    def _refresh(self) -> None:
        self._spawn(self._rejoin())
        self._refresh_at = asyncio.get_running_loop().call_later(REJOIN_EVERY_S, self._refresh)


_hubs: dict[asyncio.AbstractEventLoop, MapHub] = {}


def _hub_layer():
    shared = get_channel_layer()
    if shared is None or isinstance(shared, InMemoryChannelLayer):
        return shared
    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


async def map_hub() -> MapHub | None:
    """The running loop's hub (created on first use), or None without a channel layer."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.dead:
        for other in [other for other in _hubs if other.is_closed()]:
            del _hubs[other]  # tests run a new loop each: their hubs go with them
        layer = _hub_layer()
        if layer is None:
            return None
        hub = _hubs[loop] = MapHub(layer)
    await hub.ready()
    return hub


def current_hub() -> MapHub | None:
    """The hub of the running loop, if it has one (tests, diagnostics)."""
    return _hubs.get(asyncio.get_running_loop())


async def close_hub() -> None:
    """Close the running loop's hub, if it has one (ASGI lifespan shutdown: o2o.lifespan)."""
    hub = _hubs.get(asyncio.get_running_loop())
    if hub is not None:
        await hub.close()
