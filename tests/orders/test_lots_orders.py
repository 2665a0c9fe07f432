"""Orders and cold-chain lots: an order takes the soonest-expiring lot, a cancelled order gives its
units back to the lots they came from, and an expired lot shown by a stale page is not sold."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from orders.models import Order
from orders.services import order_cancel
from tests.factories import stock_put
from tests.orders.conftest import place
from vendors.models import LotAllocation, StockLot
from vendors.services import OutOfStock, korea_today, lot_load


def _lots(shop) -> list[tuple[int, int]]:
    return list(
        StockLot.objects.filter(vendor=shop.vendor, product=shop.yakult)
        .order_by("sell_by", "id")
        .values_list("pk", "quantity")
    )


@pytest.mark.django_db
def test_an_order_takes_the_soonest_lot_and_a_cancel_puts_it_back(shop, buyer):
    # Given the shop's 10 yakult (expiring in a week) and 3 more loaded that expire tomorrow
    soon = lot_load(
        vendor=shop.vendor,
        actor=shop.vendor.user,
        product_id=shop.yakult.pk,
        quantity=3,
        expires_on=korea_today() + timedelta(days=1),
    )
    # When a customer orders 4
    order = place(shop, buyer, quantity=4)
    # Then the 3 expiring tomorrow went first, and the order's lots are recorded under its id
    assert (
        dict(LotAllocation.objects.filter(reference=order.pk).values_list("lot_id", "quantity"))[
            soon.pk
        ]
        == 3
    )
    assert [q for _pk, q in _lots(shop)] == [0, 9]
    # And cancelling returns each unit to its own lot
    order_cancel(order_id=order.pk, customer=buyer.customer)
    assert [q for _pk, q in _lots(shop)] == [3, 10]
    assert shop.stock()[shop.yakult.sku] == 13


@pytest.mark.django_db
def test_an_expired_lot_sold_by_a_stale_page_is_refused_naming_the_product(shop, buyer):
    # Given the customer's page showed 10 yakult, whose lot has expired since
    stock_put(vendor=shop.vendor, product=shop.yakult, quantity=10)
    StockLot.objects.filter(vendor=shop.vendor, product=shop.yakult).update(
        sell_by=timezone.now() - timedelta(seconds=1)
    )
    # When the customer places the order from that page
    with translation.override("en"), pytest.raises(OutOfStock) as exc:
        place(shop, buyer, quantity=2)
    # Then it is refused with a message naming the product, and nothing is placed or taken
    assert exc.value.messages == [
        f"{shop.yakult.name_en} on this cart is past its date and can't be sold."
    ]
    assert not Order.objects.exists()
    assert shop.stock()[shop.yakult.sku] == 10
    assert not LotAllocation.objects.exists()
