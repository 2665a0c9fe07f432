"""The broadcaster's own loop (o2o.realtime): uvloop's when it is installed, and sends go through."""

import pytest

from o2o.realtime import Broadcaster

pytestmark = pytest.mark.redis


def test_the_broadcasters_loop_is_uvloop_when_installed_and_sends_go_through():
    uvloop = pytest.importorskip("uvloop")
    broadcaster = Broadcaster()
    try:
        # When a broadcast is sent (to a group nobody follows)
        future = broadcaster.send("map.fleet-test", {"type": "map.upsert"})
        # Then it goes through, on uvloop's loop rather than the selector loop
        assert future is not None
        future.result(timeout=10)
        assert isinstance(broadcaster._own_loop, uvloop.Loop)
    finally:
        loop = broadcaster._own_loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
