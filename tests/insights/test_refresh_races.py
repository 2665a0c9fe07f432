"""The refresh racing itself, the rebuild and new sales, on real PostgreSQL connections: every sale
is summarised once, whoever runs when."""

import threading

import pytest
from django.db import connection, connections

from insights.models import SaleRecord
from insights.summaries import (
    summaries_rebuild,
    summaries_recount,
    summaries_refresh,
    summaries_tables,
)
from tests.insights.factories import SaleRecordFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(work, errors: list) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connections.close_all()

    return threading.Thread(target=run)


def test_refreshes_a_rebuild_and_new_sales_at_once_count_every_sale_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has one writer at a time")
    for i in range(300):
        SaleRecordFactory(vendor_id=1 + i % 4, buyer=1 + i % 17, hour=i % 24, units=1 + i % 3)
    errors: list[Exception] = []
    start = threading.Barrier(4)

    def refresh() -> None:
        start.wait()
        for _ in range(5):
            summaries_refresh(batch_size=25, max_batches=3)

    def rebuild() -> None:
        start.wait()
        summaries_rebuild()

    def sell() -> None:
        start.wait()
        for i in range(100):
            SaleRecordFactory(vendor_id=2, buyer=100 + i, hour=i % 24)

    threads = [_in_thread(w, errors) for w in (refresh, refresh, rebuild, sell)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    summaries_refresh()
    assert not SaleRecord.objects.filter(batch__isnull=True).exists()
    assert summaries_tables() == summaries_recount()
