"""Commission at placement: the most specific plan in force is snapshotted onto each line (a
category can have its own), the order carries the sum, a plan changed later changes nothing already
placed; and the whole way through the sandbox over HTTP, the capture at handover books the vendor's
share and the platform's commission in the ledger, to the won."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from orders.models import Order, Status
from orders.services import order_accept, order_hand_over, order_ready
from payments import ledger
from payments.models import JournalTransaction, Payment
from tests.orders.conftest import place, put_cart
from tests.orders.factories import place as place_items
from tests.orders.test_payment_journey import APPROVE, back, checkout, pay
from tests.payments.factories import CommissionPlanFactory

pytestmark = pytest.mark.django_db


def test_each_line_keeps_the_plan_in_force_for_its_category(shop, other_shop, buyer):
    day = timedelta(days=1)
    now = timezone.now()
    # The platform's 10 % (the setting); latte's category 15 %; this vendor negotiated 8 %, and
    # 5 % on yakult's category. The most specific plan wins: vendor + category, vendor, category.
    CommissionPlanFactory(bps=1_500, category=shop.latte.category, valid_from=now - day)
    CommissionPlanFactory(bps=800, vendor=shop.vendor, valid_from=now - day)
    CommissionPlanFactory(
        bps=500, vendor=shop.vendor, category=shop.yakult.category, valid_from=now - day
    )
    # yakult ₩1,200 × 3 at 5 %; latte ₩2,500 × 1 at the vendor's 8 %
    order = place_items(
        customer=buyer.customer, vendor=shop.vendor, items=[(shop.yakult, 3), (shop.latte, 1)]
    )
    lines = {line.product_id: (line.commission_bps, line.commission) for line in order.lines.all()}
    assert lines == {shop.yakult.pk: (500, 180), shop.latte.pk: (800, 200)}
    assert (order.commission_bps, order.commission, order.platform_fee) == (800, 380, 0)
    # Another vendor pays the category's rate on latte and the platform's on the rest
    theirs = place_items(
        customer=buyer.customer,
        vendor=other_shop.vendor,
        items=[(other_shop.latte, 2), (other_shop.yakult, 1)],
    )
    other_lines = {line.product_id: line.commission_bps for line in theirs.lines.all()}
    assert other_lines[other_shop.yakult.pk] == 1_000
    assert (
        theirs.commission
        == (750 if other_shop.latte.category_id == shop.latte.category_id else 500) + 120
    )
    # A new plan from now on changes nothing already placed
    CommissionPlanFactory(bps=3_000, vendor=shop.vendor, valid_from=timezone.now())
    order.refresh_from_db()
    assert order.commission == 380
    later = place_items(customer=buyer.customer, vendor=shop.vendor, items=[(shop.latte, 1)])
    assert (later.commission_bps, later.commission) == (3_000, 750)


def test_a_delivery_fee_follows_its_own_rule(shop, buyer, settings):
    settings.DELIVERY_FEE_TO = "platform"
    order = place(shop, buyer, fulfilment="delivery")
    assert order.delivery_fee > 0
    assert order.platform_fee == order.delivery_fee
    assert order.commission == 240  # 10 % of the items only
    settings.DELIVERY_FEE_TO = "vendor"
    order = place(shop, buyer, fulfilment="delivery")
    assert order.platform_fee == 0


@pytest.mark.django_db(transaction=True)
def test_the_capture_at_handover_books_the_split_in_the_ledger(
    live_server, settings, shop, buyer, client
):
    settings.SANDBOX_BASE_URL = settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 2, shop.latte.pk: 1})
    # Given a paid order (₩4,900 at 10 %)
    shopper = client
    shopper.defaults["SERVER_NAME"] = "localhost"
    _data, response = checkout(shopper, shop)
    back(shopper, pay(response["Location"], APPROVE))
    order = Order.objects.get()
    assert order.status == Status.PLACED
    payment = Payment.objects.get(pk=order.payment_id)
    assert (payment.vendor_id, payment.commission, payment.platform_fee) == (shop.vendor.pk, 490, 0)
    # Nothing is booked while the money is only authorised
    assert not JournalTransaction.objects.exists()
    # When the vendor hands it over
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    order_ready(order_id=order.pk, vendor=shop.vendor)
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    # Then the money is captured and split, to the won
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED
    # (the provider keeps its fee, 2.5 % of ₩4,900 rounded half-up: the platform bears it)
    assert ledger.balance(ledger.PROVIDER_FEES) == 123
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 4_900 - 123
    assert ledger.vendor_payable(shop.vendor.pk) == 4_410
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490
    assert ledger.unbalanced_transactions() == []
    assert urlsplit(live_server.url).hostname
