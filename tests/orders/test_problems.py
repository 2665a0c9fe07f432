"""After the handover, over the sandbox for real: the customer reports a problem with their order
(one open report at a time, nobody else's order), and staff refund one line of it, giving back
exactly that line's commission from the platform's revenue, once."""

import pytest
from rest_framework.test import APIClient

from orders.models import Order, Status
from orders.services import order_accept, order_hand_over, order_ready
from payments import ledger
from payments.models import Dispute, Payment, Refund
from tests.orders.conftest import messages_of, put_cart
from tests.orders.test_payment_journey import APPROVE, back, checkout, pay

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def captured(live_server, settings, shop, buyer, client) -> Order:
    """The buyer's order (yakult × 2, latte × 1: ₩4,900 at 10 %), paid, handed over, captured."""
    settings.SANDBOX_BASE_URL = settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    client.defaults["SERVER_NAME"] = "localhost"
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 2, shop.latte.pk: 1})
    _data, response = checkout(client, shop)
    back(client, pay(response["Location"], APPROVE))
    order = Order.objects.get()
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    order_ready(order_id=order.pk, vendor=shop.vendor)
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    assert Payment.objects.get(pk=order.payment_id).status == Payment.Status.CAPTURED
    return order


def test_the_customer_reports_a_problem_once(captured, client):
    page = client.get(f"/orders/{captured.pk}/")
    assert "Report a problem" in page.content.decode()
    # An empty reason is refused on the form, nothing is opened
    empty = client.post(f"/orders/{captured.pk}/problem/", {"reason": "  "})
    assert empty.status_code == 400
    assert empty.context["problem_form"].errors["reason"]
    assert not Dispute.objects.exists()
    # A reason opens a dispute, and the page says it is being looked into
    sent = client.post(
        f"/orders/{captured.pk}/problem/", {"reason": "The latte was cold."}, follow=True
    )
    assert "We got your report; our team will look into it." in messages_of(sent)
    dispute = Dispute.objects.get()
    assert (dispute.order_id, dispute.status, dispute.reason) == (
        captured.pk,
        Dispute.Status.OPEN,
        "The latte was cold.",
    )
    assert dispute.opened_by_id == captured.customer.user_id
    html = sent.content.decode()
    assert "A problem with this order is being looked into." in html
    assert "Report a problem" not in html
    # A second report while the first is open is refused with a message, never a 500
    again = client.post(f"/orders/{captured.pk}/problem/", {"reason": "And the yakult too."})
    assert again.status_code == 400
    assert "A problem with this order is already being looked into." in again.content.decode()
    assert Dispute.objects.count() == 1
    # Too long a reason is refused by the form
    long = client.post(f"/orders/{captured.pk}/problem/", {"reason": "x" * 501})
    assert long.context["problem_form"].errors["reason"]


def test_nobody_else_reports_a_problem_with_the_order(captured, stranger, client):
    client.force_login(stranger)
    response = client.post(f"/orders/{captured.pk}/problem/", {"reason": "Not mine."})
    assert response.status_code == 404
    assert not Dispute.objects.exists()


def test_staff_refund_a_line_once_with_exactly_its_commission(captured, staff, buyer):
    line = captured.lines.get(product__sku__startswith="latte")  # ₩2,500, commission ₩250
    url = f"/api/staff/orders/{captured.pk}/lines/{line.pk}/refund/"
    api = APIClient()
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490
    # Not staff: no such order
    api.force_authenticate(buyer)
    assert api.post(url, {"reason": "cold"}, format="json").status_code == 404
    assert not Refund.objects.exists()
    # Staff: the line's total goes back, and exactly its commission leaves the revenue
    api.force_authenticate(staff)
    response = api.post(url, {"reason": "The latte was cold."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["amount"] == line.line_total == 2_500
    payment = Payment.objects.get(pk=captured.payment_id)
    assert (payment.status, payment.amount_refunded) == (Payment.Status.PARTIALLY_REFUNDED, 2_500)
    refund = Refund.objects.get()
    assert (refund.reason, refund.kind, refund.order_line_id) == (
        "The latte was cold.",
        Refund.Kind.LINE,
        line.pk,
    )
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490 - line.commission == 240
    assert ledger.unbalanced_transactions() == []
    # The same line again is refused; nothing more is given back
    again = api.post(url, {"reason": "Again."}, format="json")
    assert again.status_code == 409
    assert Refund.objects.count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 2_500
    # No reason: refused
    assert api.post(url, {}, format="json").status_code == 400
