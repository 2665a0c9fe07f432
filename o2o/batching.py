"""Coalescing in a process: work added from any thread is handed over together, once per window,
on one daemon thread of the process (started on first use and again in a forked child, since
threads don't survive a fork).

Two users: the effects' kicks (o2o.effects.KickBatcher: one relay message per queue per window)
and the live broadcasts that follow a stock change (`on_commit_coalesced`: the vendor page's
"N left" once per cart per window, read when sent, so it is the latest). Both are best-effort: what
a process loses with it is made good elsewhere (the effects' sweep; a page's snapshot on
reconnect).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from .hooks import on_commit_safe

log = logging.getLogger(__name__)


class WindowBatcher:
    """Items added under a key within one window are merged (`merge`) and handed to `deliver` as
    one {key: item} batch. Subclasses say how to merge and what to do with a batch."""

    thread_name = "o2o-batcher"

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: dict[Hashable, Any] = {}
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def add(self, key: Hashable, item: Any) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._pid, self._pending = os.getpid(), {}
                self._thread = threading.Thread(
                    target=self._run, name=self.thread_name, daemon=True
                )
                self._thread.start()
            self._pending[key] = self.merge(self._pending.get(key), item)
        self._wake.set()

    def merge(self, old: Any, new: Any) -> Any:
        return new

    def deliver(self, batch: dict[Hashable, Any]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.window_s)  # let what comes in the same moment join
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must outlive a bad batch
                log.exception("%s: a batch failed", self.thread_name)

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if batch:
            self.deliver(batch)


class CallCoalescer(WindowBatcher):
    """func(**kwargs) once per (func, key) per window, with the kwargs of the last call."""

    thread_name = "o2o-coalesced-calls"

    def deliver(self, batch: dict[Hashable, Any]) -> None:
        close_old_connections()  # this thread's connection: as a request's, never one gone stale
        try:
            for func, kwargs in batch.values():
                try:
                    func(**kwargs)
                except Exception:  # noqa: BLE001 - best-effort, as on_commit_safe
                    log.exception("coalesced %s failed", getattr(func, "__qualname__", func))
        finally:
            close_old_connections()


calls = CallCoalescer(window_s=0.1)


def on_commit_coalesced(func: Callable[..., Any], /, key: Hashable, **kwargs: Any) -> None:
    """Once the transaction commits, call func(**kwargs) on the process's coalescing thread
    within LIVE_COALESCE_S, once for all the calls with the same func and key in that window
    (a busy cart's orders: one "N left" read and broadcast, not one each), and off the thread that
    committed. With LIVE_COALESCE_S = 0 (the tests) it is on_commit_safe: called at the commit."""
    window = float(getattr(settings, "LIVE_COALESCE_S", 0.1))
    if window <= 0:
        on_commit_safe(func, **kwargs)
        return
    calls.window_s = window
    on_commit_safe(calls.add, key=(func, key), item=(func, kwargs))
