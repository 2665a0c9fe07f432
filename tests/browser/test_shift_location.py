"""The on-shift page tells the vendor what the phone's location is doing: not allowed (and how to
allow it), no fix yet; the message goes as soon as a ping is accepted; positions kept on the phone
while offline are counted ("3 positions waiting to be sent"), then said to be sent. Chromium on a
phone with an emulated location, in Korean and in English, over the real ASGI app (websockets)."""

import json
import re

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from tests import factories
from tests.browser import test_live_map
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import CENTRE, across_a_cell_edge, geolocation, log_in
from tracking.models import Ping

live_server = test_live_map.live_server  # the real ASGI app, websockets included
pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
GO_ON = {"ko": "영업 시작", "en": "Go on shift"}
CONNECTED = {"ko": "연결됨", "en": "Connected"}


def a_vendor():
    vendor = factories.VendorFactory(name="망원 카트")
    vendor.user.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "shift-salt")
    vendor.user.save(update_fields=["password"])
    return vendor


def open_shift_page(page, base: str, vendor, lang: str) -> dict:
    """Log in (a vendor off shift lands on the shift page), switch language; the page's texts."""
    log_in(page, base, vendor.user.email)
    expect(page).to_have_url(f"{base}/shift/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    return json.loads(page.locator("#shift-i18n").text_content())


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_location_not_allowed_says_how_to_allow_it(
    lang, live_server, new_page, shot, assert_accessible
):
    # Given a vendor whose phone has not allowed this site to use its location
    vendor = a_vendor()
    page = new_page(**PHONE, locale="ko-KR")
    t = open_shift_page(page, live_server.url, vendor, lang)

    # When they go on shift
    page.get_by_role("button", name=GO_ON[lang]).click()

    # Then the page says location is not allowed and how to allow it, not a catch-all sentence,
    # while the connection itself is fine
    # (going on shift is a round trip to the server first: give a loaded machine time)
    expect(page.locator("#geo-error")).to_have_text(t["geoDenied"], timeout=15_000)
    expect(page.locator("#conn-state")).to_have_text(CONNECTED[lang], timeout=15_000)
    expect(page.locator("#shift-error")).to_have_text("")
    assert t["geoDenied"] not in (t["geoUnavailable"], t["geoTimeout"], t["noGeo"])
    assert_accessible(page)
    shot(page, f"shift-location-01-denied-{lang}")

    # When they allow it in the browser and reload, as the message says
    page.context.grant_permissions(["geolocation"])
    page.context.set_geolocation(geolocation(CENTRE))
    page.reload()
    # Then pings flow and there is nothing to say about the location
    expect(page.locator("#last-ping")).to_have_text(
        re.compile(r"\d{1,2}:\d{2}:\d{2}"), timeout=15_000
    )
    expect(page.locator("#geo-error")).to_have_text("")
    assert Ping.objects.filter(vendor=vendor).exists()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_queued_positions_are_counted_then_said_to_be_sent_and_the_error_clears(
    lang, live_server, new_page, shot, assert_accessible
):
    # Given a vendor on shift, location allowed, pings flowing
    vendor = a_vendor()
    start, next_door = across_a_cell_edge(CENTRE, metres=10)
    page = new_page(
        **PHONE, locale="ko-KR", permissions=["geolocation"], geolocation=geolocation(start)
    )
    t = open_shift_page(page, live_server.url, vendor, lang)
    # (the location socket goes through the test, which can cut it as a lost network would:
    # Chromium's offline mode leaves open sockets open)
    sockets: list = []
    network = {"down": False}

    def socket_route(ws) -> None:
        if network["down"]:
            ws.close(code=4000, reason="offline")
            return
        sockets.append((ws, ws.connect_to_server()))

    page.route_web_socket(re.compile(r"/ws/vendor/location/$"), socket_route)
    page.get_by_role("button", name=GO_ON[lang]).click()
    expect(page.locator("#conn-state")).to_have_text(CONNECTED[lang], timeout=15_000)
    expect(page.locator("#last-ping")).to_have_text(
        re.compile(r"\d{1,2}:\d{2}:\d{2}"), timeout=15_000
    )
    expect(page.locator("#queue-state")).to_have_text("")

    # When the connection drops while the phone moves on (a few fixes, 3 s apart at least)
    network["down"] = True
    page.context.set_offline(True)
    for ws, server in sockets:
        server.close()
        ws.close(code=4000, reason="offline")
    expect(page.locator("#conn-state")).not_to_have_text(CONNECTED[lang], timeout=15_000)
    for point in (next_door, start, next_door):
        page.wait_for_timeout(3_200)
        page.context.set_geolocation(geolocation(point))
    # Then the kept positions are counted in a sentence, not only a bare number
    expect(page.locator("#queue-state")).to_have_text(re.compile(r"\b[1-9]\d*\b"))
    page.wait_for_timeout(1_000)  # the last fix has arrived
    waiting = int(page.locator("#queue-size").text_content())
    assert waiting >= 1
    assert str(waiting) in page.locator("#queue-state").text_content()
    # ... and then the phone loses its fix (Chromium's own "position unavailable", emulated)
    page.context.new_cdp_session(page).send("Emulation.setGeolocationOverride", {})
    # Then the page says that, not that location is off or not allowed
    expect(page.locator("#geo-error")).to_have_text(t["geoUnavailable"])
    assert_accessible(page)
    shot(page, f"shift-location-02-waiting-{lang}")

    # When the connection is back
    network["down"] = False
    page.context.set_offline(False)
    # Then the kept positions are sent as one batch, the page says they were sent, and the
    # location message is gone (a ping was accepted; the phone still has no new fix)
    expect(page.locator("#queue-size")).to_have_text("0", timeout=20_000)
    expect(page.locator("#queue-state")).to_have_text(re.compile(r"\d{1,2}:\d{2}:\d{2}"))
    expect(page.locator("#geo-error")).to_have_text("")
    expect(page.locator("#shift-error")).to_have_text("")
    expect(page.locator("#conn-state")).to_have_text(CONNECTED[lang], timeout=15_000)
    assert Ping.objects.filter(vendor=vendor, source="batch").exists()
    assert_accessible(page)
    shot(page, f"shift-location-03-sent-{lang}")
