"""Admission control (o2o.admission): over capacity a request gets a fast 503 with Retry-After
instead of a place in a queue that grows until nobody is served (bench/lunch_rush.py at 100
orders/s: 0 orders finished). Websockets, static files, /healthz and the payment provider's calls
are never held back."""

import asyncio
import json

from o2o.admission import Admission
from o2o.asgi import application


class App:
    """An ASGI app whose page requests wait until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope, receive, send):
        self.entered += 1
        if scope["type"] == "http" and scope["path"].startswith("/slow"):
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app, path: str, kind: str = "http") -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": kind, "path": path, "headers": []}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_beyond_the_places_and_the_queue_a_request_is_refused_at_once_then_served_again():
    async def main():
        inner = App()
        gate = Admission(inner, in_flight=1, queued=1, wait_s=30)
        # given one request inside and one waiting
        first = asyncio.create_task(call(gate, "/slow/a"))
        second = asyncio.create_task(call(gate, "/slow/b"))
        await asyncio.sleep(0.05)
        assert inner.entered == 1 and gate.waiting == 1
        # when a third comes: refused at once, in the API's error shape, with Retry-After
        status, headers, body = await asyncio.wait_for(call(gate, "/api/orders/"), 1)
        assert status == 503
        assert headers["retry-after"] == "5"
        assert json.loads(body)["error"]["code"] == "unavailable"
        # and a page gets a short page, not JSON
        status, headers, body = await asyncio.wait_for(call(gate, "/map/"), 1)
        assert status == 503 and headers["content-type"].startswith("text/html")
        assert "잠시만요" in body.decode()
        # then once the first is done, the waiting one is served, and so are later ones
        inner.release.set()
        assert (await first)[0] == 200 and (await second)[0] == 200
        assert (await call(gate, "/map/"))[0] == 200
        assert gate.refused == 2

    asyncio.run(main())


def test_a_request_that_waits_too_long_is_refused():
    async def main():
        inner = App()
        gate = Admission(inner, in_flight=1, queued=10, wait_s=0.1)
        first = asyncio.create_task(call(gate, "/slow/a"))
        await asyncio.sleep(0.02)
        status, _headers, _body = await asyncio.wait_for(call(gate, "/vendors/"), 2)
        assert status == 503
        inner.release.set()
        assert (await first)[0] == 200
        assert gate.waiting == 0

    asyncio.run(main())


def test_health_static_files_and_the_payment_provider_are_never_held_back():
    async def main():
        inner = App()
        gate = Admission(inner, in_flight=1, queued=0, wait_s=30)
        first = asyncio.create_task(call(gate, "/slow/a"))
        await asyncio.sleep(0.02)
        for path in (
            "/healthz",
            "/static/css/app.css",
            "/sandbox/api/intents/",
            "/payments/webhooks/sandbox/",
        ):
            assert (await asyncio.wait_for(call(gate, path), 1))[0] == 200, path
        assert (await asyncio.wait_for(call(gate, "/vendors/"), 1))[0] == 503
        inner.release.set()
        await first

    asyncio.run(main())


def test_the_project_application_has_it_in_front_of_django():
    gate = application.application_mapping["http"]
    assert isinstance(gate, Admission)
    assert gate.in_flight > 0 and gate.queued > 0
