"""Orders under real concurrency: threads, each with its own PostgreSQL connection, lined up on a
barrier so they hit the database together. The guards are in SQL (conditional UPDATEs, the allowed
state in the WHERE), so exactly one of two racing writes wins and stock never goes below zero."""

import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone, translation

from orders.models import Order, OrderEvent, OrderLine, Status
from orders.services import (
    HANDOVER_MAX_TRIES,
    InvalidTransition,
    order_accept,
    order_cancel,
    order_hand_over,
    orders_expire,
    transitions,
)
from tests.factories import CustomerProfileFactory
from tests.orders.factories import place, place_paid, stock_of, stock_up, vendor_on_shift
from vendors.services import OutOfStock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT = 30


def race(*calls) -> list:
    """Run each call in its own thread, all released at once; what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def kinds(results) -> Counter:
    return Counter(type(r).__name__ for r in results)


def test_fifty_buyers_for_the_last_ten_units_get_exactly_ten_orders():
    # Given a cart with the last 10 units of a product, and 50 customers
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 10)
    buyers = [CustomerProfileFactory() for _ in range(50)]
    lowest = []
    done = threading.Event()

    def watch():
        # Samples the stock while the buyers run: it must never be seen below zero.
        try:
            while not done.is_set():
                lowest.append(stock_of(vendor, product))
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    # When they all order one unit at the same moment
    try:
        results = race(
            *[(lambda b=b: place(customer=b, vendor=vendor, items=[(product, 1)])) for b in buyers]
        )
    finally:
        done.set()
        watcher.join(JOIN_TIMEOUT)
    # Then exactly 10 are placed and the other 40 are told it is out of stock
    assert kinds(results) == {"Order": 10, "OutOfStock": 40}, kinds(results)
    assert all(r.product_id == product.pk for r in results if isinstance(r, OutOfStock))
    # And the cart is at exactly zero, never seen below it, with 10 units in 10 orders
    assert stock_of(vendor, product) == 0
    assert lowest and min(lowest) >= 0
    assert Order.objects.count() == 10
    assert sorted(OrderLine.objects.values_list("quantity", flat=True)) == [1] * 10
    assert len({r.customer_id for r in results if isinstance(r, Order)}) == 10


def test_accept_and_cancel_racing_one_wins():
    rounds = 10
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, rounds)
    customer = CustomerProfileFactory()
    winners = Counter()
    for _ in range(rounds):
        # Given a paid order waiting for the vendor
        order = place_paid(customer=customer, vendor=vendor, items=[(product, 1)])
        # When the vendor accepts while the customer cancels
        accepted, cancelled = race(
            lambda o=order: order_accept(order_id=o.pk, vendor=vendor, eta_minutes=15),
            lambda o=order: order_cancel(order_id=o.pk, customer=customer),
        )
        # Then exactly one of them wins and the other is told it is too late
        outcomes = (type(accepted).__name__, type(cancelled).__name__)
        assert outcomes in {("Order", "InvalidTransition"), ("InvalidTransition", "Order")}, (
            accepted,
            cancelled,
        )
        winner = accepted if isinstance(accepted, Order) else cancelled
        winners[winner.status] += 1
        order.refresh_from_db()
        assert order.status == winner.status
        # And exactly one event follows the payment: the winner's
        after_payment = list(
            OrderEvent.objects.filter(order=order)
            .exclude(to_status__in=[Status.PENDING_PAYMENT, Status.PLACED])
            .values_list("from_status", "to_status")
        )
        assert after_payment == [(Status.PLACED, winner.status)]
    # And the stock counts only the accepted orders as taken
    assert stock_of(vendor, product) == winners[Status.CANCELLED]
    assert sum(winners.values()) == rounds


def test_two_orders_sharing_products_in_opposite_order_do_not_deadlock():
    # Given two products with plenty on the cart, and two customers
    vendor = vendor_on_shift()
    a, b = stock_up(vendor, 1000, 1000)
    first, second = CustomerProfileFactory(), CustomerProfileFactory()
    for _ in range(20):
        # When one orders [a, b] while the other orders [b, a], at the same moment
        results = race(
            lambda: place(customer=first, vendor=vendor, items=[(a, 2), (b, 3)]),
            lambda: place(customer=second, vendor=vendor, items=[(b, 5), (a, 7)]),
        )
        # Then both are placed (a deadlock would abort one of them)
        assert kinds(results) == {"Order": 2}, results
    # And every unit is accounted for
    assert stock_of(vendor, a) == 1000 - 20 * (2 + 7)
    assert stock_of(vendor, b) == 1000 - 20 * (3 + 5)
    assert Order.objects.count() == 40


def test_expiry_racing_a_late_accept_has_one_winner():
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 10)
    customer = CustomerProfileFactory()
    winners = Counter()
    for _ in range(10):
        # Given a paid order whose time to be accepted has just run out
        order = place_paid(customer=customer, vendor=vendor, items=[(product, 1)])
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        # When the sweep runs while the vendor accepts at the last second
        swept, accepted = race(
            lambda: orders_expire(now=timezone.now()),
            lambda o=order: order_accept(order_id=o.pk, vendor=vendor, eta_minutes=10),
        )
        # Then exactly one wins
        assert not isinstance(swept, Exception), swept
        if isinstance(accepted, Order):
            assert swept["expired"] == 0
            winners[Status.ACCEPTED] += 1
        else:
            assert isinstance(accepted, InvalidTransition), accepted
            assert swept["expired"] == 1
            winners[Status.EXPIRED] += 1
        order.refresh_from_db()
        assert order.status in (Status.ACCEPTED, Status.EXPIRED)
        assert order.events.exclude(from_status__in=["", Status.PENDING_PAYMENT]).count() == 1
    # And only the expired orders' units went back on the cart
    assert stock_of(vendor, product) == winners[Status.EXPIRED]


def test_the_same_checkout_submitted_twice_at_once_places_one_order():
    # Given one checkout (token) sent twice at the same moment (a double tap, a retry)
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 10)
    customer = CustomerProfileFactory()
    for _ in range(10):
        token = uuid.uuid4()
        results = race(
            *[
                (lambda: place(customer=customer, vendor=vendor, items=[(product, 1)], token=token))
                for _ in range(2)
            ]
        )
        # Then both get the same order, and its unit is taken once
        assert all(isinstance(r, Order) for r in results), results
        assert results[0].pk == results[1].pk
    assert Order.objects.count() == 10
    assert stock_of(vendor, product) == 0


class _LinedUpCache:
    """The cache, but each thread's first call returns only once every thread has made its own:
    parallel requests arriving together all reach the try counter before any of them goes on."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties)
        self.arrived = threading.local()

    def __getattr__(self, name):
        real = getattr(cache, name)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            value = real(*args, **kwargs)
            if not getattr(self.arrived, "yes", False):
                self.arrived.yes = True
                self.barrier.wait(timeout=JOIN_TIMEOUT)
            return value

        return call


WRONG_CODE = "That code is not right. Ask the customer to show it."
LOCKED = "Too many wrong codes. Wait 15 minutes or ask support to help."


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("django.core.cache.backends.locmem.LocMemCache", id="locmem"),
    ],
)
def test_parallel_wrong_handover_codes_get_no_more_than_the_allowed_tries(
    settings, monkeypatch, backend
):
    # Given an accepted order with its 4-digit handover code, the tries counted in Redis (the
    # real stack) or in LocMemCache (the embedded demo)
    if backend != "redis":
        settings.CACHES = {"default": {"BACKEND": backend}}
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 5)
    order = place_paid(customer=CustomerProfileFactory(), vendor=vendor, items=[(product, 1)])
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=10)
    guesses = 12
    wrong = [f"{(int(order.handover_code) + i) % 10_000:04d}" for i in range(1, guesses + 1)]
    monkeypatch.setattr(transitions, "cache", _LinedUpCache(guesses))

    def guess(code):
        with translation.override("en"):
            return order_hand_over(order_id=order.pk, vendor=vendor, code=code)

    # When 12 wrong codes are tried at the same moment
    results = race(*[(lambda code=code: guess(code)) for code in wrong])
    # Then exactly HANDOVER_MAX_TRIES of them were compared with the code, the others refused
    assert all(isinstance(r, ValidationError) for r in results), results
    said = Counter(r.message_dict["code"][0] for r in results)
    assert said == {WRONG_CODE: HANDOVER_MAX_TRIES, LOCKED: guesses - HANDOVER_MAX_TRIES}
    # And the order has not moved, and is locked: even the right code waits now
    monkeypatch.setattr(transitions, "cache", cache)
    with pytest.raises(ValidationError) as refused:
        guess(order.handover_code)
    assert refused.value.message_dict == {"code": [LOCKED]}
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED
