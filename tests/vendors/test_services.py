"""Vendor services: applying, the approval state machine, service areas, and cart stock, with the
database (not only Python) keeping stock at or above zero."""

import threading

import h3
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import translation

from o2o.errors import Conflict, NotAllowed
from tests.factories import (
    CustomerProfileFactory,
    ProductFactory,
    StaffFactory,
    StockFactory,
    UserFactory,
    VendorFactory,
)
from vendors import selectors
from vendors.models import ServiceCell, Stock, Vendor
from vendors.services import (
    MAX_STOCK,
    OutOfStock,
    StockChange,
    stock_adjust,
    stock_release,
    stock_reserve,
    stock_set,
    vendor_apply,
    vendor_approve,
    vendor_reject,
    vendor_service_area_set,
    vendor_suspend,
)

S = Vendor.Status
MAPO = (37.5560, 126.9060)


# --- Applying ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_apply_creates_a_pending_vendor_with_a_service_area_around_home():
    # Given a signed-up person without a customer profile yet
    user = UserFactory()
    # When they apply with a Korean cart name
    vendor = vendor_apply(user=user, name=" 망원 카트 ", home_lat=MAPO[0], home_lng=MAPO[1])
    # Then they are a pending vendor with a stable ASCII slug and a customer profile
    assert vendor.status == S.PENDING
    assert not vendor.can_sell
    assert vendor.name == "망원 카트"
    assert vendor.slug == f"cart-{user.pk}"
    assert hasattr(user, "customer")
    # And the service area is the home cell and its neighbours at the service resolution
    home = h3.latlng_to_cell(*MAPO, settings.SERVICE_AREA_RES)
    cells = set(vendor.service_cells.values_list("cell", flat=True))
    assert cells == set(h3.grid_disk(home, 1))
    assert len(cells) == 7


@pytest.mark.django_db
def test_applying_twice_is_refused():
    user = UserFactory()
    vendor_apply(user=user, name="one", home_lat=MAPO[0], home_lng=MAPO[1])
    with pytest.raises(ValidationError):
        vendor_apply(user=user, name="two", home_lat=MAPO[0], home_lng=MAPO[1])
    assert Vendor.objects.get(user=user).name == "one"


@pytest.mark.parametrize(
    "name, lat, lng, field",
    [
        ("  ", *MAPO, "name"),
        ("cart", 90.1, MAPO[1], "home_lat"),
        ("cart", MAPO[0], -180.1, "home_lat"),
    ],
)
@pytest.mark.django_db
def test_bad_applications_are_refused_and_save_nothing(name, lat, lng, field):
    with pytest.raises(ValidationError) as exc:
        vendor_apply(user=UserFactory(), name=name, home_lat=lat, home_lng=lng)
    assert field in exc.value.message_dict
    assert not Vendor.objects.exists()
    assert not ServiceCell.objects.exists()


@pytest.mark.django_db
def test_service_area_set_replaces_the_cells_and_refuses_bad_ones(vendor):
    home = h3.latlng_to_cell(*MAPO, settings.SERVICE_AREA_RES)
    ring = sorted(h3.grid_disk(home, 1))
    assert vendor_service_area_set(vendor=vendor, cells=ring) == ring
    assert vendor_service_area_set(vendor=vendor, cells=[home, home]) == [home]
    assert list(vendor.service_cells.values_list("cell", flat=True)) == [home]
    wrong_res = h3.latlng_to_cell(*MAPO, settings.SERVICE_AREA_RES + 1)
    for bad in (["not-a-cell"], [wrong_res], []):
        with pytest.raises(ValidationError):
            vendor_service_area_set(vendor=vendor, cells=bad)
    assert list(vendor.service_cells.values_list("cell", flat=True)) == [home]


# --- Approval: a state machine, every (action, from-state) pair -------------------------------

ACTIONS = {"approve": vendor_approve, "suspend": vendor_suspend, "reject": vendor_reject}
ALLOWED = {
    ("approve", S.PENDING): S.APPROVED,
    ("approve", S.SUSPENDED): S.APPROVED,
    ("suspend", S.APPROVED): S.SUSPENDED,
    ("reject", S.PENDING): S.REJECTED,
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("start", S.values)
@pytest.mark.django_db
def test_status_moves_only_from_allowed_states(action, start):
    # Given a vendor in some state
    vendor = VendorFactory(status=start)
    target = ALLOWED.get((action, start))
    if target:
        # When staff take an allowed action, the status moves and the reason is kept
        moved = ACTIONS[action](vendor_id=vendor.pk, reason="checked by staff")
        assert moved.status == target
        assert moved.status_reason == "checked by staff"
        assert moved.status_changed_at is not None
    else:
        # When the action isn't allowed from this state, Conflict, and nothing changes
        with pytest.raises(Conflict):
            ACTIONS[action](vendor_id=vendor.pk, reason="nope")
        vendor.refresh_from_db()
        assert vendor.status == start
        assert vendor.status_changed_at is None


@pytest.mark.django_db
def test_only_approved_vendors_are_public():
    vendors = {s: VendorFactory(status=s) for s in S.values}
    assert list(selectors.vendors_public()) == [vendors[S.APPROVED]]
    vendor_approve(vendor_id=vendors[S.PENDING].pk)
    vendor_suspend(vendor_id=vendors[S.APPROVED].pk)
    assert list(selectors.vendors_public()) == [vendors[S.PENDING]]


# --- stock_set --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stock_set_is_only_for_the_vendor_or_staff(vendor):
    product = ProductFactory()
    stranger = CustomerProfileFactory().user
    other_vendor = VendorFactory()
    for actor in (stranger, other_vendor.user):
        with pytest.raises(NotAllowed):
            stock_set(vendor=vendor, actor=actor, changes=[StockChange(product.pk, 5)])
    assert not Stock.objects.exists()
    # Staff may (the demo seed and support use it)
    stock_set(vendor=vendor, actor=StaffFactory(), changes=[StockChange(product.pk, 5)])
    assert Stock.objects.get(vendor=vendor, product=product).quantity == 5


@pytest.mark.parametrize(
    "quantity",
    [-1, 10_001, 1.5, "3", True, None],
    ids=["neg", "huge", "float", "str", "bool", "none"],
)
@pytest.mark.django_db
def test_stock_set_refuses_bad_quantities_and_saves_none_of_the_batch(vendor, quantity):
    good, bad = ProductFactory(), ProductFactory()
    with pytest.raises(ValidationError):
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(good.pk, 4), StockChange(bad.pk, quantity)],
        )
    assert not Stock.objects.exists()


@pytest.mark.django_db
def test_stock_set_with_a_stale_expected_is_a_conflict_and_saves_nothing(vendor):
    # Given two rows, the second of which changed since the vendor looked
    first = StockFactory(vendor=vendor, quantity=3)
    second = StockFactory(vendor=vendor, quantity=8)
    assert stock_adjust(stock_id=second.pk, delta=-1)
    # When the vendor saves both, expecting what they saw
    with pytest.raises(Conflict):
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[
                StockChange(first.product_id, 10, expected=3),
                StockChange(second.product_id, 10, expected=8),
            ],
        )
    # Then neither row changed (the first was written and rolled back with the batch)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.quantity, second.quantity) == (3, 7)


@pytest.mark.django_db
def test_a_vendor_can_lower_stock_that_a_cancelled_order_pushed_above_the_maximum(vendor):
    # Given a full cart, an order taking 1, the vendor topping up to MAX_STOCK again, and then the
    # order cancelled: its unit goes back, and the row holds MAX_STOCK + 1
    product = ProductFactory()
    stock_set(vendor=vendor, actor=vendor.user, changes=[StockChange(product.pk, MAX_STOCK)])
    stock_reserve(vendor_id=vendor.pk, items={product.pk: 1})
    stock_set(
        vendor=vendor,
        actor=vendor.user,
        changes=[StockChange(product.pk, MAX_STOCK, expected=MAX_STOCK - 1)],
    )
    stock_release(vendor_id=vendor.pk, items={product.pk: 1})
    assert Stock.objects.get(vendor=vendor, product=product).quantity == MAX_STOCK + 1
    # When the vendor lowers it to 500, saying they saw MAX_STOCK + 1
    stock_set(
        vendor=vendor,
        actor=vendor.user,
        changes=[StockChange(product.pk, 500, expected=MAX_STOCK + 1)],
    )
    # Then it is saved
    assert Stock.objects.get(vendor=vendor, product=product).quantity == 500


@pytest.mark.parametrize(
    ("quantity", "expected", "message"),
    [
        (MAX_STOCK + 1, MAX_STOCK + 1, "Quantity can't be more than 10000."),
        (5, -1, "Quantity can't be negative."),
        (5, 1.5, "Quantity must be a whole number."),
    ],
    ids=["new-above-max", "seen-negative", "seen-fraction"],
)
@pytest.mark.django_db
def test_stock_set_keeps_the_maximum_on_the_new_quantity_only(vendor, quantity, expected, message):
    # Given a row above MAX_STOCK
    stock = StockFactory(vendor=vendor, quantity=MAX_STOCK + 1)
    # When the vendor sends a new quantity above MAX_STOCK, or a bad seen quantity
    with pytest.raises(ValidationError) as exc, translation.override("en"):
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(stock.product_id, quantity, expected=expected)],
        )
    # Then it is refused, saying why, and nothing changes
    assert exc.value.messages == [message]
    stock.refresh_from_db()
    assert stock.quantity == MAX_STOCK + 1


# --- stock_reserve ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "left", "message"),
    [
        ("en", 0, "Yakult is sold out."),
        ("en", 2, "Only 2 of Yakult left on the cart."),
        ("ko", 0, "발효유은(는) 품절이에요."),
    ],
    ids=["en-sold-out", "en-too-few", "ko-sold-out"],
)
@pytest.mark.django_db
def test_out_of_stock_names_the_product_in_the_page_language(vendor, language, left, message):
    # Given a product with Korean and English names, with `left` units on the cart
    product = ProductFactory(name_ko="발효유", name_en="Yakult")
    StockFactory(vendor=vendor, product=product, quantity=left)
    # When a customer reserving 5 gets refused
    with translation.override(language), pytest.raises(OutOfStock) as exc:
        stock_reserve(vendor_id=vendor.pk, items={product.pk: 5})
    # Then the message names the product in the page's language
    assert exc.value.product_id == product.pk
    assert exc.value.messages == [message]


# --- The database keeps stock >= 0 ------------------------------------------------------------


@pytest.mark.django_db
def test_a_raw_update_to_negative_stock_is_refused_by_the_database():
    stock = StockFactory(quantity=2)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Stock._meta.db_table} SET quantity = %s WHERE id = %s", [-1, stock.pk]
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.filter(pk=stock.pk).update(quantity=-1)
    stock.refresh_from_db()
    assert stock.quantity == 2


@pytest.mark.django_db
def test_one_stock_row_per_vendor_and_product():
    stock = StockFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StockFactory(vendor=stock.vendor, product=stock.product)


@pytest.mark.django_db
def test_stock_adjust_never_takes_more_than_there_is():
    stock = StockFactory(quantity=3)
    # Taking more than there is fails and changes nothing
    assert stock_adjust(stock_id=stock.pk, delta=-4) is False
    stock.refresh_from_db()
    assert stock.quantity == 3
    # Taking exactly what there is, and adding back, work
    assert stock_adjust(stock_id=stock.pk, delta=-3) is True
    assert stock_adjust(stock_id=stock.pk, delta=2) is True
    stock.refresh_from_db()
    assert stock.quantity == 2
    assert stock_adjust(stock_id=987654321, delta=1) is False


def _in_threads(n: int, work) -> list:
    """Run work(i) in n threads started together, each on its own connection."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:  # reported by the caller's assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_takes_from_ten_succeed_exactly_ten_times():
    # Given 10 units on a cart
    stock = StockFactory(quantity=10)
    # When 20 customers take one unit at the same moment
    results = _in_threads(20, lambda i: stock_adjust(stock_id=stock.pk, delta=-1))
    # Then exactly 10 get one, and the cart ends at 0, never below
    assert all(isinstance(r, bool) for r in results), results
    assert results.count(True) == 10
    stock.refresh_from_db()
    assert stock.quantity == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_from_the_same_view_let_exactly_one_win():
    # Given a vendor open on two phones, both showing 10 units
    vendor = VendorFactory()
    stock = StockFactory(vendor=vendor, quantity=10)

    def save(i: int):
        return stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(stock.product_id, 20 + i, expected=10)],
        )

    # When six saves race
    results = _in_threads(6, save)
    # Then one wins, every other is told it changed meanwhile
    wins = [r for r in results if isinstance(r, list)]
    assert len(wins) == 1
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, list)), results
    stock.refresh_from_db()
    assert stock.quantity == wins[0][0].quantity
