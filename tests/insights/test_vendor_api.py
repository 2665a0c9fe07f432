"""The vendor's insight over the API: the page's figures as JSON, under the same minimum-count
rule, for the signed-in vendor only; the load for a day, with a validated date."""

from datetime import timedelta

import h3
import pytest
from django.utils import timezone

from insights.models import Channel
from insights.summaries import summaries_refresh
from tests import factories
from tests.insights.factories import CELL, SalesCubeFactory
from tests.insights.test_vendor_page import far_cells, sell

pytestmark = pytest.mark.django_db

URL = "/api/insights/vendor/"
LOAD = "/api/insights/vendor/load/"


def test_the_figures_are_the_pages(api, vendor):
    yakult = factories.ProductFactory(name_en="Yakult")
    for buyer in (1, 2, 3):
        sell(
            vendor,
            product_id=yakult.pk,
            buyer=buyer,
            units=2,
            amount=2_000,
            hour=9,
            channel=Channel.WALKUP,
        )
    lone = far_cells(1)[0]
    sell(vendor, product_id=yakult.pk, buyer=50, cell=lone, amount=9_999)
    summaries_refresh()
    api.force_authenticate(vendor.user)

    body = api.get(URL).json()

    (area,) = body["areas"]
    assert area["cell"] == CELL and area["kind"] == "cell" and area["buyers"] == 3
    assert (area["units"], area["amount"], area["sales"]) == (6, 6_000, 3)
    assert len(area["boundary"]) == 6
    assert [tuple(p) for p in area["boundary"]] == [
        (round(a, 6), round(b, 6)) for a, b in h3.cell_to_boundary(CELL)
    ]
    assert lone not in str(body) and body["hidden_areas"] == 1 and body["min_buyers"] == 3
    assert body["total"] == {"units": 7, "amount": 15_999, "sales": 4}
    (row,) = body["hours"]["products"]
    assert row["product_id"] == yakult.pk
    assert row["units"][body["hours"]["hours"].index(9)] == 6
    channels = {c["channel"]: c for c in body["channels"]}
    assert channels["walkup"]["amount"] == 6_000 and channels["online"]["amount"] == 9_999
    assert body["weeks"]["this"]["amount"] == 15_999
    assert body["peers"]["enough"] is False
    assert body["load"]["day"] == (timezone.localdate() + timedelta(days=1)).isoformat()


def test_the_weekday_is_validated(api, vendor):
    api.force_authenticate(vendor.user)
    assert api.get(URL, {"weekday": "3"}).json()["hours"]["weekday"] == 3
    for bad in ("7", "monday", "-1", "3.0"):
        response = api.get(URL, {"weekday": bad})
        assert response.status_code == 400, bad
        assert "weekday" in str(response.json())


def test_the_load_for_a_day(api, vendor):
    yakult = factories.StockFactory(vendor=vendor, quantity=3).product
    day = timezone.localdate() + timedelta(days=2)
    for i in range(1, 9):
        SalesCubeFactory(
            vendor_id=vendor.pk,
            day=day - timedelta(days=7 * i),
            product_id=yakult.pk,
            units=8,
            channel=Channel.WALKUP,
        )
    api.force_authenticate(vendor.user)

    body = api.get(LOAD, {"date": day.isoformat()}).json()

    assert body["day"] == day.isoformat() and body["weeks"] == 8
    (line,) = body["lines"]
    assert (line["suggested"], line["on_cart"], line["to_load"]) == (8, 3, 5)
    assert [o["waste"] for o in line["options"]] == [0, 2, 5]
    # Without a date: tomorrow
    assert api.get(LOAD).json()["day"] == (timezone.localdate() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize("bad", ["2026-13-01", "tomorrow", "1-1-1", "yesterday", "past", "far"])
def test_a_bad_date_is_a_400_with_a_message(api, vendor, bad):
    today = timezone.localdate()
    value = {
        "yesterday": (today - timedelta(days=1)).isoformat(),
        "past": "2001-01-01",
        "far": (today + timedelta(days=30)).isoformat(),
    }.get(bad, bad)
    api.force_authenticate(vendor.user)
    response = api.get(LOAD, {"date": value})
    assert response.status_code == 400
    assert "date" in str(response.json())


@pytest.mark.parametrize("url", [URL, LOAD])
def test_only_a_vendor_has_one(api, url, customer, vendor):
    sell(vendor, product_id=factories.ProductFactory().pk, amount=7_777)
    summaries_refresh()
    assert api.get(url).status_code in (401, 403)
    api.force_authenticate(customer)
    assert api.get(url).status_code == 403
    # Another vendor: their own figures, never this one's (there is no way to name a vendor)
    other = factories.VendorFactory()
    api.force_authenticate(other.user)
    response = api.get(url, {"vendor": vendor.pk})
    assert response.status_code == 200 and "7777" not in response.content.decode()


def test_the_api_costs_a_bounded_number_of_queries(api, vendor, django_assert_max_num_queries):
    products = [factories.ProductFactory() for _ in range(4)]
    for d in range(27):
        for i, p in enumerate(products):
            sell(
                vendor,
                product_id=p.pk,
                days_ago=d,
                hour=7 + i,
                buyer=d * 10 + i,
                cell=[CELL, *sorted(h3.grid_ring(CELL, 1))][(d + i) % 7],
            )
    summaries_refresh()
    api.force_authenticate(vendor.user)
    api.get(URL)  # peers cached
    with django_assert_max_num_queries(12):
        assert api.get(URL).status_code == 200
