"""A refused live socket in Chromium, over the real server (uvicorn, tests/browser/test_live_map.py):
the page shows why (translated) and stops reconnecting (static/js/live.js). A suspended vendor
whose shift page opens while still on shift used to retry for ever with no message: the refusal
was an HTTP 403 on the handshake, and the page never learned the close code."""

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import CENTRE, geolocation, live_server, log_in  # noqa: F401
from tracking import services as tracking_services
from vendors.models import Vendor

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
QUIET_S = 6  # the old loop retried after 0.5-1 s, then 1-2 s, then 2-4 s


@pytest.mark.parametrize(
    ("locale", "reason"),
    [
        ("ko-KR", "실시간 업데이트가 멈췄어요. 지금은 이 계정으로 이 기능을 쓸 수 없어요."),
        ("en-GB", "Live updates stopped: your account may not do this now."),
    ],
)
def test_a_suspended_vendors_shift_page_says_why_and_stops_retrying(
    live_server,  # noqa: F811 - the uvicorn server of test_live_map
    new_page,
    locale,
    reason,
):
    # Given a vendor who went on shift and was then suspended
    vendor = factories.VendorFactory()
    vendor.user.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "refusal-salt")
    vendor.user.save(update_fields=["password"])
    tracking_services.shift_start(vendor=vendor, actor=vendor.user)
    Vendor.objects.filter(pk=vendor.pk).update(status=Vendor.Status.SUSPENDED)
    page = new_page(
        **PHONE, locale=locale, permissions=["geolocation"], geolocation=geolocation(CENTRE)
    )
    attempts: list[str] = []
    page.on(
        "websocket",
        lambda ws: attempts.append(ws.url) if "/ws/vendor/location/" in ws.url else None,
    )
    # When they open their shift page (still marked on shift, so it connects)
    if locale.startswith("ko"):
        log_in(page, live_server.url, vendor.user.email)
    else:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("E-mail").fill(vendor.user.email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.goto(f"{live_server.url}{reverse('tracking:shift')}")
    # Then the page says why live updates stopped, in their language
    expect(page.locator("#shift-error")).to_contain_text(reason)
    # And it does not try again
    page.wait_for_timeout(QUIET_S * 1000)
    assert len(attempts) == 1, attempts
    expect(page.locator("#shift-error")).to_contain_text(reason)
