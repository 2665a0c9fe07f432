"""Cash sales at the cart (issue 16, item 2), the service: one sale in one transaction (the order
born COMPLETED with its events, stock from the soonest lot), idempotent on the client's id, bad
input refused with nothing saved, an undo within the window only, and the commission on cash
(when the setting says so) owed through the ledger and netted at settlement."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from customers.services import walkup_customer
from o2o.errors import NotAllowed
from orders.models import Order, OrderEvent, PaymentMethod, Status
from orders.services import (
    InvalidTransition,
    NotOnCart,
    order_cash_sale,
    order_cash_sale_undo,
)
from payments import ledger, settlement
from payments.models import JournalKind, JournalTransaction, Settlement, SettlementLine
from payments.statements import statement_build
from tests.factories import StockFactory, VendorFactory, stock_put
from tests.payments.factories import CommissionPlanFactory
from tests.payments.money import captured, days_later
from vendors.models import LotAllocation, Stock, StockLot, Vendor
from vendors.services import OutOfStock, korea_today, lot_load

pytestmark = pytest.mark.django_db


def sell(shop, *, client_id=None, **items) -> Order:
    """A cash sale of {sku-ish name: quantity} ("yakult", "latte") from the shop's cart."""
    products = {"yakult": shop.yakult, "latte": shop.latte}
    return order_cash_sale(
        vendor=shop.vendor,
        items={products[name].pk: n for name, n in items.items()},
        client_id=client_id or uuid.uuid4(),
    )


def lots(shop) -> list[int]:
    return list(
        StockLot.objects.filter(vendor=shop.vendor, product=shop.yakult)
        .order_by("sell_by", "id")
        .values_list("quantity", flat=True)
    )


# --- recording a sale ----------------------------------------------------------------------------


def test_a_cash_sale_is_a_completed_order_of_the_walkup_customer_with_its_history(shop):
    # When the vendor sells 2 yakult and 1 latte for cash
    order = sell(shop, yakult=2, latte=1)
    # Then one order records it: cash, at the cart, completed, the prices snapshotted
    order.refresh_from_db()
    assert order.payment_method == PaymentMethod.CASH
    assert order.fulfilment == Order.Fulfilment.AT_CART
    assert order.status == Status.COMPLETED
    assert order.customer == walkup_customer()
    assert order.payment_id is None
    assert order.total == 2 * 1200 + 2500
    assert sorted(order.lines.values_list("unit_price", "quantity")) == [(1200, 2), (2500, 1)]
    assert order.placed_at and order.handed_over_at and order.completed_at
    # And its history: handed over and completed by the vendor, nothing else
    events = list(order.events.values_list("from_status", "to_status", "role", "actor"))
    user = shop.vendor.user.pk
    assert events == [
        ("", Status.HANDED_OVER, "vendor", user),
        (Status.HANDED_OVER, Status.COMPLETED, "vendor", user),
    ]
    # And the stock is taken off the cart
    assert shop.stock() == {shop.yakult.sku: 8, shop.latte.sku: 4}
    # And no commission and no ledger movement by default
    assert order.commission == 0
    assert not JournalTransaction.objects.filter(order_id=order.pk).exists()


def test_a_cash_sale_takes_the_soonest_expiring_lot_first(shop):
    # Given 10 yakult expiring in a week and 3 more expiring tomorrow
    soon = lot_load(
        vendor=shop.vendor,
        actor=shop.vendor.user,
        product_id=shop.yakult.pk,
        quantity=3,
        expires_on=korea_today() + timedelta(days=1),
    )
    # When 4 are sold for cash
    order = sell(shop, yakult=4)
    # Then the 3 from tomorrow's lot went first, recorded under the order's id
    assert lots(shop) == [0, 9]
    taken = dict(LotAllocation.objects.filter(reference=order.pk).values_list("lot_id", "quantity"))
    assert taken[soon.pk] == 3 and sum(taken.values()) == 4


def test_the_same_client_id_twice_records_one_sale(shop):
    client_id = uuid.uuid4()
    first = sell(shop, client_id=client_id, yakult=2)
    # When the same tap arrives again (a double tap, a replay after a lost answer)
    again = sell(shop, client_id=client_id, yakult=2)
    # Then the first sale comes back and nothing more is taken
    assert again.pk == first.pk
    assert (first.replayed, again.replayed) == (False, True)
    assert Order.objects.count() == 1
    assert shop.stock()[shop.yakult.sku] == 8


def test_another_vendors_client_id_is_refused(shop, other_shop):
    client_id = uuid.uuid4()
    sell(shop, client_id=client_id, yakult=1)
    with pytest.raises(NotAllowed):
        order_cash_sale(
            vendor=other_shop.vendor, items={other_shop.yakult.pk: 1}, client_id=client_id
        )


# --- bad input: refused, nothing saved -----------------------------------------------------------


def _nothing_saved(shop, *, yakult: int = 10) -> None:
    assert not Order.objects.exists()
    assert not LotAllocation.objects.exists()
    assert shop.stock()[shop.yakult.sku] == yakult


def test_a_product_not_on_the_cart_is_refused_naming_it(shop, other_shop):
    # Given a product only the other vendor carries
    foreign = other_shop.latte
    # When the vendor records a sale of it (with something that is on the cart)
    with translation.override("en"), pytest.raises(NotOnCart) as exc:
        order_cash_sale(
            vendor=shop.vendor, items={shop.yakult.pk: 1, foreign.pk: 1}, client_id=uuid.uuid4()
        )
    # Then it is refused, naming the product, and nothing is saved or taken
    assert exc.value.messages == [f"{foreign.name_en} is not on your cart."]
    assert exc.value.code == "not_on_cart"
    _nothing_saved(shop)


def test_a_product_that_does_not_exist_is_refused(shop):
    with translation.override("en"), pytest.raises(NotOnCart) as exc:
        order_cash_sale(vendor=shop.vendor, items={987654: 1}, client_id=uuid.uuid4())
    assert exc.value.messages == ["#987654 is not on your cart."]
    _nothing_saved(shop)


def test_a_product_taken_off_sale_is_not_on_the_cart(shop):
    shop.yakult.is_active = False
    shop.yakult.save(update_fields=["is_active"])
    with pytest.raises(NotOnCart):
        sell(shop, yakult=1)
    _nothing_saved(shop)


def test_sold_out_is_refused_and_the_other_lines_are_not_taken(shop):
    # Given no latte left
    stock_put(vendor=shop.vendor, product=shop.latte, quantity=0)
    # When yakult and latte are sold together
    with translation.override("en"), pytest.raises(OutOfStock) as exc:
        sell(shop, yakult=2, latte=1)
    # Then nothing is sold, the yakult included
    assert exc.value.messages == [f"{shop.latte.name_en} is sold out."]
    _nothing_saved(shop)


def test_an_expired_lot_is_not_sold(shop):
    StockLot.objects.filter(vendor=shop.vendor, product=shop.yakult).update(
        sell_by=timezone.now() - timedelta(seconds=1)
    )
    with translation.override("en"), pytest.raises(OutOfStock) as exc:
        sell(shop, yakult=1)
    assert exc.value.messages == [
        f"{shop.yakult.name_en} on this cart is past its date and can't be sold."
    ]
    _nothing_saved(shop)


@pytest.mark.parametrize("quantity", [0, -1, 21, True, "2"])
def test_quantities_out_of_bounds_are_refused(shop, quantity):
    with pytest.raises(ValidationError):
        order_cash_sale(
            vendor=shop.vendor, items={shop.yakult.pk: quantity}, client_id=uuid.uuid4()
        )
    _nothing_saved(shop)


def test_an_empty_sale_and_too_many_lines_are_refused(shop, settings):
    with pytest.raises(ValidationError):
        order_cash_sale(vendor=shop.vendor, items={}, client_id=uuid.uuid4())
    settings.CASH_SALE_MAX_LINES = 1
    with pytest.raises(ValidationError):
        sell(shop, yakult=1, latte=1)
    _nothing_saved(shop)


def test_a_suspended_vendor_cannot_sell(shop):
    Vendor.objects.filter(pk=shop.vendor.pk).update(status=Vendor.Status.SUSPENDED)
    with pytest.raises(NotAllowed):
        sell(shop, yakult=1)
    _nothing_saved(shop)


# --- undo ----------------------------------------------------------------------------------------


def test_an_undo_within_the_window_cancels_and_puts_the_units_back_in_their_lots(shop):
    soon = lot_load(
        vendor=shop.vendor,
        actor=shop.vendor.user,
        product_id=shop.yakult.pk,
        quantity=3,
        expires_on=korea_today() + timedelta(days=1),
    )
    order = sell(shop, yakult=4)
    # When the vendor undoes it four minutes later
    undone = order_cash_sale_undo(
        order_id=order.pk, vendor=shop.vendor, now=timezone.now() + timedelta(minutes=4)
    )
    # Then the sale is cancelled, with an event, and every unit is back in the lot it came from
    assert undone.status == Status.CANCELLED
    assert OrderEvent.objects.filter(order=order).last().to_status == Status.CANCELLED
    assert StockLot.objects.get(pk=soon.pk).quantity == 3
    assert lots(shop) == [3, 10]
    assert shop.stock()[shop.yakult.sku] == 13


def test_an_undo_twice_is_refused_clearly(shop):
    order = sell(shop, yakult=2)
    order_cash_sale_undo(order_id=order.pk, vendor=shop.vendor)
    with translation.override("en"), pytest.raises(InvalidTransition) as exc:
        order_cash_sale_undo(order_id=order.pk, vendor=shop.vendor)
    assert exc.value.messages == ["This cash sale was already undone."]
    # The units went back once
    assert shop.stock()[shop.yakult.sku] == 10


def test_an_undo_after_the_window_is_refused(shop, settings):
    settings.CASH_UNDO_MINUTES = 5
    order = sell(shop, yakult=2)
    with translation.override("en"), pytest.raises(InvalidTransition) as exc:
        order_cash_sale_undo(
            order_id=order.pk, vendor=shop.vendor, now=timezone.now() + timedelta(minutes=6)
        )
    assert exc.value.messages == ["This cash sale can no longer be undone: 5 minutes have passed."]
    order.refresh_from_db()
    assert order.status == Status.COMPLETED
    assert shop.stock()[shop.yakult.sku] == 8


def test_another_vendor_cannot_undo_a_sale_nor_can_a_card_order_be_undone(shop, other_shop):
    order = sell(shop, yakult=1)
    with pytest.raises(NotAllowed):
        order_cash_sale_undo(order_id=order.pk, vendor=other_shop.vendor)
    Order.objects.filter(pk=order.pk).update(payment_method=PaymentMethod.CARD)
    with pytest.raises(NotAllowed):
        order_cash_sale_undo(order_id=order.pk, vendor=shop.vendor)


# --- commission on cash --------------------------------------------------------------------------


def test_with_cash_commission_on_the_vendor_owes_it_through_the_ledger(shop, settings):
    settings.CASH_COMMISSION = True
    CommissionPlanFactory(vendor=shop.vendor, bps=1000)
    # When 2 yakult (₩2,400) are sold for cash
    order = sell(shop, yakult=2)
    # Then the commission is snapshotted and owed: the vendor's payable goes down by it
    assert (order.commission, order.commission_bps) == (240, 1000)
    assert order.lines.get().commission == 240
    journal = JournalTransaction.objects.get(order_id=order.pk)
    assert journal.kind == JournalKind.CASH_COMMISSION
    assert ledger.vendor_payable(shop.vendor.pk) == -240
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 240
    assert ledger.unbalanced_transactions() == []
    # And undone, it is given back, once
    order_cash_sale_undo(order_id=order.pk, vendor=shop.vendor)
    assert ledger.vendor_payable(shop.vendor.pk) == 0
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
    kinds = JournalTransaction.objects.filter(order_id=order.pk).values_list("kind", flat=True)
    assert sorted(kinds) == [JournalKind.CASH_COMMISSION, JournalKind.CASH_COMMISSION_UNDO]


def test_with_cash_commission_off_nothing_is_owed(shop, settings):
    settings.CASH_COMMISSION = False
    CommissionPlanFactory(vendor=shop.vendor, bps=1000)
    order = sell(shop, yakult=2)
    assert (order.commission, order.commission_bps) == (0, 0)
    assert ledger.vendor_payable(shop.vendor.pk) == 0
    assert not JournalTransaction.objects.exists()


def test_a_settlement_nets_the_cash_commission_against_card_sales(shop, settings):
    # Given, with commission on cash, a card sale (₩10,000, commission ₩1,000) and a cash sale of
    # ₩2,400 (commission ₩240) in the same period
    settings.CASH_COMMISSION = True
    CommissionPlanFactory(vendor=shop.vendor, bps=1000)
    card = captured(vendor_id=shop.vendor.pk, amount=10_000, commission=1_000)
    cash = sell(shop, yakult=2)
    # When the period is settled
    settlement.settlements_run(now=days_later(1))
    # Then the settlement pays the card share less the cash commission
    s = Settlement.objects.get(vendor=shop.vendor)
    assert s.net == 9_000 - 240
    assert (s.gross, s.commission) == (10_000, 1_000 + 240)
    assert sorted(
        SettlementLine.objects.filter(settlement=s).values_list("kind", "order_id", "gross", "net")
    ) == sorted(
        [
            ("commission", card.order_id, 10_000, 9_000),
            ("cash_commission", cash.pk, 0, -240),
        ]
    )
    assert s.payout.amount == 8_760
    # And the statement, read from the ledger, agrees
    statement = statement_build(settlement=s)
    assert statement.agrees
    assert statement.totals.net == 8_760
    with translation.override(statement.language):
        assert {x.kind_label for x in statement.lines} >= {_("Commission on a cash sale")}


def test_an_undone_cash_sale_nets_to_nothing_at_settlement(shop, settings):
    settings.CASH_COMMISSION = True
    captured(vendor_id=shop.vendor.pk, amount=10_000, commission=1_000)
    cash = sell(shop, yakult=2)
    order_cash_sale_undo(order_id=cash.pk, vendor=shop.vendor)
    settlement.settlements_run(now=days_later(1))
    s = Settlement.objects.get(vendor=shop.vendor)
    assert s.net == 9_000
    assert statement_build(settlement=s).agrees


def test_a_vendor_with_only_cash_commission_is_carried_forward(shop, settings):
    settings.CASH_COMMISSION = True
    sell(shop, yakult=2)
    settlement.settlements_run(now=days_later(1))
    s = Settlement.objects.get(vendor=shop.vendor)
    assert s.status == Settlement.Status.CARRIED_FORWARD
    assert not SettlementLine.objects.exists()


def test_stock_of_another_vendor_is_not_touched(shop):
    other = VendorFactory()
    StockFactory(vendor=other, product=shop.yakult, quantity=5)
    sell(shop, yakult=1)
    assert Stock.objects.get(vendor=other, product=shop.yakult).quantity == 5
