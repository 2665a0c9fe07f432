"""Broadcasting to websocket groups from sync code (services, after commit), without blocking.

`async_to_sync(layer.group_send)` starts an event loop and, with channels-redis, a new Redis
connection on every call (~5 ms). Instead one long-lived loop per process sends for everyone
(~0.8 ms, and the caller does not wait). With the in-memory layer (embedded demo) the messages must
be delivered on the server's own loop, which the first websocket consumer registers.

Broadcasts are best-effort: a failure is logged, never raised into the business write nor to the
caller. With Redis down every send fails: one warning says so, then one every LOG_EVERY_SECONDS
with the count, and one when sends go through again.
"""

import asyncio
import logging
import threading
import time
from concurrent.futures import Future

from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 2_000
# Sends running at once on the loop: below redis-py's connection pool (100), so a burst waits
# for a connection instead of failing with MaxConnectionsError.
MAX_CONCURRENT_SENDS = 50
LOG_EVERY_SECONDS = 30.0


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's when installed (uvicorn[standard] brings it; uvicorn runs the server's loop on it
    but sets no policy, so asyncio.new_event_loop() would give the selector loop): the sends'
    Redis round trips cost ~10 % less CPU on it (bench/README.md, the national fleet)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Broadcaster:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0
        self._limiters: dict[int, asyncio.Semaphore] = {}
        self.dropped = 0
        self.failed = 0  # since the last success: the failures of the current outage
        self._logged_at = 0.0

    def register_server_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called from a consumer: the loop that in-memory channel messages must be sent on."""
        self._server_loop = loop

    def _loop_for(self, layer) -> asyncio.AbstractEventLoop | None:
        if isinstance(layer, InMemoryChannelLayer):
            loop = self._server_loop
            return loop if loop is not None and loop.is_running() else None
        with self._lock:
            if self._own_loop is None or not self._own_loop.is_running():
                loop = new_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, started), name="o2o-broadcast", daemon=True
                )
                thread.start()
                started.wait(5)
                self._own_loop = loop
            return self._own_loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()

    def send(self, group: str, message: dict) -> Future | None:
        """Queue a group_send; returns its future (tests and benchmarks may wait on it)."""
        try:
            return self._send_soon(group, message)
        except Exception as exc:  # noqa: BLE001 - a broadcast never fails its caller
            self._failed(exc)
            return None

    def _send_soon(self, group: str, message: dict) -> Future | None:
        layer = get_channel_layer()
        if layer is None:
            return None
        loop = self._loop_for(layer)
        if loop is None:  # in-memory layer and no socket in this process: nobody to tell
            return None
        with self._lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                self.dropped += 1
                return None
            self._in_flight += 1
        coroutine = self._send(layer, group, message)
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop closed meanwhile
            coroutine.close()
            with self._lock:
                self._in_flight -= 1
            raise
        future.add_done_callback(self._done)
        return future

    async def _send(self, layer, group: str, message: dict) -> None:
        limiter = self._limiters.get(id(asyncio.get_running_loop()))
        if limiter is None:
            limiter = self._limiters[id(asyncio.get_running_loop())] = asyncio.Semaphore(
                MAX_CONCURRENT_SENDS
            )
        async with limiter:
            await layer.group_send(group, message)

    def _done(self, future: Future) -> None:
        with self._lock:
            self._in_flight -= 1
        exc = None if future.cancelled() else future.exception()
        if exc is not None:
            self._failed(exc)
        elif self.failed:
            with self._lock:
                failed, self.failed, self._logged_at = self.failed, 0, 0.0
            if failed:
                log.warning("broadcasts go through again (%d failed meanwhile)", failed)

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self.failed += 1
            if self._logged_at and now - self._logged_at < LOG_EVERY_SECONDS:
                return
            self._logged_at = now
            failed = self.failed
        log.warning(
            "broadcast failed: %s: %s (%d failed since the last success)",
            type(exc).__name__,
            exc,
            failed,
        )


broadcaster = Broadcaster()
