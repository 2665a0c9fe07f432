"""Issue #17, part 4 in a real browser (Debian's Chromium, a phone's screen):
(a) one tap on "Order again" on a received order's page opens checkout with the basket adjusted
    to the cart now, last time's way to receive it and note filled in, and the changes said;
(b) a favourite cart the customer asked to be told about shows up near them on the live map:
    a polite, dismissible notice, once per cart and shift in the tab."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from customers.services import favourite_add, favourite_notify_set
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import CENTRE, AsgiServer
from tests.factories import (
    AddressFactory,
    CustomerProfileFactory,
    VendorFactory,
    VendorPositionFactory,
    stock_put,
)
from tests.orders.conftest import open_shop, received

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ENGLISH = {"locale": "en-GB"}


def signed_in(page, base: str, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {"name": "django_language", "value": "en", "url": base},
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base},
        ]
    )


def test_order_again_from_the_order_page_to_a_prefilled_checkout(
    live_server, new_page, shot, assert_accessible
):
    # Given a customer who received 3 yakult and a latte, picked up at a partner point, with a note
    shop = open_shop(VendorFactory())
    buyer = CustomerProfileFactory().user
    AddressFactory(customer=buyer.customer, is_default=True)
    order = received(
        shop, buyer, items=[(shop.yakult, 3), (shop.latte, 1)], note="Ring twice, please"
    )
    # And the cart now has 2 yakult and no latte
    stock_put(vendor=shop.vendor, product=shop.yakult, quantity=2)
    stock_put(vendor=shop.vendor, product=shop.latte, quantity=0)
    page = new_page(**PHONE, **ENGLISH)
    signed_in(page, live_server.url, buyer)
    page.goto(f"{live_server.url}/orders/{order.pk}/")
    assert_accessible(page)
    # When they tap "Order again"
    page.get_by_test_id("order-again").click()
    # Then checkout opens with what the cart can give, and says what changed
    expect(page).to_have_url(f"{live_server.url}/orders/checkout/")
    message = page.locator(".messages, [role=status], [role=alert]").filter(
        has_text="Your basket holds your last order"
    )
    expect(message.first).to_contain_text(f"Only 2 of 3 {shop.yakult.name_en} left")
    expect(message.first).to_contain_text(f"{shop.latte.name_en} is sold out")
    # Last time's choices are filled in
    expect(page.get_by_role("radio", name="Pickup at a partner point")).to_be_checked()
    expect(page.locator(f"input[name=pickup_point][value='{shop.point.pk}']")).to_be_checked()
    expect(page.get_by_label("Note for the vendor")).to_have_value("Ring twice, please")
    assert_accessible(page)
    shot(page, "reorder-checkout-prefilled")


@pytest.fixture
def asgi_server(transactional_db):
    server = AsgiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.redis
def test_a_favourite_cart_near_the_customer_is_announced_once_on_the_map(
    asgi_server, browser, shot, assert_accessible
):
    from tests.browser.conftest import CHROMIUM_ARGS  # noqa: F401 - the same browser set-up

    # Given a customer whose saved address is near where the map opens, with a favourite cart
    # on shift about 300 m away that they asked to be told about
    customer = CustomerProfileFactory()
    AddressFactory(customer=customer, label="Home", lat=CENTRE[0], lng=CENTRE[1])
    cart = VendorFactory(name="Sunja's cart")
    VendorPositionFactory(
        vendor=cart,
        lat=CENTRE[0] + 0.0027,
        lng=CENTRE[1],
        shift_started_at=timezone.now() - timedelta(minutes=30),
    )
    favourite_add(customer=customer, vendor_id=cart.pk)
    favourite_notify_set(customer=customer, vendor_id=cart.pk, notify_near=True)
    context = browser.new_context(**PHONE, **ENGLISH)
    context.route(
        lambda url: url.startswith("http") and not url.startswith(asgi_server.url),
        lambda route: route.abort(),
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    signed_in(page, asgi_server.url, customer.user)
    # When they open the live map
    page.goto(f"{asgi_server.url}/map/")
    # Then a polite notice says the cart is near, once
    notices = page.get_by_test_id("near-notices")
    expect(notices).to_have_attribute("role", "status")
    notice = notices.locator(".near-notice")
    expect(notice).to_have_count(1, timeout=15_000)
    # (measured from the cart's public area, so 300-400 m here)
    expect(notice).to_contain_text(re.compile(r"Sunja's cart is near you \(about [34]00 m\)"))
    assert_accessible(page)
    shot(page, "favourite-near-map")
    # It can be dismissed, and it is not shown again in this tab for this shift
    notice.get_by_role("button", name="Dismiss").click()
    expect(notice).to_have_count(0)
    page.reload()
    expect(page.locator("#vendor-list li")).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(500)
    expect(notices.locator(".near-notice")).to_have_count(0)
    assert not errors
    context.close()
