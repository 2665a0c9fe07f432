"""The summaries equal a recount of the record, whatever the order in which sales, refunds, undone
sales, late sales (a day long past, recorded now) and misses arrive and refreshes run, and the
rebuild from scratch gives the same tables; the minimum-count rule never shows an area with fewer
distinct buyers than the setting."""

import itertools
from datetime import date, datetime, timedelta

import h3
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from insights.models import CellBuyers, MissCube, MissRecord, SaleRecord, SalesCube, SummaryState
from insights.privacy import ELSEWHERE, areas_for, merge
from insights.summaries import (
    summaries_rebuild,
    summaries_recount,
    summaries_refresh,
    summaries_tables,
)
from tests.factories import MAPO
from tests.insights.factories import MissRecordFactory, SaleRecordFactory

pytestmark = pytest.mark.django_db

HOME = h3.latlng_to_cell(*MAPO, 9)
CELLS = [HOME, *sorted(set(h3.grid_disk(HOME, 1)) - {HOME})[:2], ""]
START = date(2026, 11, 2)  # a Monday

sale = st.fixed_dictionaries(
    {
        "op": st.just("sale"),
        "vendor_id": st.integers(1, 3),
        "day": st.integers(0, 13),
        "hour": st.integers(0, 23),
        "product_id": st.integers(1, 3),
        "cell": st.sampled_from(CELLS),
        "channel": st.sampled_from(["online", "regular", "walkup", "cash"]),
        "buyer": st.integers(-4, 6).filter(bool),
        "units": st.integers(1, 4),
        "price": st.integers(0, 3_000),
    }
)
reversal = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["refund", "void", "refund_money"]),
        "of": st.integers(0, 50),
    }
)
refresh = st.fixed_dictionaries({"op": st.just("refresh"), "batch": st.integers(1, 6)})
miss = st.fixed_dictionaries(
    {
        "op": st.just("miss"),
        "cell": st.sampled_from(CELLS[:3]),
        "product_id": st.integers(1, 3),
        "hour": st.integers(0, 23),
        "asker": st.integers(1, 4),
        "kind": st.sampled_from(["none_near", "sold_out"]),
    }
)
ops = st.lists(st.one_of(sale, sale, reversal, refresh, miss), max_size=40)


def _clear() -> None:
    for model in (SaleRecord, MissRecord, SalesCube, CellBuyers, MissCube, SummaryState):
        model.objects.all().delete()


def _apply(steps: list[dict]) -> None:
    sales: list[SaleRecord] = []
    reversed_: set[tuple[int, str]] = set()
    ids = itertools.count(1)
    for step in steps:
        if step["op"] == "sale":
            day = START + timedelta(days=step["day"])
            moment = datetime(day.year, day.month, day.day, step["hour"])
            sales.append(
                SaleRecordFactory(
                    vendor_id=step["vendor_id"],
                    product_id=step["product_id"],
                    cell=step["cell"],
                    channel=step["channel"],
                    buyer=step["buyer"],
                    units=step["units"],
                    amount=step["units"] * step["price"],
                    occurred_at=moment.astimezone(),
                    day=day,
                    weekday=day.weekday(),
                    hour=step["hour"],
                )
            )
        elif step["op"] in ("refund", "void", "refund_money") and sales:
            of = sales[step["of"] % len(sales)]
            kind = "void" if step["op"] == "void" else "refund"
            if (of.line_id, kind) in reversed_ or (of.line_id, "void") in reversed_:
                continue
            reversed_.add((of.line_id, kind))
            money_only = step["op"] == "refund_money"
            SaleRecordFactory(
                **{
                    f: getattr(of, f)
                    for f in (
                        "vendor_id",
                        "order_id",
                        "line_id",
                        "product_id",
                        "channel",
                        "buyer",
                        "occurred_at",
                        "day",
                        "weekday",
                        "hour",
                        "cell",
                    )
                },  # fmt: skip
                kind=kind,
                source_id=next(ids),
                units=0 if money_only else -of.units,
                amount=-(of.amount // 2 if money_only else of.amount),
            )
        elif step["op"] == "refresh":
            summaries_refresh(batch_size=step["batch"], max_batches=2)
        elif step["op"] == "miss":
            day = START + timedelta(days=3)
            MissRecordFactory(
                kind=step["kind"],
                product_id=step["product_id"],
                cell=step["cell"],
                day=day,
                weekday=day.weekday(),
                hour=step["hour"],
                asker=f"a{step['asker']}-{next(ids)}",
            )


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=ops)
def test_the_summaries_equal_a_recount_and_the_rebuild_after_any_sequence(steps):
    # Given any sequence of sales, refunds, undone sales, misses and partial refreshes
    _clear()
    _apply(steps)
    # When the refresh catches up
    summaries_refresh(batch_size=7)
    # Then the tables hold exactly what a recount of the whole record gives
    recount = summaries_recount()
    assert summaries_tables() == recount
    # And the rebuild from scratch gives the same again, and a refresh after it adds nothing
    summaries_rebuild()
    assert summaries_tables() == recount
    assert summaries_refresh() == {"sales": 0, "misses": 0}
    assert summaries_tables() == recount


def test_a_late_sale_recorded_after_its_day_was_summarised_is_added_to_that_day():
    # Given a day summarised
    day = START
    SaleRecordFactory(day=day, weekday=day.weekday(), hour=9, units=2, amount=2_400, buyer=1)
    summaries_refresh()
    # When a sale of that day arrives later (an offline round replayed), with a lower id even
    late = SaleRecordFactory(day=day, weekday=day.weekday(), hour=9, units=1, amount=1_200, buyer=2)
    summaries_refresh()
    # Then it is in that day's figures, once
    row = SalesCube.objects.get(day=day, hour=9)
    assert (row.units, row.amount, row.sales) == (3, 3_600, 2)
    assert CellBuyers.objects.filter(day=day, cell=late.cell).count() == 2
    assert SaleRecord.objects.filter(batch__isnull=True).count() == 0


def test_a_buyer_whose_purchase_was_all_given_back_no_longer_counts_in_the_area():
    first = SaleRecordFactory(buyer=7, units=2, amount=2_400)
    summaries_refresh()
    assert CellBuyers.objects.filter(buyer=7).exists()
    SaleRecordFactory(
        kind="void", source_id=first.order_id, order_id=first.order_id, line_id=first.line_id,
        buyer=7, units=-2, amount=-2_400, occurred_at=first.occurred_at, day=first.day,
        hour=first.hour, weekday=first.weekday, cell=first.cell,
    )  # fmt: skip
    summaries_refresh()
    assert not CellBuyers.objects.filter(buyer=7).exists()
    assert SalesCube.objects.get().units == 0


# --- the minimum-count rule --------------------------------------------------------------------

NEAR = sorted(h3.grid_disk(HOME, 3))


@hsettings(max_examples=200, deadline=None)
@given(
    buyers=st.dictionaries(
        st.sampled_from(NEAR + [""]), st.sets(st.integers(1, 12), min_size=1, max_size=6),
        max_size=20,
    ),
    k=st.integers(2, 6),
)  # fmt: skip
def test_no_area_is_shown_with_fewer_distinct_buyers_than_the_setting(buyers, k):
    areas = areas_for(buyers, k=k)
    # Every cell is placed (shown somewhere, pooled, or hidden), and
    assert set(areas) == set(buyers)
    # every area shown has at least k distinct buyers across the cells merged into it
    shown: dict[str, set[int]] = {}
    for cell, area in areas.items():
        if area is not None:
            shown.setdefault(area, set()).update(buyers[cell])
    for area, who in shown.items():
        assert len(who) >= k, (area, who)
        if area != ELSEWHERE:  # an area is a cell, or a parent of the cells merged into it
            members = [c for c, a in areas.items() if a == area]
            assert all(h3.cell_to_parent(c, h3.get_resolution(area)) == area for c in members)
    # And the merged figures add up to those of the cells not hidden
    figures = {cell: {"units": len(who)} for cell, who in buyers.items()}
    merged = merge(figures, areas)
    assert sum(v["units"] for v in merged.values()) == sum(
        figures[c]["units"] for c, a in areas.items() if a is not None
    )


def test_a_lone_buyer_in_a_cell_is_merged_with_the_neighbours_not_shown_alone(settings):
    settings.INSIGHT_MIN_BUYERS = 3
    lone, *others = NEAR[:4]
    buyers = {lone: {1}, others[0]: {2, 3, 4}, others[1]: {2}, others[2]: {5}}
    areas = areas_for(buyers)
    assert areas[others[0]] == others[0]  # three buyers: shown as itself
    assert areas[lone] != lone and areas[lone] is not None  # merged, with the others too small
    assert areas[lone] == areas[others[1]] == areas[others[2]]
