"""The cart's counter (counter/, issue 16 item 1): a passer-by scans the cart's rotating QR, picks
from what is on the cart and pays on the phone, as a guest or signed in; once paid the order is
handed over at once and the vendor's counter lists it; a basket the vendor made is paid once.
Bad input: a forged, expired or replayed code, a vendor gone off shift, two buyers for the last
unit (real PostgreSQL connections), a guest who never pays. Payments go over HTTP to the sandbox
on the live server, as the payment journey's tests."""

import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone

from counter.services import walkup_order_place
from counter.tokens import CART_SALT, basket_token_make, cart_token_make, cart_token_read
from customers.services import WALKUP_EMAIL
from insights.models import SaleRecord
from o2o.effects import effects_run
from orders.models import Order, Status
from orders.services import orders_expire
from payments.models import Payment
from tests.factories import CustomerProfileFactory, VendorFactory
from tests.orders.conftest import open_shop
from tracking.models import VendorPosition
from vendors.services import OutOfStock

live = pytest.mark.django_db(transaction=True)
APPROVE = "4242 4242 4242 4242"


@pytest.fixture
def sandbox(live_server, settings):
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    return live_server.url


@pytest.fixture
def shop(db):
    return open_shop(VendorFactory())


def phone():
    """A passer-by's phone browser (a host the provider accepts in a return address)."""
    return Client(headers={"accept-language": "en"}, SERVER_NAME="localhost")


def scan(client, vendor):
    return client.get(f"/c/s/{cart_token_make(vendor_id=vendor.pk)}/")


def card_page_pay(card_page: str, number: str = APPROVE) -> str:
    response = Client().post(
        urlsplit(card_page).path, {"number": number, "expiry": "12/39", "cvc": "123"}
    )
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def follow_back(client, location: str):
    url = urlsplit(location)
    query = dict(p.split("=", 1) for p in url.query.split("&") if p)
    return client.get(url.path, query)


# --- the cart's code ------------------------------------------------------------------------------


def test_the_carts_code_is_signed_dated_and_names_its_vendor(settings):
    token = cart_token_make(vendor_id=42)
    assert cart_token_read(token) == 42
    assert cart_token_read(f"https://o2o.example/c/s/{token}/") == 42  # the whole link scans too
    for forged in ("", "x" * 700, token[:-2] + "zz", signing.dumps(42, salt="other")):
        with pytest.raises(ValidationError) as caught:
            cart_token_read(forged)
        assert caught.value.code == "forged"
    with pytest.raises(ValidationError):  # signed by us, but not a vendor id
        cart_token_read(signing.dumps("42", salt=CART_SALT))
    settings.COUNTER_QR_MAX_AGE = 1
    time.sleep(2.1)
    with pytest.raises(ValidationError) as caught:
        cart_token_read(token)
    assert caught.value.code == "expired"


@pytest.mark.django_db
def test_scanning_gives_a_pass_to_that_carts_counter_only(shop):
    client = phone()
    # Without a scan, the counter says how to get in
    assert client.get(f"/c/{shop.vendor.pk}/").status_code == 403
    response = scan(client, shop.vendor)
    assert response.status_code == 302 and response["Location"] == f"/c/{shop.vendor.pk}/"
    page = client.get(f"/c/{shop.vendor.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and shop.yakult.name_en in html and "10 left" in html
    # Nothing about where the cart is
    assert "lat" not in page.context and str(shop.vendor.home_lat) not in html
    # Another cart's counter needs its own scan
    other = open_shop(VendorFactory())
    assert client.get(f"/c/{other.vendor.pk}/").status_code == 403


@pytest.mark.django_db
def test_a_forged_or_old_code_or_a_cart_off_shift_is_refused_with_why(shop, settings):
    client = phone()
    forged = client.get("/c/s/not-a-code/")
    assert forged.status_code == 400 and "not one of our carts" in forged.content.decode()
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    off = scan(client, shop.vendor)
    assert off.status_code == 409 and "off shift" in off.content.decode()
    # A pass from before the vendor went off shift no longer buys anything
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=True)
    scan(client, shop.vendor)
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    assert client.get(f"/c/{shop.vendor.pk}/").status_code == 409
    with pytest.raises(ValidationError, match="off shift"):
        walkup_order_place(
            vendor_id=shop.vendor.pk, items={shop.yakult.pk: 1}, checkout_token=uuid.uuid4()
        )


# --- buying -----------------------------------------------------------------------------------------


@live
def test_a_guest_scans_picks_pays_and_it_is_handed_over_at_once(sandbox):
    shop = open_shop(VendorFactory())
    client = phone()
    scan(client, shop.vendor)
    token = client.get(f"/c/{shop.vendor.pk}/").context["checkout_token"]
    form = {
        "checkout_token": token,
        f"q_{shop.yakult.pk}": "2",
        f"q_{shop.latte.pk}": "0",
        "receipt_email": "walker@example.test",
    }
    response = client.post(f"/c/{shop.vendor.pk}/", form)
    again = client.post(f"/c/{shop.vendor.pk}/", form)  # a double tap
    assert response.status_code == 302 and response["Location"].startswith(f"{sandbox}/sandbox/")
    assert again["Location"] == response["Location"]
    order = Order.objects.get()
    assert (order.walkup, order.fulfilment, order.total) == (True, "at_cart", 2400)
    assert order.customer.user.email == WALKUP_EMAIL and order.status == Status.PENDING_PAYMENT
    assert shop.stock()[shop.yakult.sku] == 8  # held while the buyer pays
    # The buyer pays on the provider's page and comes back to their order's link
    page = follow_back(client, card_page_pay(response["Location"]))
    assert page.status_code == 200
    assert "Paid" in page.content.decode()
    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    assert order.handed_over_at is not None
    effects_run()
    assert Payment.objects.get(order_id=order.pk).status == Payment.Status.CAPTURED
    # The sale is in the record: paid at the cart by QR, at the cart's cell, a buyer of its own
    sold = SaleRecord.objects.get(order_id=order.pk)
    assert (sold.channel, sold.units, sold.amount) == ("walkup", 2, 2400)
    assert sold.cell == shop.cell and sold.buyer == -order.pk
    # One e-mail, the receipt, to the address given (none to the walk-up account)
    sent = [m for m in mail.outbox if "walker@example.test" in m.to]
    assert len(sent) == 1 and f"#{order.pk}" in sent[0].body
    assert not [m for m in mail.outbox if WALKUP_EMAIL in m.to]
    # The vendor's counter lists it as paid
    vendor = Client()
    vendor.force_login(shop.vendor.user)
    sales = vendor.get("/counter/sales/").content.decode()
    assert f'data-order="{order.pk}"' in sales and 'data-testid="sale-paid"' in sales


@live
def test_a_basket_the_vendor_made_is_paid_once_by_one_buyer(sandbox):
    shop = open_shop(VendorFactory())
    vendor = Client(SERVER_NAME="localhost")
    vendor.force_login(shop.vendor.user)
    made = vendor.post("/counter/basket/", {f"q_{shop.latte.pk}": "2"})
    assert made.status_code == 200
    url = made.context["url"]
    assert "<svg" in made.content.decode() and made.context["total"] == 5000
    first, second = phone(), phone()
    path = urlsplit(url).path
    assert first.get(path).context["total"] == 5000
    paying = first.post(path, {})
    assert paying.status_code == 302
    follow_back(first, card_page_pay(paying["Location"]))
    # The second buyer is told it was paid; nothing more is sold
    assert 'data-testid="basket-taken"' in second.get(path).content.decode()
    refused = second.post(path, {}, follow=True)
    assert "already paid" in refused.content.decode()
    assert Order.objects.count() == 1 and shop.stock()[shop.latte.sku] == 3


@pytest.mark.django_db
def test_a_basket_code_that_was_altered_or_is_too_old_is_refused(shop, settings):
    code = basket_token_make(vendor_id=shop.vendor.pk, items={shop.yakult.pk: 1})
    client = phone()
    assert client.get(f"/c/b/{code[:-3]}abc/").status_code == 400
    settings.COUNTER_BASKET_MINUTES = 0
    old = client.get(f"/c/b/{code}/")
    assert old.status_code == 400 and "expired" in old.content.decode()


@pytest.mark.django_db
def test_bad_quantities_and_things_not_on_the_cart_are_refused_and_nothing_is_held(shop):
    client = phone()
    scan(client, shop.vendor)
    for form, words in (
        ({f"q_{shop.yakult.pk}": "11"}, "Only 10"),
        ({"q_999999": "1"}, "no longer on sale"),
        ({f"q_{shop.yakult.pk}": "-1"}, "whole numbers"),
        ({f"q_{shop.yakult.pk}": "abc"}, "whole numbers"),
        ({}, "at least one"),
    ):
        page = client.post(f"/c/{shop.vendor.pk}/", form, follow=True)
        assert page.status_code == 200
        assert words.lower() in page.content.decode().lower(), (form, words)
    assert not Order.objects.exists() and shop.stock()[shop.yakult.sku] == 10


@pytest.mark.django_db
def test_a_guest_who_never_pays_lets_the_stock_go_after_the_window(shop, settings):
    settings.COUNTER_PAY_MINUTES = 5
    order = walkup_order_place(
        vendor_id=shop.vendor.pk, items={shop.yakult.pk: 3}, checkout_token=uuid.uuid4()
    )
    assert order.expires_at <= timezone.now() + timezone.timedelta(minutes=5, seconds=5)
    assert shop.stock()[shop.yakult.sku] == 7
    orders_expire(now=order.expires_at + timezone.timedelta(seconds=1))
    order.refresh_from_db()
    assert order.status == Status.FAILED and shop.stock()[shop.yakult.sku] == 10


@pytest.mark.postgres
@live
def test_two_buyers_for_the_last_unit_one_gets_it():
    shop = open_shop(VendorFactory())
    from tests.factories import stock_put
    from vendors.models import Stock

    stock_put(vendor=shop.vendor, product=shop.latte, quantity=1)
    assert Stock.objects.get(vendor=shop.vendor, product=shop.latte).quantity == 1
    barrier = threading.Barrier(2)
    outcomes = []

    def buy():
        try:
            barrier.wait()
            outcomes.append(
                walkup_order_place(
                    vendor_id=shop.vendor.pk, items={shop.latte.pk: 1}, checkout_token=uuid.uuid4()
                )
            )
        except ValidationError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    orders = [o for o in outcomes if isinstance(o, Order)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(orders) == 1 and len(refused) == 1
    assert isinstance(refused[0], OutOfStock)  # "… is sold out", in the buyer's language
    assert Stock.objects.get(vendor=shop.vendor, product=shop.latte).quantity == 0


@pytest.mark.django_db
def test_the_vendors_counter_shows_a_fresh_code_only_on_shift(shop):
    client = Client()
    client.force_login(shop.vendor.user)
    page = client.get("/counter/")
    assert page.status_code == 200 and "<svg" in page.content.decode()
    qr = client.get("/counter/qr/").json()
    assert cart_token_read(urlsplit(qr["url"]).path) == shop.vendor.pk
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    assert client.get("/counter/qr/").status_code == 409
    off = client.get("/counter/").content.decode()
    assert 'data-testid="counter-off-shift"' in off and "qr-svg" not in off
    # Not a vendor: no counter, no code, no sales, no basket
    customer = Client()
    customer.force_login(CustomerProfileFactory().user)
    assert customer.get("/counter/").status_code == 302  # to "apply to sell"
    for path in ("/counter/qr/", "/counter/sales/"):
        assert customer.get(path).status_code == 404
    assert customer.post("/counter/basket/", {f"q_{shop.yakult.pk}": "1"}).status_code == 404
    # Signed out: to the login page
    for path in ("/counter/", "/counter/qr/", "/counter/sales/"):
        response = Client().get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.postgres
@live
def test_a_double_tap_sent_twice_at_once_is_one_order_not_a_refusal():
    shop = open_shop(VendorFactory())
    token = uuid.uuid4()  # the counter page's own token: only this phone has it
    barrier = threading.Barrier(2)
    outcomes = []

    def tap():
        try:
            barrier.wait()
            outcomes.append(
                walkup_order_place(
                    vendor_id=shop.vendor.pk, items={shop.yakult.pk: 2}, checkout_token=token
                )
            )
        except ValidationError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(o, Order) for o in outcomes), outcomes
    assert {o.pk for o in outcomes} == {Order.objects.get().pk}
    assert shop.stock()[shop.yakult.sku] == 8


@pytest.mark.postgres
@live
def test_two_phones_paying_one_basket_at_once_one_is_told_it_is_taken():
    shop = open_shop(VendorFactory())
    from counter.tokens import basket_token_read

    basket = basket_token_read(
        basket_token_make(vendor_id=shop.vendor.pk, items={shop.latte.pk: 1})
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def pay():
        try:
            barrier.wait()
            outcomes.append(
                walkup_order_place(
                    vendor_id=shop.vendor.pk,
                    items=basket.items,
                    checkout_token=basket.checkout_token,
                    shared=True,
                )
            )
        except ValidationError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    orders = [o for o in outcomes if isinstance(o, Order)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(orders) == 1 and len(refused) == 1 and refused[0].code == "taken"
    assert shop.stock()[shop.latte.sku] == 4
