"""A declined card in Chromium on a phone, in Korean and in English: the card page says why and
takes another card; back at the shop the order page says why too, with the deadline to pay and
"try another card"; the next card pays, and the order page is live (the vendor accepts: the
status, its step and the notice follow, the "paid" notice goes). The vendor's card shows until
when to accept."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order, Status
from payments.sandbox.models import SandboxIntent
from tests import factories
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import log_in
from tests.orders.conftest import open_shop, place, placed
from tests.orders.test_browser_live import live_server, person  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
browser = browser_fixtures.browser
new_page = browser_fixtures.new_page
shot = browser_fixtures.shot
assert_accessible = browser_fixtures.assert_accessible

WORDS = {
    "ko": {"pay": "결제하기", "placed": "주문됨", "accepted": "접수됨"},
    "en": {"pay": "Pay", "placed": "Placed", "accepted": "Accepted"},
}


def fill_card(page, number: str) -> None:
    page.locator("input[name=number]").fill(number)
    page.locator("input[name=expiry]").fill("12/39")
    page.locator("input[name=cvc]").fill("123")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_declined_card_then_another_card_pays_and_the_page_is_live(
    live_server,  # noqa: F811
    new_page,
    shot,
    assert_accessible,
    lang,
):
    # Given a vendor on shift and a customer's order waiting for payment (pickup)
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    for user in (vendor.user, buyer):
        person(user)
    order = place(shop, buyer)
    base = live_server.url
    words = WORDS[lang]

    page = new_page(**PHONE, locale="ko-KR")
    log_in(page, base, buyer.email)
    page.goto(f"{base}/orders/{order.pk}/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("deadlines")).to_be_visible()
    shot(page, f"retry-{lang}-01-order-waiting")

    # When the customer pays with a card that is declined
    page.get_by_test_id("pay").click()
    page.wait_for_url(f"{base}/sandbox/pay/**")
    expect(page.get_by_test_id("pay-by")).to_be_visible()
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_role("button", name=words["pay"], exact=True).click()
    # Then the card page says why, and takes another card
    expect(page.get_by_test_id("declined")).to_be_visible()
    expect(page.get_by_test_id("declined")).to_contain_text("0002")
    if lang == "en":
        expect(page.get_by_test_id("declined")).to_contain_text("Your card was declined.")
    assert_accessible(page)
    shot(page, f"retry-{lang}-02-card-page-declined")

    # When the customer goes back to the shop instead
    page.locator("a.btn.secondary").click()
    page.wait_for_url(f"{base}/orders/{order.pk}/")
    # Then the order page says why too: still waiting for payment, stock kept, another card
    expect(page.get_by_test_id("declined")).to_be_visible()
    expect(page.get_by_test_id("declined")).to_contain_text("0002")
    expect(page.locator("[data-deadline=pay_by]")).to_be_visible()
    assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT
    assert shop.stock()[shop.yakult.sku] == 8
    if lang == "en":
        expect(page.get_by_test_id("pay")).to_have_text("Try another card")
    else:
        expect(page.get_by_test_id("pay")).to_have_text("다른 카드로 결제")
    assert_accessible(page)
    shot(page, f"retry-{lang}-03-order-declined")

    # When the customer tries another card, which is approved
    page.get_by_test_id("pay").click()
    page.wait_for_url(f"{base}/sandbox/pay/**")
    expect(page.get_by_test_id("declined")).to_be_visible()  # the last try, said again
    fill_card(page, "4242 4242 4242 4242")
    page.locator("form.card button[type=submit]").click()
    # Then the order is paid and its page is live, saying until when the vendor may accept
    page.wait_for_url(f"{base}/orders/{order.pk}/")
    expect(page.get_by_test_id("status")).to_have_text(words["placed"])
    expect(page.get_by_test_id("paid-note")).to_be_visible()
    expect(page.locator("[data-deadline=accept_by]")).to_be_visible()
    expect(page.get_by_test_id("declined")).to_have_count(0)
    expect(page.locator("#live-state.on")).to_be_visible()
    page.evaluate("window.sameDocument = true")
    assert_accessible(page)
    shot(page, f"retry-{lang}-04-order-paid")

    # And the vendor's card says until when to accept it
    inbox = new_page(**PHONE, locale="ko-KR")
    log_in(inbox, base, vendor.user.email)
    inbox.goto(f"{base}/orders/vendor/")
    expect(inbox.locator(f"#order-{order.pk} [data-testid=accept-by]")).to_be_visible()
    shot(inbox, f"retry-{lang}-05-inbox-accept-by")

    # When the vendor accepts there: the customer's page follows without a reload, the notice too
    inbox.locator(f"#order-{order.pk}").get_by_role("button", name="접수하기").click()
    expect(inbox.get_by_text(f"주문 #{order.pk}을 접수했어요.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text(words["accepted"])
    expect(page.get_by_test_id("paid-note")).to_have_count(0)
    expect(page.locator("[data-deadline=accept_by]")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True
    shot(page, f"retry-{lang}-06-order-accepted")


ENDED = {
    "ko": "고객이 주문 #{n}을 취소했어요",
    "en": "Order #{n} was cancelled by the customer. Don't hand it over.",
}


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_inbox_says_at_once_that_an_order_was_cancelled_even_while_typing(
    live_server,  # noqa: F811
    new_page,
    shot,
    assert_accessible,
    lang,
):
    # Given a paid order, the vendor's inbox open on it with the vendor typing in its card
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    for user in (vendor.user, buyer):
        person(user)
    order = placed(shop, buyer)
    base = live_server.url
    inbox = new_page(**PHONE, locale="ko-KR")
    log_in(inbox, base, vendor.user.email)
    inbox.goto(f"{base}/orders/vendor/")
    if lang == "en":
        inbox.get_by_role("group", name="언어").get_by_role("button", name="English").click()
        expect(inbox.locator("html")).to_have_attribute("lang", "en")
    expect(inbox.locator("#live-state.on")).to_be_visible()
    card = inbox.locator(f"#order-{order.pk}")
    expect(card.get_by_test_id("accept-by")).to_be_visible()
    # (the vendor has opened "Reject" and is typing a reason: the list must not move under it)
    card.locator("details.reject summary").click()
    inbox.locator(f"#reason-{order.pk}").fill("재료가")
    # When the customer cancels from the order page
    page = new_page(**PHONE, locale="ko-KR")
    log_in(page, base, buyer.email)
    page.goto(f"{base}/orders/{order.pk}/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(".cancel-form button[type=submit]").click()
    expect(page.get_by_test_id("ended")).to_be_visible()
    shot(page, f"inbox-{lang}-01-customer-cancelled")
    # Then the vendor's card says so at once, its buttons off, though the list waits for the typing
    expect(card.get_by_test_id("card-ended")).to_be_visible()
    expect(
        card.get_by_role("button", name="접수하기" if lang == "ko" else "Accept")
    ).to_be_disabled()
    text = ENDED[lang].replace("{n}", str(order.pk))
    if lang == "en":
        expect(card.get_by_test_id("card-ended")).to_have_text(text)
    expect(inbox.get_by_test_id("inbox-notice")).to_be_visible()
    assert inbox.locator("#inbox-announce").inner_text() != (
        "새 주문!" if lang == "ko" else "New order!"
    )
    shot(inbox, f"inbox-{lang}-02-card-ended-while-typing")
    # And once the vendor closes "Reject" the card leaves the list; the notice stays
    card.locator("details.reject summary").click()
    expect(card).to_have_count(0)
    expect(inbox.get_by_test_id("inbox-notice")).to_be_visible()
    assert_accessible(inbox)
    shot(inbox, f"inbox-{lang}-03-after")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_card_page_reached_after_the_window_says_so(
    live_server,  # noqa: F811
    new_page,
    shot,
    assert_accessible,
    lang,
):
    # Given a customer on the card page of an order waiting for payment
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    person(buyer)
    order = place(shop, buyer)
    base = live_server.url
    page = new_page(**PHONE, locale="ko-KR")
    log_in(page, base, buyer.email)
    page.goto(f"{base}/orders/{order.pk}/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_test_id("pay").click()
    page.wait_for_url(f"{base}/sandbox/pay/**")
    # When the payment window closes while the page is open, and the page is opened again
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk=order.pk).update(expires_at=past)
    SandboxIntent.objects.filter(reference=f"order-{order.pk}").update(expires_at=past)
    page.reload()
    # Then the card page says the time ran out, and takes no card
    expect(page.get_by_test_id("ran-out")).to_be_visible()
    expect(page.locator("input[name=number]")).to_have_count(0)
    assert_accessible(page)
    shot(page, f"retry-{lang}-07-card-page-time-ran-out")
    # And back at the shop the order has ended for it, its stock back
    page.locator("a.btn").click()
    page.wait_for_url(f"{base}/orders/{order.pk}/")
    expect(page.get_by_test_id("ended")).to_be_visible()
    if lang == "en":
        expect(page.get_by_test_id("ended")).to_contain_text("The time to pay ran out at")
    assert Order.objects.get(pk=order.pk).status == Status.FAILED
    assert shop.stock()[shop.yakult.sku] == 10
    assert_accessible(page)
    shot(page, f"retry-{lang}-08-order-not-paid-in-time")
