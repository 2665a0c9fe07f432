"""The websocket of a path no app serves (a typo, an old client, a probe, an order id that is not a
number): refused with close code 4404 before the handshake completes, as the other sockets refuse
an order that does not exist, rather than the router raising "No route found" (an error and a
traceback per request)."""

from channels.generic.websocket import AsyncWebsocketConsumer

CLOSE_NOT_FOUND = 4404


class NotFoundConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = None  # it never joins a group: no channel on the layer for a probe

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)
