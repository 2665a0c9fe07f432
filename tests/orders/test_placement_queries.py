"""The cost of one placement, pinned: the statements order_place sends (its after-commit
broadcasts included) can't silently grow, and the path that saves the order row's savepoint in a
transaction of its own still gives a checkout raced with itself its first order back."""

import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction

from orders.models import Fulfilment, Order, OrderEvent, OrderLine
from orders.services import Receive
from orders.services import placement as placement_module
from tests.factories import CustomerProfileFactory
from tests.orders.factories import place, stock_of, stock_up, vendor_on_shift, window
from vendors.models import LotAllocation

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# One pickup order of two lines from a cart on shift, in a transaction of its own: BEGIN, the
# vendor with its position and the token's order, the products, the pickup point with its hours,
# the commission plans, the order, its lines, one conditional UPDATE per line (2), the lots
# locked, changed and allocated (3), the event, COMMIT, then the map and stock broadcasts' reads
# (3). Before the queries were cut (issue 18 item 3): 23.
PICKUP_TWO_LINES_MAX = 17


def test_a_pickup_order_of_two_lines_costs_a_fixed_number_of_queries(
    shop, buyer, django_assert_max_num_queries
):
    # Given a cart on shift with two products and an open pickup point
    receive = Receive(fulfilment=Fulfilment.PICKUP, pickup_point_id=shop.point.pk, **window())
    customer = buyer.customer
    place(customer=customer, vendor=shop.vendor, items=[(shop.yakult, 1)], receive=receive)
    # When a customer places an order of two lines, not inside any caller's transaction
    assert not connection.in_atomic_block
    with django_assert_max_num_queries(PICKUP_TWO_LINES_MAX):
        order = place(
            customer=customer,
            vendor=shop.vendor,
            items=[(shop.yakult, 2), (shop.latte, 1)],
            receive=receive,
        )
    # Then it is all there
    assert order.lines.count() == 2
    assert shop.stock() == {shop.yakult.sku: 7, shop.latte.sku: 4}


def test_the_same_checkout_again_costs_two_queries(shop, buyer, django_assert_num_queries):
    """(One more than before the vendor read took the token's order along: a resubmission is
    rare, a first submission is every order.)"""
    # Given a placed checkout
    customer, token = buyer.customer, uuid.uuid4()
    first = place(customer=customer, vendor=shop.vendor, items=[(shop.yakult, 1)], token=token)
    # When it is submitted again: the vendor (with the token's order id) and the order
    with django_assert_num_queries(4):  # BEGIN … COMMIT around the two
        again = place(customer=customer, vendor=shop.vendor, items=[(shop.yakult, 1)], token=token)
    # Then the first order comes back and nothing more is taken
    assert again.pk == first.pk
    assert shop.stock()[shop.yakult.sku] == 9


def _wait_for_a_lock_wait(timeout: float = 20.0) -> None:
    """Until some backend of this database waits on a lock (the second INSERT of one token)."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cur.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second submission never waited on the first one's order row")


@pytest.mark.parametrize("inside_a_transaction", [False, True], ids=["own", "nested"])
def test_a_checkout_whose_order_row_is_taken_meanwhile_gets_the_first_order(
    monkeypatch, inside_a_transaction
):
    # Given a checkout whose first submission has written its order row and not yet committed
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 10)
    customer = CustomerProfileFactory()
    token = uuid.uuid4()
    holding, release = threading.Event(), threading.Event()
    real_reserve = placement_module.stock_reserve

    def slow_reserve(**kwargs):
        if threading.current_thread().name == "first":
            holding.set()
            assert release.wait(30)
        return real_reserve(**kwargs)

    monkeypatch.setattr(placement_module, "stock_reserve", slow_reserve)
    got: dict[str, object] = {}

    def submit(name: str) -> None:
        try:
            if name == "second" and inside_a_transaction:
                with transaction.atomic():
                    got[name] = place(
                        customer=customer, vendor=vendor, items=[(product, 1)], token=token
                    )
                    # The caller's transaction is still usable after the refused INSERT
                    got["caller_reads"] = Order.objects.filter(checkout_token=token).count()
            else:
                got[name] = place(
                    customer=customer, vendor=vendor, items=[(product, 1)], token=token
                )
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            got[name] = exc
        finally:
            connection.close()

    first = threading.Thread(target=submit, args=("first",), name="first")
    first.start()
    assert holding.wait(30)
    # When the second submission, which saw no order for the token, inserts its own row
    second = threading.Thread(target=submit, args=("second",), name="second")
    second.start()
    _wait_for_a_lock_wait()
    release.set()
    first.join(30)
    second.join(30)
    # Then both get the first order, placed once, its unit taken once
    assert isinstance(got["first"], Order), got
    assert isinstance(got["second"], Order), got
    assert got["second"].pk == got["first"].pk
    if inside_a_transaction:
        assert got["caller_reads"] == 1
    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == 1
    assert OrderEvent.objects.count() == 1
    assert LotAllocation.objects.count() == 1
    assert stock_of(vendor, product) == 9
