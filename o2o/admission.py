"""Admission control: a rush above capacity is served at capacity, not queued until nobody is.

Per server process, at most WEB_MAX_IN_FLIGHT page and API requests are inside Django at once;
up to WEB_MAX_QUEUED more wait for a place, each at most WEB_QUEUE_WAIT_S. Anything beyond gets
an immediate 503 with Retry-After (JSON in the API's error shape on /api/, a short bilingual
page elsewhere), which a browser or the pages' scripts retry. Without it, bench/lunch_rush.py
offered 100 orders/s to two processes that serve ~1/s: every request queued ~60 s and no order
finished at all.

Not counted: websockets (long-lived; they have their own limits), static files, /healthz (the
proxy must see a busy process as alive), and the payment provider's calls and webhooks: a
checkout waits on the sandbox provider served by the same process, so bounding those too could
deadlock, and a refused webhook only comes back later.
"""

from __future__ import annotations

import asyncio
import json

EXEMPT = ("/static/", "/healthz", "/sandbox/api/", "/payments/webhooks/")
RETRY_AFTER_S = 5
_MESSAGE_KO = "지금 이용자가 많아 잠시 기다려야 해요. 몇 초 뒤에 다시 시도해 주세요."
_MESSAGE_EN = "We're very busy right now. Please try again in a few seconds."
_JSON = json.dumps(
    {"error": {"code": "unavailable", "message": f"{_MESSAGE_KO} {_MESSAGE_EN}"}},
    ensure_ascii=False,
).encode()
_HTML = (
    '<!doctype html><html lang="ko"><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    f"<title>잠시만요 · Busy</title><main><h1>잠시만요</h1><p>{_MESSAGE_KO}</p>"
    f'<p lang="en">{_MESSAGE_EN}</p><p><a href="">다시 시도 · Try again</a></p></main></html>'
).encode()


class Admission:
    def __init__(self, app, *, in_flight: int, queued: int, wait_s: float) -> None:
        self.app = app
        self.in_flight = in_flight
        self.queued = queued
        self.wait_s = wait_s
        self.waiting = 0
        self.refused = 0
        self._gate: asyncio.Semaphore | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.in_flight <= 0 or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.in_flight)
        gate = self._gate
        if gate.locked() and self.waiting >= self.queued:
            await self._refuse(scope, send)
            return
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await gate.acquire()
        except TimeoutError:
            await self._refuse(scope, send)
            return
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.release()

    async def _refuse(self, scope, send) -> None:
        self.refused += 1
        api = scope["path"].startswith("/api/")
        body = _JSON if api else _HTML
        kind = b"application/json" if api else b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
