"""POST /api/orders/<id>/problem/ (the order page's "Report a problem", the same service) and
POST /api/orders/<id>/pay/ (the order page's "Pay"): own orders only, a 400 naming the field,
a 409 from the wrong state, nothing opened or started when refused."""

import pytest
from rest_framework.test import APIClient

from payments.models import Dispute, Payment
from tests.orders.conftest import place, placed
from tests.orders.test_api import error
from tests.orders.test_payment_journey import sandbox  # noqa: F401 - the provider, over HTTP
from tests.orders.test_problems import captured  # noqa: F401 - paid, handed over, captured


def problem(order_id: int) -> str:
    return f"/api/orders/{order_id}/problem/"


def pay(order_id: int) -> str:
    return f"/api/orders/{order_id}/pay/"


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en", SERVER_NAME="localhost")


@pytest.mark.django_db(transaction=True)
def test_the_customer_reports_a_problem_once(api, captured, buyer):  # noqa: F811
    api.force_authenticate(buyer)
    # Bad input: 400 naming the field, nothing opened
    empty = error(api.post(problem(captured.pk), {"reason": "  "}, format="json"), 400, "invalid")
    assert "reason" in empty["fields"]
    long = error(api.post(problem(captured.pk), {"reason": "x" * 501}, format="json"), 400)
    assert "reason" in long["fields"]
    assert not Dispute.objects.exists()
    # A reason opens the report
    sent = api.post(problem(captured.pk), {"reason": "The latte was cold."}, format="json")
    assert sent.status_code == 201, sent.content
    dispute = Dispute.objects.get()
    assert sent.json() == {
        "id": dispute.pk,
        "order_id": captured.pk,
        "status": "open",
        "reason": "The latte was cold.",
        "opened_at": sent.json()["opened_at"],
    }
    assert (dispute.order_id, dispute.opened_by_id) == (captured.pk, buyer.pk)
    # A second one while it is open: 409 with the page's message
    again = error(api.post(problem(captured.pk), {"reason": "And more."}, format="json"), 409)
    assert again["message"] == "A problem with this order is already being looked into."
    assert Dispute.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_nobody_else_reports_on_the_order(api, captured, stranger, vendor):  # noqa: F811
    assert error(api.post(problem(captured.pk), {"reason": "x"}, format="json"), 401)
    for who in (stranger, vendor.user):  # another customer; the order's vendor (not a customer)
        api.force_authenticate(who)
        assert error(api.post(problem(captured.pk), {"reason": "x"}, format="json"), 404)
    assert not Dispute.objects.exists()


@pytest.mark.django_db
def test_no_report_before_the_handover(api, shop, buyer):
    order = placed(shop, buyer)
    api.force_authenticate(buyer)
    refused = error(api.post(problem(order.pk), {"reason": "Late"}, format="json"), 409)
    assert refused["message"] == "A problem can be reported once the order was handed over."
    assert error(api.post(problem(999_999), {"reason": "Late"}, format="json"), 404)
    assert not Dispute.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_pay_for_an_order_waiting_for_payment(sandbox, api, shop, buyer, stranger):  # noqa: F811
    order = place(shop, buyer)
    # Someone else: 404, no payment started
    api.force_authenticate(stranger)
    assert error(api.post(pay(order.pk)), 404)
    assert not Payment.objects.filter(order_id=order.pk).exists()
    # The customer: where to pay, the same page twice (started once)
    api.force_authenticate(buyer)
    first = api.post(pay(order.pk))
    assert first.status_code == 200, first.content
    url = first.json()["checkout_url"]
    assert url.startswith(sandbox)
    assert api.post(pay(order.pk)).json()["checkout_url"] == url
    assert Payment.objects.filter(order_id=order.pk).count() == 1


@pytest.mark.django_db
def test_pay_for_an_order_already_paid_is_a_409(api, shop, buyer):
    order = placed(shop, buyer)
    api.force_authenticate(buyer)
    refused = error(api.post(pay(order.pk)), 409)
    assert refused["message"] == "This order is not waiting for payment."
