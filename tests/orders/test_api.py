"""The order API: own orders only (someone else's is a 404), one error format, a transition from
the wrong state is 409, a broken rule 400 with the field, nothing saved when refused."""

import uuid

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, Status
from orders.services import order_accept, order_depart
from tests.factories import AddressFactory
from tests.orders.conftest import FAR, place, placed
from tests.orders.test_payment_journey import sandbox  # noqa: F401 - the provider, over HTTP
from vendors.models import Product

ORDERS = "/api/orders/"
VENDOR_ORDERS = "/api/vendor/orders/"


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def error(response, status: int, code: str | None = None) -> dict:
    """The one error format: {"error": {"code", "message", "fields"?}}."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "fields"}
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def body(shop, **over) -> dict:
    now = timezone.now()
    data = {
        "vendor": shop.vendor.pk,
        "lines": [{"product_id": shop.yakult.pk, "quantity": 2}],
        "fulfilment": "pickup",
        "pickup_point_id": shop.point.pk,
        "window_start": now.isoformat(),
        "window_end": (now + timezone.timedelta(hours=1)).isoformat(),
        "checkout_token": str(uuid.uuid4()),
    }
    data.update(over)
    return data


# --- customer ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_and_detail_are_own_orders_only(api, shop, buyer, stranger):
    mine_old, mine_new = placed(shop, buyer), placed(shop, buyer, fulfilment="meet")
    theirs = placed(shop, stranger)
    api.force_authenticate(buyer)
    listed = api.get(ORDERS).json()
    assert [o["id"] for o in listed["results"]] == [mine_new.pk, mine_old.pk]
    assert listed["results"][0]["lines"][0]["quantity"] == 2
    assert "handover_code" not in listed["results"][0]
    detail = api.get(f"{ORDERS}{mine_old.pk}/").json()
    assert detail["status"] == "placed"
    assert detail["handover_code"] == mine_old.handover_code
    assert [e["to_status"] for e in detail["events"]] == ["pending_payment", "placed"]
    assert detail["total"] == 2400 and detail["currency"] == "KRW"
    error(api.get(f"{ORDERS}{theirs.pk}/"), 404, "not_found")
    error(api.get(f"{ORDERS}999999/"), 404, "not_found")


@pytest.mark.django_db
def test_list_query_count_does_not_grow(api, shop, buyer, django_assert_num_queries):
    api.force_authenticate(buyer)
    placed(shop, buyer)
    # count, orders, lines (the customer profile is cached on the authenticated user)
    with django_assert_num_queries(3):
        assert api.get(ORDERS).json()["count"] == 1
    for _ in range(4):
        placed(shop, buyer, quantity=1)
    with django_assert_num_queries(3):
        assert api.get(ORDERS).json()["count"] == 5


@pytest.mark.django_db
def test_the_code_is_not_given_before_payment(api, shop, buyer):
    order = place(shop, buyer)
    api.force_authenticate(buyer)
    assert api.get(f"{ORDERS}{order.pk}/").json()["handover_code"] is None


@pytest.mark.django_db
def test_anonymous_gets_401_everywhere(api, shop, buyer):
    order = placed(shop, buyer)
    for method, url in (
        ("get", ORDERS),
        ("post", ORDERS),
        ("get", f"{ORDERS}{order.pk}/"),
        ("post", f"{ORDERS}{order.pk}/cancel/"),
        ("post", f"{ORDERS}{order.pk}/payment/refresh/"),
        ("get", VENDOR_ORDERS),
        ("post", f"{VENDOR_ORDERS}{order.pk}/accept/"),
    ):
        error(getattr(api, method)(url, {}, format="json"), 401)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"product_id": 1, "quantity": 0}]}, "lines"),
        ({"lines": [{"product_id": 1, "quantity": settings.ORDER_MAX_QUANTITY + 1}]}, "lines"),
        ({"lines": [{"product_id": 1, "quantity": 10**30}]}, "lines"),
        ({"lines": [{"product_id": 1, "quantity": "two"}]}, "lines"),
        ({"fulfilment": "at_cart"}, "fulfilment"),
        ({"checkout_token": "not-a-uuid"}, "checkout_token"),
        ({"window_start": "yesterday"}, "window_start"),
        ({"vendor": None}, "vendor"),
        ({"expected_total": -1}, "expected_total"),
        ({"expected_total": "a lot"}, "expected_total"),
    ],
)
@pytest.mark.django_db
def test_placing_with_a_malformed_body_is_400_with_the_field(api, shop, buyer, change, field):
    stock = shop.stock()
    api.force_authenticate(buyer)
    err = error(api.post(ORDERS, body(shop, **change), format="json"), 400, "invalid")
    assert field in err["fields"]
    assert Order.objects.count() == 0 and shop.stock() == stock


@pytest.mark.django_db
def test_the_same_product_twice_is_refused(api, shop, buyer):
    api.force_authenticate(buyer)
    line = {"product_id": shop.yakult.pk, "quantity": 1}
    err = error(api.post(ORDERS, body(shop, lines=[line, line]), format="json"), 400)
    assert err["fields"]["lines"] == ["Each product may appear only once."]


@pytest.mark.django_db
def test_placing_against_the_rules_is_400_with_the_field_and_saves_nothing(api, shop, buyer):
    stock = shop.stock()
    api.force_authenticate(buyer)
    far = AddressFactory(customer=buyer.customer, lat=FAR[0], lng=FAR[1])
    cases = [
        (
            body(shop, fulfilment="delivery", address_id=far.pk),
            "address",
            "This address is outside the area this vendor delivers to.",
        ),
        (
            body(shop, fulfilment="meet", meet_cell="nope"),
            "meet_cell",
            "Choose a meeting point on the map.",
        ),
        (body(shop, pickup_point_id=999999), "pickup_point", "Choose an open pickup point."),
        (
            body(shop, lines=[{"product_id": 999999, "quantity": 1}]),
            "detail",
            "A product in the cart is no longer on sale.",
        ),
    ]
    for data, field, message in cases:
        err = error(api.post(ORDERS, data, format="json"), 400, "invalid")
        assert err["fields"] == {field: [message]}
    assert Order.objects.count() == 0 and shop.stock() == stock


@pytest.mark.django_db
def test_placing_more_than_the_cart_has_is_409_out_of_stock(api, shop, buyer):
    stock = shop.stock()
    api.force_authenticate(buyer)
    data = body(shop, lines=[{"product_id": shop.latte.pk, "quantity": 6}])
    err = error(api.post(ORDERS, data, format="json"), 409, "out_of_stock")
    # The message and the product name speak the language of the request (English here)
    assert err["message"] == f"Only 5 of {shop.latte.name_en} left on the cart."
    assert Order.objects.count() == 0 and shop.stock() == stock


@pytest.mark.django_db
def test_a_total_other_than_the_one_shown_is_409_prices_changed_and_saves_nothing(api, shop, buyer):
    # Given the app showed 2 yakult at ₩1,200 (₩2,400), and the vendor raised it to ₩9,000 since
    stock = shop.stock()
    Product.objects.filter(pk=shop.yakult.pk).update(price=9000)
    api.force_authenticate(buyer)
    # When the app places the order with the total it showed
    response = api.post(ORDERS, body(shop, expected_total=2400), format="json")
    # Then it is refused with the new total, and nothing is ordered nor reserved
    err = error(response, 409, "prices_changed")
    assert err["message"] == (
        "The prices changed since you opened this page: the total is now ₩18,000. "
        "Check your order and send it again."
    )
    assert Order.objects.count() == 0 and shop.stock() == stock
    # And in Korean for an app that asks for Korean (the default)
    korean = APIClient()
    korean.force_authenticate(buyer)
    err = error(korean.post(ORDERS, body(shop, expected_total=2400), format="json"), 409)
    assert err == {
        "code": "prices_changed",
        "message": "이 페이지를 연 뒤로 가격이 바뀌었어요. 지금 합계는 ₩18,000이에요. "
        "주문 내용을 확인하고 다시 보내 주세요.",
    }


@pytest.mark.django_db
def test_the_expected_total_counts_the_delivery_fee(api, shop, buyer):
    # Given a delivery of ₩2,400 of yakult; the vendor's fee is ₩1,000
    stock = shop.stock()
    address_id = buyer.customer.addresses.values_list("pk", flat=True).get()
    delivery = {"fulfilment": "delivery", "address_id": address_id}
    api.force_authenticate(buyer)
    # When the app sends the items' total alone, then the total with the fee is the news
    response = api.post(ORDERS, body(shop, **delivery, expected_total=2400), format="json")
    err = error(response, 409, "prices_changed")
    assert err["message"] == (
        "The prices changed since you opened this page: the total is now ₩3,400. "
        "Check your order and send it again."
    )
    assert Order.objects.count() == 0 and shop.stock() == stock


@pytest.mark.django_db(transaction=True)
def test_the_expected_total_is_optional_and_a_placed_checkout_is_returned_whatever_it_says(
    sandbox,  # noqa: F811
    shop,
    buyer,
):
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en", SERVER_NAME="localhost")
    api.force_authenticate(buyer)
    # Given an order placed with the total shown (₩2,400 of yakult, picked up)
    first_body = body(shop, expected_total=2400)
    first = api.post(ORDERS, first_body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["order"]["total"] == 2400
    # When the price changes and the same checkout is sent again (a retry after a timeout)
    Product.objects.filter(pk=shop.yakult.pk).update(price=9000)
    again = api.post(ORDERS, first_body, format="json")
    # Then it is that same order, not a prices_changed
    assert again.status_code == 201, again.content
    assert again.json() == first.json()
    # When another checkout is sent without an expected total (an app from before it existed)
    later = api.post(ORDERS, body(shop), format="json")
    # Then it is placed at the prices of now, as before
    assert later.status_code == 201, later.content
    assert later.json()["order"]["total"] == 18000
    assert sorted(Order.objects.values_list("total", flat=True)) == [2400, 18000]


@pytest.mark.django_db
def test_someone_elses_checkout_token_is_404(api, shop, buyer, stranger):
    order = place(shop, stranger)
    api.force_authenticate(buyer)
    data = body(shop, checkout_token=str(order.checkout_token))
    error(api.post(ORDERS, data, format="json"), 404)


@pytest.mark.django_db
def test_cancel_own_order_then_409_and_others_404(api, shop, buyer, stranger):
    order = placed(shop, buyer, quantity=3)
    api.force_authenticate(stranger)
    error(api.post(f"{ORDERS}{order.pk}/cancel/", {}, format="json"), 404)
    api.force_authenticate(buyer)
    response = api.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "oops"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert shop.stock()[shop.yakult.sku] == 10
    error(api.post(f"{ORDERS}{order.pk}/cancel/", {}, format="json"), 409, "conflict")


@pytest.mark.django_db
def test_payment_refresh_of_an_order_without_payment_answers_its_state(api, shop, buyer, stranger):
    order = place(shop, buyer)
    api.force_authenticate(stranger)
    error(api.post(f"{ORDERS}{order.pk}/payment/refresh/"), 404)
    api.force_authenticate(buyer)
    response = api.post(f"{ORDERS}{order.pk}/payment/refresh/")
    assert response.status_code == 200
    assert response.json()["status"] == "pending_payment"


# --- vendor -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_vendor_lists_active_and_history_without_codes(api, shop, other_shop, buyer):
    active = placed(shop, buyer)
    place(shop, buyer)  # not paid: not the vendor's business
    placed(other_shop, buyer)
    api.force_authenticate(shop.vendor.user)
    results = api.get(VENDOR_ORDERS).json()["results"]
    assert [o["id"] for o in results] == [active.pk]
    assert "handover_code" not in results[0]
    assert results[0]["customer_name"] == buyer.name
    assert api.get(VENDOR_ORDERS, {"state": "history"}).json()["results"] == []
    error(api.get(VENDOR_ORDERS, {"state": "everything"}), 400)


@pytest.mark.django_db
def test_vendor_list_query_count_does_not_grow(api, shop, buyer, django_assert_num_queries):
    api.force_authenticate(shop.vendor.user)
    placed(shop, buyer)
    # count, orders (with vendor, customer and point joined), lines
    with django_assert_num_queries(3):
        assert api.get(VENDOR_ORDERS).json()["count"] == 1
    for _ in range(4):
        placed(shop, buyer, quantity=1)
    with django_assert_num_queries(3):
        assert api.get(VENDOR_ORDERS).json()["count"] == 5


@pytest.mark.django_db
def test_vendor_takes_an_order_from_accept_to_hand_over(api, shop, buyer):
    order = placed(shop, buyer, fulfilment="delivery")
    api.force_authenticate(shop.vendor.user)
    url = f"{VENDOR_ORDERS}{order.pk}"
    accepted = api.post(f"{url}/accept/", {"eta_minutes": 25}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted" and accepted.json()["eta"]
    assert "handover_code" not in accepted.json()
    assert api.post(f"{url}/depart/").json()["status"] == "en_route"
    assert api.post(f"{url}/ready/").json()["status"] == "ready"
    err = error(api.post(f"{url}/hand-over/", {"code": "x"}, format="json"), 400, "invalid")
    assert err["fields"] == {"code": ["That code is not right. Ask the customer to show it."]}
    done = api.post(f"{url}/hand-over/", {"code": order.handover_code}, format="json")
    assert done.json()["status"] == "handed_over"
    history = api.get(VENDOR_ORDERS, {"state": "history"}).json()["results"]
    assert [o["id"] for o in history] == [order.pk]


@pytest.mark.django_db
def test_vendor_actions_refuse_bad_input_and_wrong_states(api, shop, buyer):
    order = placed(shop, buyer)
    api.force_authenticate(shop.vendor.user)
    url = f"{VENDOR_ORDERS}{order.pk}"
    assert (
        "eta_minutes"
        in error(api.post(f"{url}/accept/", {"eta_minutes": 0}, format="json"), 400)["fields"]
    )
    assert "reason" in error(api.post(f"{url}/reject/", {}, format="json"), 400)["fields"]
    error(api.post(f"{url}/depart/"), 409, "conflict")
    rejected = api.post(f"{url}/reject/", {"reason": "closing early"}, format="json")
    assert rejected.json()["status"] == "rejected"
    assert shop.stock()[shop.yakult.sku] == 10
    error(api.post(f"{url}/accept/", {"eta_minutes": 5}, format="json"), 409, "conflict")


@pytest.mark.parametrize("action", ["accept", "reject", "depart", "ready", "hand-over"])
@pytest.mark.django_db
def test_vendor_actions_are_403_for_customers_and_404_for_other_vendors(
    api, shop, other_shop, buyer, action
):
    order = placed(shop, buyer)
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=5)
    order_depart(order_id=order.pk, vendor=shop.vendor)
    data = {"eta_minutes": 5, "reason": "x", "code": order.handover_code}
    url = f"{VENDOR_ORDERS}{order.pk}/{action}/"
    api.force_authenticate(buyer)
    error(api.post(url, data, format="json"), 403)
    api.force_authenticate(other_shop.vendor.user)
    error(api.post(url, data, format="json"), 404)
    assert Order.objects.get(pk=order.pk).status == Status.EN_ROUTE


@pytest.mark.django_db
def test_the_schema_documents_the_order_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/orders/",
        "/api/orders/{order_id}/",
        "/api/orders/{order_id}/cancel/",
        "/api/vendor/orders/{order_id}/hand-over/",
        "/api/staff/orders/{order_id}/cancel/",
        "/api/staff/orders/{order_id}/expire/",
    ):
        assert path in schema["paths"], path
    detail = schema["components"]["schemas"]["OrderDetailOut"]["properties"]
    assert detail["vendor_nearby"]["nullable"] is True
    accept = schema["paths"]["/api/vendor/orders/{order_id}/accept/"]["post"]
    assert "409" in accept["responses"]
    place_in = schema["components"]["schemas"]["OrderPlaceInRequest"]
    assert "expected_total" not in place_in["required"]
    assert "prices_changed" in place_in["properties"]["expected_total"]["description"]
    assert (
        "prices_changed"
        in schema["paths"]["/api/orders/"]["post"]["responses"]["409"]["description"]
    )
