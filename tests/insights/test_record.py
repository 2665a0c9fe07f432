"""One record of every sale, written in the sale's own transaction by the real services: an online
order when it completes, a cash sale, its undo, a refund; each once, in the public cell where the
goods changed hands (never a position), with the buyer's key (a guest never stands for others)."""

import uuid

import h3
import pytest
from django.conf import settings

from customers.services import walkup_customer
from insights.models import Channel, SaleKind, SaleRecord
from insights.services import insight_cell, sale_record_order
from insights.summaries import summaries_refresh, summaries_tables
from orders.models import Status
from orders.services import (
    order_accept,
    order_cash_sale,
    order_cash_sale_undo,
    order_complete,
    order_hand_over,
    order_line_refund,
)
from tests.orders import test_problems
from tests.orders.conftest import placed

captured = test_problems.captured


def records(order_id: int) -> list[tuple]:
    return list(
        SaleRecord.objects.filter(order_id=order_id)
        .order_by("id")
        .values_list("kind", "product_id", "units", "amount", "channel")
    )


def complete(order, shop):
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=5)
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    return order_complete(order_id=order.pk)


@pytest.mark.django_db
def test_an_online_order_is_recorded_once_when_it_completes_where_it_was_handed_over(shop, buyer):
    # Given a paid pickup order of 2 yakult
    order = placed(shop, buyer, quantity=2, fulfilment="pickup")
    # Then nothing is recorded before the sale is done
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=5)
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    assert records(order.pk) == []
    # When it completes
    done = order_complete(order_id=order.pk)
    assert done.status == Status.COMPLETED
    # Then its line is recorded: online, the units and amount, at the pickup point's cell
    assert records(order.pk) == [("sale", shop.yakult.pk, 2, 2_400, Channel.ONLINE)]
    row = SaleRecord.objects.get(order_id=order.pk)
    assert row.cell == insight_cell(shop.point.cell) and row.buyer == buyer.customer.pk
    assert row.occurred_at == done.handed_over_at
    # And recording again adds nothing
    assert sale_record_order(order_id=order.pk) == 0
    assert len(records(order.pk)) == 1


@pytest.mark.django_db
def test_a_meeting_is_recorded_in_the_meeting_area_never_a_position(shop, buyer):
    order = placed(shop, buyer, quantity=1, fulfilment="meet")
    complete(order, shop)
    row = SaleRecord.objects.get(order_id=order.pk)
    assert row.cell == shop.cell
    assert h3.get_resolution(row.cell) <= settings.PUBLIC_CELL_RES
    assert not {"lat", "lng"} & {f.name for f in SaleRecord._meta.fields}


@pytest.mark.django_db
def test_a_delivery_is_recorded_in_the_public_cell_of_the_address(shop, buyer):
    order = placed(shop, buyer, quantity=1, fulfilment="delivery")
    complete(order, shop)
    row = SaleRecord.objects.get(order_id=order.pk)
    address = buyer.customer.addresses.get()
    assert row.cell == h3.latlng_to_cell(address.lat, address.lng, settings.INSIGHT_CELL_RES)


@pytest.mark.django_db
def test_a_cash_sale_is_recorded_at_the_carts_cell_and_its_undo_takes_it_back(shop):
    # When the vendor sells 3 yakult and 1 latte for cash
    sale = order_cash_sale(
        vendor=shop.vendor, items={shop.yakult.pk: 3, shop.latte.pk: 1}, client_id=uuid.uuid4()
    )
    # Then both lines are recorded, cash, at the cart's public cell, each guest buyer their own
    assert sorted(records(sale.pk)) == sorted(
        [
            ("sale", shop.yakult.pk, 3, 3_600, Channel.CASH),
            ("sale", shop.latte.pk, 1, 2_500, Channel.CASH),
        ]
    )
    row = SaleRecord.objects.filter(order_id=sale.pk).first()
    assert row.cell == shop.cell and row.buyer == -sale.pk
    assert sale.customer_id == walkup_customer().pk
    # When the sale is undone
    order_cash_sale_undo(order_id=sale.pk, vendor=shop.vendor)
    # Then the record nets to nothing, and the summaries say so
    rows = SaleRecord.objects.filter(order_id=sale.pk)
    assert sum(r.units for r in rows) == 0 and sum(r.amount for r in rows) == 0
    assert rows.filter(kind=SaleKind.VOID).count() == 2
    summaries_refresh()
    tables = summaries_tables()
    assert sum(units for units, _a, _s in tables["cube"].values()) == 0
    assert tables["buyers"] == set()


@pytest.mark.django_db
def test_a_sale_rolled_back_leaves_no_record(shop):
    # A cash sale of more than the cart holds fails as a whole: no order, no record
    from vendors.services import OutOfStock

    with pytest.raises(OutOfStock):
        order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 11}, client_id=uuid.uuid4())
    assert not SaleRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_refunded_line_is_taken_back_in_its_sales_own_time_and_cell(captured, staff):
    # Given the buyer's captured order (yakult × 2 ₩2,400, latte × 1 ₩2,500), completed
    sold = {r[1]: r for r in records(captured.pk)}
    assert {r[2] for r in sold.values()} == {2, 1} and all(r[0] == "sale" for r in sold.values())
    latte = captured.lines.get(product__sku__startswith="latte")
    # When staff refund the latte line
    order_line_refund(order_id=captured.pk, line_id=latte.pk, actor=staff, reason="cold")
    # Then a refund row gives back its unit and amount, in the sale's hour and cell
    refund = SaleRecord.objects.get(order_id=captured.pk, kind=SaleKind.REFUND)
    sale = SaleRecord.objects.get(order_id=captured.pk, kind=SaleKind.SALE, line_id=latte.pk)
    assert (refund.units, refund.amount) == (-1, -2_500)
    assert (refund.day, refund.hour, refund.cell) == (sale.day, sale.hour, sale.cell)
    # And the record nets to the yakult alone
    rows = SaleRecord.objects.filter(order_id=captured.pk)
    assert sum(r.amount for r in rows) == 2_400


@pytest.mark.django_db
def test_the_invariant_check_finds_a_completed_sale_missing_from_the_record(shop, buyer):
    from django.utils import timezone

    from o2o.invariants import check_invariants

    order = placed(shop, buyer, quantity=1)
    complete(order, shop)
    sale = order_cash_sale(vendor=shop.vendor, items={shop.yakult.pk: 1}, client_id=uuid.uuid4())
    order_cash_sale_undo(order_id=sale.pk, vendor=shop.vendor)
    assert "sale_unrecorded" not in check_invariants().problems
    assert "sale_undone_not_netted" not in check_invariants().problems
    # When a completed sale's record is lost, and an undo's reversal too
    SaleRecord.objects.filter(order_id=order.pk).delete()
    SaleRecord.objects.filter(order_id=sale.pk, kind=SaleKind.VOID).delete()
    problems = check_invariants().problems
    # Then the check names both
    assert problems["sale_unrecorded"] == [f"order:{order.pk}"]
    assert problems["sale_undone_not_netted"] == [f"order:{sale.pk}"]
    # And rows the summaries have not taken for long are shown to staff
    SaleRecord.objects.update(recorded_at=timezone.now() - timezone.timedelta(hours=1))
    assert check_invariants().attention["summaries_behind"]
    summaries_refresh()
    assert "summaries_behind" not in check_invariants().attention
