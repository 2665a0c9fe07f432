"""A minimal authenticated websocket used by the health check of the live plumbing.

Anonymous sockets are closed with 4401; an authenticated one gets back what it sends, as JSON.
Later features (live map, order pages) add their own consumers beside this one.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_MESSAGE = 4400


class PingConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        await self.send_json({"type": "pong", "echo": content.get("type")})

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None
