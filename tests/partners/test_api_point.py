"""/api/point/orders/ and /api/point/orders/<id>/collect/: the pickup point page's list and
hand-over for the point staff's app, through the same selector and order_collect_at_point; nobody
else gets in, another point's order is a 404, a wrong code a 400, a second hand-over a 409."""

import pytest
from rest_framework.test import APIClient

from orders.models import Order, Status
from tests.factories import CustomerProfileFactory
from tests.orders.factories import always_open_point
from tests.partners.factories import PointStaffFactory
from tests.partners.test_api import ready_pickup_order

LIST = "/api/point/orders/"

pytestmark = pytest.mark.django_db


def collect(order_id: int) -> str:
    return f"{LIST}{order_id}/collect/"


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


@pytest.fixture
def point():
    return always_open_point(name="합정역 편의점")


@pytest.fixture
def clerk(point) -> APIClient:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(PointStaffFactory(pickup_point=point).user)
    return api


def test_only_point_staff_get_in():
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    assert error(api.get(LIST), 401)
    api.force_authenticate(CustomerProfileFactory().user)
    assert error(api.get(LIST), 403)["code"] == "permission_denied"
    assert error(api.post(collect(1), {"code": "1234"}, format="json"), 403)


def test_the_list_is_the_points_waiting_orders(clerk, point):
    mine = [ready_pickup_order(point), ready_pickup_order(point)]
    ready_pickup_order(always_open_point(name="공덕역 서점"))
    body = clerk.get(LIST).json()
    assert body["count"] == 2
    assert [o["id"] for o in body["results"]] == [o.pk for o in mine]
    assert all("handover_code" not in o for o in body["results"])


def test_hand_over_with_the_code_once(clerk, point):
    order = ready_pickup_order(point)
    wrong = "0000" if order.handover_code != "0000" else "1111"
    refused = error(clerk.post(collect(order.pk), {"code": wrong}, format="json"), 400)
    assert "code" in refused["fields"]
    assert Order.objects.get(pk=order.pk).status == Status.READY
    assert error(clerk.post(collect(order.pk), {}, format="json"), 400)["fields"]["code"]
    done = clerk.post(collect(order.pk), {"code": order.handover_code}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] in (Status.HANDED_OVER, Status.COMPLETED)
    again = clerk.post(collect(order.pk), {"code": order.handover_code}, format="json")
    assert error(again, 409)
    assert clerk.get(LIST).json()["count"] == 0


def test_another_points_order_is_a_404(clerk):
    theirs = ready_pickup_order(always_open_point(name="공덕역 서점"))
    assert error(clerk.post(collect(theirs.pk), {"code": theirs.handover_code}, format="json"), 404)
    assert Order.objects.get(pk=theirs.pk).status == Status.READY
