"""Two cash sales for the last unit on the cart, from two connections at once (real PostgreSQL):
exactly one is recorded, the other is refused as sold out, and the cart never goes below zero."""

import uuid

import pytest

from orders.models import Order
from orders.services import order_cash_sale
from tests.orders.factories import stock_of, stock_up, vendor_on_shift
from tests.orders.test_concurrency import kinds, race
from vendors.models import LotAllocation

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_cash_sales_for_the_last_unit_one_wins():
    # Given a cart with the last unit of a product
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 1)

    def sale():
        return order_cash_sale(vendor=vendor, items={product.pk: 1}, client_id=uuid.uuid4())

    # When two taps for it arrive together
    results = race(sale, sale)
    # Then one sale is recorded and the other is refused as sold out
    assert kinds(results) == {"Order": 1, "OutOfStock": 1}
    assert Order.objects.count() == 1
    assert stock_of(vendor, product) == 0
    assert LotAllocation.objects.count() == 1


def test_a_double_tap_racing_itself_records_one_sale():
    vendor = vendor_on_shift()
    (product,) = stock_up(vendor, 5)
    client_id = uuid.uuid4()

    def sale():
        return order_cash_sale(vendor=vendor, items={product.pk: 2}, client_id=client_id)

    first, second = race(sale, sale)
    assert isinstance(first, Order) and isinstance(second, Order), (first, second)
    assert first.pk == second.pk
    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert stock_of(vendor, product) == 3
