"""Django's Redis cache, falling through when Redis does not answer.

The cache only holds what may be lost (throttle history, cached reads, short locks, the handover
try counter), so a Redis that is down costs a miss, never a 500: reads return the default, writes
do nothing and say they failed. `add` returns False (a lock is not taken), `incr` raises
ValueError as for a missing key (the handover counter then refuses the code rather than compare it
uncounted), `set_many` returns every key as failed.

After a failure the cache is taken as down for DOWN_SECONDS and not tried at all, so a Redis that
hangs costs one socket timeout per process per DOWN_SECONDS instead of one per call. One warning
says it went down, one line every LOG_EVERY_SECONDS while it stays down, one when it is back.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DOWN_SECONDS = 1.0
LOG_EVERY_SECONDS = 30.0


class _Down(Exception):
    """Redis failed just now or a moment ago: the call falls through."""


class _Health:
    """One per Redis location and process: Django builds a cache object per thread."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._lock = threading.Lock()
        self.down_until = 0.0
        self.down_since: float | None = None
        self.logged_at = 0.0
        self.fell_through = 0

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        if time.monotonic() < self.down_until:
            self._count()
            raise _Down
        try:
            result = method(*args)
        except RedisError as exc:
            self._failed(exc)
            raise _Down from exc
        if self.down_since is not None:
            self._recovered()
        return result

    def _count(self) -> None:
        with self._lock:
            self.fell_through += 1

    def _failed(self, exc: RedisError) -> None:
        now = time.monotonic()
        with self._lock:
            self.down_until = now + DOWN_SECONDS
            self.fell_through += 1
            if self.down_since is None:
                self.down_since = self.logged_at = now
                log.warning(
                    "cache: Redis at %s is not answering (%s: %s); reads miss, writes are "
                    "dropped until it is back",
                    self.location,
                    type(exc).__name__,
                    exc,
                )
            elif now - self.logged_at >= LOG_EVERY_SECONDS:
                self.logged_at = now
                log.warning(
                    "cache: Redis at %s still down after %.0f s (%d calls fell through): %s",
                    self.location,
                    now - self.down_since,
                    self.fell_through,
                    type(exc).__name__,
                )

    def _recovered(self) -> None:
        with self._lock:
            if self.down_since is None:
                return
            log.warning(
                "cache: Redis at %s answers again after %.1f s (%d calls fell through)",
                self.location,
                time.monotonic() - self.down_since,
                self.fell_through,
            )
            self.down_since = None
            self.fell_through = 0


_health: dict[str, _Health] = {}
_health_lock = threading.Lock()


def _health_for(location: str) -> _Health:
    with _health_lock:
        return _health.setdefault(location, _Health(location))


class ResilientRedisCache(RedisCache):
    """django.core.cache.backends.redis.RedisCache whose calls fall through when Redis is down."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._health = _health_for(",".join(self._servers))

    @property
    def unavailable(self) -> bool:
        """Redis failed a moment ago: counters can't count (callers that need one refuse)."""
        return self._health.down_since is not None

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return self._health.call(super().add, key, value, timeout, version)
        except _Down:
            return False

    def get(self, key, default=None, version=None):
        try:
            return self._health.call(super().get, key, default, version)
        except _Down:
            return default

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with contextlib.suppress(_Down):
            self._health.call(super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return self._health.call(super().touch, key, timeout, version)
        except _Down:
            return False

    def delete(self, key, version=None):
        try:
            return self._health.call(super().delete, key, version)
        except _Down:
            return False

    def get_many(self, keys, version=None):
        try:
            return self._health.call(super().get_many, keys, version)
        except _Down:
            return {}

    def has_key(self, key, version=None):
        try:
            return self._health.call(super().has_key, key, version)
        except _Down:
            return False

    def incr(self, key, delta=1, version=None):
        # decr() comes here too (BaseCache.decr calls incr with -delta).
        try:
            return self._health.call(super().incr, key, delta, version)
        except _Down as exc:
            raise ValueError(f"Key '{key}' not found: the cache is not answering.") from exc

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return self._health.call(super().set_many, data, timeout, version)
        except _Down:
            return list(data)

    def delete_many(self, keys, version=None):
        with contextlib.suppress(_Down):
            self._health.call(super().delete_many, keys, version)

    def clear(self):
        try:
            return self._health.call(super().clear)
        except _Down:
            return False
