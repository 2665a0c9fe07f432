"""The whole order journey in Chromium, Korean UI, on phones: a customer finds the vendor on the
live map (the list beside it and the hexagon), goes to the vendor's page, fills a basket, checks
out for pickup, pays with a test card on the sandbox's hosted page and lands on the live order
page; the vendor's inbox, open all along, shows the new order without a reload; each of the
vendor's buttons moves the customer's page live; the handover code closes it.

Then the last metres of a meeting (the vendor at street level on the order page, gone at the
handover) and a cancel by staff reaching both live pages.

The real ASGI app (HTTP and websockets) runs under uvicorn on the test database (the live map's
server, tests/browser/test_live_map.py), with the sandbox gateway at that same server."""

import re
import uuid

import h3
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order, Status
from orders.services import order_accept, order_depart
from tests import factories
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_live_map import CENTRE, AsgiServer, log_in
from tests.orders.conftest import open_shop, placed
from tracking.models import VendorPosition

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
    monkeypatch.setenv("ORDER_NEARBY_POLL_S", "0.5")
    # A cache of its own: ids restart with each test database, and counters kept in the cache
    # by id (wrong handover codes) must not carry over from an earlier run.
    monkeypatch.setenv("CACHE_PREFIX", f"o2o-orders-browser-{uuid.uuid4().hex[:12]}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stand_near_the_map_centre(vendor) -> None:
    """The vendor's latest fix where /map/ opens, so the cart is in the customer's first view."""
    lat, lng = CENTRE
    cell = h3.latlng_to_cell(lat, lng, settings.PUBLIC_CELL_RES)
    VendorPosition.objects.filter(vendor=vendor).update(
        lat=lat,
        lng=lng,
        public_cell=cell,
        coarse_cell=h3.cell_to_parent(cell, settings.MAP_GROUP_RES),
        last_ping_at=timezone.now(),
    )


def person(user) -> None:
    # The server runs on the production settings, which don't know the test suite's MD5 hasher.
    user.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "orders-salt")
    user.save(update_fields=["password"])


def test_order_paid_taken_and_handed_over_live(live_server, new_page, shot, assert_accessible):
    # Given a vendor on shift with yakult on the cart, and a customer
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    stand_near_the_map_centre(vendor)
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

    # The customer opens the live map on the phone and finds the cart there: its area drawn as a
    # hexagon, and an entry in the list beside the map
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, buyer.email)
    page.goto(f"{base}/map/")
    expect(page.locator("#map-status")).to_have_text("실시간 · 주변 카트 1대")
    expect(page.locator(f'#map path[data-vendor="{vendor.slug}"]')).to_be_visible()
    entry = page.locator(f'#vendor-list li[data-vendor="{vendor.slug}"]')
    expect(entry).to_contain_text("망원 야쿠르트 카트")
    assert_accessible(page)
    shot(page, "orders-00-map")
    # ... and goes from the list to the vendor's page
    entry.get_by_role("link").first.click()
    expect(page).to_have_url(f"{base}/vendors/{vendor.slug}/")
    shot(page, "orders-01-vendor-page")

    # The customer puts 3 yakult in the basket from the vendor's page
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
    shot(page, "orders-sandbox-card-page")
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
    expect(inbox.get_by_text(f"주문 #{order.pk}이 준비됐어요.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("픽업 장소에 준비됨")  # as its step reads
    shot(page, "orders-order-ready")

    # A wrong code is refused; the customer's code hands it over
    shown = page.get_by_test_id("handover-code").inner_text()  # what the customer shows
    wrong = "0000" if shown != "0000" else "1111"
    inbox.locator(f"#code-{order.pk}").fill(wrong)
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="전달하기").click()
    expect(inbox.get_by_text("코드가 맞지 않아요.", exact=False)).to_be_visible()
    inbox.locator(f"#code-{order.pk}").fill(shown)
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="전달하기").click()
    expect(inbox.get_by_text(f"주문 #{order.pk}을 전달했어요.", exact=False)).to_be_visible()
    # (handed over, then completed once the money is captured: eagerly, on this server)
    expect(page.get_by_test_id("status")).to_have_text(re.compile(r"^(찾아감|완료)$"))
    expect(page.get_by_test_id("handover-code")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True
    shot(page, "orders-order-handed-over")
    shot(inbox, "orders-inbox-after")

    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    assert shop.stock()[shop.yakult.sku] == 7


def test_the_last_metres_of_a_meeting_show_the_vendor_then_stop(
    live_server, new_page, shot, assert_accessible
):
    # Given a customer's accepted meet order, the vendor on the way and far from the meeting point
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    for user in (vendor.user, buyer):
        person(user)
    order = placed(shop, buyer, fulfilment="meet")
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=10)
    order_depart(order_id=order.pk, vendor=vendor)
    meet = h3.cell_to_latlng(order.meet_cell)
    far = (meet[0] + 1500 / 111_320, meet[1])
    VendorPosition.objects.filter(vendor=vendor).update(
        lat=far[0], lng=far[1], last_ping_at=timezone.now()
    )
    base = live_server.url

    # The customer has the order page open: on the way, no street-level position yet
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, buyer.email)
    page.goto(f"{base}/orders/{order.pk}/")
    expect(page.locator("#live-state")).to_have_text("실시간")
    expect(page.get_by_test_id("status")).to_have_text("가는 중")
    page.evaluate("window.sameDocument = true")
    page.wait_for_timeout(1500)  # a few checks of the server
    expect(page.get_by_test_id("vendor-nearby")).to_be_hidden()

    # When the vendor comes within a few hundred metres of the meeting point
    near = (meet[0] + 180 / 111_320, meet[1])
    VendorPosition.objects.filter(vendor=vendor).update(
        lat=near[0], lng=near[1], last_ping_at=timezone.now()
    )
    # Then the page shows how far the vendor is, and a dot on the map, without a reload
    nearby = page.get_by_test_id("vendor-nearby")
    expect(nearby).to_be_visible(timeout=10_000)
    expect(nearby).to_contain_text(re.compile(r"(1[5-9]0|200|210) ?m"))
    expect(page.get_by_test_id("vendor-nearby-marker")).to_have_count(1)
    assert_accessible(page)
    shot(page, "orders-meet-nearby")

    # When the vendor hands the order over (on the inbox, on the phone), the position goes away
    # at once
    inbox = new_page(**PHONE, **KOREAN)
    log_in(inbox, base, vendor.user.email)
    inbox.goto(f"{base}/orders/vendor/#order-{order.pk}")
    inbox.locator(f"#code-{order.pk}").fill(page.get_by_test_id("handover-code").inner_text())
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="전달하기").click()
    expect(inbox.get_by_text(f"주문 #{order.pk}을 전달했어요.", exact=False)).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text(re.compile(r"^(전달 완료|완료)$"))
    expect(nearby).to_be_hidden()
    expect(page.get_by_test_id("vendor-nearby-marker")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True
    shot(page, "orders-meet-handed-over")


def test_a_cancel_by_staff_reaches_the_customer_and_the_vendor_live(
    live_server, new_page, shot, assert_accessible
):
    # Given an accepted order, its customer's page and the vendor's inbox open
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    staff = factories.StaffFactory()
    for user in (vendor.user, buyer, staff):
        person(user)
    order = placed(shop, buyer)
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=10)
    base = live_server.url
    inbox = new_page(**PHONE, **KOREAN)
    log_in(inbox, base, vendor.user.email)
    inbox.goto(f"{base}/orders/vendor/")
    expect(inbox.locator(f"#order-{order.pk}")).to_be_visible()
    expect(inbox.locator("#live-state")).to_have_text("실시간: 새 주문이 오면 여기서 알려 드려요")
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, buyer.email)
    page.goto(f"{base}/orders/{order.pk}/")
    expect(page.locator("#live-state")).to_have_text("실시간")

    # When staff cancel it in the admin (the vendor's cart broke down): the action asks why first
    admin = new_page(**DESKTOP, **KOREAN)
    log_in(admin, base, staff.email)
    admin.goto(f"{base}/admin/orders/order/")
    admin.locator(f"input[name=_selected_action][value='{order.pk}']").check()
    admin.locator("select[name=action]").select_option("cancel_and_return_money")
    admin.locator("button[name=index]").click()
    admin.locator("#id_reason").fill("카트 고장")
    shot(admin, "orders-staff-cancel-confirm")
    admin.locator("input[type=submit].default").click()
    expect(admin.get_by_text("주문 1건을 취소했어요.", exact=False)).to_be_visible()

    # Then the customer's page says so with the reason, and the vendor's inbox drops the order
    # and says why, both without a reload
    expect(page.get_by_test_id("status")).to_have_text("취소됨")
    expect(page.get_by_test_id("ended")).to_contain_text("카트 고장")
    assert_accessible(page)
    shot(page, "orders-staff-cancelled-customer")
    expect(inbox.locator(f"#order-{order.pk}")).to_have_count(0)
    expect(inbox.get_by_test_id("inbox-notice")).to_contain_text(f"#{order.pk}")
    assert_accessible(inbox)
    shot(inbox, "orders-staff-cancelled-inbox")
    assert shop.stock()[shop.yakult.sku] == 10


def test_a_line_the_vendor_cannot_supply_reaches_the_customer_live(
    live_server, new_page, shot, assert_accessible
):
    # Given an accepted order of yakult × 2 and latte × 1, its customer's page and the inbox open
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    for user in (vendor.user, buyer):
        person(user)
    order = placed(shop, buyer, quantity=2)
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=10)
    line = order.lines.get()
    base = live_server.url
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, buyer.email)
    page.goto(f"{base}/orders/{order.pk}/")
    expect(page.locator("#live-state")).to_have_text("실시간")
    expect(page.get_by_test_id("short-note")).to_have_count(0)
    inbox = new_page(**PHONE, **KOREAN)
    log_in(inbox, base, vendor.user.email)
    inbox.goto(f"{base}/orders/vendor/")
    card = inbox.locator(f"#order-{order.pk}")
    # When the vendor says one yakult can't be supplied (it fell off the cart)
    card.get_by_text("이 상품을 드릴 수 없나요?").click()
    quantity = card.locator(f"#short-q-{line.pk}")
    expect(quantity).to_have_attribute("max", "1")  # the other one is still to hand over
    card.locator(f"#short-r-{line.pk}").fill("하나가 떨어져 깨졌어요")
    assert_accessible(inbox)
    shot(inbox, "orders-short-line-form")
    card.get_by_role("button", name="공급 못 함으로 표시").click()
    # Then the inbox confirms it and shows the line marked
    expect(inbox.locator(".messages, [role=status]").first).to_contain_text(f"#{order.pk}")
    expect(inbox.locator(f"#order-{order.pk}")).to_contain_text("1개 공급 못 함")
    # And the customer's page says so without a reload, with what they won't pay
    expect(page.get_by_test_id("short-note")).to_contain_text("하나가 떨어져 깨졌어요")
    expect(page.get_by_test_id("short-note")).to_contain_text("₩1,200")
    # And the table of what they ordered shows the missing unit and the new total, still no reload
    expect(page.locator("#order-lines").get_by_test_id(f"short-{line.pk}")).to_have_text("−₩1,200")
    expect(page.locator("#order-live template")).to_have_count(0)
    assert_accessible(page)
    shot(page, "orders-short-line-customer")
