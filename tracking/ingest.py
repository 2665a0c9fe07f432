"""Pings from vendors' sockets, recorded in batches: one per event loop (a server process).

Each socket submits its ping and awaits that ping's own result. The batcher gathers what the
sockets of this process send and records it with one `ping_record_many` call (one transaction) at
most MAX_WAIT_S after the first ping of the batch arrived, or as soon as MAX_BATCH pings wait.
One batch is recorded at a time; what arrives meanwhile forms the next one, so under load the
batches grow instead of queueing up behind each other.

No ping is dropped silently: when a batch fails its pings are tried one by one, and a ping that
still cannot be recorded is answered with Reject.SERVER_ERROR (the phone keeps it and sends it
again), never left waiting.

Load is shed, not queued: with more than PING_INGEST_MAX_PENDING pings waiting in the process, a
new ping is answered with Reject.SERVER_ERROR at once. Without the bound an overloaded process
queued every ping (bench/fleet.py at 11,000 phones: acks 85 s late), fell behind on its sockets'
keepalive and lost all its phones at once; with it the phones that get through are answered in
time, and the others send again.
"""

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from . import services
from .services import PingIn, PingResult, Reject

log = logging.getLogger(__name__)

MAX_BATCH = 200
MAX_WAIT_S = 0.025
FAILED = PingResult(accepted=False, reason=Reject.SERVER_ERROR)

Recorder = Callable[[Sequence[PingIn]], list[PingResult]]


def record_pings(pings: Sequence[PingIn]) -> list[PingResult]:
    """Record a batch; if the batch as a whole fails, each ping on its own (sync, one thread)."""
    try:
        return services.ping_record_many(pings=pings)
    except Exception:
        if len(pings) == 1:
            log.exception("recording a ping failed")
            return [FAILED]
        log.exception("recording a batch of %d pings failed; trying them one by one", len(pings))
    results = []
    for ping in pings:
        connection.close_if_unusable_or_obsolete()
        try:
            results.append(services.ping_record_many(pings=[ping])[0])
        except Exception:
            log.exception("recording a ping of vendor %s failed", ping.vendor_id)
            results.append(FAILED)
    return results


class PingBatcher:
    def __init__(
        self,
        record: Recorder = record_pings,
        *,
        max_batch: int = MAX_BATCH,
        max_wait_s: float = MAX_WAIT_S,
        max_pending: int | None = None,
    ) -> None:
        self._record = database_sync_to_async(record)
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.max_pending = settings.PING_INGEST_MAX_PENDING if max_pending is None else max_pending
        self.shed = 0  # pings answered "send again" because too many were waiting
        self._pending: list[tuple[PingIn, asyncio.Future, float]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None
        self.batch_sizes: list[int] = []  # for benchmarks and tests; bounded below

    async def submit(self, ping: PingIn) -> PingResult:
        """Queue the ping and wait for its result. A socket that goes away while waiting cancels
        only its wait: the ping is still recorded."""
        if len(self._pending) >= self.max_pending:
            self.shed += 1
            if self.shed % 1000 == 1:
                log.warning("ping ingest behind: %d pings shed so far", self.shed)
            return FAILED
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((ping, future, loop.time()))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush_task is not None or not self._pending:
            return  # the running flush looks again when it is done
        waited = loop.time() - self._pending[0][2]
        if len(self._pending) >= self.max_batch or waited >= self.max_wait_s:
            self._start_flush(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s - waited, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._schedule(loop)

    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._flush_task = loop.create_task(self._flush(batch, loop))

    async def _flush(self, batch: list, loop: asyncio.AbstractEventLoop) -> None:
        results: list[PingResult] = []
        try:
            results = await self._record([ping for ping, _f, _t in batch])
            if len(results) != len(batch):
                log.error("%d results for a batch of %d pings", len(results), len(batch))
                results = []
        except Exception:
            log.exception("recording a batch of %d pings failed", len(batch))
        finally:
            for (_ping, future, _t), result in zip(
                batch, results or [FAILED] * len(batch), strict=True
            ):
                if not future.done():
                    future.set_result(result)
            self.batch_sizes = [*self.batch_sizes[-999:], len(batch)]
            self._flush_task = None
            if not loop.is_closed():
                self._schedule(loop)


_batchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PingBatcher]" = (
    weakref.WeakKeyDictionary()
)


def batcher() -> PingBatcher:
    """This event loop's batcher (a server process runs one loop; tests run one per test)."""
    loop = asyncio.get_running_loop()
    found = _batchers.get(loop)
    if found is None:
        found = _batchers[loop] = PingBatcher()
    return found


async def submit(ping: PingIn) -> PingResult:
    return await batcher().submit(ping)
