"""Cash sales, the vendor's page and the API: the tiles of what is on the cart, a sale as a plain
form (no script needed) and as JSON, CSRF on every POST, a double submit recorded once, the undo
banner, refusals with their message, and the cash label in the vendor's history and the admin."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, PaymentMethod, Status
from orders.services import order_cash_sale
from tests.factories import stock_put
from tests.orders.test_api import error

pytestmark = pytest.mark.django_db
PAGE = "/orders/vendor/cash/"
API = "/api/vendor/cash-sales/"


@pytest.fixture
def seller(shop) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(shop.vendor.user)
    return client


@pytest.fixture
def seller_api(shop) -> APIClient:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(shop.vendor.user)
    return api


def test_the_page_shows_the_cart_with_what_can_be_sold(seller, shop):
    stock_put(vendor=shop.vendor, product=shop.latte, quantity=0)
    response = seller.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("orders:vendor-cash") == PAGE
    assert f'name="q{shop.yakult.pk}"' in html and 'max="10"' in html
    assert "Cash received" in html and 'name="client_id"' in html
    assert 'aria-current="page" data-testid="cash-tab"' in html
    # a sold-out product is shown, not tappable
    assert (
        f'id="q{shop.latte.pk}" name="q{shop.latte.pk}" type="number" inputmode="numeric" min="0" max="0" value="0" data-cash-qty disabled'
        in html
    )


def test_a_customer_is_sent_to_apply(shop, buyer):
    client = Client()
    client.force_login(buyer)
    assert client.get(PAGE).status_code == 302


def test_a_sale_from_the_form_then_the_banner_with_undo_and_today_list(seller, shop):
    client_id = str(uuid.uuid4())
    data = {"client_id": client_id, f"q{shop.yakult.pk}": "2", f"q{shop.latte.pk}": "0"}
    response = seller.post(PAGE, data)
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{PAGE}?sale={order.pk}"
    assert (order.payment_method, order.status, order.total) == ("cash", "completed", 2400)
    page = seller.get(response["Location"]).content.decode()
    assert f"Sale #{order.pk} recorded: ₩2,400 in cash." in page
    assert reverse("orders:vendor-cash-undo", args=[order.pk]) in page
    assert "Taken in cash today: ₩2,400" in page
    # The same form sent again (a double submit) records nothing more
    again = seller.post(PAGE, data)
    assert again["Location"] == f"{PAGE}?sale={order.pk}"
    assert Order.objects.count() == 1
    assert shop.stock()[shop.yakult.sku] == 8


def test_undo_from_the_page_and_twice_is_refused(seller, shop):
    order = order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 3}, client_id=uuid.uuid4())
    url = reverse("orders:vendor-cash-undo", args=[order.pk])
    response = seller.post(url, follow=True)
    assert (
        f"Sale #{order.pk} undone: the items are back in your stock." in response.content.decode()
    )
    assert shop.stock()[shop.yakult.sku] == 10
    second = seller.post(url)
    assert second.status_code == 409
    assert "This cash sale was already undone." in second.content.decode()


def test_no_undo_button_after_the_window(seller, shop, settings):
    order = order_cash_sale(
        vendor=shop.vendor,
        items={shop.yakult.pk: 1},
        client_id=uuid.uuid4(),
        now=timezone.now() - timedelta(minutes=settings.CASH_UNDO_MINUTES + 1),
    )
    page = seller.get(f"{PAGE}?sale={order.pk}").content.decode()
    assert f"Sale #{order.pk} recorded" in page
    assert reverse("orders:vendor-cash-undo", args=[order.pk]) not in page
    response = seller.post(reverse("orders:vendor-cash-undo", args=[order.pk]))
    assert response.status_code == 409


def test_a_product_not_on_the_cart_from_the_page_is_refused_and_kept(seller, shop, other_shop):
    foreign = other_shop.latte
    data = {"client_id": str(uuid.uuid4()), f"q{shop.yakult.pk}": "1", f"q{foreign.pk}": "1"}
    response = seller.post(PAGE, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert f"{foreign.name_en} is not on your cart." in html
    assert data["client_id"] in html  # the same sale, to correct and send again
    assert not Order.objects.exists()


def test_nothing_tapped_and_sold_out_are_refused_on_the_page(seller, shop):
    response = seller.post(PAGE, {"client_id": str(uuid.uuid4())})
    assert response.status_code == 400
    assert "Tap at least one product." in response.content.decode()
    response = seller.post(PAGE, {"client_id": str(uuid.uuid4()), f"q{shop.latte.pk}": "6"})
    assert response.status_code == 409
    assert "Only 5 of" in response.content.decode()
    assert not Order.objects.exists()


def test_every_post_needs_the_csrf_token(shop):
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop.vendor.user)
    data = {"client_id": str(uuid.uuid4()), f"q{shop.yakult.pk}": "1"}
    assert client.post(PAGE, data).status_code == 403
    order = order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 1}, client_id=uuid.uuid4())
    assert client.post(reverse("orders:vendor-cash-undo", args=[order.pk])).status_code == 403
    assert Order.objects.get().status == Status.COMPLETED


def test_cash_sales_are_labelled_in_the_vendors_history(seller, shop, buyer):
    order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 1}, client_id=uuid.uuid4())
    html = seller.get(reverse("orders:vendor-history")).content.decode()
    assert 'data-testid="paid-cash">cash at the cart<' in html


def test_the_admin_filters_orders_by_payment_method(shop, staff):
    client = Client(headers={"accept-language": "en"})
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 1}, client_id=uuid.uuid4())
    response = client.get("/admin/orders/order/?payment_method__exact=cash")
    assert response.status_code == 200
    assert "payment_method__exact=card" in response.content.decode()
    assert response.context["cl"].result_count == 1


# --- the API -------------------------------------------------------------------------------------


def test_api_records_a_sale_201_and_a_replay_200(seller_api, shop):
    body = {
        "client_id": str(uuid.uuid4()),
        "items": [
            {"product_id": shop.yakult.pk, "quantity": 1},
            {"product_id": shop.yakult.pk, "quantity": 1},
            {"product_id": shop.latte.pk, "quantity": 1},
        ],
    }
    first = seller_api.post(API, body, format="json")
    assert first.status_code == 201, first.content
    out = first.json()
    assert (out["payment_method"], out["status"], out["total"]) == ("cash", "completed", 4900)
    again = seller_api.post(API, body, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == out["id"]
    assert shop.stock() == {shop.yakult.sku: 8, shop.latte.sku: 4}


def test_api_refusals(seller_api, shop, other_shop):
    def sale(*lines, client_id=None):
        return seller_api.post(
            API,
            {
                "client_id": client_id or str(uuid.uuid4()),
                "items": [{"product_id": p, "quantity": q} for p, q in lines],
            },
            format="json",
        )

    not_on_cart = error(sale((other_shop.latte.pk, 1)), 400, "not_on_cart")
    assert not_on_cart["message"] == f"{other_shop.latte.name_en} is not on your cart."
    error(sale((shop.latte.pk, 6)), 409, "out_of_stock")
    error(sale((shop.yakult.pk, 0)), 400)
    error(sale((shop.yakult.pk, 21)), 400)
    error(sale(), 400)
    error(sale(*[(shop.yakult.pk, 1)] * 31), 400)
    assert not Order.objects.exists()
    # another vendor's client id
    theirs = uuid.uuid4()
    order_cash_sale(vendor=other_shop.vendor, items={other_shop.yakult.pk: 1}, client_id=theirs)
    error(sale((shop.yakult.pk, 1), client_id=str(theirs)), 404)


def test_api_undo_then_twice_then_too_late(seller_api, shop, settings):
    order = order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 2}, client_id=uuid.uuid4())
    url = f"{API}{order.pk}/undo/"
    response = seller_api.post(url)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    error(seller_api.post(url), 409, "undone")
    late = order_cash_sale(
        vendor=shop.vendor,
        items={shop.yakult.pk: 1},
        client_id=uuid.uuid4(),
        now=timezone.now() - timedelta(minutes=settings.CASH_UNDO_MINUTES, seconds=1),
    )
    error(seller_api.post(f"{API}{late.pk}/undo/"), 409, "too_late")
    error(seller_api.post(f"{API}999999/undo/"), 404)


def test_api_is_for_vendors_only(shop, buyer):
    api = APIClient()
    api.force_authenticate(buyer)
    response = api.post(
        API,
        {"client_id": str(uuid.uuid4()), "items": [{"product_id": shop.yakult.pk, "quantity": 1}]},
        format="json",
    )
    assert response.status_code == 403
    assert Order.objects.filter(payment_method=PaymentMethod.CASH).count() == 0
