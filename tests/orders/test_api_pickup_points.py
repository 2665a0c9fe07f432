"""GET /api/pickup-points/?vendor=<slug>: the points the checkout page offers for that vendor
(active, near the vendor, nearest first) with address, location and hours; public; what an
order's `pickup_point_id` names."""

from datetime import time

import pytest
from rest_framework.test import APIClient

from orders.selectors import pickup_points_near
from tests.factories import OpeningHoursFactory, PickupPointFactory, VendorFactory
from tests.orders.conftest import FAR
from tests.orders.test_api import body, error
from tests.orders.test_payment_journey import sandbox  # noqa: F401 - the provider, over HTTP

URL = "/api/pickup-points/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def test_the_points_near_the_vendor_with_hours_anonymously(api, shop):
    near = PickupPointFactory(name="Near", lat=shop.vendor.home_lat, lng=shop.vendor.home_lng)
    OpeningHoursFactory(point=near, weekday=2, opens=time(9), closes=time(18))
    PickupPointFactory(name="Closed down", is_active=False)
    PickupPointFactory(name="Busan", lat=FAR[0], lng=FAR[1])
    response = api.get(URL, {"vendor": shop.vendor.slug})
    assert response.status_code == 200, response.content
    points = response.json()
    # The same points as the checkout page, in its order: nearest first
    assert [p["id"] for p in points] == [p.pk for p in pickup_points_near(vendor=shop.vendor)]
    assert [p["name"] for p in points] == ["Near", shop.point.name]
    first = points[0]
    assert (first["address"], first["lat"], first["lng"]) == (
        near.address,
        near.lat,
        near.lng,
    )
    assert first["cell"] == near.cell
    assert first["hours"] == [{"weekday": 2, "opens": "09:00:00", "closes": "18:00:00"}]
    assert len(points[1]["hours"]) == 7


@pytest.mark.django_db(transaction=True)
def test_a_listed_point_is_one_an_order_can_name(sandbox, shop, buyer):  # noqa: F811
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en", SERVER_NAME="localhost")
    point_id = api.get(URL, {"vendor": shop.vendor.slug}).json()[0]["id"]
    api.force_authenticate(buyer)
    placed = api.post("/api/orders/", body(shop, pickup_point_id=point_id), format="json")
    assert placed.status_code == 201, placed.content
    assert placed.json()["order"]["pickup_point"]["id"] == point_id


def test_the_vendor_is_required_and_must_be_public(api, shop):
    missing = error(api.get(URL), 400, "invalid")
    assert "vendor" in missing["fields"]
    assert error(api.get(URL, {"vendor": "no-such-vendor"}), 404, "not_found")
    pending = VendorFactory(status="pending")
    assert error(api.get(URL, {"vendor": pending.slug}), 404, "not_found")


def test_a_fixed_number_of_queries(api, shop, django_assert_num_queries):
    for n in range(4):
        point = PickupPointFactory(name=f"P{n}")
        OpeningHoursFactory(point=point, weekday=n)
    # The vendor, the points, their hours
    with django_assert_num_queries(3):
        assert len(api.get(URL, {"vendor": shop.vendor.slug}).json()) == 5
