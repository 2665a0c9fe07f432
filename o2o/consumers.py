"""Websocket refusals, and the socket of a path no app serves.

A refusal is an accepted socket closed at once with a 44xx code (`refuse`): refusing before
`accept()` is an HTTP 403 to a real client, and a browser never learns the code, so a page could
not tell "log in" or "not allowed" (stop) from a dropped connection (retry). Codes: 4400 bad
message, 4401 not logged in, 4403 not allowed, 4404 no such order (or path), 4429 too fast.

A path no app serves (a typo, an old client, a probe, an order id that is not a number) is refused
with 4404, as the other sockets refuse an order that does not exist, rather than the router raising
"No route found" (an error and a traceback per request)."""

from channels.generic.websocket import AsyncWebsocketConsumer

CLOSE_NOT_FOUND = 4404


async def refuse(consumer: AsyncWebsocketConsumer, code: int) -> None:
    """Refuse a socket in `connect()` so that the client gets `code`: accept, then close."""
    await consumer.accept()
    await consumer.close(code=code)


class NotFoundConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = None  # it never joins a group: no channel on the layer for a probe

    async def connect(self) -> None:
        await refuse(self, CLOSE_NOT_FOUND)
