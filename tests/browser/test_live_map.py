"""A vendor shares their location from the on-shift page on a phone; a customer watches the live
map and sees the cart's area (an H3 cell) appear, move to the next cell and go away, all without
reloading. Chromium, Korean UI.

pytest-django's live server speaks WSGI only, so this test runs the real ASGI app (HTTP and
websockets) with uvicorn in a subprocess, on the test database and a Redis channel layer of its own.
The conftest's `new_page` takes its base URL from `live_server`: overridden here to be that server.

The journey holds even when a socket drops (the pages reconnect and the map re-reads a snapshot);
that sockets do not drop while quiet is the second test's business.
"""

import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import h3
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import PHONE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
SERVER_LOG = ROOT / "test-artifacts" / "live-map-server.log"
KOREAN = {"locale": "ko-KR"}
CENTRE = (37.5560, 126.9160)  # where /map/ opens (tracking.views.DEFAULT_CENTRE)
ACCURACY_M = 10


class AsgiServer:
    """uvicorn serving o2o.asgi on a free port, as `live_server` for the conftest's fixtures."""

    class _NoSettings:
        # pytest-django's _live_server_helper switches settings of *its* server on and off; the
        # settings of this one are its environment.
        def enable(self) -> None: ...

        def disable(self) -> None: ...

    _live_server_modified_settings = _NoSettings()

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        db = settings.DATABASES["default"]  # inside a test: the test database
        auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "o2o.settings",
            "O2O_IGNORE_DOTENV": "true",
            "DJANGO_ENV": "development",
            "DEBUG": "false",
            "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            "CONN_MAX_AGE": "0",  # no connection left open on the test database after a request
            "REDIS_URL": settings.REDIS_URL,
            "CHANNELS_PREFIX": f"o2o-live-map-{uuid.uuid4().hex[:12]}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "INPROCESS_SCHEDULER": "false",
            # The map's mechanics, not the public cell's hysteresis (tests/tracking/
            # test_privacy_over_time.py): a new cell at once, last_seen to the second.
            "PUBLIC_CELL_MARGIN_M": "0",
            "PUBLIC_CELL_HOLD_S": "0",
            "PUBLIC_CELL_DELAY_MIN_S": "0",
            "PUBLIC_CELL_DELAY_MAX_S": "0",
            "PUBLIC_TIME_STEP_S": "1",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
        self._log = SERVER_LOG.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "o2o.asgi:application"]
            + ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with opener.open(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"uvicorn did not become healthy:\n{SERVER_LOG.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@pytest.fixture
def live_server(transactional_db):
    server = AsgiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def public_cell(point: tuple[float, float]) -> str:
    return h3.latlng_to_cell(*point, settings.PUBLIC_CELL_RES)


def across_a_cell_edge(near: tuple[float, float], metres: float = 25):
    """Two points `metres` either side of the edge east of the cell at `near`: a short, plausible
    walk (the server refuses faster than PING_MAX_SPEED_MPS) that lands in another public cell."""
    lat, lng = h3.cell_to_latlng(public_cell(near))
    here, x = public_cell((lat, lng)), lng
    while public_cell((lat, x)) == here:
        x += 0.00001
    dlng = metres / (111_320 * math.cos(math.radians(lat)))
    a, b = (lat, x - dlng), (lat, x + dlng)
    assert public_cell(a) != public_cell(b)
    return a, b


def geolocation(point: tuple[float, float]) -> dict:
    return {"latitude": point[0], "longitude": point[1], "accuracy": ACCURACY_M}


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("이메일").fill(email)
    page.get_by_label("비밀번호").fill(factories.PASSWORD)
    page.get_by_role("button", name="로그인", exact=True).click()
    expect(page.get_by_role("button", name="로그아웃")).to_be_visible()


def test_customer_watches_a_cart_appear_move_and_leave(
    live_server, new_page, shot, assert_accessible
):
    # Given an approved vendor with stock, about to start a round at two points 50 m apart that
    # lie in neighbouring public cells
    # (its name, typed by the vendor, holds markup: it must show as text and never run)
    name = '망원 야쿠르트 카트 <img src=x onerror="window.pwned=1">'
    vendor = factories.VendorFactory(name=name, slug="mangwon-yakult")
    factories.StockFactory(vendor=vendor, quantity=12)
    # The server runs on the production settings, which don't know the test suite's MD5 hasher.
    vendor.user.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "live-map-salt")
    vendor.user.save(update_fields=["password"])
    start, next_door = across_a_cell_edge(CENTRE)
    base = live_server.url

    # A customer (not logged in) has the live map open on their phone: nobody around yet
    page = new_page(**PHONE, **KOREAN)
    page.goto(f"{base}/map/")
    page.evaluate("window.sameDocument = true")  # gone if the page ever reloads
    status = page.locator("#map-status")
    expect(status).to_have_text("실시간 · 주변 카트 0대")
    expect(page.locator("#list-empty")).to_be_visible()
    assert_accessible(page)

    # When the vendor logs in on their phone, with location allowed, and opens the on-shift page
    vpage = new_page(**PHONE, **KOREAN, permissions=["geolocation"], geolocation=geolocation(start))
    log_in(vpage, base, vendor.user.email)
    vpage.goto(f"{base}/shift/")
    # ... whose button is named in the page itself, before any script runs
    assert ">영업 시작</button>" in vpage.request.get(f"{base}/shift/").text()
    toggle = vpage.get_by_role("button", name="영업 시작")
    expect(toggle).to_be_enabled()
    expect(vpage.locator("#conn-state")).to_have_text("연결 안 됨")
    assert_accessible(vpage)

    # ... and taps "go on shift": connected, and the first location is sent
    toggle.click()
    expect(vpage.locator("#shift-state")).to_have_text(
        "영업 중이에요. 고객에게 지금 계신 구역이 보여요."
    )
    expect(vpage.get_by_role("button", name="영업 종료")).to_be_visible()
    expect(vpage.locator("#conn-state")).to_have_text("연결됨")
    expect(vpage.locator("#last-ping")).to_have_text(re.compile(r"\d{1,2}:\d{2}:\d{2}"))
    expect(vpage.locator("#queue-size")).to_have_text("0")
    assert_accessible(vpage)
    shot(vpage, "live-map-01-vendor-on-shift")

    # Then the cart appears on the customer's map, without a reload: its cell drawn as a hexagon
    # and an entry in the list, in Korean sentences
    hexagon = page.locator(f'#map path[data-vendor="{vendor.slug}"]')
    entry = page.locator(f'#vendor-list li[data-vendor="{vendor.slug}"]')
    expect(hexagon).to_have_attribute("data-cell", public_cell(start))
    expect(hexagon).to_be_visible()
    expect(entry).to_have_attribute("data-cell", public_cell(start))
    expect(entry).to_contain_text("망원 야쿠르트 카트")
    expect(entry.locator(".presence")).to_have_text(
        re.compile(r"^이동 중 · 약 [\d.,]+\s?(m|km) 거리 · \d+초 전 확인$")
    )
    expect(status).to_have_text("실시간 · 주변 카트 1대")
    expect(page.locator("#list-count")).to_have_text("(1)")
    expect(page.locator("#list-empty")).to_be_hidden()
    hexagon.hover()
    expect(page.locator(".leaflet-tooltip")).to_have_text(name)
    assert page.locator("#map img[src=x], #vendor-list img[src=x]").count() == 0
    assert page.evaluate("window.pwned") is None
    assert_accessible(page)
    shot(page, "live-map-02-customer-sees-cart")

    # When the vendor walks 50 m east, into the next cell (the page sends at most every 3 s, and
    # sends the last fix when that gap is up)
    vpage.context.set_geolocation(geolocation(next_door))

    # Then the customer's map follows: the hexagon and the list entry move to the new cell
    expect(entry).to_have_attribute("data-cell", public_cell(next_door), timeout=15_000)
    expect(hexagon).to_have_attribute("data-cell", public_cell(next_door))
    expect(page.locator("#map path[data-vendor]")).to_have_count(1)
    expect(status).to_have_text("실시간 · 주변 카트 1대")
    expect(vpage.locator("#shift-error")).to_have_text("")  # the move was accepted
    assert page.evaluate("window.sameDocument === true"), "the map reloaded"
    shot(page, "live-map-03-customer-sees-cart-move")

    # When the vendor goes off shift
    vpage.get_by_role("button", name="영업 종료").click()
    expect(vpage.locator("#shift-state")).to_have_text("영업을 쉬고 있어요. 지도에 보이지 않아요.")
    expect(vpage.get_by_role("button", name="영업 시작")).to_be_visible()
    expect(vpage.locator("#conn-state")).to_have_text("연결 안 됨")
    assert_accessible(vpage)
    shot(vpage, "live-map-04-vendor-off-shift")

    # Then the cart leaves the customer's map at once, still without a reload
    expect(hexagon).to_have_count(0)
    expect(entry).to_have_count(0)
    expect(page.locator("#list-empty")).to_be_visible()
    expect(status).to_have_text("실시간 · 주변 카트 0대")
    assert page.evaluate("window.sameDocument === true"), "the map reloaded"
    assert_accessible(page)
    shot(page, "live-map-05-customer-cart-gone")

    # ... and in English, the map's sentences are English ones, not Korean ones glued together
    page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(status).to_have_text("Live · 0 carts nearby")
    vpage.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(vpage.get_by_role("button", name="Go on shift")).to_be_visible()
    expect(vpage.locator("#conn-state")).to_have_text("Not connected")
    expect(vpage.locator("#last-ping")).to_have_text("not yet")


def test_sockets_stay_open_while_nothing_happens(live_server, new_page):
    # Given a vendor on shift, standing still, and a customer watching the map
    vendor = factories.VendorFactory(name="조용한 카트", slug="quiet-cart")
    vendor.user.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "live-map-salt")
    vendor.user.save(update_fields=["password"])
    base = live_server.url
    sockets = []  # the map's and the on-shift page's (logging in lands on a map first: not those)
    page = new_page(**PHONE, **KOREAN)
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(f"{base}/map/")
    expect(page.locator("#map-status")).to_have_text("실시간 · 주변 카트 0대")
    vpage = new_page(
        **PHONE, **KOREAN, permissions=["geolocation"], geolocation=geolocation(CENTRE)
    )
    vpage.on("websocket", lambda ws: sockets.append(ws) if "/ws/vendor/" in ws.url else None)
    log_in(vpage, base, vendor.user.email)
    vpage.goto(f"{base}/shift/")
    vpage.get_by_role("button", name="영업 시작").click()
    expect(vpage.locator("#conn-state")).to_have_text("연결됨")
    expect(page.locator(f'#vendor-list li[data-vendor="{vendor.slug}"]')).to_be_visible()

    # When nothing happens for a while (longer than a channel layer's blocking read)
    page.wait_for_timeout(7_000)

    # Then both sockets are still the first ones, open, and the server logged no crash
    assert [(s.url.split("/ws/")[1], s.is_closed()) for s in sockets] == [
        ("map/", False),
        ("vendor/location/", False),
    ]
    assert "Exception in ASGI application" not in SERVER_LOG.read_text()
