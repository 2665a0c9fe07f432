"""A commitment's money (issue 15, item 4): the price advantage the platform pays the vendor on
each regular delivery, and the fee for ending a commitment early, each through the ledger with its
own account, on the customer's receipt and the vendor's statement. Over the live sandbox (real
HTTP), as the delivery flow's tests."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from o2o.effects import effects_run
from o2o.models import Effect
from payments import ledger
from payments.models import JournalKind, Payment, Settlement, SettlementLine
from payments.services import payment_refund
from payments.settlement import period_of, settlement_create
from payments.statements import statement_build, statement_csv
from subscriptions.fees import cancellation_fee_charge, fee_waive
from subscriptions.models import Subscription
from subscriptions.round import round_act
from subscriptions.services import subscription_cancel
from tests.factories import UserFactory
from tests.payments.conftest import APPROVE, DECLINE, INSUFFICIENT
from tests.subscriptions.test_delivery_flow import regular
from tests.subscriptions.test_round import on_round, tap

live = pytest.mark.django_db(transaction=True)
FEE = Subscription.FeeStatus
COMMIT = {
    "plan": "commit_3m",
    "discount_bps": 500,
    "cancel_fee_bps": 1000,
}


@pytest.fixture
def no_kick(monkeypatch):
    """Effects wait for the test to run them (effects_run), instead of running at commit."""
    monkeypatch.setattr("o2o.effects.effects_kick", lambda keys: None)


def committed(number=APPROVE, **kwargs):
    """A 3-month commitment at 5 % off 2 × 1 250 won (63 off each unit: 126 a delivery)."""
    today = timezone.localdate()
    return regular(
        number,
        unit_price=1_250,
        commitment_ends_on=today + timedelta(days=90),
        **COMMIT,
        **kwargs,
    )


def delivered(sub):
    order, vendor = on_round(sub)
    round_act(vendor=vendor, tap=tap(order.pk))
    return order, Payment.objects.get(order_id=order.pk)


def balances(vendor_id):
    return (
        ledger.balance(ledger.SUBSCRIPTION_ADVANTAGE),
        ledger.vendor_payable(vendor_id),
        ledger.balance(ledger.COMMISSION_REVENUE),
    )


# --- the price advantage --------------------------------------------------------------------------


@live
def test_the_vendor_is_paid_the_list_price_the_platform_paying_the_advantage(sandbox):
    sub, _product = committed()
    order, payment = delivered(sub)
    # The customer paid the plan's price; the payment knows what the plan saved them
    assert payment.status == Payment.Status.CAPTURED
    assert (payment.amount, payment.price_advantage) == (order.total, 126)
    # The vendor is owed what it would be at the list price, less the commission on what was paid
    advantage, payable, commission = balances(sub.vendor_id)
    assert advantage == 126
    assert payable == payment.amount - payment.commission - payment.platform_fee + 126
    assert commission == payment.commission
    # In the commission journal, beside the vendor's share; the ledger balances
    split = payment.journal.get(kind=JournalKind.COMMISSION)
    codes = {e.account.code: (e.side, e.amount) for e in split.entries.all()}
    assert codes[ledger.SUBSCRIPTION_ADVANTAGE] == ("D", 126)
    assert ledger.unbalanced_transactions() == []


@live
def test_a_cancel_anytime_delivery_has_no_advantage_and_no_advantage_entry(sandbox):
    sub, _product = regular(unit_price=1_250)
    _order, payment = delivered(sub)
    assert payment.price_advantage == 0
    assert ledger.balance(ledger.SUBSCRIPTION_ADVANTAGE) == 0
    assert not payment.journal.filter(entries__account__code=ledger.SUBSCRIPTION_ADVANTAGE).exists()


@live
def test_refunds_take_the_advantage_back_pro_rata_and_all_of_it_at_the_end(sandbox):
    sub, _product = committed()
    _order, payment = delivered(sub)
    # Half of what was paid comes back: half of the advantage goes back too (half-up)
    half = payment.amount // 2
    payment_refund(payment_id=payment.pk, amount=half, reason="half")
    expected_back = (2 * 126 * half + payment.amount) // (2 * payment.amount)
    advantage, payable, _commission = balances(sub.vendor_id)
    assert advantage == 126 - expected_back
    # The rest: nothing of the advantage is left, the vendor is owed nothing for this order
    payment_refund(payment_id=payment.pk, amount=payment.amount - half, reason="rest")
    advantage, payable, commission = balances(sub.vendor_id)
    assert (advantage, payable, commission) == (0, 0, 0)
    assert ledger.unbalanced_transactions() == []


@live
def test_the_statement_shows_the_advantage_and_agrees_with_the_settlement(sandbox):
    sub, _product = committed()
    _order, payment = delivered(sub)
    period = period_of(timezone.now())
    settlement = settlement_create(vendor_id=sub.vendor_id, period=period)
    assert settlement is not None
    settlement = Settlement.objects.get(pk=settlement.pk)
    [line] = SettlementLine.objects.filter(settlement=settlement)
    assert line.price_advantage == 126
    assert line.net == line.gross - line.commission - line.delivery_fee + 126
    assert settlement.price_advantage == 126
    assert settlement.net == ledger.vendor_payable(sub.vendor_id)
    statement = statement_build(settlement=settlement)
    assert statement.agrees and statement.totals.price_advantage == 126
    assert statement.lines[0].price_advantage == 126
    csv = statement_csv(statement).decode()
    header, row = csv.splitlines()[:2]
    assert "price_advantage" in header.split(",")
    assert row.split(",")[header.split(",").index("price_advantage")] == "126"


@live
def test_the_receipt_and_the_api_show_what_the_commitment_saved(sandbox):
    sub, _product = committed()
    order, _payment = delivered(sub)
    client = Client()
    client.force_login(sub.customer.user)
    page = client.get(f"/orders/{order.pk}/receipt/")
    assert page.status_code == 200
    assert "saved you ₩126" in page.content.decode()
    data = client.get(f"/api/orders/{order.pk}/").json()
    assert data["price_advantage"] == 126


@live
def test_the_vendors_earnings_show_the_advantage_and_still_add_up(sandbox):
    from payments.earnings import order_movements, order_total

    sub, _product = committed()
    order, payment = delivered(sub)
    total = order_total(order_movements(vendor_id=sub.vendor_id, order_id=order.pk))
    assert total.price_advantage == 126 and total.gross == payment.amount
    assert total.net == total.gross - total.commission - total.refunds + 126
    assert total.net == ledger.vendor_payable(sub.vendor_id)
    client = Client()
    client.force_login(sub.vendor.user)
    page = client.get(f"/payments/earnings/orders/{order.pk}/")
    assert page.status_code == 200
    assert 'data-field="price_advantage"' in page.content.decode()


# --- the cancellation fee -------------------------------------------------------------------------


def cancel(sub):
    return subscription_cancel(subscription_id=sub.pk, customer=sub.customer)


def run_fee(sub, attempt=1, now=None):
    return effects_run(keys=[f"subscription:{sub.pk}:fee:{attempt}"], now=now)


def fee_payment(sub):
    return Payment.objects.filter(subscription_id=sub.pk).first()


@live
def test_the_fee_is_charged_once_and_booked_as_the_platforms_revenue(sandbox, no_kick):
    sub, _product = committed()
    cancelled = cancel(sub)
    assert cancelled.cancellation_fee > 0 and cancelled.fee_status == FEE.CHARGING
    # The charge is a durable effect written with the cancel; run it (twice: still one charge)
    run_fee(sub)
    assert cancellation_fee_charge_again(sub) == "not charged"
    sub.refresh_from_db()
    assert sub.fee_status == FEE.PAID
    payment = fee_payment(sub)
    assert payment.purpose == Payment.Purpose.CANCELLATION_FEE and payment.order_id is None
    assert payment.status == Payment.Status.CAPTURED
    assert payment.amount_captured == sub.cancellation_fee
    # Its own account; the vendor's payable is untouched; the ledger balances
    assert ledger.balance(ledger.CANCELLATION_FEE_REVENUE) == sub.cancellation_fee
    assert ledger.vendor_payable(sub.vendor_id) == 0
    assert ledger.balance(ledger.CUSTOMER_FUNDS) == 0
    assert ledger.unbalanced_transactions() == []
    # A receipt by e-mail, and partners hear of it
    effects_run(kinds=["subscription.notify"])
    [receipt] = [m for m in mail.outbox if "Receipt" in m.subject]
    assert sub.customer.user.email in receipt.to and "ending 4242" in receipt.body
    assert Effect.objects.filter(
        kind="event.publish", payload__type="subscription.fee_charged"
    ).exists()
    # The customer's page shows it paid
    client = Client()
    client.force_login(sub.customer.user)
    page = client.get(f"/subscriptions/{sub.pk}/").content.decode()
    assert 'data-testid="cancellation-fee"' in page and "Charged on" in page


def cancellation_fee_charge_again(sub):
    try:
        cancellation_fee_charge(subscription_id=sub.pk, attempt=1)
    except Exception as exc:  # FeeNotCharged: the fee is paid
        return "not charged" if "paid" in str(exc) else repr(exc)
    return "charged again"


@live
def test_a_hard_decline_leaves_the_fee_unpaid_and_tells_the_customer(sandbox, no_kick):
    sub, _product = committed(DECLINE)
    cancel(sub)
    run_fee(sub)
    sub.refresh_from_db()
    assert sub.fee_status == FEE.UNPAID and "declined" in sub.fee_note
    assert ledger.balance(ledger.CANCELLATION_FEE_REVENUE) == 0
    assert not Effect.objects.filter(key=f"subscription:{sub.pk}:fee:2").exists()
    effects_run(kinds=["subscription.notify"])
    assert [m for m in mail.outbox if "could not charge the fee" in m.subject]


@live
def test_a_soft_decline_is_tried_again_and_a_waiver_stops_it(sandbox, no_kick):
    sub, _product = committed(INSUFFICIENT)
    cancel(sub)
    run_fee(sub)
    sub.refresh_from_db()
    assert sub.fee_status == FEE.CHARGING and "try 1 declined" in sub.fee_note
    retry = Effect.objects.get(key=f"subscription:{sub.pk}:fee:2")
    assert retry.next_attempt_at > timezone.now() + timedelta(minutes=50)
    # Staff waive it before the retry: the retry charges nothing
    fee_waive(subscription_id=sub.pk, actor=UserFactory(is_staff=True), reason="goodwill")
    run_fee(sub, attempt=2, now=retry.next_attempt_at + timedelta(seconds=1))
    sub.refresh_from_db()
    assert sub.fee_status == FEE.WAIVED
    assert fee_payment(sub).status == Payment.Status.PENDING
    assert ledger.balance(ledger.CANCELLATION_FEE_REVENUE) == 0


@live
def test_without_a_usable_card_the_fee_is_unpaid_not_stuck(sandbox, no_kick):
    sub, _product = committed(None)
    cancel(sub)
    run_fee(sub)
    sub.refresh_from_db()
    assert sub.fee_status == FEE.UNPAID and "no card" in sub.fee_note
    assert fee_payment(sub) is None


@live
def test_a_fee_given_back_by_staff_leaves_the_revenue_account(sandbox, no_kick):
    sub, _product = committed()
    cancel(sub)
    run_fee(sub)
    payment = fee_payment(sub)
    payment_refund(payment_id=payment.pk, amount=payment.amount_captured, reason="goodwill")
    assert ledger.balance(ledger.CANCELLATION_FEE_REVENUE) == 0
    assert ledger.balance(ledger.REFUNDS) == 0
    assert ledger.unbalanced_transactions() == []
    # No order was told anything (there is none)
    assert (
        not Effect.objects.filter(kind="payment.status_changed")
        .filter(payload__payment_id=payment.pk)
        .exists()
    )


@pytest.mark.django_db
def test_only_staff_waive_and_only_a_fee_not_yet_paid():
    from o2o.errors import DomainError
    from tests.subscriptions.factories import SubscriptionFactory

    sub = SubscriptionFactory(
        status="cancelled", cancelled_at=timezone.now(), cancellation_fee=500, fee_status=FEE.PAID
    )
    staff = UserFactory(is_staff=True)
    with pytest.raises(DomainError, match="Only staff"):
        fee_waive(subscription_id=sub.pk, actor=UserFactory(), reason="x")
    with pytest.raises(DomainError, match="Say why"):
        fee_waive(subscription_id=sub.pk, actor=staff, reason="  ")
    with pytest.raises(DomainError, match="not yet paid"):
        fee_waive(subscription_id=sub.pk, actor=staff, reason="x")
    Subscription.objects.filter(pk=sub.pk).update(fee_status=FEE.UNPAID)
    assert fee_waive(subscription_id=sub.pk, actor=staff, reason="x").fee_status == FEE.WAIVED
