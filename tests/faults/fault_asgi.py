"""The app as uvicorn serves it in the fault tests, with a hand on the sandbox provider's capture and
void endpoints: each such request is logged to a file when it arrives (so a test knows a capture is
in flight), and may be held for a while, either before the app sees it ("before": the provider has
not captured yet) or after the app answered (the provider captured, the caller is still waiting).

A request held "before" whose caller went away meanwhile (a killed worker) is dropped, never
passed on: the provider has then surely not done it, as it would be with a request lost on the
wire. The test steers it through a JSON file named by FAULT_CONTROL:
{"delay": 2.5, "when": "after"}, read on every request, so one server serves several tests.
"""

import asyncio
import json
import os
import re
import time
from pathlib import Path

from o2o.asgi import application as app

CONTROL = Path(os.environ["FAULT_CONTROL"])
HITS = CONTROL.with_suffix(".hits")
MONEY_CALL = re.compile(r"^/sandbox/api/v1/intents/(?P<intent>[^/]+)/(?P<action>capture|void)$")


def _control() -> tuple[float, str]:
    try:
        conf = json.loads(CONTROL.read_text())
    except (OSError, ValueError):
        return 0.0, "before"
    return float(conf.get("delay", 0)), str(conf.get("when", "before"))


def _hit(what: str, intent: str) -> None:
    with HITS.open("a") as hits:
        hits.write(f"{time.time():.3f} {what} {intent}\n")


async def _held(scope, receive, send, *, delay: float, intent: str):
    """Read the request, wait `delay` s (or until the caller goes away: then drop it), pass it on."""
    messages = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _hit("dropped", intent)
        messages.append(message)
        if not message.get("more_body"):
            break
    try:
        message = await asyncio.wait_for(receive(), timeout=delay)
    except TimeoutError:
        pass  # the caller still waits
    else:
        if message["type"] == "http.disconnect":
            return _hit("dropped", intent)

    async def replay():
        return messages.pop(0) if messages else await receive()

    return await app(scope, replay, send)


async def application(scope, receive, send):
    match = MONEY_CALL.match(scope.get("path", "")) if scope["type"] == "http" else None
    if match is None or scope.get("method") != "POST":
        return await app(scope, receive, send)
    _hit(match["action"], match["intent"])
    delay, when = _control()
    if delay and when == "before":
        return await _held(scope, receive, send, delay=delay, intent=match["intent"])
    if not delay:
        return await app(scope, receive, send)

    async def send_late(message):
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay)  # the work is committed; the answer is late
        await send(message)

    return await app(scope, receive, send_late)
