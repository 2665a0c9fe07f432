"""A walk-up sale in Chromium on phones (issue 16, item 1): the vendor's counter shows the cart's
QR; a passer-by opens the QR's link as a guest, picks from the cart, pays on the sandbox's card
page and is told it is paid; the vendor's counter lists the paid sale. Screenshots
counter-<lang>-01 (the vendor's QR), -02 (the buyer's counter), -03 (paid), -04 (the vendor's list).
"""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.sync_api import expect

from counter.tokens import cart_token_make
from orders.models import Order, Status
from tests.browser.conftest import PHONE
from tests.factories import VendorFactory
from tests.orders.conftest import open_shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in(page, user, base_url: str, language: str) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {"name": "django_language", "value": language, "url": base_url},
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url},
        ]
    )


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_guest_pays_at_the_cart_and_the_vendor_sees_it(
    live_server, new_page, shot, assert_accessible, settings, language
):
    base = live_server.url
    settings.SANDBOX_BASE_URL = base
    settings.PLATFORM_BASE_URL = base
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    shop = open_shop(VendorFactory())

    # The vendor's counter shows the cart's QR
    vendor = new_page(**PHONE)
    signed_in(vendor, shop.vendor.user, base, language)
    vendor.goto(f"{base}/counter/")
    expect(vendor.locator("#cart-qr svg")).to_be_visible()
    assert_accessible(vendor)
    shot(vendor, f"counter-{language}-01")

    # A passer-by's phone opens the QR's link: the cart's counter, no account
    buyer = new_page(**PHONE)
    buyer.context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    buyer.goto(f"{base}/c/s/{cart_token_make(vendor_id=shop.vendor.pk)}/")
    expect(buyer).to_have_url(f"{base}/c/{shop.vendor.pk}/")
    buyer.locator(f"#q_{shop.yakult.pk}").fill("2")
    expect(buyer.locator("[data-total]")).not_to_be_empty()
    buyer.locator("#receipt_email").fill("walker@example.test")
    assert_accessible(buyer)
    shot(buyer, f"counter-{language}-02")
    buyer.get_by_test_id("counter-pay").click()
    buyer.wait_for_url(f"{base}/sandbox/pay/**")
    buyer.locator("input[name=number]").fill("4242 4242 4242 4242")
    buyer.locator("input[name=expiry]").fill("12/39")
    buyer.locator("input[name=cvc]").fill("123")
    buyer.locator("form:has(input[name=number]) button[type=submit]").click()
    expect(buyer.get_by_test_id("walkup-paid")).to_be_visible()
    assert urlsplit(buyer.url).path.startswith("/c/o/")
    shot(buyer, f"counter-{language}-03")
    order = Order.objects.get()
    assert order.walkup and order.status in (Status.HANDED_OVER, Status.COMPLETED)

    # The vendor's counter lists it as paid (live over the websocket in production; the test
    # server speaks plain HTTP, so the page is reloaded here)
    vendor.reload()
    sale = vendor.locator(f'[data-order="{order.pk}"]')
    expect(sale.get_by_test_id("sale-paid")).to_be_visible()
    shot(vendor, f"counter-{language}-04")
