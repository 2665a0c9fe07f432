"""Checkout to the provider's card page and back, for real: the sandbox gateway over HTTP on the
live server (nothing stubbed). A double submit gives one order and one payment; an approved card
places the order, a declined one fails it and puts the stock back; a slow provider leaves the
customer a "checking" notice and a button; the API gives the card page URL too."""

from urllib.parse import urlsplit

import pytest
from django.test import Client

from orders.models import Order, Status
from tests.orders.conftest import messages_of, put_cart

pytestmark = pytest.mark.django_db(transaction=True)
APPROVE = "4242 4242 4242 4242"
DECLINE = "4000 0000 0000 0002"
SLOW = "4000 0000 0000 0077"


@pytest.fixture
def sandbox(live_server, settings):
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    return live_server.url


@pytest.fixture
def shopper(shop, buyer):
    # A host the provider accepts in a return address ("testserver" has no domain).
    client = Client(headers={"accept-language": "en"}, SERVER_NAME="localhost")
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 2, shop.latte.pk: 1})
    return client


def checkout(client, shop) -> tuple[dict, object]:
    token = client.get("/orders/checkout/").context["form"].initial["checkout_token"]
    data = {
        "checkout_token": token,
        "fulfilment": "pickup",
        "pickup_point": shop.point.pk,
        "window": "asap",
        "note": "벨 눌러 주세요",
    }
    return data, client.post("/orders/checkout/", data)


def pay(card_page: str, number: str):
    """The customer's browser on the provider's card page; where it sends them back."""
    response = Client().post(
        urlsplit(card_page).path, {"number": number, "expiry": "12/39", "cvc": "123"}
    )
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def back(client, location: str):
    """The browser follows the provider's redirect back to the shop."""
    url = urlsplit(location)
    return client.get(
        url.path, dict(p.split("=", 1) for p in url.query.split("&") if p), follow=True
    )


def test_checkout_goes_to_the_card_page_once_and_an_approved_card_places_it(
    sandbox, shopper, shop, buyer
):
    # When the buyer checks out (and the browser sends the form twice)
    data, response = checkout(shopper, shop)
    again = shopper.post("/orders/checkout/", data)
    # Then both go to the same card page of the provider, for one order with its stock reserved
    assert response.status_code == 302
    card_page = response["Location"]
    assert card_page.startswith(f"{sandbox}/sandbox/pay/")
    assert again["Location"] == card_page
    order = Order.objects.get()
    assert (order.status, order.total, order.note) == (
        Status.PENDING_PAYMENT,
        4900,
        "벨 눌러 주세요",
    )
    assert order.payment_id is not None
    assert shop.stock() == {shop.yakult.sku: 8, shop.latte.sku: 4}
    # And the basket is empty
    assert shopper.session["cart"]["lines"] == {}
    # When the card is approved and the provider sends the browser back
    location = pay(card_page, APPROVE)
    assert urlsplit(location).path == f"/orders/{order.pk}/paid/"
    page = back(shopper, location)
    # Then the order is placed, the buyer on its page, told so, with the handover code
    order.refresh_from_db()
    assert order.status == Status.PLACED
    assert page.redirect_chain[-1] == (f"/orders/{order.pk}/", 302)
    assert "Paid! The vendor will confirm your order soon." in page.content.decode()
    assert page.context["show_code"] is True


def test_a_declined_card_keeps_the_order_open_for_another_card(sandbox, shopper, shop, buyer):
    from rest_framework.test import APIClient

    # Given a checkout, and a declined card on the provider's page
    _data, response = checkout(shopper, shop)
    card_page = response["Location"]
    assert pay(card_page, DECLINE) == urlsplit(card_page).path  # the card page again
    order = Order.objects.get()
    # When the buyer goes back to the shop from the card page
    page = back(
        shopper, f"/orders/{order.pk}/paid/?intent={urlsplit(card_page).path.split('/')[3]}"
    )
    # Then the order still waits for payment, with its stock reserved, and the page says why
    order.refresh_from_db()
    assert order.status == Status.PENDING_PAYMENT
    assert shop.stock() == {shop.yakult.sku: 8, shop.latte.sku: 4}
    html = page.content.decode()
    assert messages_of(page) == []
    assert "Your card was declined." in html and "card ending in 0002" in html
    assert "Try another card" in html and "Pay by" in html
    # And the API says the same: declined, may still be paid, at the same card page
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(buyer)
    payment = api.get(f"/api/orders/{order.pk}/").json()["payment"]
    assert payment["declined"] is True and payment["can_pay"] is True
    assert (payment["decline_code"], payment["card_last4"]) == ("card_declined", "0002")
    assert payment["checkout_url"] == card_page
    # When the buyer tries another card from the order page
    again = shopper.post(f"/orders/{order.pk}/pay/")
    assert again["Location"] == card_page
    page = back(shopper, pay(card_page, APPROVE))
    # Then the order is placed and the decline is history
    order.refresh_from_db()
    assert order.status == Status.PLACED
    assert "Paid! The vendor will confirm your order soon." in page.content.decode()
    assert api.get(f"/api/orders/{order.pk}/").json()["payment"] is None


def test_a_slow_provider_leaves_a_checking_notice_and_a_button(sandbox, settings, shopper, shop):
    settings.SANDBOX_SLOW_SECONDS = 1.5
    settings.PAYMENT_HTTP_READ_TIMEOUT = 0.5
    settings.PAYMENT_HTTP_RETRIES = 0
    _data, response = checkout(shopper, shop)
    page = back(shopper, pay(response["Location"], SLOW))
    order = Order.objects.get()
    assert order.status == Status.PENDING_PAYMENT
    assert messages_of(page) == ["We are still checking your payment. Check again in a moment."]
    assert f'action="/orders/{order.pk}/payment/refresh/"' in page.content.decode()
    # When the buyer presses "check again" and the provider answers in time
    again = shopper.post(f"/orders/{order.pk}/payment/refresh/", follow=True)
    assert "Paid! The vendor will confirm your order soon." in again.content.decode()
    assert Order.objects.get().status == Status.PLACED


def test_the_api_places_and_gives_the_card_page(sandbox, shop, buyer):
    from django.utils import timezone
    from rest_framework.test import APIClient

    api = APIClient(HTTP_ACCEPT_LANGUAGE="en", SERVER_NAME="localhost")
    api.force_authenticate(buyer)
    now = timezone.now()
    body = {
        "vendor": shop.vendor.pk,
        "lines": [{"product_id": shop.latte.pk, "quantity": 2}],
        "fulfilment": "meet",
        "meet_cell": shop.cell,
        "window_start": now.isoformat(),
        "window_end": (now + timezone.timedelta(minutes=30)).isoformat(),
        "checkout_token": "0b9f8f8e-0000-4000-8000-000000000001",
    }
    first = api.post("/api/orders/", body, format="json")
    second = api.post("/api/orders/", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json() == second.json()
    assert first.json()["checkout_url"].startswith(f"{sandbox}/sandbox/pay/")
    assert first.json()["order"]["status"] == "pending_payment"
    assert first.json()["order"]["handover_code"] is None
    assert Order.objects.count() == 1
    assert shop.stock()[shop.latte.sku] == 3


def test_a_provider_that_does_not_answer_keeps_the_order_to_pay_later(settings, shopper, shop):
    # Given a provider nobody answers at
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    # When the buyer checks out
    _data, response = checkout(shopper, shop)
    # Then they land on their order, told to pay again shortly, with a button for it
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.pk}/"
    page = shopper.get(response["Location"])
    assert messages_of(page) == [
        "The payment service did not answer. Your order is kept; try paying again shortly."
    ]
    assert f'action="/orders/{order.pk}/pay/"' in page.content.decode()
    assert order.status == Status.PENDING_PAYMENT


def test_a_provider_that_refuses_to_start_is_a_message_not_a_500(client, shop, buyer):
    # Given a shop reached at a host the provider won't send customers back to
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 1})
    _data, response = checkout(client, shop)
    order = Order.objects.get()
    assert response["Location"] == f"/orders/{order.pk}/"
    assert messages_of(client.get(response["Location"])) == ["Give a full http(s) address."]
