"""The ASGI lifespan of the server (o2o.asgi): nothing to do at startup; at shutdown, after uvicorn
has closed the connections (or cancelled their tasks once SHUTDOWN_TIMEOUT_S was up), close what
the process holds on Redis: the map hub (its reader, its groups, its own layer) and the channel
layer's connections."""

import asyncio
import contextlib
import logging

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 3.0


async def shutdown() -> None:
    from tracking.hub import close_hub

    try:
        await asyncio.wait_for(close_hub(), CLOSE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - the process is ending anyway: say so, and go on
        log.exception("closing the map hub failed")
    layer = get_channel_layer()
    if hasattr(layer, "close_pools"):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(layer.close_pools(), CLOSE_TIMEOUT_S)


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
