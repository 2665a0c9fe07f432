"""A regular, end to end in Chromium on phones: the customer subscribes on the page; the beat's
runs (evening notice, morning order and off-session charge over the live sandbox) make the day's
order; it is on the vendor's round; the vendor, offline, taps "Delivered" (queued on the phone),
comes back online and the tap is replayed once; the customer sees the order handed over.
Screenshots round-<lang>-01 (subscribe), -02 (the round), -03 (tapped offline), -04 (synced),
-05 (the customer's order), -06 (the subscription: recent deliveries, the choices at the door).
"""

from datetime import time

import pytest
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from playwright.sync_api import expect

from orders.models import Order, OrderEvent, Status
from subscriptions import delivery as flow
from subscriptions.models import Delivery, RoundAction, Subscription
from tests import factories
from tests.browser.conftest import PHONE
from tests.payments.conftest import APPROVE
from tests.payments.test_vault import save_card
from tests.subscriptions.factories import stocked, working_vendor

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
def test_subscribe_beat_round_offline_delivered_customer_sees_it(
    live_server, new_page, shot, assert_accessible, axe, settings, language
):
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    settings.ORDER_AHEAD_MIN_MINUTES = 1
    now = timezone.localtime()
    if now.time() > time(23, 50):
        pytest.skip("the day's delivery window has closed (the test needs today's hours)")
    # A vendor who works every day all day, with yakult on the cart; a customer with an address
    # in the vendor's area and a card saved on the sandbox
    vendor = working_vendor(weekdays=range(7), name="프레시 카트 망원")
    vendor.hours.update(opens=time(0, 0), closes=time(23, 59))
    product = stocked(vendor, price=1200, name_ko="야쿠르트 라이트", name_en="Yakult Light")
    customer = factories.CustomerProfileFactory()
    address = factories.AddressFactory(customer=customer, label="집")
    save_card(customer, APPROVE)
    with translation.override(language):
        subscribed = gettext("You are subscribed.")
        delivered_label = gettext("delivered")
        waiting = gettext("1 tap waiting to be sent (you are offline).")
        all_sent = gettext("All taps sent.")
        left = ngettext("%(n)s stop left", "%(n)s stops left", 0) % {"n": 0}

    # 1. The customer subscribes on their phone: 2 a day, every day, from today
    phone = new_page(**PHONE)
    signed_in(phone, customer.user, live_server.url, language)
    phone.goto(f"{live_server.url}/subscriptions/new/?vendor={vendor.slug}")
    phone.locator(f"#id_qty_{product.pk}").fill("2")
    for day in range(7):
        phone.locator(f"#id_weekdays_{day}").check()
    phone.locator("#id_starts_on").fill(now.date().isoformat())
    phone.locator("#id_address").select_option(str(address.pk))
    phone.locator("#id_not_at_home_policy").select_option("door")
    expect(phone.get_by_test_id("subscription-card")).to_contain_text("4242")
    assert_accessible(phone)
    shot(phone, f"round-{language}-01")
    phone.get_by_role("button", name=gettext_in(language, "Subscribe"), exact=True).click()
    expect(phone.get_by_text(subscribed)).to_be_visible()
    sub = Subscription.objects.get(customer=customer)

    # 2. The beat: the evening run (here, for today), then the morning run orders and charges
    today = now.date()
    flow.deliveries_prepare(on=today)
    flow.deliveries_place(on=today, now=timezone.now())
    delivery = Delivery.objects.get(subscription=sub, date=today)
    assert delivery.status == Delivery.Status.ORDERED, delivery.reason
    order = Order.objects.get(pk=delivery.order_id)
    assert order.status == Status.ACCEPTED

    # 3. The vendor opens the round on their phone: the stop is there, with what to hand over
    cart = new_page(**PHONE)
    signed_in(cart, vendor.user, live_server.url, language)
    cart.goto(f"{live_server.url}/round/")
    stop = cart.get_by_test_id(f"stop-{order.pk}")
    expect(stop).to_contain_text(order.delivery_address)
    expect(stop).to_contain_text("× 2")
    assert_accessible(cart)
    assert axe(cart) == []
    shot(cart, f"round-{language}-02")

    # 4. Offline, the vendor taps "Delivered": it waits on the phone, nothing reached the server
    cart.context.set_offline(True)
    stop.get_by_role("button", name=gettext_in(language, "Delivered"), exact=True).click()
    expect(cart.get_by_test_id("round-sync")).to_have_text(waiting)
    expect(cart.get_by_test_id(f"stop-{order.pk}")).to_have_count(0)
    expect(cart.locator("#left-count")).to_have_text(left)
    shot(cart, f"round-{language}-03")
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED
    assert not RoundAction.objects.exists()

    # 5. Back online: the queued tap is replayed, once
    cart.context.set_offline(False)
    expect(cart.get_by_test_id("round-sync")).to_have_text(all_sent, timeout=20_000)
    expect(cart.get_by_test_id("round-done")).to_contain_text(delivered_label)
    shot(cart, f"round-{language}-04")
    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    assert RoundAction.objects.filter(applied=True).count() == 1
    assert OrderEvent.objects.filter(order=order, to_status=Status.HANDED_OVER).count() == 1
    # A reload does not send it again
    cart.reload()
    expect(cart.get_by_test_id("round-sync")).to_be_empty()
    assert RoundAction.objects.count() == 1

    # 6. The customer's phone, back on the order page, sees it handed over
    phone.goto(f"{live_server.url}/orders/{order.pk}/")
    with translation.override(language):
        statuses = [str(Status.HANDED_OVER.label), str(Status.COMPLETED.label)]
    expect(phone.get_by_role("main")).to_contain_text(
        statuses[1] if order.status == Status.COMPLETED else statuses[0]
    )
    shot(phone, f"round-{language}-05")
    # And the subscription page lists it among the recent deliveries
    phone.goto(f"{live_server.url}/subscriptions/{sub.pk}/")
    expect(phone.get_by_test_id("recent-deliveries")).to_contain_text(f"#{order.pk}")
    phone.locator("details.card summary").click()  # "At the door": the choices, the check
    assert_accessible(phone)
    shot(phone, f"round-{language}-06")


def gettext_in(language: str, text: str) -> str:
    with translation.override(language):
        return gettext(text)
