"""A reservation (every order, walk-up and cash sale) tells the map only when it takes a product's
last sellable unit: the map shows which products are on sale, not how many, and re-reading and
re-sending a busy cart's public state after every order was a third of a placement's CPU
(bench/README.md, "Placement against pgbench"). The vendor page's "N left" still follows every
change, read and sent once per cart per LIVE_COALESCE_S on the process's coalescing thread."""

import threading
import time

import pytest
from django.db import transaction

from o2o import batching
from o2o.batching import CallCoalescer, on_commit_coalesced
from o2o.effects import KickBatcher
from tests.factories import StockFactory
from vendors.services import stock_release, stock_reserve
from vendors.signals import stock_changed


@pytest.fixture
def map_told():
    """The vendors for whom the map was told (the stock_changed signal), in order."""
    told: list[int] = []

    def receiver(sender, *, vendor_id, **kwargs):
        told.append(vendor_id)

    stock_changed.connect(receiver, dispatch_uid="test.map_told")
    yield told
    stock_changed.disconnect(dispatch_uid="test.map_told")


@pytest.mark.django_db
def test_a_reservation_that_leaves_units_on_sale_does_not_tell_the_map(
    vendor, map_told, django_capture_on_commit_callbacks
):
    row = StockFactory(vendor=vendor, quantity=5)
    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(vendor_id=vendor.pk, items={row.product_id: 2})
    assert map_told == []


@pytest.mark.django_db
def test_taking_the_last_unit_tells_the_map_and_putting_it_back_does_too(
    vendor, map_told, django_capture_on_commit_callbacks
):
    kept, last = StockFactory(vendor=vendor, quantity=5), StockFactory(vendor=vendor, quantity=3)
    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(vendor_id=vendor.pk, items={kept.product_id: 1, last.product_id: 3})
    assert map_told == [vendor.pk]
    with django_capture_on_commit_callbacks(execute=True):
        stock_release(vendor_id=vendor.pk, items={last.product_id: 1})
    assert map_told == [vendor.pk, vendor.pk]


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_calls_with_one_key_in_a_window_run_once_with_the_last_arguments_off_the_caller():
    coalescer = CallCoalescer(window_s=0.05)
    ran: list[tuple[str, int, str]] = []

    def publish(*, vendor_id: int, n: int) -> None:
        ran.append(("publish", vendor_id, threading.current_thread().name))
        seen.append(n)

    seen: list[int] = []
    for n in range(10):
        coalescer.add((publish, 1), (publish, {"vendor_id": 1, "n": n}))
    coalescer.add((publish, 2), (publish, {"vendor_id": 2, "n": 0}))
    _wait_for(lambda: len(ran) >= 2)
    time.sleep(0.1)
    assert sorted(vendor for _, vendor, _ in ran) == [1, 2]  # once per key, not ten times
    assert 9 in seen  # the last arguments of vendor 1's calls
    assert {name for *_, name in ran} == {"o2o-coalesced-calls"}


def test_a_failing_call_stops_neither_the_others_nor_the_thread():
    coalescer = CallCoalescer(window_s=0.02)
    ran: list[int] = []

    def boom() -> None:
        raise RuntimeError("redis is away")

    def fine(*, n: int) -> None:
        ran.append(n)

    coalescer.add("a", (boom, {}))
    coalescer.add("b", (fine, {"n": 1}))
    _wait_for(lambda: ran == [1])
    coalescer.add("b", (fine, {"n": 2}))
    _wait_for(lambda: ran == [1, 2])
    assert ran == [1, 2]


def test_the_effect_kicks_still_collect_every_key_of_a_queue():
    kicks = KickBatcher(window_s=10)  # never flushed by its thread within this test
    for key in ("e1", "e2", "e3"):
        kicks.add("money", key)
    kicks.add("bulk", "e4")
    assert kicks._pending == {"money": ["e1", "e2", "e3"], "bulk": ["e4"]}
    kicks._pending.clear()  # nothing for its thread to send once the window ends (no such effects)


@pytest.mark.django_db(transaction=True)
def test_with_a_window_the_call_waits_for_the_commit_then_runs_once(settings, monkeypatch):
    settings.LIVE_COALESCE_S = 0.05
    monkeypatch.setattr(batching, "calls", CallCoalescer(window_s=0.05))
    ran: list[int] = []

    def publish(*, vendor_id: int) -> None:
        ran.append(vendor_id)

    with transaction.atomic():
        for _ in range(5):
            on_commit_coalesced(publish, key=7, vendor_id=7)
        time.sleep(0.15)
        assert ran == []  # nothing before the commit
    _wait_for(lambda: ran == [7])
    time.sleep(0.1)
    assert ran == [7]

    with pytest.raises(RuntimeError), transaction.atomic():
        on_commit_coalesced(publish, key=7, vendor_id=7)
        raise RuntimeError("rolled back")
    time.sleep(0.15)
    assert ran == [7]  # nothing after a rollback
