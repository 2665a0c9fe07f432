"""Stock saves are fast and live: a save costs a fixed number of queries whatever the number of
rows (pinned), and once it commits (never before, never after a rollback) the vendor's public
stock goes to the sockets of the vendor's page, which get a snapshot on every (re)connection."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import translation

from o2o.errors import Conflict
from o2o.realtime import broadcaster
from tests.factories import ProductFactory, StockFactory, VendorFactory
from tests.tracking.ws import communicator, refusal
from vendors.models import Stock, Vendor
from vendors.realtime import stock_group
from vendors.services import StockChange, stock_adjust, stock_set

ROWS = 12


@pytest.fixture
def sent(monkeypatch):
    """What the broadcaster is asked to send: (group, message), in order."""
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcaster, "send", lambda group, message: calls.append((group, message)))
    return calls


def _cart(vendor, rows=ROWS) -> list[Stock]:
    return [StockFactory(vendor=vendor, quantity=10) for _ in range(rows)]


def _form(vendor) -> dict:
    rows = list(Stock.objects.filter(vendor=vendor).order_by("product_id"))
    data = {"form-TOTAL_FORMS": len(rows), "form-INITIAL_FORMS": len(rows)}
    for i, row in enumerate(rows):
        data |= {
            f"form-{i}-product_id": row.product_id,
            f"form-{i}-expected": row.quantity,
            f"form-{i}-quantity": row.quantity,
        }
    return data


# --- fast: queries of a save do not grow with its rows ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("changed", [1, ROWS])
def test_a_stock_save_costs_the_same_few_queries_for_one_row_or_all(
    vendor, changed, django_assert_max_num_queries
):
    rows = _cart(vendor)
    new_product = ProductFactory()  # not on the cart yet: its row is created by the save
    changes = [
        StockChange(product_id=r.product_id, quantity=3, expected=10) for r in rows[:changed]
    ]
    changes.append(StockChange(product_id=new_product.pk, quantity=5, expected=0))
    # status, products on sale, insert missing rows, lock rows, one update, and for the lots (the
    # cart is the sum of its lots): lock them, one update, new lots, the adjustments recorded
    # (+ savepoint pair)
    with django_assert_max_num_queries(11):
        result = stock_set(vendor=vendor, actor=vendor.user, changes=changes)
    assert sorted((s.product_id, s.quantity) for s in result) == sorted(
        (c.product_id, c.quantity) for c in changes
    )
    saved = dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))
    assert all(saved[c.product_id] == c.quantity for c in changes)
    assert [saved[r.product_id] for r in rows[changed:]] == [10] * (ROWS - changed)


@pytest.mark.django_db
def test_the_stock_page_save_is_pinned_too(client, vendor, django_assert_max_num_queries):
    _cart(vendor)
    client.force_login(vendor.user)
    data = _form(vendor)
    for i in range(ROWS):
        data[f"form-{i}-quantity"] = 3
    # session, user, vendor, editor rows (2), the save (at most 11), the message (session write)
    with django_assert_max_num_queries(16):
        response = client.post("/vendors/me/stock/", data)
    assert response.status_code == 302
    assert set(Stock.objects.filter(vendor=vendor).values_list("quantity", flat=True)) == {3}


@pytest.mark.django_db
def test_a_stale_row_still_refuses_the_whole_batch(vendor):
    a, b = _cart(vendor, 2)
    Stock.objects.filter(pk=b.pk).update(quantity=7)  # an order took 3 meanwhile
    with translation.override("en"), pytest.raises(Conflict, match="changed meanwhile: 7 left now"):
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[
                StockChange(product_id=a.product_id, quantity=1, expected=10),
                StockChange(product_id=b.product_id, quantity=1, expected=10),
            ],
        )
    assert dict(Stock.objects.filter(vendor=vendor).values_list("pk", "quantity")) == {
        a.pk: 10,
        b.pk: 7,
    }


# --- live: what is broadcast, and when ----------------------------------------------------------


@pytest.mark.django_db
def test_the_public_stock_is_broadcast_after_commit_only(
    vendor, sent, django_capture_on_commit_callbacks
):
    a, b = _cart(vendor, 2)
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(product_id=a.product_id, quantity=3, expected=10)],
        )
        assert sent == []  # not before the commit
    assert hooks
    assert sent == [
        (
            stock_group(vendor.pk),
            {"type": "stock.update", "stock": {str(a.product_id): 3, str(b.product_id): 10}},
        )
    ]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_broadcast_when_the_change_rolls_back(sent):
    vendor = VendorFactory()
    (row,) = _cart(vendor, 1)
    with pytest.raises(RuntimeError), transaction.atomic():
        stock_adjust(stock_id=row.pk, delta=-4)
        raise RuntimeError("the order failed")
    assert sent == []
    assert stock_adjust(stock_id=row.pk, delta=-4)  # outside a transaction: sent at once
    assert sent == [
        (stock_group(vendor.pk), {"type": "stock.update", "stock": {str(row.product_id): 6}})
    ]


@pytest.mark.django_db
def test_the_broadcast_carries_no_position_and_no_product_off_sale(
    vendor, sent, django_capture_on_commit_callbacks
):
    on_sale, off_sale = _cart(vendor, 2)
    off_sale.product.is_active = False
    off_sale.product.save()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        stock_adjust(stock_id=on_sale.pk, delta=1)
    ((_group, message),) = sent
    assert message == {"type": "stock.update", "stock": {str(on_sale.product_id): 11}}


# --- the socket ---------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_vendor_page_socket_gets_a_snapshot_then_each_change():
    vendor = VendorFactory()
    (row,) = _cart(vendor, 1)
    path = f"/ws/vendors/{vendor.slug}/stock/"

    async def main():
        page = communicator(path)
        connected, _ = await page.connect(timeout=5)
        assert connected
        # A snapshot on connecting (a page that reconnects resyncs from it)
        assert await page.receive_json_from(timeout=5) == {
            "type": "stock.update",
            "stock": {str(row.product_id): 10},
        }
        # When the vendor sets 10 -> 3, the page hears it
        await database_sync_to_async(stock_set)(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(product_id=row.product_id, quantity=3, expected=10)],
        )
        assert await page.receive_json_from(timeout=5) == {
            "type": "stock.update",
            "stock": {str(row.product_id): 3},
        }
        # The page sends nothing: anything it sends closes the socket with 4400
        await page.send_json_to({"type": "hello"})
        assert (await page.receive_output(timeout=5))["code"] == 4400
        await page.disconnect()

    async_to_sync(main)()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_unknown_or_unapproved_vendors_have_no_stock_socket():
    pending = VendorFactory(status=Vendor.Status.PENDING)

    async def main():
        for slug in ("no-such-cart", pending.slug):
            client = communicator(f"/ws/vendors/{slug}/stock/")
            assert await refusal(client) == 4404
            await client.disconnect()

    async_to_sync(main)()
