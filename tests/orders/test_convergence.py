"""Convergence: orders and payments that disagree (an effect lost before this code existed, a
refusal that gave up, a payment never started) are driven to the right state by the sweep, through
the same services, over the real sandbox; what can't be fixed is a discrepancy for staff; pairs in
flight (recent, or with an effect pending) are left alone. The customer's "check again" releases
money held for an order that ended."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from o2o.invariants import check_invariants
from o2o.models import Effect
from orders.models import Order, Status
from orders.services import (
    order_cancel,
    orders_converge,
    orders_payments_disagreeing,
)
from payments import ledger
from payments.models import Discrepancy, Payment
from payments.sandbox.models import SandboxIntent
from tests.orders.test_short_lines import hand_over, paid  # noqa: F401 - the fixture

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LONG_AGO = timedelta(minutes=10)


def _lose_effects_and_age(order: Order) -> None:
    """As if the order's effects had been lost (written before effects existed, or a relay that
    never ran) and the pair had been still for a while."""
    Effect.objects.filter(status=Effect.Status.PENDING).delete()
    old = timezone.now() - LONG_AGO
    Order.objects.filter(pk=order.pk).update(updated_at=old)
    Payment.objects.filter(order_id=order.pk).update(updated_at=old)


def _payment(order: Order) -> Payment:
    return Payment.objects.get(order_id=order.pk)


def test_a_handed_over_order_whose_capture_was_lost_is_captured_and_completed(
    paid,  # noqa: F811
    shop,
    settings,
):
    # Given the provider is away at the handover: the capture effect keeps waiting
    live = settings.SANDBOX_BASE_URL
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    order = hand_over(paid, shop.vendor)
    assert order.status == Status.HANDED_OVER
    assert _payment(order).status == Payment.Status.AUTHORISED
    # And the effect is lost, and the pair has been still for minutes
    _lose_effects_and_age(order)
    found = orders_payments_disagreeing()
    assert [(d.order_id, d.problem) for d in found] == [(order.pk, "handed_over_not_captured")]
    assert not check_invariants().ok
    # When the provider is back and the sweep runs
    settings.SANDBOX_BASE_URL = live
    assert orders_converge() == {"found": 1, "fixed": 1, "failed": 0, "abandoned": 0}
    # Then the money is captured once and the order completed; everything agrees
    order.refresh_from_db()
    payment = _payment(order)
    assert (order.status, payment.status) == (Status.COMPLETED, Payment.Status.CAPTURED)
    assert SandboxIntent.objects.get(pk=payment.provider_ref).amount_captured == payment.amount
    assert ledger.unbalanced_transactions() == []
    assert orders_payments_disagreeing(grace=timedelta(0)) == []
    # And a second sweep finds nothing
    assert orders_converge()["found"] == 0


def test_an_ended_order_with_money_still_held_is_voided(paid, shop, buyer, settings):  # noqa: F811
    from orders.services import order_staff_cancel
    from tests.factories import StaffFactory

    # Given staff cancel the order while the provider is away (the void waits), and the void's
    # effect is then lost
    live = settings.SANDBOX_BASE_URL
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    order = order_staff_cancel(order_id=paid.pk, actor=StaffFactory(), reason="duplicate")
    payment = _payment(order)
    assert payment.status == Payment.Status.AUTHORISED
    _lose_effects_and_age(order)
    assert [d.problem for d in orders_payments_disagreeing()] == ["ended_money_held"]
    # When the provider is back and the sweep runs
    settings.SANDBOX_BASE_URL = live
    assert orders_converge()["fixed"] == 1
    # Then the authorisation is released at the provider and here
    assert _payment(order).status == Payment.Status.VOIDED
    assert SandboxIntent.objects.get(pk=payment.provider_ref).status == "voided"
    assert check_invariants(grace=timedelta(0)).ok, check_invariants().problems


def test_the_customers_check_again_releases_money_held_for_an_ended_order(
    paid,  # noqa: F811
    shop,
    buyer,
):
    # Given a cancelled order whose money is still authorised (the void never happened)
    order = Order.objects.get(pk=paid.pk)
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, reason="gone")
    Effect.objects.filter(status=Effect.Status.PENDING).delete()
    assert _payment(order).status == Payment.Status.AUTHORISED
    # When the customer presses "check again"
    api = APIClient()
    api.force_authenticate(buyer)
    response = api.post(f"/api/orders/{order.pk}/payment/refresh/")
    # Then the money is given back
    assert response.status_code == 200, response.content
    assert _payment(order).status == Payment.Status.VOIDED


def test_a_paid_order_still_waiting_is_placed_and_a_failed_one_fails(shop, buyer):
    from tests.orders.conftest import place
    from tests.payments.factories import PaymentFactory

    # Given two orders waiting for payment whose payments were decided but never told
    paid_one, failed_one = place(shop, buyer), place(shop, buyer)
    for order, status in ((paid_one, "authorised"), (failed_one, "failed")):
        payment = PaymentFactory(order_id=order.pk, amount=order.total, status=status)
        Order.objects.filter(pk=order.pk).update(payment_id=payment.pk)
        _lose_effects_and_age(order)
    # When the sweep runs
    counts = orders_converge()
    # Then the paid order is placed (the vendor sees it) and the failed one failed (stock back)
    assert counts["fixed"] == 2
    assert Order.objects.get(pk=paid_one.pk).status == Status.PLACED
    assert Order.objects.get(pk=failed_one.pk).status == Status.FAILED
    assert shop.stock()[shop.yakult.sku] == 10 - 2


def test_a_payment_never_started_at_the_provider_fails_once_its_window_is_over(
    shop, buyer, settings
):
    from tests.orders.conftest import place
    from tests.payments.factories import PaymentFactory

    # Given an order whose payment row exists but whose intent was never created
    order = place(shop, buyer)
    payment = PaymentFactory(order_id=order.pk, amount=order.total, provider_ref="")
    assert payment.status == Payment.Status.PENDING
    # When the sweep runs within the payment window: nothing happens
    assert orders_converge()["abandoned"] == 0
    # When it runs after the window and the grace
    later = timezone.now() + timedelta(
        minutes=settings.ORDER_PAYMENT_MINUTES, seconds=settings.CONVERGE_GRACE_SECONDS + 1
    )
    assert orders_converge(now=later)["abandoned"] == 1
    # Then the payment failed, and the order followed (its status effect ran)
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED
    assert Order.objects.get(pk=order.pk).status == Status.FAILED


def test_pairs_in_flight_are_left_alone(paid, shop, settings):  # noqa: F811
    # Given a handover whose capture is waiting for the provider (its effect pending)
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    order = hand_over(paid, shop.vendor)
    assert Effect.objects.filter(key=f"order:{order.pk}:capture", status="pending").exists()
    # Then it is not a disagreement, however old: the effect is on it
    old = timezone.now() - LONG_AGO
    Order.objects.filter(pk=order.pk).update(updated_at=old)
    Payment.objects.filter(order_id=order.pk).update(updated_at=old)
    assert orders_payments_disagreeing() == []
    # And without the effect, a recent change is not one either (within the grace)
    Effect.objects.filter(status="pending").delete()
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now())
    assert orders_payments_disagreeing() == []


def test_what_the_sweep_cannot_fix_is_a_discrepancy_for_staff(paid, shop, settings):  # noqa: F811
    # Given a handover while the provider is away (the capture waits), the capture's effect lost,
    # and the authorisation lapsed at the provider meanwhile
    live = settings.SANDBOX_BASE_URL
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    order = hand_over(paid, shop.vendor)
    payment = _payment(order)
    SandboxIntent.objects.filter(pk=payment.provider_ref).update(status="voided")
    _lose_effects_and_age(order)
    settings.SANDBOX_BASE_URL = live
    # When the sweep runs
    counts = orders_converge()
    # Then it could not capture, and staff have a discrepancy about the order
    assert counts["failed"] == 1, counts
    found = Discrepancy.objects.get(kind=Discrepancy.Kind.ORDER_PAYMENT_MISMATCH)
    assert found.object_ref == f"order:{order.pk}"
    # And running again does not open a second one
    _lose_effects_and_age(order)
    orders_converge()
    assert Discrepancy.objects.filter(kind=Discrepancy.Kind.ORDER_PAYMENT_MISMATCH).count() == 1


def test_a_customer_cancel_writes_its_void_with_it(paid, buyer):  # noqa: F811
    # The void is a row of the cancel's own transaction, done right after its commit
    Order.objects.filter(pk=paid.pk).update(status=Status.PLACED)
    order_cancel(order_id=paid.pk, customer=buyer.customer)
    effect = Effect.objects.get(key=f"order:{paid.pk}:money_return")
    assert effect.status == Effect.Status.DONE
    assert _payment(paid).status == Payment.Status.VOIDED


def test_the_nightly_reconciliation_reports_old_disagreements_without_touching_them(shop, buyer):
    from orders.services import orders_reconcile
    from tests.orders.conftest import place
    from tests.payments.factories import PaymentFactory

    # Given an order from a month ago that still waits while its payment was authorised
    order = place(shop, buyer)
    payment = PaymentFactory(order_id=order.pk, amount=order.total, status="authorised")
    _lose_effects_and_age(order)
    month_ago = timezone.now() - timedelta(days=30)
    Order.objects.filter(pk=order.pk).update(updated_at=month_ago)
    Payment.objects.filter(pk=payment.pk).update(updated_at=month_ago)
    # Then the minute-by-minute sweep (recent orders only) leaves it alone
    assert orders_converge()["found"] == 0
    # And the nightly check reports it, changing nothing, once however often it runs
    assert orders_reconcile() == 1
    assert orders_reconcile() == 1
    found = Discrepancy.objects.get(kind=Discrepancy.Kind.ORDER_PAYMENT_MISMATCH)
    assert (found.object_ref, found.detail) == (f"order:{order.pk}", "paid_order_waiting")
    assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT
