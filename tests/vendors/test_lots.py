"""Cold-chain lots (issue #16, item 4): the cart's stock is held in lots with an expiry; sales take
the soonest-expiring sellable lot first; expired lots can't be sold; loads, corrections and
write-offs keep Stock.quantity == the sum of the lots."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o2o.errors import Conflict, NotAllowed
from tests.factories import (
    ProductFactory,
    StaffFactory,
    StockFactory,
    VendorFactory,
    stock_put,
)
from tests.vendors.test_services import _in_threads
from vendors.models import LotAdjustment, LotAllocation, Stock, StockLot
from vendors.services import (
    OutOfStock,
    StockChange,
    korea_today,
    lot_correct,
    lot_load,
    lot_sell_by,
    lot_write_off,
    stock_release,
    stock_reserve,
    stock_set,
)

R = LotAdjustment.Reason


def _expire(lot: StockLot) -> None:
    """Time passes: the lot's sell-by is behind us (what a clock a day later would see)."""
    StockLot.objects.filter(pk=lot.pk).update(sell_by=timezone.now() - timedelta(minutes=1))


def _stock(vendor, product) -> int:
    return Stock.objects.get(vendor=vendor, product=product).quantity


def _lots(vendor, product) -> list[int]:
    return list(
        StockLot.objects.filter(vendor=vendor, product=product)
        .order_by("sell_by", "id")
        .values_list("quantity", flat=True)
    )


def _assert_invariant(vendor, product) -> None:
    total = StockLot.objects.filter(vendor=vendor, product=product).aggregate(n=Sum("quantity"))
    row = Stock.objects.filter(vendor=vendor, product=product).first()
    assert (row.quantity if row else 0) == (total["n"] or 0)
    assert not StockLot.objects.filter(quantity__lt=0).exists()


def _load(vendor, product, quantity, days=3, best_before=None) -> StockLot:
    return lot_load(
        vendor=vendor,
        actor=vendor.user,
        product_id=product.pk,
        quantity=quantity,
        expires_on=korea_today() + timedelta(days=days),
        best_before=best_before,
    )


# --- loading ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loading_a_lot_adds_it_to_the_cart(vendor):
    product = ProductFactory()
    lot = _load(vendor, product, 12, days=2)
    assert (lot.quantity, lot.quantity_loaded) == (12, 12)
    assert lot.sell_by == lot_sell_by(expires_on=korea_today() + timedelta(days=2))
    _load(vendor, product, 3)
    assert _stock(vendor, product) == 15
    _assert_invariant(vendor, product)


@pytest.mark.django_db
def test_a_best_before_time_ends_sales_before_the_expiry_day_does(vendor):
    product = ProductFactory()
    soon = timezone.now() + timedelta(hours=2)
    lot = _load(vendor, product, 4, days=5, best_before=soon)
    assert lot.sell_by == soon


@pytest.mark.parametrize(
    "bad",
    [
        {"expires_on": -1},
        {"quantity": 0},
        {"quantity": 10_001},
        {"best_before": -1},
    ],
    ids=["past-date", "zero", "too-many", "best-before-past"],
)
@pytest.mark.django_db
def test_loading_refuses_what_could_never_be_sold(vendor, bad):
    product = ProductFactory()
    kwargs = {
        "quantity": bad.get("quantity", 5),
        "expires_on": korea_today() + timedelta(days=bad.get("expires_on", 2)),
        "best_before": timezone.now() - timedelta(hours=1) if "best_before" in bad else None,
    }
    with pytest.raises(ValidationError):
        lot_load(vendor=vendor, actor=vendor.user, product_id=product.pk, **kwargs)
    assert not StockLot.objects.exists()
    assert not Stock.objects.filter(quantity__gt=0).exists()


@pytest.mark.django_db
def test_only_the_vendor_or_staff_loads_lots(vendor):
    product = ProductFactory()
    with pytest.raises(NotAllowed):
        lot_load(
            vendor=vendor,
            actor=VendorFactory().user,
            product_id=product.pk,
            quantity=1,
            expires_on=korea_today(),
        )
    lot_load(
        vendor=vendor,
        actor=StaffFactory(),
        product_id=product.pk,
        quantity=1,
        expires_on=korea_today(),
    )
    assert _stock(vendor, product) == 1


# --- selling: soonest-expiring first, never an expired lot --------------------------------------


@pytest.mark.django_db
def test_a_sale_takes_the_soonest_expiring_lot_first_and_records_it(vendor):
    product = ProductFactory()
    later = _load(vendor, product, 5, days=4)
    sooner = _load(vendor, product, 2, days=1)
    chilled = _load(vendor, product, 1, days=6, best_before=timezone.now() + timedelta(hours=3))
    stock_reserve(vendor_id=vendor.pk, items={product.pk: 4}, reference=77)
    taken = dict(LotAllocation.objects.filter(reference=77).values_list("lot_id", "quantity"))
    # the chilled lot goes first (best before in 3 hours), then the one expiring tomorrow
    assert taken == {chilled.pk: 1, sooner.pk: 2, later.pk: 1}
    assert _stock(vendor, product) == 4
    _assert_invariant(vendor, product)


@pytest.mark.django_db
def test_a_release_puts_units_back_in_the_lots_they_came_from(vendor):
    product = ProductFactory()
    a = _load(vendor, product, 2, days=1)
    b = _load(vendor, product, 5, days=3)
    stock_reserve(vendor_id=vendor.pk, items={product.pk: 4}, reference=5)
    _expire(a)  # the first lot expired while the order was open
    stock_release(vendor_id=vendor.pk, items={product.pk: 3}, reference=5)
    a.refresh_from_db()
    b.refresh_from_db()
    # b's 2 units back first (latest-expiring first), then 1 to a, which stays unsellable
    assert (a.quantity, b.quantity) == (1, 5)
    assert _stock(vendor, product) == 6
    assert list(
        LotAllocation.objects.filter(reference=5)
        .order_by("lot_id")
        .values_list("released", flat=True)
    ) == [1, 2]
    with pytest.raises(OutOfStock), transaction.atomic():
        stock_reserve(vendor_id=vendor.pk, items={product.pk: 6})
    _assert_invariant(vendor, product)


@pytest.mark.django_db
def test_a_release_without_an_order_reference_goes_to_the_freshest_sellable_lot(vendor):
    product = ProductFactory()
    _load(vendor, product, 1, days=1)
    fresh = _load(vendor, product, 1, days=5)
    stock_release(vendor_id=vendor.pk, items={product.pk: 2})
    fresh.refresh_from_db()
    assert fresh.quantity == 3
    _assert_invariant(vendor, product)


@pytest.mark.parametrize(
    ("language", "sellable", "message"),
    [
        ("en", 0, "Yakult on this cart is past its date and can't be sold."),
        ("en", 2, "Only 2 of Yakult left on the cart."),
    ],
)
@pytest.mark.django_db
def test_an_expired_lot_shown_by_a_stale_page_is_not_sold(vendor, language, sellable, message):
    # Given 5 units in a lot that expired after the customer's page was drawn (and maybe 2 fresh)
    product = ProductFactory(name_en="Yakult")
    stock_put(vendor=vendor, product=product, quantity=5)
    _expire(StockLot.objects.get(vendor=vendor, product=product))
    if sellable:
        _load(vendor, product, sellable)
    # When the customer orders 3
    with translation.override(language), pytest.raises(OutOfStock) as exc, transaction.atomic():
        stock_reserve(vendor_id=vendor.pk, items={product.pk: 3}, reference=1)
    # Then the sale is refused naming the product, and nothing was taken
    assert exc.value.messages == [message]
    assert exc.value.product_id == product.pk
    assert _stock(vendor, product) == 5 + sellable
    assert not LotAllocation.objects.exists()
    _assert_invariant(vendor, product)


# --- correcting and writing off -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_write_off_takes_units_off_with_a_reason(vendor):
    product = ProductFactory()
    lot = _load(vendor, product, 6)
    lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason=R.DAMAGED, quantity=2)
    lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason=R.TEMPERATURE, note="hot")
    lot.refresh_from_db()
    assert lot.quantity == 0 and _stock(vendor, product) == 0
    assert list(
        LotAdjustment.objects.order_by("id").values_list("kind", "reason", "delta", "note")
    ) == [("write_off", "damaged", -2, ""), ("write_off", "temperature", -4, "hot")]
    with pytest.raises(Conflict):
        lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason=R.OTHER)


@pytest.mark.django_db
def test_a_write_off_of_more_than_the_lot_holds_changes_nothing(vendor):
    product = ProductFactory()
    lot = _load(vendor, product, 2)
    with pytest.raises(Conflict):
        lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason=R.RECALL, quantity=3)
    assert _stock(vendor, product) == 2 and not LotAdjustment.objects.exists()


@pytest.mark.django_db
def test_nobody_touches_another_vendors_lot(vendor):
    other = VendorFactory()
    lot = _load(other, ProductFactory(), 3)
    with pytest.raises(StockLot.DoesNotExist):
        lot_write_off(lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason=R.EXPIRED)
    with pytest.raises(NotAllowed):
        lot_write_off(lot_id=lot.pk, vendor=other, actor=vendor.user, reason=R.EXPIRED)
    lot.refresh_from_db()
    assert lot.quantity == 3


@pytest.mark.django_db
def test_a_correction_sets_the_lot_and_the_cart_by_the_same_amount(vendor):
    product = ProductFactory()
    lot = _load(vendor, product, 5)
    _load(vendor, product, 4)
    lot_correct(lot_id=lot.pk, vendor=vendor, actor=vendor.user, quantity=7)
    assert _stock(vendor, product) == 11
    lot_correct(lot_id=lot.pk, vendor=vendor, actor=vendor.user, quantity=1)
    assert _stock(vendor, product) == 5
    assert list(LotAdjustment.objects.order_by("id").values_list("delta", flat=True)) == [2, -6]
    _assert_invariant(vendor, product)


@pytest.mark.django_db
def test_the_plain_quantity_corrects_the_lots(vendor):
    # Given an expired lot of 2, and sellable lots of 3 (sooner) and 4
    product = ProductFactory()
    stale = _load(vendor, product, 2, days=0)
    _expire(stale)
    _load(vendor, product, 3, days=1)
    _load(vendor, product, 4, days=2)
    # When the vendor counts 6 on the stock page
    stock_set(vendor=vendor, actor=vendor.user, changes=[StockChange(product.pk, 6)])
    # Then the expired units go first (written off as expired), then the soonest lot's
    assert _lots(vendor, product) == [0, 2, 4]
    assert list(LotAdjustment.objects.order_by("id").values_list("kind", "reason", "delta")) == [
        ("write_off", "expired", -2),
        ("correction", "count", -1),
    ]
    # And counting more adds a lot of the default shelf life
    stock_set(vendor=vendor, actor=vendor.user, changes=[StockChange(product.pk, 10)])
    assert _lots(vendor, product) == [0, 2, 4, 4]
    _assert_invariant(vendor, product)


@pytest.mark.django_db
def test_the_factory_and_the_backfill_rule_give_every_row_its_lot():
    row = StockFactory(quantity=9)
    _assert_invariant(row.vendor, row.product)


# --- the invariant under any sequence of actions ------------------------------------------------

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.integers(1, 6), st.integers(0, 4)),
        st.tuples(st.just("sell"), st.integers(1, 8), st.integers(0, 3)),
        st.tuples(st.just("release"), st.integers(1, 8), st.integers(0, 3)),
        st.tuples(st.just("write_off"), st.integers(0, 5), st.integers(0, 6)),
        st.tuples(st.just("correct"), st.integers(0, 5), st.integers(0, 9)),
        st.tuples(st.just("set"), st.integers(0, 20), st.integers(0, 0)),
        st.tuples(st.just("expire"), st.integers(0, 5), st.integers(0, 0)),
    ),
    max_size=14,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=ACTIONS)
@pytest.mark.django_db
def test_stock_is_the_sum_of_its_lots_after_any_sequence(actions):
    vendor = VendorFactory()
    product = ProductFactory()
    sold: dict[int, int] = {}  # reference -> units still reserved
    for step, (action, a, b) in enumerate(actions):
        lots = list(StockLot.objects.filter(vendor=vendor, product=product).order_by("id"))
        try:
            with transaction.atomic():
                if action == "load":
                    _load(vendor, product, a, days=b)
                elif action == "sell":
                    now = timezone.now()
                    sellable = sorted(
                        (lot for lot in lots if lot.quantity and lot.sell_by > now),
                        key=lambda lot: (lot.sell_by, lot.pk),
                    )
                    stock_reserve(vendor_id=vendor.pk, items={product.pk: a}, reference=step)
                    sold[step] = a
                    # soonest-expiring first: the lots taken are a prefix of the selling order
                    taken = dict(
                        LotAllocation.objects.filter(
                            reference=step, lot__vendor=vendor
                        ).values_list("lot_id", "quantity")
                    )
                    want = a
                    for lot in sellable:
                        n = min(want, lot.quantity)
                        if n:
                            assert taken.pop(lot.pk) == n
                        want -= n
                    assert not taken and want == 0
                elif action == "release" and sold:
                    reference = sorted(sold)[b % len(sold)]
                    n = min(a, sold[reference])
                    stock_release(vendor_id=vendor.pk, items={product.pk: n}, reference=reference)
                    sold[reference] -= n
                    if not sold[reference]:
                        del sold[reference]
                elif action == "write_off" and lots:
                    lot = lots[a % len(lots)]
                    lot_write_off(
                        lot_id=lot.pk,
                        vendor=vendor,
                        actor=vendor.user,
                        reason=R.DAMAGED,
                        quantity=b or None,
                    )
                elif action == "correct" and lots:
                    lot_correct(
                        lot_id=lots[a % len(lots)].pk, vendor=vendor, actor=vendor.user, quantity=b
                    )
                elif action == "set":
                    stock_set(
                        vendor=vendor, actor=vendor.user, changes=[StockChange(product.pk, a)]
                    )
                elif action == "expire" and lots:
                    _expire(lots[a % len(lots)])
        except (OutOfStock, Conflict):
            pass  # refused as a whole: nothing changed
        _assert_invariant(vendor, product)
        for reference, n in sold.items():
            held = LotAllocation.objects.filter(reference=reference, lot__vendor=vendor).aggregate(
                n=Sum("quantity") - Sum("released")
            )["n"]
            assert held == n


# --- concurrency: the last unit of a lot --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_buyers_racing_for_the_last_units_never_oversell_a_lot():
    # Given a cart with one unit in each of two sellable lots, and 5 expired units still on it
    # (so the cart's row shows 7: only the lots can stop the third buyer)
    vendor = VendorFactory()
    product = ProductFactory(name_en="Yakult")
    stock_put(vendor=vendor, product=product, quantity=5)
    _expire(StockLot.objects.get(vendor=vendor, product=product))
    for days in (1, 2):
        _load(vendor, product, 1, days=days)

    def buy(i: int):
        with translation.override("en"), transaction.atomic():
            stock_reserve(vendor_id=vendor.pk, items={product.pk: 1}, reference=100 + i)
        return "ok"

    # When four buyers each take one at the same moment, on their own connections
    results = _in_threads(4, buy)
    # Then exactly two win, each lot gave its one unit once, and nothing went negative
    assert results.count("ok") == 2, results
    assert all(isinstance(r, OutOfStock) for r in results if r != "ok"), results
    assert _lots(vendor, product) == [5, 0, 0]
    assert _stock(vendor, product) == 5
    assert LotAllocation.objects.count() == 2
    assert len(set(LotAllocation.objects.values_list("lot_id", flat=True))) == 2
    connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_write_off_racing_a_sale_for_the_last_unit_lets_one_win():
    vendor = VendorFactory()
    product = ProductFactory()
    lot = _load(vendor, product, 1)

    def work(i: int):
        if i == 0:
            with transaction.atomic():
                stock_reserve(vendor_id=vendor.pk, items={product.pk: 1}, reference=9)
        else:
            lot_write_off(
                lot_id=lot.pk, vendor=vendor, actor=vendor.user, reason=R.DAMAGED, quantity=1
            )
        return "ok"

    results = _in_threads(2, work)
    assert results.count("ok") == 1, results
    assert _lots(vendor, product) == [0] and _stock(vendor, product) == 0
