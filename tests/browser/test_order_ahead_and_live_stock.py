"""An off-shift cart on a phone, in Korean and in English: the carts list and the vendor's page say
it is off shift and when it is next on shift; the vendor recounts the stock on the stock page and
the customer's open vendor page follows live ("N left", then sold out); the basket says ordering
ahead is possible; checkout offers only pickup or delivery for a window within the vendor's hours,
and an order ahead for tomorrow morning goes to payment.

The real ASGI app (HTTP and websockets) under uvicorn on the test database, as in
tests/orders/test_browser_live.py."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Fulfilment, Order, Status
from tests import factories
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import AsgiServer, log_in
from tests.orders.conftest import open_shop
from tests.orders.test_browser_live import person
from tracking.models import VendorPosition

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
KOREAN = {"locale": "ko-KR"}
browser = browser_fixtures.browser
new_page = browser_fixtures.new_page
shot = browser_fixtures.shot
assert_accessible = browser_fixtures.assert_accessible
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


@pytest.fixture
def live_server(transactional_db, monkeypatch):
    server = AsgiServer()
    monkeypatch.setenv("SANDBOX_BASE_URL", server.url)
    monkeypatch.setenv("PLATFORM_BASE_URL", server.url)
    monkeypatch.setenv("SANDBOX_WEBHOOK_DUPLICATE_RATE", "0")
    monkeypatch.setenv("CACHE_PREFIX", f"o2o-ahead-browser-{uuid.uuid4().hex[:12]}")
    # The vendors work tomorrow 07:00-12:00 only: off shift now, next on shift tomorrow morning.
    monkeypatch.setenv("VENDOR_HOURS", f"{DAYS[tomorrow().weekday()]} 07:00-12:00")
    monkeypatch.setenv("ORDER_AHEAD_MIN_MINUTES", "60")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_off_shift_cart_live_stock_and_an_order_ahead(
    lang, live_server, new_page, shot, assert_accessible
):
    # Given a vendor off shift with 10 yakult on the cart and a partner point nearby, and a
    # vendor on shift
    vendor = factories.VendorFactory(name="망원 새벽 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    VendorPosition.objects.filter(vendor=vendor).update(on_shift=False)
    busy = factories.VendorFactory(name="합정 낮 카트")
    open_shop(busy)
    buyer = factories.CustomerProfileFactory().user
    for user in (vendor.user, buyer):
        person(user)
    base = live_server.url

    # When the customer logs in on a phone (Korean by default; English by the selector)
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, buyer.email)
    page.goto(f"{base}/vendors/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)

    # Then the carts list marks the off-shift cart, with when it is next on shift
    off_card = page.locator("li.card", has_text="망원 새벽 카트")
    on_card = page.locator("li.card", has_text="합정 낮 카트")
    badge = off_card.get_by_test_id("off-shift")
    expect(badge).to_be_visible()
    expect(badge).to_contain_text("07:00")
    expect(on_card.get_by_test_id("off-shift")).to_have_count(0)
    if lang == "en":
        expect(badge).to_contain_text("Off shift · next")
    else:
        expect(badge).not_to_contain_text("Off shift")
    assert_accessible(page)
    shot(page, f"ahead-01-list-{lang}")

    # And the vendor's page says so, with ordering ahead explained
    off_card.get_by_role("link").click()
    expect(page).to_have_url(f"{base}/vendors/{vendor.slug}/")
    note = page.get_by_test_id("off-shift")
    expect(note).to_be_visible()
    expect(note).to_contain_text("07:00")
    expect(note).to_contain_text("60")
    if lang == "en":
        expect(note).to_contain_text("This cart is off shift now.")
        expect(note).to_contain_text("You can order ahead")
    qty = page.get_by_test_id(f"qty-{shop.yakult.sku}")
    expect(qty).to_have_text("10 left" if lang == "en" else "10개 남음")
    assert_accessible(page)
    shot(page, f"ahead-02-vendor-page-{lang}")

    # The vendor recounts on the stock page: 10 -> 3, then the latte sold out
    vpage = new_page(**PHONE, **KOREAN)
    log_in(vpage, base, vendor.user.email)
    vpage.goto(f"{base}/vendors/me/stock/")
    vpage.get_by_label(shop.yakult.name_ko).fill("3")
    vpage.locator(".sticky-actions button[type=submit]").click()
    expect(vpage.get_by_label(shop.yakult.name_ko)).to_have_value("3")
    # ... and the customer's page follows without a reload
    page.evaluate("window.sameDocument = true")
    expect(qty).to_have_text("3 left" if lang == "en" else "3개 남음")
    vpage.get_by_label(shop.latte.name_ko).fill("0")
    vpage.locator(".sticky-actions button[type=submit]").click()
    latte = page.locator(f"[data-sku={shop.latte.sku}]")
    expect(latte.get_by_test_id(f"qty-{shop.latte.sku}")).to_have_text(
        "Sold out" if lang == "en" else "품절"
    )
    expect(latte.locator("form.add-to-cart")).to_be_hidden()
    assert page.evaluate("window.sameDocument") is True
    expect(page.locator(f"#add-{shop.yakult.pk}")).to_have_attribute("max", "3")
    shot(page, f"ahead-03-vendor-page-live-{lang}")

    # The customer puts 2 yakult in the basket: it says the cart is off shift, order ahead
    page.locator(f"#add-{shop.yakult.pk}").fill("2")
    page.locator(f"[data-sku={shop.yakult.sku}] form.add-to-cart button").click()
    page.goto(f"{base}/orders/cart/")
    expect(page.get_by_test_id("off-shift")).to_be_visible()
    checkout = page.locator('a[href="/orders/checkout/"].primary')
    expect(checkout).to_be_visible()
    assert_accessible(page)
    shot(page, f"ahead-04-basket-{lang}")

    # At checkout: no meeting, no "as soon as possible", only tomorrow's windows in the hours
    checkout.click()
    expect(page).to_have_url(f"{base}/orders/checkout/")
    expect(page.get_by_test_id("off-shift")).to_be_visible()
    expect(page.locator("input[name=fulfilment][value=meet]")).to_have_count(0)
    values = page.locator("select[name=window] option").evaluate_all(
        "(options) => options.map((o) => o.value)"
    )
    day = tomorrow().isoformat()
    assert values == [f"{day}T{h:02d}:00" for h in range(7, 12)], values
    page.locator("input[name=fulfilment][value=pickup]").check()
    page.locator("select[name=window]").select_option(f"{day}T07:00")
    assert_accessible(page)
    shot(page, f"ahead-05-checkout-{lang}")

    # And the order ahead goes to payment
    page.locator("form.checkout button[type=submit]").click()
    page.wait_for_url(f"{base}/sandbox/pay/**")
    order = Order.objects.get()
    assert order.status == Status.PENDING_PAYMENT
    assert order.fulfilment == Fulfilment.PICKUP
    assert timezone.localtime(order.window_start).isoformat().startswith(f"{day}T07:00")
    shot(page, f"ahead-06-payment-{lang}")
