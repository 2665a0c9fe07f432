"""Each due delivery exactly once (subscriptions/delivery.py): the evening notice, the morning
order and its off-session charge over the live sandbox (real HTTP, as tests/payments/test_vault.py),
retries, failures that pause the subscription, a pause racing the charge on real PostgreSQL
connections, and the nightly completeness check."""

import threading
import time as clock
from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from o2o.effects import effects_run
from o2o.models import Effect
from orders.models import Order, Status
from payments.models import CardCharge, Discrepancy, Payment, SavedCard
from payments.sandbox.models import SandboxIntent
from subscriptions import delivery as flow
from subscriptions.models import Delivery, Subscription
from subscriptions.services import subscription_pause
from tests.factories import AddressFactory, CustomerProfileFactory
from tests.payments.conftest import APPROVE, DECLINE, INSUFFICIENT
from tests.payments.test_vault import AUTH_LATER, save_card
from tests.subscriptions.factories import (
    SubscriptionFactory,
    SubscriptionItemFactory,
    stocked,
    working_vendor,
)
from vendors.models import Stock

live = pytest.mark.django_db(transaction=True)
D = Delivery.Status


@pytest.fixture
def no_kick(monkeypatch):
    """Effects wait for the test to run them (effects_run), instead of running at commit."""
    monkeypatch.setattr("o2o.effects.effects_kick", lambda keys: None)


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


def five_am(day):
    return datetime.combine(day, time(5, 0), tzinfo=timezone.get_current_timezone())


def regular(number=APPROVE, *, quantity=2, unit_price=1000, stock=10, **kwargs):
    """A customer's every-day subscription (started today) to 2 × a product at 1 000 KRW
    (the catalogue says 1 200 now), paid with a card saved on the sandbox's page."""
    vendor = working_vendor(weekdays=range(7), delivery_fee=500)
    product = stocked(vendor, price=1200)
    Stock.objects.filter(vendor=vendor, product=product).update(quantity=stock)
    customer = CustomerProfileFactory()
    card = save_card(customer, number) if number else None
    sub = SubscriptionFactory(
        customer=customer,
        vendor=vendor,
        address=AddressFactory(customer=customer),
        starts_on=timezone.localdate(),
        weekdays=0b1111111,
        card=card,
        **kwargs,
    )
    SubscriptionItemFactory(
        subscription=sub, product=product, quantity=quantity, unit_price=unit_price
    )
    return sub, product


def stock_of(product):
    return Stock.objects.get(product=product).quantity


def prepared_and_placed(sub):
    """The evening run, then the morning run, for tomorrow; the day's Delivery."""
    flow.deliveries_prepare(on=tomorrow())
    flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow()))
    return Delivery.objects.get(subscription=sub, date=tomorrow())


def emails_to(sub, subject_part):
    return [m for m in mail.outbox if sub.customer.user.email in m.to and subject_part in m.subject]


# --- the evening notice ---------------------------------------------------------------------------------


@live
def test_the_evening_run_makes_the_delivery_and_tells_the_customer_once():
    sub, _product = regular(number=None)
    # When the evening run goes twice
    first = flow.deliveries_prepare(on=tomorrow())
    again = flow.deliveries_prepare(on=tomorrow())
    # Then one Delivery, one notice, with what comes and what it costs (2 × 1 000 + 500)
    assert (first.due, first.noticed) == (1, 1)
    assert (again.due, again.noticed) == (0, 0)
    assert Delivery.objects.get(subscription=sub).status == D.DUE
    notices = emails_to(sub, "regular delivery on")
    assert len(notices) == 1
    body = notices[0].body
    assert "× 2" in body and "2,500" in body and f"/subscriptions/{sub.pk}/" in body


# --- the morning order and its charge ------------------------------------------------------------------


@live
def test_the_morning_run_orders_and_charges_each_delivery_once(sandbox):
    sub, product = regular()
    delivery = prepared_and_placed(sub)
    # Then the order is made at the subscription's prices and paid: PLACED, money authorised
    assert delivery.status == D.ORDERED
    order = Order.objects.get(pk=delivery.order_id)
    assert order.status == Status.ACCEPTED  # paid, then accepted for the round
    assert (order.subtotal, order.delivery_fee, order.total) == (2000, 500, 2500)
    assert (
        order.fulfilment == "delivery"
        and timezone.localtime(order.window_start).date() == tomorrow()
    )
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.amount) == (Payment.Status.AUTHORISED, 2500)
    assert order.payment_id == payment.pk
    assert stock_of(product) == 8
    # And again: nothing new
    assert flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow())) == {}
    assert flow.delivery_place(delivery_id=delivery.pk) == ""
    assert Order.objects.count() == 1 and CardCharge.objects.count() == 1
    assert SandboxIntent.objects.count() == 1


@live
def test_two_morning_runs_at_once_order_and_charge_once(sandbox):
    sub, product = regular()
    flow.deliveries_prepare(on=tomorrow())
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow()))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert Order.objects.count() == 1 and CardCharge.objects.count() == 1
    assert Order.objects.get().status == Status.ACCEPTED
    assert stock_of(product) == 8


@live
def test_short_stock_supplies_what_there_is_and_charges_only_that(sandbox):
    sub, product = regular(stock=1)
    delivery = prepared_and_placed(sub)
    order = Order.objects.get(pk=delivery.order_id)
    assert delivery.status == D.ORDERED and "supplied only" in delivery.reason
    assert [(line.quantity, line.unit_price) for line in order.lines.all()] == [(1, 1000)]
    assert Payment.objects.get(order_id=order.pk).amount == 1500
    assert stock_of(product) == 0


@live
def test_short_stock_with_nothing_there_or_the_skip_policy_skips_uncharged():
    supply, _p1 = regular(number=None, stock=0)
    skip, product = regular(number=None, stock=1, shortage_policy=Subscription.Shortage.SKIP)
    Subscription.objects.filter(pk__in=[supply.pk, skip.pk]).update(card=None)
    flow.deliveries_prepare(on=tomorrow())
    done = flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow()))
    assert done == {"skipped": 2}
    for sub in (supply, skip):
        delivery = Delivery.objects.get(subscription=sub)
        assert delivery.status == D.SKIPPED and delivery.order_id is None
        assert "stock" in delivery.reason
    assert stock_of(product) == 1 and not Order.objects.exists()
    # Each customer is told, once, that nothing comes and nothing is charged
    effects_run(kinds=["subscription.email"])
    effects_run(kinds=["subscription.email"])
    for sub in (supply, skip):
        [sent] = [m for m in emails_to(sub, "No regular delivery") if "not enough" in m.body]
        assert "Nothing was charged" in sent.body and f"/subscriptions/{sub.pk}/" in sent.body


@live
def test_a_soft_decline_is_tried_again_later_and_can_succeed(sandbox):
    sub, _product = regular(INSUFFICIENT)
    delivery = prepared_and_placed(sub)
    # The first try was declined (soft): the order waits, the next try is written for later
    order = Order.objects.get(pk=delivery.order_id)
    assert order.status == Status.PENDING_PAYMENT
    assert delivery.status == D.ORDERED and "try 1 declined" in delivery.reason
    retry = Effect.objects.get(key=f"delivery:{delivery.pk}:charge:2")
    assert retry.next_attempt_at > timezone.now() + timedelta(minutes=50)
    assert order.expires_at > retry.next_attempt_at  # the payment may take until the window ends
    # The customer saves a card that works; at the retry's time it is charged
    good = save_card(sub.customer, APPROVE)
    Subscription.objects.filter(pk=sub.pk).update(card=good)
    effects_run(keys=[retry.key], now=retry.next_attempt_at + timedelta(seconds=1))
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED  # paid, then accepted for the round
    assert Payment.objects.get(order_id=order.pk).status == Payment.Status.AUTHORISED
    assert list(CardCharge.objects.order_by("pk").values_list("idempotency_key", "outcome")) == [
        (f"delivery-{delivery.pk}-try-1", CardCharge.Outcome.DECLINED),
        (f"delivery-{delivery.pk}-try-2", CardCharge.Outcome.AUTHORISED),
    ]


@pytest.mark.parametrize(
    "number,words,link",
    [(DECLINE, "card declined", False), (AUTH_LATER, "must confirm", True)],
)
@live
def test_a_card_that_cant_be_charged_fails_the_delivery_and_pauses(sandbox, number, words, link):
    sub, product = regular(number)
    delivery = prepared_and_placed(sub)
    # The delivery failed with the reason; its order ended and the stock is back
    assert delivery.status == D.FAILED and words in delivery.reason
    order = Order.objects.get(pk=delivery.order_id)
    assert order.status == Status.FAILED
    assert stock_of(product) == 10
    # Nothing was charged
    assert Payment.objects.get(order_id=order.pk).status not in (
        Payment.Status.AUTHORISED,
        Payment.Status.CAPTURED,
    )
    # The subscription is paused, with why; the customer is told how to fix it
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAUSED and words in sub.pause_reason
    sent = emails_to(sub, "could not take the payment")
    assert len(sent) == 1 and "/payments/cards/" in sent[0].body
    action_url = CardCharge.objects.get().action_url
    assert bool(action_url) == link
    if link:
        assert action_url in sent[0].body
    # No second try is written
    assert not Effect.objects.filter(key=f"delivery:{delivery.pk}:charge:2").exists()


@live
def test_a_pause_racing_the_charge_is_never_charged(sandbox, no_kick):
    sub, product = regular()
    flow.deliveries_prepare(on=tomorrow())
    flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow()))
    delivery = Delivery.objects.get(subscription=sub)
    key = f"delivery:{delivery.pk}:charge:1"
    assert delivery.status == D.ORDERED and Effect.objects.filter(key=key).exists()
    paused, release, results = threading.Event(), threading.Event(), {}

    def pause():  # the customer's pause, its transaction still open
        try:
            with transaction.atomic():
                subscription_pause(subscription_id=sub.pk, customer=sub.customer, until=None)
                paused.set()
                release.wait(20)
        finally:
            connection.close()

    def charge():
        try:
            results["charge"] = effects_run(keys=[key])
        finally:
            connection.close()

    customer_thread = threading.Thread(target=pause)
    customer_thread.start()
    assert paused.wait(20)
    relay = threading.Thread(target=charge)
    relay.start()
    clock.sleep(1.0)
    assert relay.is_alive()  # waiting on the subscription's lock, nothing asked of the provider
    assert not CardCharge.objects.exists()
    release.set()
    customer_thread.join(30)
    relay.join(30)
    # The pause won: no charge at all, the order ended (stock back), the delivery cancelled
    assert results["charge"]["failed"] == 1
    assert not CardCharge.objects.exists() and not SandboxIntent.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == D.CANCELLED and "paused" in delivery.reason
    assert Order.objects.get(pk=delivery.order_id).status == Status.FAILED
    assert stock_of(product) == 10
    assert "not charged" in Effect.objects.get(key=key).last_error


# --- the completeness check ----------------------------------------------------------------------------


@live
def test_the_check_reports_a_missing_and_a_stale_delivery_once_and_is_quiet_otherwise():
    today = timezone.localdate()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    gappy, _p = regular(number=None)
    fine, _q = regular(number=None)
    Subscription.objects.filter(pk__in=[gappy.pk, fine.pk]).update(
        starts_on=days[0], schedule_from=days[0]
    )
    Delivery.objects.create(subscription=gappy, date=days[0], status=D.SKIPPED)
    Delivery.objects.create(subscription=gappy, date=days[2], status=D.DUE)  # never ordered
    for day in days:
        Delivery.objects.create(subscription=fine, date=day, status=D.CANCELLED)
    # When the check runs (twice) through yesterday
    assert flow.deliveries_check(through=days[2]) == 2
    assert flow.deliveries_check(through=days[2]) == 2
    # Then one open discrepancy per day that is not settled, none for the other subscription
    found = dict(
        Discrepancy.objects.filter(kind=Discrepancy.Kind.DELIVERY_INCOMPLETE).values_list(
            "object_ref", "actual"
        )
    )
    assert found == {
        f"subscription:{gappy.pk}:{days[1].isoformat()}": "no delivery",
        f"subscription:{gappy.pk}:{days[2].isoformat()}": "still due after its day",
    }
    # And once all is settled, it is quiet
    Delivery.objects.create(subscription=gappy, date=days[1], status=D.FAILED)
    Delivery.objects.filter(subscription=gappy, date=days[2]).update(status=D.SKIPPED)
    assert flow.deliveries_check(through=days[2]) == 0


@live
def test_a_subscription_needs_an_active_card_of_the_customer():
    from subscriptions.services import ItemIn, subscription_create
    from tests.subscriptions.factories import SavedCardFactory

    vendor = working_vendor()
    product = stocked(vendor)
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer)
    args = dict(
        customer=customer,
        vendor=vendor,
        address_id=address.pk,
        plan="anytime",
        items=[ItemIn(product_id=product.pk, quantity=1)],
        starts_on=tomorrow(),
        every_n_days=1,
    )
    theirs = SavedCardFactory()
    troubled = SavedCardFactory(customer=customer, status=SavedCard.Status.NEEDS_ATTENTION)
    for card_id, words in [
        (None, "Save a card first"),
        (theirs.pk, "Choose one of your cards"),
        (troubled.pk, "Choose one of your cards"),
    ]:
        with pytest.raises(ValidationError) as refused:
            subscription_create(**args, card_id=card_id)
        assert words in refused.value.messages[0]
    mine = SavedCardFactory(customer=customer)
    assert subscription_create(**args, card_id=mine.pk).card_id == mine.pk


@live
def test_a_paused_subscriptions_delivery_is_cancelled_in_the_morning_never_ordered():
    sub, product = regular(number=None)
    flow.deliveries_prepare(on=tomorrow())
    # Paused after the evening run (as a late staff action would: the row stays "due")
    Subscription.objects.filter(pk=sub.pk).update(
        status=Subscription.Status.PAUSED, paused_from=timezone.localdate()
    )
    assert flow.deliveries_place(on=tomorrow(), now=five_am(tomorrow())) == {"cancelled": 1}
    delivery = Delivery.objects.get(subscription=sub)
    assert delivery.status == D.CANCELLED and delivery.reason == "subscription paused"
    assert not Order.objects.exists() and stock_of(product) == 10


@live
def test_the_tasks_take_dates_and_beat_runs_them_in_korea_time(settings):
    from subscriptions import tasks

    sub, _product = regular(number=None)
    day = tomorrow().isoformat()
    assert tasks.deliveries_prepare.delay(day).get()["due"] == 1
    assert tasks.deliveries_place.delay(day).get() == {"failed": 1}  # no card to charge
    assert Delivery.objects.get(subscription=sub).status == D.FAILED
    assert tasks.deliveries_check.delay(day).get() == 0
    beat = settings.CELERY_BEAT_SCHEDULE
    assert beat["subscription-deliveries-prepare"]["schedule"].hour == {19}
    assert beat["subscription-deliveries-place"]["schedule"].hour == {5}
    assert "subscription-deliveries-check" in beat and settings.CELERY_TIMEZONE == "Asia/Seoul"


@live
def test_the_api_uses_the_default_card_and_says_when_there_is_none():
    from rest_framework.test import APIClient

    from tests.subscriptions.factories import SavedCardFactory

    vendor = working_vendor()
    product = stocked(vendor)
    customer = CustomerProfileFactory()
    api = APIClient()
    api.force_authenticate(customer.user)
    body = {
        "vendor": vendor.slug,
        "address_id": AddressFactory(customer=customer).pk,
        "plan": "anytime",
        "items": [{"product_id": product.pk, "quantity": 1}],
        "starts_on": tomorrow().isoformat(),
        "every_n_days": 2,
    }
    refused = api.post("/api/subscriptions/", body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 400 and "Save a card first" in str(refused.json())
    card = SavedCardFactory(customer=customer)
    created = api.post("/api/subscriptions/", body, format="json")
    assert created.status_code == 201, created.content
    assert Subscription.objects.get().card_id == card.pk


@live
def test_a_soft_decline_whose_next_try_would_be_too_late_is_the_last(sandbox, settings):
    settings.OFF_SESSION_RETRY_HOURS = [72]  # after the day's window: no time for another try
    sub, product = regular(INSUFFICIENT)
    delivery = prepared_and_placed(sub)
    assert delivery.status == D.FAILED and "declined 1 times" in delivery.reason
    assert not Effect.objects.filter(key=f"delivery:{delivery.pk}:charge:2").exists()
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.PAUSED and stock_of(product) == 10


def test_the_plan_price_is_what_the_notice_said_and_what_is_charged():
    from subscriptions.selectors import delivery_cost, plan_unit_price

    # 5 % off a 1 250 won unit: 62.5 rounds half-up to 63 off, 1 187 a unit, per unit
    assert plan_unit_price(unit_price=1_250, discount_bps=500) == 1_187
    assert plan_unit_price(unit_price=1_250, discount_bps=0) == 1_250
    assert plan_unit_price(unit_price=0, discount_bps=1_000) == 0

    class Item:
        def __init__(self, quantity, unit_price):
            self.quantity, self.unit_price = quantity, unit_price

    class Items(list):
        def all(self):
            return self

    class Vendor:
        delivery_fee = 1_000

    class Sub:
        discount_bps = 500
        items = Items([Item(3, 1_250), Item(1, 2_500)])
        vendor = Vendor()

    cost = delivery_cost(subscription=Sub())
    # 3 × 1 187 + 2 375 = 5 936 on the plan, 6 250 at the saved prices
    assert (cost.items, cost.discount, cost.total) == (6_250, 314, 6_936)


@live
def test_on_a_commitment_the_order_and_the_charge_are_what_the_notice_said(sandbox):
    from subscriptions.selectors import delivery_cost

    # Given a 3-month commitment at 5 % off: 2 × 1 250 won a unit
    sub, _product = regular(unit_price=1_250, discount_bps=500)
    expected = delivery_cost(subscription=sub)
    assert (expected.items, expected.discount, expected.total) == (2_500, 126, 2_874)
    # When the morning run orders and charges it
    delivery = prepared_and_placed(sub)
    order = Order.objects.get(pk=delivery.order_id)
    # Then the order and the payment are exactly the cost the notice gave
    assert order.total == expected.total
    assert Payment.objects.get(order_id=order.pk).amount == expected.total
