"""The project's ASGI application for bench/lunch_rush.py, with at most RUSH_MAX_REQUESTS page and
API requests inside Django at once in this process; the rest wait their turn here (not refused).

Under ASGI every request runs in a thread of its own with a connection of its own
(CONN_MAX_AGE=0), so without a bound a rush opens one PostgreSQL connection per request in flight
and two processes pass max_connections (100, shared with the rest of the machine). Production
would put a pooler in front of PostgreSQL; this is the bench's stand-in. The sandbox provider's
server-to-server API and the webhooks are not counted: a page request (checkout, the way back
from the card page) waits on them while it holds its place, so bounding them too could deadlock.
"""

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from o2o.asgi import application as project  # noqa: E402

LIMIT = int(os.environ.get("RUSH_MAX_REQUESTS", "8"))
UNBOUNDED = ("/sandbox/api/", "/payments/webhooks/", "/healthz")
_gate: list[asyncio.Semaphore] = []


async def application(scope, receive, send):
    if scope["type"] != "http" or scope["path"].startswith(UNBOUNDED):
        return await project(scope, receive, send)
    if not _gate:
        _gate.append(asyncio.Semaphore(LIMIT))
    async with _gate[0]:
        return await project(scope, receive, send)
