"""The summaries, kept from the record: incrementally (what was recorded since the last run) and
rebuilt from scratch; both give the same tables (tests/insights/test_summaries.py).

The refresh reads the rows not yet summarised (`batch` NULL), marks a batch of them with its first
id, adds the batch into the cubes and recomputes the buyers of the (vendor, day, cell) it touched,
all in one transaction under the lock of the one SummaryState row, which the rebuild also takes. A
sale whose transaction commits late (a lower id than rows already summarised) is still NULL and is
taken by the next run: nothing is skipped, nothing is counted twice.
"""

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import CellBuyers, MissCube, MissRecord, SaleRecord, SalesCube, SummaryState

SALE_KEY = "vendor_id, day, weekday, hour, product_id, cell, channel"
CUBE_VALUES = (
    "SUM(units), SUM(amount), "
    "SUM(CASE WHEN kind = 'sale' THEN 1 WHEN kind = 'void' THEN -1 ELSE 0 END)"
)
CUBE_INSERT = f"INSERT INTO insights_salescube ({SALE_KEY}, units, amount, sales) "
CUBE_UPSERT = (
    " ON CONFLICT (vendor_id, day, hour, product_id, cell, channel) DO UPDATE SET"
    " units = insights_salescube.units + excluded.units,"
    " amount = insights_salescube.amount + excluded.amount,"
    " sales = insights_salescube.sales + excluded.sales"
)
# A buyer counts in a (vendor, day, hour, cell) while they kept at least one unit bought there.
BUYERS_SELECT = (
    "INSERT INTO insights_cellbuyers (vendor_id, day, hour, cell, buyer) "
    "SELECT r.vendor_id, r.day, r.hour, r.cell, r.buyer FROM insights_salerecord r {where} "
    "GROUP BY r.vendor_id, r.day, r.hour, r.cell, r.buyer HAVING SUM(r.units) > 0"
)
TOUCHED = (
    "EXISTS (SELECT 1 FROM insights_salerecord b WHERE b.batch = %s AND b.vendor_id = {t}.vendor_id"
    " AND b.day = {t}.day AND b.cell = {t}.cell)"
)
MISS_KEY = "day, weekday, hour, cell, product_id, kind"
MISS_INSERT = f"INSERT INTO insights_misscube ({MISS_KEY}, misses) "
MISS_UPSERT = (
    " ON CONFLICT (day, hour, cell, product_id, kind) DO UPDATE SET"
    " misses = insights_misscube.misses + excluded.misses"
)


def _lock() -> SummaryState:
    SummaryState.objects.get_or_create(pk=1)
    return SummaryState.objects.select_for_update().get(pk=1)


def _mark(table: str, limit: int) -> int | None:
    """Mark the next batch of pending rows of `table` (at most about `limit`, by id) with the
    first one's id, and return it (None: nothing pending)."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT id FROM {table} WHERE batch IS NULL ORDER BY id LIMIT %s",  # noqa: S608
            [limit],
        )
        ids = [row[0] for row in cur.fetchall()]
        if not ids:
            return None
        cur.execute(
            f"UPDATE {table} SET batch = %s WHERE batch IS NULL AND id <= %s",  # noqa: S608
            [ids[0], ids[-1]],
        )
    return ids[0]


def _sales_batch(limit: int) -> int:
    marker = _mark("insights_salerecord", limit)
    if marker is None:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            f"{CUBE_INSERT} SELECT {SALE_KEY}, {CUBE_VALUES} FROM insights_salerecord "  # noqa: S608
            f"WHERE batch = %s GROUP BY {SALE_KEY} {CUBE_UPSERT}",
            [marker],
        )
        cur.execute(
            f"DELETE FROM insights_cellbuyers WHERE {TOUCHED.format(t='insights_cellbuyers')}",  # noqa: S608
            [marker],
        )
        cur.execute(BUYERS_SELECT.format(where=f"WHERE {TOUCHED.format(t='r')}"), [marker])
        cur.execute("SELECT COUNT(*) FROM insights_salerecord WHERE batch = %s", [marker])
        return int(cur.fetchone()[0])


def _misses_batch(limit: int) -> int:
    marker = _mark("insights_missrecord", limit)
    if marker is None:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            f"{MISS_INSERT} SELECT {MISS_KEY}, COUNT(*) FROM insights_missrecord "  # noqa: S608
            f"WHERE batch = %s GROUP BY {MISS_KEY} {MISS_UPSERT}",
            [marker],
        )
        return cur.rowcount


def summaries_refresh(*, batch_size: int = 5_000, max_batches: int = 200) -> dict[str, int]:
    """Add what was recorded since the last run into the summaries, a batch per transaction, at
    most `max_batches` of each kind per call (beat calls again a minute later)."""
    done = {"sales": 0, "misses": 0}
    for kind, step in (("sales", _sales_batch), ("misses", _misses_batch)):
        for _ in range(max_batches):
            with transaction.atomic():
                _lock()
                n = step(batch_size)
            if not n:
                break
            done[kind] += n
    SummaryState.objects.filter(pk=1).update(refreshed_at=timezone.now())
    return done


@transaction.atomic
def summaries_rebuild() -> dict[str, int]:
    """Recompute every summary from the whole record, in one transaction (the refresh waits).

    DELETE, not TRUNCATE: TRUNCATE's lock would stop the pages reading the summaries for the
    whole rebuild (about a minute at a million sales, bench/insight.py); with DELETE they read
    the old figures until the new ones commit. Rows go in in their unique key's order, with
    room to group in memory, so the indexes are filled in order rather than at random."""
    state = _lock()
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL work_mem = '256MB'")
        for table in ("insights_salerecord", "insights_missrecord"):
            cur.execute(f"UPDATE {table} SET batch = 0 WHERE batch IS NULL")  # noqa: S608
        for model in (SalesCube, CellBuyers, MissCube):
            cur.execute(f"DELETE FROM {model._meta.db_table}")  # noqa: S608
        cur.execute(
            f"{CUBE_INSERT} SELECT {SALE_KEY}, {CUBE_VALUES} FROM insights_salerecord "  # noqa: S608
            f"WHERE batch IS NOT NULL GROUP BY {SALE_KEY} "
            "ORDER BY vendor_id, day, hour, product_id, cell, channel"
        )
        cur.execute(
            BUYERS_SELECT.format(where="") + " ORDER BY r.vendor_id, r.day, r.cell, r.hour, r.buyer"
        )
        cur.execute(
            f"{MISS_INSERT} SELECT {MISS_KEY}, COUNT(*) FROM insights_missrecord "  # noqa: S608
            f"WHERE batch IS NOT NULL GROUP BY {MISS_KEY} "
            "ORDER BY day, hour, cell, product_id, kind"
        )
    state.rebuilt_at = timezone.now()
    state.save(update_fields=["rebuilt_at"])
    return {
        "sales_rows": SalesCube.objects.count(),
        "buyer_rows": CellBuyers.objects.count(),
        "miss_rows": MissCube.objects.count(),
    }


def summaries_recount() -> dict[str, Any]:
    """What the summaries should hold, counted in Python from the whole record: the reference the
    tests and the health check compare the tables with."""
    cube: dict[tuple, list[int]] = {}
    kept: dict[tuple, int] = {}
    for r in SaleRecord.objects.all().iterator():
        key = (r.vendor_id, r.day, r.weekday, r.hour, r.product_id, r.cell, r.channel)
        row = cube.setdefault(key, [0, 0, 0])
        row[0] += r.units
        row[1] += r.amount
        row[2] += {"sale": 1, "void": -1}.get(r.kind, 0)
        bkey = (r.vendor_id, r.day, r.hour, r.cell, r.buyer)
        kept[bkey] = kept.get(bkey, 0) + r.units
    misses: dict[tuple, int] = {}
    for m in MissRecord.objects.all().iterator():
        mkey = (m.day, m.weekday, m.hour, m.cell, m.product_id, m.kind)
        misses[mkey] = misses.get(mkey, 0) + 1
    return {
        "cube": {k: tuple(v) for k, v in cube.items()},
        "buyers": {k for k, units in kept.items() if units > 0},
        "misses": misses,
    }


def summaries_tables() -> dict[str, Any]:
    """What the summary tables hold, in the shape of summaries_recount."""
    return {
        "cube": {
            (c.vendor_id, c.day, c.weekday, c.hour, c.product_id, c.cell, c.channel): (
                c.units,
                c.amount,
                c.sales,
            )
            for c in SalesCube.objects.all().iterator()
        },
        "buyers": set(CellBuyers.objects.values_list("vendor_id", "day", "hour", "cell", "buyer")),
        "misses": {
            (m.day, m.weekday, m.hour, m.cell, m.product_id, m.kind): m.misses
            for m in MissCube.objects.all().iterator()
        },
    }
