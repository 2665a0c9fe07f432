"""The customer sees every refund of their order, over the sandbox for real: on the order page, on
the receipt (with the net total paid), in the API, and by one e-mail per refund made, even when the
provider's word about it arrives twice."""

import pytest
from django.core import mail
from django.db import transaction
from rest_framework.test import APIClient

from o2o.models import Effect
from orders.models import Order
from orders.receipts import order_refunds
from orders.services import order_line_refund
from payments import services as payment_services
from payments.gateways.base import GatewayRefused, GatewayUnavailable
from payments.models import Payment, Refund
from tests.orders import test_problems

pytestmark = pytest.mark.django_db(transaction=True)
# The buyer's order (yakult × 2, latte × 1: ₩4,900), paid, handed over and captured at the sandbox.
captured = test_problems.captured

REASON = "The latte was cold."


def refund_mails() -> list:
    """The refund e-mails sent (in the site's language: found by the staff's reason they quote)."""
    return [m for m in mail.outbox if REASON in m.body]


def latte(order: Order):
    return order.lines.get(product__sku__startswith="latte")  # ₩2,500 of the ₩4,900


def refund_latte(order: Order, staff) -> Refund:
    return order_line_refund(order_id=order.pk, line_id=latte(order).pk, actor=staff, reason=REASON)


def test_the_order_page_shows_a_staff_line_refund_and_the_net_paid(captured, staff, client):
    # Given the buyer's captured order of ₩4,900, and before any refund no refund section
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert 'data-testid="refunds"' not in client.get(f"/orders/{captured.pk}/").content.decode()

    # When staff refund its latte line
    refund = refund_latte(captured, staff)
    assert refund.status == Refund.Status.SUCCEEDED

    # Then the customer's page lists it: what, how much, why, when, its status, and the totals
    html = client.get(f"/orders/{captured.pk}/").content.decode()
    assert 'data-testid="refunds"' in html
    assert f"Item refunded: {latte(captured).name_en}" in html
    assert "−₩2,500" in html
    assert REASON in html
    assert ">Refunded</span>" in html
    assert 'data-testid="refunded-total">−₩2,500<' in html
    assert 'data-testid="net-paid"><strong>₩2,400</strong>' in html


def test_the_receipt_lists_the_refund_and_the_net_total_paid(captured, staff, client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    before = client.get(f"/orders/{captured.pk}/receipt/").content.decode()
    assert 'data-testid="net-paid">₩4,900<' in before

    refund_latte(captured, staff)

    receipt = client.get(f"/orders/{captured.pk}/receipt/")
    assert receipt.status_code == 200
    html = receipt.content.decode()
    assert f"Item refunded: {latte(captured).name_en}" in html
    assert 'data-testid="net-paid"><strong>₩2,400</strong>' in html
    assert "nothing was charged" not in html


def test_the_receipt_in_korean(captured, staff, client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ko"
    refund_latte(captured, staff)
    html = client.get(f"/orders/{captured.pk}/receipt/").content.decode()
    assert latte(captured).name_ko in html and "−₩2,500" in html


def test_the_api_gives_the_refunds_and_the_totals(captured, staff, buyer, stranger):
    api = APIClient(headers={"accept-language": "en"})
    api.force_authenticate(buyer)
    body = api.get(f"/api/orders/{captured.pk}/").json()
    assert (body["refunds"], body["refunded_total"], body["net_total"]) == ([], 0, 4_900)

    refund = refund_latte(captured, staff)

    body = api.get(f"/api/orders/{captured.pk}/").json()
    assert body["refunded_total"] == 2_500 and body["net_total"] == 2_400
    [row] = body["refunds"]
    assert row["id"] == refund.pk
    assert (row["amount"], row["currency"], row["kind"], row["status"]) == (
        2_500,
        "KRW",
        "line",
        "succeeded",
    )
    assert row["reason"] == f"Item refunded: {latte(captured).name_en}"
    assert row["detail"] == REASON and row["status_label"] == "Refunded"
    assert row["order_line_id"] == latte(captured).pk and row["succeeded_at"]
    # Nobody else's business
    api.force_authenticate(stranger)
    assert api.get(f"/api/orders/{captured.pk}/").status_code == 404


def test_the_schema_documents_the_refund_fields(client):
    schema = client.get("/api/schema/?format=json").json()
    detail = schema["components"]["schemas"]["OrderDetailOut"]["properties"]
    assert {"refunds", "refunded_total", "net_total"} <= set(detail)
    refund = schema["components"]["schemas"]["RefundOut"]["properties"]
    assert {"amount", "currency", "kind", "reason", "status", "created_at"} <= set(refund)


def test_one_email_per_refund_even_when_its_success_is_processed_twice(captured, staff):
    mail.outbox.clear()

    refund = refund_latte(captured, staff)

    [sent] = refund_mails()
    assert sent.to == [captured.customer.user.email]
    assert "₩2,500" in sent.body and REASON in sent.body and "₩2,400" in sent.body
    assert Effect.objects.filter(kind="order.email", key=f"refund:{refund.pk}:email").count() == 1
    # When the provider's word arrives again (a sync, and the success applied once more)
    payment_services.payment_sync(payment_id=captured.payment_id)
    payment = Payment.objects.get(pk=captured.payment_id)
    with transaction.atomic():
        again = payment_services._refund_succeeded(
            payment, refund_id=refund.pk, provider_ref=refund.provider_ref
        )
    # Then nothing is booked or sent a second time
    assert again is False
    assert len(refund_mails()) == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 2_500


def test_a_pending_refund_shows_on_its_way_and_is_mailed_once_made(
    captured,
    staff,
    client,
    monkeypatch,
):
    # Given a provider that does not answer: the refund stays pending, nothing mailed
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    mail.outbox.clear()
    real = payment_services._gateway

    class Silent:
        def refund(self, **kwargs):
            raise GatewayUnavailable("timeout")

    monkeypatch.setattr(payment_services, "_gateway", lambda payment: Silent())
    with pytest.raises(payment_services.PaymentUnavailable):
        refund_latte(captured, staff)
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.PENDING
    html = client.get(f"/orders/{captured.pk}/").content.decode()
    assert "On its way" in html and "Refund on its way" in html
    assert order_refunds(order=captured).net_total == 4_900
    assert refund_mails() == []

    # When the provider answers again, the sync sends it with the same key; twice does no harm
    monkeypatch.setattr(payment_services, "_gateway", real)
    payment_services.payment_sync(payment_id=captured.payment_id)
    payment_services.payment_sync(payment_id=captured.payment_id)

    # Then it is made, shown as refunded, and mailed once
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert len(refund_mails()) == 1
    assert order_refunds(order=captured).net_total == 2_400


def test_a_refused_refund_shows_as_failed_and_is_not_mailed(
    captured,
    staff,
    client,
    monkeypatch,
):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    mail.outbox.clear()

    class Refusing:
        def refund(self, **kwargs):
            raise GatewayRefused("card_closed", "The card is closed.")

    monkeypatch.setattr(payment_services, "_gateway", lambda payment: Refusing())
    with pytest.raises(payment_services.PaymentRefused):
        refund_latte(captured, staff)
    html = client.get(f"/orders/{captured.pk}/").content.decode()
    assert "Failed: our team is on it" in html
    assert 'data-testid="refunded-total"' not in html
    assert refund_mails() == []
