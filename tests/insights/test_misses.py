"""Misses are captured where they happen: the map's beacon (a product picked that no cart near has,
checked again on the server, once per asker, product, area and hour, throttled, never a position
finer than the public cell), and a sold-out product a customer tried to buy through the real
basket, checkout, order API and counter paths (the sale rolls back, the miss stays)."""

import itertools

import h3
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from insights.models import MissKind, MissRecord
from o2o.geo import cell_of
from orders.models import Order
from tests.factories import (
    MAPO,
    ProductFactory,
    StockFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tests.orders.conftest import messages_of
from tests.orders.test_checkout import submit
from vendors.models import Stock

pytestmark = pytest.mark.django_db

URL = "/api/insights/misses/"
_addresses = itertools.count(1)


def visitor() -> APIClient:
    """An anonymous visitor from an address no other test uses (the throttle counts by address)."""
    n = next(_addresses)
    return APIClient(REMOTE_ADDR=f"10.77.{n // 250}.{n % 250 + 1}", HTTP_ACCEPT_LANGUAGE="en")


def beacon(client: APIClient, product_id, lat=MAPO[0], lng=MAPO[1]):
    return client.post(URL, {"product_id": product_id, "lat": lat, "lng": lng}, format="json")


def cart_near(product, *, quantity: int = 5, at=MAPO):
    vendor = VendorFactory()
    VendorPositionFactory(vendor=vendor, lat=at[0], lng=at[1])
    StockFactory(vendor=vendor, product=product, quantity=quantity)
    return vendor


# --- the map's beacon ---------------------------------------------------------------------------


def test_a_beacon_records_one_miss_per_asker_product_area_and_hour():
    product, other = ProductFactory(), ProductFactory()
    me, someone = visitor(), visitor()
    # When the same visitor sends the beacon twice for a product, then once for another
    first = beacon(me, product.pk)
    again = beacon(me, product.pk, lat=MAPO[0] + 0.0001)  # the same area
    third = beacon(me, other.pk)
    # Then the first and the other product are recorded, the repeat is not
    assert (first.status_code, first.json()) == (202, {"recorded": True})
    assert (again.status_code, again.json()) == (202, {"recorded": False})
    assert third.json() == {"recorded": True}
    # And another visitor there counts again
    assert beacon(someone, product.pk).json() == {"recorded": True}
    rows = MissRecord.objects.filter(product_id=product.pk)
    assert rows.count() == 2
    assert len({r.asker for r in rows}) == 2
    miss = rows.first()
    assert miss.kind == MissKind.NONE_NEAR and miss.vendor_id == 0
    expected = h3.cell_to_parent(cell_of(*MAPO), settings.INSIGHT_CELL_RES)
    assert miss.cell == expected
    assert miss.hour == timezone.localtime().hour


def test_a_beacon_keeps_only_the_area_never_the_position():
    product = ProductFactory()
    lat, lng = 37.5561234, 126.9061234
    assert beacon(visitor(), product.pk, lat=lat, lng=lng).json() == {"recorded": True}
    names = {f.name for f in MissRecord._meta.get_fields()}
    assert not names & {"lat", "lng", "latitude", "longitude", "position"}
    row = MissRecord.objects.values().get()
    text = " ".join(str(v) for v in row.values())
    assert "37.556" not in text and "126.906" not in text


def test_no_miss_when_a_live_cart_near_has_the_product():
    product, other = ProductFactory(), ProductFactory()
    cart_near(product, at=(MAPO[0] + 0.004, MAPO[1]))  # about 450 m north
    # The page thought no cart had it; the server looks again and records nothing
    response = beacon(visitor(), product.pk)
    assert (response.status_code, response.json()) == (202, {"recorded": False})
    assert not MissRecord.objects.exists()
    # A product that cart does not carry is a miss
    assert beacon(visitor(), other.pk).json() == {"recorded": True}


def test_a_cart_near_that_sold_out_or_a_cart_far_away_does_not_count_as_having_it():
    product = ProductFactory()
    cart_near(product, quantity=0)
    cart_near(product, at=(MAPO[0] + 0.03, MAPO[1]))  # about 3 km north
    assert beacon(visitor(), product.pk).json() == {"recorded": True}


def test_an_off_shift_cart_near_does_not_count_as_having_it():
    product = ProductFactory()
    vendor = cart_near(product)
    vendor.position.on_shift = False
    vendor.position.save()
    assert beacon(visitor(), product.pk).json() == {"recorded": True}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"lat": MAPO[0], "lng": MAPO[1]}, "product_id", "This field is required."),
        ({"product_id": "x", "lat": 37.5, "lng": 127}, "product_id", "A valid integer is required."),
        ({"product_id": 999_999_999, "lat": 37.5, "lng": 127}, "product_id", "No such product on sale."),
        ({"product_id": 10**30, "lat": 37.5, "lng": 127}, "product_id", "Ensure this value is less than or equal to 9223372036854775807."),
        ({"product_id": "P", "lat": "NaN", "lng": 127}, "lat", "A valid number is required."),
        ({"product_id": "P", "lat": 91, "lng": 127}, "lat", "Latitude must be between -90 and 90."),
        ({"product_id": "P", "lat": 37.5, "lng": -181}, "lng", "Longitude must be between -180 and 180."),
        ({"product_id": "P", "lat": "north", "lng": 127}, "lat", "A valid number is required."),
        ({"product_id": "P", "lat": 37.5}, "lng", "This field is required."),
    ],
)  # fmt: skip
def test_bad_input_is_400_with_the_field_and_records_nothing(data, field, message):
    product = ProductFactory()
    data = {k: product.pk if v == "P" else v for k, v in data.items()}
    response = visitor().post(URL, data, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["fields"][field] == [message]
    assert not MissRecord.objects.exists()


def test_a_product_no_longer_on_sale_is_400():
    product = ProductFactory(is_active=False)
    response = beacon(visitor(), product.pk)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"product_id": ["No such product on sale."]}


def test_the_beacon_is_throttled_per_address():
    product = ProductFactory()
    me = visitor()
    codes = [beacon(me, product.pk, lat=MAPO[0] + i * 0.01).status_code for i in range(31)]
    assert codes[:30] == [202] * 30
    assert codes[30] == 429
    assert MissRecord.objects.count() == 30


def test_the_beacon_is_throttled_per_account(customer):
    product = ProductFactory()
    me = visitor()
    me.force_authenticate(customer)
    codes = [beacon(me, product.pk, lat=MAPO[0] + i * 0.01).status_code for i in range(31)]
    assert codes[30] == 429


def test_a_signed_in_customer_counts_once_whatever_the_address(customer):
    product = ProductFactory()
    for n in range(2):
        client = APIClient(REMOTE_ADDR=f"10.78.0.{n + 1}")
        client.force_authenticate(customer)
        beacon(client, product.pk)
    assert MissRecord.objects.count() == 1


def test_a_signed_in_page_must_send_its_csrf_token(customer):
    product = ProductFactory()
    client = APIClient(enforce_csrf_checks=True, REMOTE_ADDR="10.79.0.1")
    client.force_login(customer)
    assert beacon(client, product.pk).status_code == 403
    page = client.get("/map/")
    token = page.cookies["csrftoken"].value
    response = client.post(
        URL,
        {"product_id": product.pk, "lat": MAPO[0], "lng": MAPO[1]},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 202


# --- sold out, where a customer tried to buy -----------------------------------------------------


def _sold_out(shop) -> MissRecord:
    miss = MissRecord.objects.get()
    assert miss.kind == MissKind.SOLD_OUT
    assert miss.product_id == shop.latte.pk and miss.vendor_id == shop.vendor.pk
    assert miss.cell == h3.cell_to_parent(shop.cell, settings.INSIGHT_CELL_RES)
    return miss


def test_a_checkout_refused_as_sold_out_records_a_miss_that_survives_the_rollback(ready, shop):
    # Given latte sold at the cart since it went in the basket (none left)
    Stock.objects.filter(product=shop.latte).update(quantity=0)
    yakult = Stock.objects.get(product=shop.yakult).quantity
    # When the customer checks out
    response = submit(ready, fulfilment="pickup", pickup_point=shop.point.pk)
    # Then the order rolled back (yakult reserved first is back), and the miss is kept
    assert response["Location"] == "/orders/cart/"
    assert Order.objects.count() == 0
    assert Stock.objects.get(product=shop.yakult).quantity == yakult
    _sold_out(shop)
    # And trying again within the hour is the same miss
    submit(ready, fulfilment="pickup", pickup_point=shop.point.pk)
    assert MissRecord.objects.count() == 1


def test_adding_a_sold_out_product_to_the_basket_records_a_miss(client, shop):
    Stock.objects.filter(product=shop.latte).update(quantity=0)
    response = client.post(
        "/orders/cart/add/", {"vendor": shop.vendor.pk, "product": shop.latte.pk, "quantity": 1}
    )
    assert messages_of(response) == ["This product is not on the cart now."]
    _sold_out(shop)


def test_a_product_the_cart_never_had_is_no_sold_out_miss(client, shop, other_shop):
    client.post(
        "/orders/cart/add/",
        {"vendor": shop.vendor.pk, "product": other_shop.yakult.pk, "quantity": 1},
    )
    assert not MissRecord.objects.exists()


def test_the_order_api_refused_as_sold_out_records_a_miss(shop, buyer):
    from tests.orders.test_api import body

    Stock.objects.filter(product=shop.latte).update(quantity=0)
    api = APIClient()
    api.force_authenticate(buyer)
    data = body(shop, lines=[{"product_id": shop.latte.pk, "quantity": 1}])
    assert api.post("/api/orders/", data, format="json").status_code == 409
    assert Order.objects.count() == 0
    _sold_out(shop)


def test_asking_for_more_than_is_left_is_a_sold_out_miss_too(shop, buyer):
    from tests.orders.test_api import body

    api = APIClient()
    api.force_authenticate(buyer)
    too_many = body(shop, lines=[{"product_id": shop.latte.pk, "quantity": 9}])
    assert api.post("/api/orders/", too_many, format="json").status_code == 409
    _sold_out(shop)


def test_a_sold_out_miss_without_a_known_cart_position_is_not_recorded(ready, shop):
    shop.vendor.position.delete()
    Stock.objects.filter(product=shop.latte).update(quantity=0)
    submit(ready, fulfilment="pickup", pickup_point=shop.point.pk)
    assert not MissRecord.objects.exists()
