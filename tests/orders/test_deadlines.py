"""Every deadline and every ending, in words, on the customer's order page, in the API and on the
vendor's inbox card: pay by, the vendor accepts by, collect by at a pickup point, the window asked
for; declined with the vendor's reason, not accepted in time, not collected by, cancelled by the
customer, by staff or by the vendor with their reason. Times in Korea time."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone, translation
from django.utils.formats import date_format
from rest_framework.test import APIClient

from orders.models import Order, Status
from orders.services import (
    order_accept,
    order_cancel,
    order_ready,
    order_reject,
    order_vendor_cancel,
    orders_expire,
)
from tests.orders.conftest import place, placed

pytestmark = pytest.mark.django_db


def korea(at) -> str:
    """The time as the pages say it: Korea time, in the language's time format."""
    with translation.override("en"):
        return date_format(timezone.localtime(at), "TIME_FORMAT")


def api_of(user) -> APIClient:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(user)
    return api


def page_of(user, order: Order) -> str:
    client = Client(headers={"accept-language": "en"})
    client.force_login(user)
    response = client.get(f"/orders/{order.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_pay_by_and_accept_by_are_said_on_the_page_and_in_the_api(shop, buyer):
    # Given an order waiting for payment
    order = place(shop, buyer)
    # Then its page and the API say until when it can be paid, in Korea time
    body = api_of(buyer).get(f"/api/orders/{order.pk}/").json()
    kinds = {d["kind"]: d for d in body["deadlines"]}
    assert set(kinds) == {"pay_by", "window"}
    assert kinds["pay_by"]["text"].startswith("Pay by ")
    assert korea(order.expires_at) in kinds["pay_by"]["text"]
    assert kinds["window"]["text"].startswith("At the pickup point between")
    assert body["payment"]["can_pay"] is True and body["payment"]["declined"] is False
    assert "Pay by " in page_of(buyer, order)
    # When it is paid: the vendor has until its deadline to accept, said to both sides
    order = placed(shop, buyer)
    body = api_of(buyer).get(f"/api/orders/{order.pk}/").json()
    accept_by = next(d for d in body["deadlines"] if d["kind"] == "accept_by")
    assert accept_by["text"] == f"The vendor has until {korea(order.expires_at)} to accept."
    assert "to accept" in page_of(buyer, order)
    vendor = Client(headers={"accept-language": "en"})
    vendor.force_login(shop.vendor.user)
    inbox = vendor.get("/orders/vendor/list/").content.decode()
    assert 'data-testid="accept-by"' in inbox and "Accept by" in inbox


def test_not_accepted_in_time_says_by_when(shop, buyer):
    order = placed(shop, buyer)
    due = order.expires_at
    assert orders_expire(now=due + timedelta(seconds=1))["expired"] == 1
    body = api_of(buyer).get(f"/api/orders/{order.pk}/").json()
    assert body["ending"]["code"] == "not_accepted_in_time"
    assert body["ending"]["text"].startswith("The vendor did not accept this order by")
    assert korea(due) in body["ending"]["text"]
    assert body["deadlines"] == []


def test_declined_by_the_vendor_shows_the_reason(shop, buyer):
    order = placed(shop, buyer)
    order_reject(order_id=order.pk, vendor=shop.vendor, reason="재료 소진 / sold out")
    body = api_of(buyer).get(f"/api/orders/{order.pk}/").json()
    assert body["ending"] == {
        "code": "rejected_by_vendor",
        "by": "vendor",
        "text": "The vendor could not take this order. You will not be charged.",
        "reason": "재료 소진 / sold out",
    }
    html = page_of(buyer, order)
    assert "reason:" in html and "재료 소진 / sold out" in html


def test_collect_by_at_the_pickup_point_then_not_collected_by_then(shop, buyer):
    # Given a pickup order left at the point
    order = placed(shop, buyer)
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    order = order_ready(order_id=order.pk, vendor=shop.vendor)
    due = order.expires_at
    # Then the customer is told until when it waits there
    body = api_of(buyer).get(f"/api/orders/{order.pk}/").json()
    collect = next(d for d in body["deadlines"] if d["kind"] == "collect_by")
    assert collect["text"].startswith("Collect by ") and korea(due) in collect["text"]
    # And the status reads as the step does
    assert body["status"] == "ready"
    assert "Ready at the pickup point" in page_of(buyer, order)
    # When nobody collects it in time
    assert orders_expire(now=due + timedelta(seconds=1))["uncollected"] == 1
    body = api_of(buyer).get(f"/api/orders/{order.pk}/").json()
    assert body["ending"]["code"] == "not_collected"
    assert body["ending"]["text"].startswith("It was not collected by")
    assert korea(due) in body["ending"]["text"]


@pytest.mark.parametrize("who", ["customer", "vendor"])
def test_cancelled_says_by_whom_and_why(shop, buyer, who):
    order = placed(shop, buyer)
    if who == "customer":
        order_cancel(order_id=order.pk, customer=order.customer, reason="")
        code, by, reason = "cancelled_by_you", "customer", ""
    else:
        order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
        order_vendor_cancel(order_id=order.pk, vendor=shop.vendor, reason="카트 고장")
        code, by, reason = "cancelled_by_vendor", "vendor", "카트 고장"
    ending = api_of(buyer).get(f"/api/orders/{order.pk}/").json()["ending"]
    assert (ending["code"], ending["by"], ending["reason"]) == (code, by, reason)
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED


def test_the_arrived_step_and_the_status_agree(shop, buyer):
    order = placed(shop, buyer, fulfilment="delivery")
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    order = order_ready(order_id=order.pk, vendor=shop.vendor)
    html = page_of(buyer, order)
    assert '<strong data-testid="status">Arrived</strong>' in html
    assert 'aria-current="step">Arrived</li>' in html
    assert "Delivery between" in html
