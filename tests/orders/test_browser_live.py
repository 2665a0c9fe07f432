"""The whole order journey in Chromium, Korean UI, on phones: a customer fills a basket on the
vendor's page, checks out for pickup, pays with a test card on the sandbox's hosted page and lands
on the live order page; the vendor's inbox, open all along, shows the new order without a reload;
each of the vendor's buttons moves the customer's page live; the handover code closes it.

The real ASGI app (HTTP and websockets) runs under uvicorn on the test database (the live map's
server, tests/browser/test_live_map.py), with the sandbox gateway at that same server."""

import re
import uuid

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from orders.models import Order, Status
from tests import factories
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import AsgiServer, log_in
from tests.orders.conftest import open_shop

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
KOREAN = {"locale": "ko-KR"}
# The browser fixtures of tests/browser/, here too.
browser = browser_fixtures.browser
new_page = browser_fixtures.new_page
shot = browser_fixtures.shot
assert_accessible = browser_fixtures.assert_accessible


@pytest.fixture
def live_server(transactional_db, monkeypatch):
    server = AsgiServer()
    # The platform pays at its own sandbox, and the provider sends customers back to it.
    monkeypatch.setenv("SANDBOX_BASE_URL", server.url)
    monkeypatch.setenv("PLATFORM_BASE_URL", server.url)
    monkeypatch.setenv("SANDBOX_WEBHOOK_DUPLICATE_RATE", "0")
    # A cache of its own: ids restart with each test database, and counters kept in the cache
    # by id (wrong handover codes) must not carry over from an earlier run.
    monkeypatch.setenv("CACHE_PREFIX", f"o2o-orders-browser-{uuid.uuid4().hex[:12]}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def person(user) -> None:
    # The server runs on the production settings, which don't know the test suite's MD5 hasher.
    user.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "orders-salt")
    user.save(update_fields=["password"])


def test_order_paid_taken_and_handed_over_live(live_server, new_page, shot, assert_accessible):
    # Given a vendor on shift with yakult on the cart, and a customer
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    for user in (vendor.user, buyer):
        person(user)
    base = live_server.url

    # The vendor has the inbox open on the phone: nothing to do yet
    inbox = new_page(**PHONE, **KOREAN)
    log_in(inbox, base, vendor.user.email)
    inbox.goto(f"{base}/orders/vendor/")
    expect(inbox.locator("#live-state")).to_have_text("실시간: 새 주문이 오면 여기서 알려 드려요")
    expect(inbox.get_by_text("지금 처리할 주문이 없어요.")).to_be_visible()
    inbox.evaluate("window.sameDocument = true")  # gone if the inbox ever reloads
    assert_accessible(inbox)

    # The customer puts 3 yakult in the basket from the vendor's page
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, buyer.email)
    page.goto(f"{base}/vendors/{vendor.slug}/")
    page.locator(f"#add-{shop.yakult.pk}").fill("3")
    page.get_by_role("button", name=f"장바구니에 담기 {shop.yakult.name_ko}").click()
    expect(page.get_by_text("장바구니에 담았어요.")).to_be_visible()
    page.get_by_role("link", name="장바구니").first.click()
    expect(page.get_by_test_id("subtotal")).to_have_text("₩3,600")
    assert_accessible(page)
    shot(page, "orders-basket")

    # At checkout, meeting the vendor comes first: the vendor's area and its neighbours on a map
    page.get_by_role("link", name="주문하기").click()
    expect(page.get_by_role("radio", name="판매자와 만나서 받기")).to_be_checked()
    expect(page.get_by_role("radio", name="판매자가 지금 있는 곳")).to_be_checked()
    expect(page.locator("#meet-map path.leaflet-interactive")).to_have_count(7)
    shot(page, "orders-checkout-meet")
    # The customer chooses pickup at the partner point instead, as soon as possible
    page.get_by_role("radio", name="제휴 픽업 장소에서 찾기").check()
    expect(page.locator("[data-receive=meet]")).to_be_hidden()
    expect(page.locator("[data-receive=pickup]")).to_be_visible()
    page.get_by_label("판매자에게 남길 말").fill("5분 뒤에 갈게요")
    assert_accessible(page)
    shot(page, "orders-checkout")
    page.get_by_role("button", name="결제하러 가기").click()

    # On the provider's card page, the approve test card
    page.wait_for_url(f"{base}/sandbox/pay/**")
    page.locator("input[name=number]").fill("4242 4242 4242 4242")
    page.locator("input[name=expiry]").fill("12/39")
    page.locator("input[name=cvc]").fill("123")
    page.get_by_role("button", name="결제하기").click()

    # Back on the order page: paid, the code large, live
    order = Order.objects.get()
    expect(page).to_have_url(f"{base}/orders/{order.pk}/")
    expect(page.get_by_text("결제했어요! 판매자가 곧 주문을 확인해요.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("주문됨")
    expect(page.get_by_test_id("handover-code")).to_have_text(order.handover_code)
    expect(page.locator("#live-state")).to_have_text("실시간")
    page.evaluate("window.sameDocument = true")
    assert_accessible(page)
    shot(page, "orders-order-placed")

    # The vendor's inbox shows it without a reload, with the customer's note
    card = inbox.locator(f"#order-{order.pk}")
    expect(card).to_be_visible()
    expect(card).to_contain_text("5분 뒤에 갈게요")
    assert inbox.evaluate("window.sameDocument") is True
    shot(inbox, "orders-inbox-new-order")

    # The vendor accepts with an ETA of 20 minutes: the customer's page follows, no reload
    inbox.locator(f"#eta-{order.pk}").fill("20")
    card.get_by_role("button", name="접수하기").click()
    expect(inbox.get_by_text(f"주문 #{order.pk}을 접수했어요.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("접수됨")
    expect(page.get_by_text("도착 예정이에요")).to_be_visible()
    expect(page.get_by_role("button", name="주문 취소")).to_have_count(0)

    # Left at the pickup point
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="픽업 장소에 맡겼어요").click()
    expect(page.get_by_test_id("status")).to_have_text("준비됨")

    # A wrong code is refused; the customer's code hands it over
    wrong = "0000" if order.handover_code != "0000" else "1111"
    inbox.locator(f"#code-{order.pk}").fill(wrong)
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="전달하기").click()
    expect(inbox.get_by_text("코드가 맞지 않아요.", exact=False)).to_be_visible()
    inbox.locator(f"#code-{order.pk}").fill(order.handover_code)
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="전달하기").click()
    expect(inbox.get_by_text(f"주문 #{order.pk}을 전달했어요.", exact=False)).to_be_visible()
    # (handed over, then completed once the money is captured: eagerly, on this server)
    expect(page.get_by_test_id("status")).to_have_text(re.compile(r"^(전달 완료|완료)$"))
    expect(page.get_by_test_id("handover-code")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True
    shot(page, "orders-order-handed-over")
    shot(inbox, "orders-inbox-after")

    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    assert shop.stock()[shop.yakult.sku] == 7
