"""Scale-out, shown: two web processes (uvicorn, as deployed) on one database and one Redis channel
layer, with a real websocket client as the browsers and phones.

- A vendor's ping sent to process A reaches a map client connected to process B.
- An order placed and paid over HTTP on A rings the vendor's inbox connected to B.
- A is killed (SIGKILL): B keeps serving pages, the map and pings; A comes back on its port, B is
  killed, and A serves alone.

Nothing ties a client to a process (no sticky sessions): sessions are in the database, and every
broadcast crosses the channel layer, which each process's map hub and inbox sockets follow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from websockets.sync.client import ClientConnection, connect

from tests.factories import AddressFactory, CustomerProfileFactory, VendorFactory
from tests.orders.conftest import open_shop
from tracking.services import shift_start

from .conftest import APPROVE
from .stack import ARTIFACTS, PrivateRedis, Web

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

# Around Mapo (the factories' home point): a viewport holding the vendors' pings.
VIEWPORT = [37.545, 126.90, 37.565, 126.925]
PING = {"type": "ping", "lat": 37.5556, "lng": 126.9106, "accuracy": 10}


@pytest.fixture
def pair(settings) -> Iterator[tuple[Web, Web]]:
    """Processes A and B: two uvicorns on the test database and one private redis-server (the
    channel layer, cache and broker of both). Stopped after the test, whatever happened."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (apt-get install redis-server) for a private Redis")
    workdir = ARTIFACTS / os.environ.get("PYTEST_XDIST_WORKER", "main") / "scale-out"
    workdir.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis(workdir / "redis.log")
    # The sessions the test signs in are checked with the test process's key.
    env = {"SECRET_KEY": settings.SECRET_KEY, "CHANNELS_PREFIX": f"o2o-scale-{uuid.uuid4().hex}"}
    webs = [Web(redis_url=redis.url, workdir=workdir, name=f"web-{name}", **env) for name in "ab"]
    try:
        redis.start()
        for web in webs:
            web.launch()
        for web in webs:
            web.wait_up()
        # The provider (sandbox) of the payments is served by A, as the checkout reaches it.
        settings.SANDBOX_BASE_URL = settings.PLATFORM_BASE_URL = webs[0].url
        yield webs[0], webs[1]
    finally:
        for web in webs:
            web.stop()
        redis.stop()


def socket_to(web: Web, path: str, user=None) -> ClientConnection:
    """A real websocket client, as a browser of this site (its Origin, its session cookie)."""
    headers = {}
    if user is not None:
        client = Client()
        client.force_login(user)
        headers["Cookie"] = f"sessionid={client.cookies['sessionid'].value}"
    return connect(web.ws + path, origin=web.url, additional_headers=headers, open_timeout=10)


def receive_until(ws: ClientConnection, wanted, *, timeout: float = 10.0) -> dict:
    """The first message for which `wanted(message)` is true (others skipped), or fail."""
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            break
        if wanted(message):
            return message
        seen.append(message)
    raise AssertionError(f"nothing wanted within {timeout} s; got {seen!r}")


@contextmanager
def watch_map(web: Web) -> Iterator[ClientConnection]:
    """An anonymous map client on `web`, following the viewport (its snapshot read)."""
    with socket_to(web, "/ws/map/") as ws:
        ws.send(json.dumps({"type": "viewport", "bbox": VIEWPORT}))
        receive_until(ws, lambda m: m["type"] == "snapshot")
        yield ws


def on_shift_vendor():
    vendor = VendorFactory()
    shift_start(vendor=vendor, actor=vendor.user)
    return vendor


def ping_from(web: Web, vendor) -> str:
    """The vendor's phone, connected to `web`, sends one ping; the public cell it was given."""
    with socket_to(web, "/ws/vendor/location/", vendor.user) as phone:
        phone.send(json.dumps({**PING, "ts": int(time.time() * 1000)}))
        ack = receive_until(phone, lambda m: m["type"] in ("ack", "rejected", "error"))
    assert ack["type"] == "ack", ack
    return ack["cell"]


def shows(vendor, cell: str):
    """A map message that puts `vendor` in `cell`."""

    def wanted(message: dict) -> bool:
        return message["type"] == "batch" and any(
            event["type"] == "upsert"
            and event["vendor"]["id"] == vendor.slug
            and event["vendor"]["cell"] == cell
            for event in message["events"]
        )

    return wanted


def place_and_pay(web: Web, shop, buyer) -> int:
    """The customer's checkout over HTTP on `web`: the order placed through the API (signed in
    with a token), the card approved on the provider's page as a browser does (CSRF cookie and
    token), the payment checked. The order's id."""
    token = Token.objects.get_or_create(user=buyer)[0].key
    auth = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=web.url, timeout=15, headers=auth) as api, httpx.Client() as browser:
        start = timezone.now()
        placed = api.post(
            "/api/orders/",
            json={
                "vendor": shop.vendor.pk,
                "lines": [{"product_id": shop.yakult.pk, "quantity": 1}],
                "fulfilment": "pickup",
                "pickup_point_id": shop.point.pk,
                "window_start": start.isoformat(),
                "window_end": (start + timedelta(hours=1)).isoformat(),
                "checkout_token": str(uuid.uuid4()),
            },
        )
        assert placed.status_code == 201, placed.text[:500]
        order_id = placed.json()["order"]["id"]
        card_page = placed.json()["checkout_url"]
        assert card_page.startswith(web.url), card_page
        page = browser.get(card_page)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        paid = browser.post(
            card_page, data={**APPROVE, "csrfmiddlewaretoken": csrf}, headers={"Referer": card_page}
        )
        assert paid.status_code == 302, paid.text[:500]
        refreshed = api.post(f"/api/orders/{order_id}/payment/refresh/")
        assert refreshed.status_code == 200, refreshed.text[:500]
        assert refreshed.json()["status"] == "placed", refreshed.json()
    return order_id


def test_two_web_processes_share_the_map_and_the_inbox_and_survive_each_other(pair):
    a, b = pair
    started = time.monotonic()

    # (a) Given a map client on B following the vendor's area
    with watch_map(b) as map_on_b:
        # When the vendor's phone, connected to A, sends a ping
        vendor = on_shift_vendor()
        cell = ping_from(a, vendor)
        # Then the map client on B is shown the vendor's cell (the cell, never the position)
        shown = receive_until(map_on_b, shows(vendor, cell))
        assert "lat" not in json.dumps(shown)

    # (b) Given a vendor with stock whose inbox is connected to B, and a customer
    shop = open_shop(VendorFactory())
    buyer = CustomerProfileFactory().user
    AddressFactory(customer=buyer.customer, is_default=True)
    with socket_to(b, "/ws/vendor/orders/", shop.vendor.user) as inbox_on_b:
        # When the customer places and pays for an order over HTTP on A
        order_id = place_and_pay(a, shop, buyer)
        # Then the vendor's inbox on B rings with the new order
        rang = receive_until(
            inbox_on_b, lambda m: m["type"] == "order.changed" and m["order_id"] == order_id
        )
        assert rang["status"] == "placed"

    # (c) When A dies at once (SIGKILL), with a map client on B already following
    with watch_map(b) as map_on_b:
        a.kill()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{a.url}/healthz", timeout=2)
        # Then B still serves pages
        assert httpx.get(f"{b.url}/map/", timeout=10).status_code == 200
        # and the map: a ping sent to B reaches the client already there and a new one
        with watch_map(b) as new_map_on_b:
            other = on_shift_vendor()
            cell = ping_from(b, other)
            receive_until(map_on_b, shows(other, cell))
            receive_until(new_map_on_b, shows(other, cell))

    # And when A is back on its port and B dies in turn, A serves alone
    a.start()
    with watch_map(a) as map_on_a:
        b.kill()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{b.url}/healthz", timeout=2)
        assert httpx.get(f"{a.url}/map/", timeout=10).status_code == 200
        third = on_shift_vendor()
        cell = ping_from(a, third)
        receive_until(map_on_a, shows(third, cell))

    elapsed = time.monotonic() - started
    print(f"scale-out shown in {elapsed:.1f} s (after both processes were up)")
