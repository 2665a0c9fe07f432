"""The sockets over a real server with a real websocket client, which WebsocketCommunicator hides:
uvicorn in a subprocess (started as `manage.py serve` starts it) on the test database, and the
`websockets` package as the browser.

- A refusal reaches the client as its close code (4401 not logged in, 4403 not allowed, 4404 not
  yours / no such path): a socket refused before accept() is an HTTP 403 to a real client, and a
  page could not tell "stop" from "retry".
- SIGTERM ends the server within SHUTDOWN_TIMEOUT_S (and a margin) after a few short-lived map and
  vendor sockets, rather than waiting forever on "Waiting for background tasks"; on the way out the
  map hub stops its reader and leaves its groups (the ASGI lifespan's shutdown, o2o.lifespan)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from o2o.lifespan import shutdown
from tests.factories import CustomerProfileFactory, VendorFactory
from tests.orders import conftest as orders_fixtures
from tests.orders.conftest import placed
from tracking.hub import Subscription, current_hub, map_hub
from tracking.realtime import group_for
from vendors.models import Vendor

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
# The order fixtures of tests/orders/, here too.
shop = orders_fixtures.shop
buyer = orders_fixtures.buyer
LOG = ROOT / "test-artifacts" / "ws-live-server.log"
SHUTDOWN_TIMEOUT_S = 2
MARGIN_S = 8


class Server:
    """`manage.py serve` (uvicorn, one process) on a free port, against the test database."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        db = settings.DATABASES["default"]  # inside a test: the test database
        auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "o2o.settings",
            "O2O_IGNORE_DOTENV": "true",
            "DJANGO_ENV": "development",
            "DEBUG": "false",
            # The sessions the test logs in are signed with the test process's key.
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            "CONN_MAX_AGE": "0",
            "REDIS_URL": settings.REDIS_URL,
            "CHANNELS_PREFIX": f"o2o-ws-live-{uuid.uuid4().hex[:12]}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "INPROCESS_SCHEDULER": "false",
            "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        LOG.parent.mkdir(parents=True, exist_ok=True)
        self._log = LOG.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with opener.open(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"the server did not become healthy:\n{LOG.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()

    def open(self, path: str, user=None):
        """A real websocket client, as a browser on this site (its Origin, its session)."""
        headers = {}
        if user is not None:
            client = Client()
            client.force_login(user)
            headers["Cookie"] = f"sessionid={client.cookies['sessionid'].value}"
        return connect(self.ws + path, origin=self.url, additional_headers=headers, open_timeout=5)

    def close_code(self, path: str, user=None) -> int | str:
        """The close code the client gets, or what went wrong before the socket opened."""
        try:
            with self.open(path, user) as ws:
                ws.recv(timeout=5)
        except InvalidStatus as exc:  # refused before accept(): the page never learns why
            return f"HTTP {exc.response.status_code}"
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else "closed without a code"
        except TimeoutError:
            return "still open"
        return "a message instead of a close"


@pytest.fixture
def server(transactional_db):
    server = Server().start()
    try:
        yield server
    finally:
        server.stop()


def test_a_real_client_gets_the_close_code_of_each_refusal(server, shop, buyer):
    # Given an order of a customer, another customer, and vendors who may not sell
    order = placed(shop, buyer)
    stranger = CustomerProfileFactory().user
    suspended = VendorFactory(status=Vendor.Status.SUSPENDED).user
    pending = VendorFactory(status=Vendor.Status.PENDING).user
    cases = [
        ("/ws/vendor/location/", None, 4401),  # not logged in
        ("/ws/vendor/location/", suspended, 4403),  # a suspended vendor's shift page
        ("/ws/vendor/orders/", None, 4401),
        ("/ws/vendor/orders/", pending, 4403),
        (f"/ws/orders/{order.pk}/", None, 4401),
        (f"/ws/orders/{order.pk}/", stranger, 4404),  # someone else's order
        (f"/ws/orders/{order.pk + 999}/", buyer, 4404),  # no such order
        ("/ws/nope/", None, 4404),  # no such route
        ("/ws/orders/abc/", buyer, 4404),
    ]
    # When a real websocket client opens each socket
    got = {(path, str(user)): server.close_code(path, user) for path, user, _code in cases}
    # Then it gets the close code of the refusal (not an HTTP 403 on the handshake)
    assert got == {(path, str(user)): code for path, user, code in cases}
    # And the sockets that are allowed stay open
    assert server.close_code(f"/ws/orders/{order.pk}/", buyer) == "still open"
    assert server.close_code("/ws/vendor/orders/", shop.vendor.user) == "still open"


def test_sigterm_ends_the_server_within_the_shutdown_timeout(server, shop, buyer):
    # Given a server that has served a few short-lived map and vendor sockets (a map socket makes
    # the process's map hub follow a cell on Redis; the others wait on the channel layer)
    order = placed(shop, buyer)
    for _ in range(3):
        for path in ("/ws/vendor/location/", "/ws/vendor/orders/", "/ws/nope/"):
            server.close_code(path)  # refused: not logged in, no such path
        with server.open("/ws/vendor/orders/", shop.vendor.user) as ws:
            pass
        with server.open(f"/ws/orders/{order.pk}/", buyer) as ws:
            pass
        with server.open("/ws/map/") as ws:
            ws.send('{"type":"viewport","bbox":[37.55,126.9,37.56,126.91]}')
            assert '"snapshot"' in ws.recv(timeout=5)
        with server.open("/ws/vendor/location/", shop.vendor.user) as ws:
            ws.send('{"type":"ping","lat":37.5556,"lng":126.9106,"accuracy":10}')
            ws.recv(timeout=5)
    # and a map socket and an inbox still open
    with (
        server.open("/ws/map/") as still_open,
        server.open("/ws/vendor/orders/", shop.vendor.user),
    ):
        still_open.send('{"type":"viewport","bbox":[37.55,126.9,37.56,126.91]}')
        still_open.recv(timeout=5)
        # When it is told to stop
        started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        # Then it is gone within its graceful-shutdown timeout and a margin
        try:
            server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S + MARGIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {SHUTDOWN_TIMEOUT_S + MARGIN_S} s after SIGTERM")
    assert time.monotonic() - started < SHUTDOWN_TIMEOUT_S + MARGIN_S
    # And the map hub was closed on the way out
    assert "map hub closed" in LOG.read_text()


def test_closing_the_hub_stops_its_reader_and_leaves_its_groups():
    # Given the map hub of a loop following a cell for a socket (its group joined on Redis)
    cell = "86283082fffffff"

    async def send(_text: str) -> None: ...

    async def main():
        hub = await map_hub()
        if not isinstance(hub.layer, RedisChannelLayer):
            pytest.skip("the channel layer is not on Redis")
        key = hub.layer._group_key(group_for(cell))
        probe = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        redis = probe.connection(probe.consistent_hash(group_for(cell)))
        await hub.follow(Subscription(hub, send), frozenset({cell}))
        assert await redis.zscore(key, hub.channel) is not None
        reader = hub._receiver
        # When the server shuts down (the ASGI lifespan's shutdown)
        await shutdown()
        # Then the reader is stopped, the group left, and the hub gone for good
        assert reader.done()
        assert await redis.zscore(key, hub.channel) is None
        assert hub.dead and current_hub() is None
        await probe.close_pools()

    async_to_sync(main)()
