"""The vendor's insight page, /insights/: its figures are the ones the summaries hold, an area with
too few customers never shows as its own, only the vendor (or staff) sees it, a bad query is a 400,
and the page costs the same few queries whatever the vendor sold."""

import re
from datetime import timedelta

import h3
import pytest
from django.urls import reverse
from django.utils import timezone

from insights.models import Channel, SummaryState
from insights.summaries import summaries_refresh
from tests import factories
from tests.insights.factories import CELL, SaleRecordFactory

pytestmark = pytest.mark.django_db

URL = reverse("insights:vendor")


def sell(vendor, *, days_ago=0, hour=10, cell=CELL, buyer=None, **kwargs):
    """A sale line recorded `days_ago` at `hour` local time (later today is still today: the
    page reads by day)."""
    moment = (timezone.localtime() - timedelta(days=days_ago)).replace(hour=hour, minute=0)
    extra = {"buyer": buyer} if buyer is not None else {}
    return SaleRecordFactory(vendor_id=vendor.pk, occurred_at=moment, cell=cell, **extra, **kwargs)


def far_cells(n: int) -> list[str]:
    """n cells at the record's resolution, each in a different res-7 parent from CELL and from
    each other (so the minimum-count rule can only pool them, never merge them)."""
    out, seen = [], {h3.cell_to_parent(CELL, 7)}
    for ring_cell in h3.grid_ring(CELL, 30):
        parent = h3.cell_to_parent(ring_cell, 7)
        if parent not in seen:
            seen.add(parent)
            out.append(ring_cell)
        if len(out) == n:
            return out
    raise AssertionError("not enough far cells")


@pytest.fixture
def yakult():
    return factories.ProductFactory(name_en="Yakult", name_ko="야쿠르트")


def test_the_page_shows_what_the_summaries_hold(login, vendor, yakult):
    # Given three customers who bought in one cell this week, by three channels
    sell(vendor, product_id=yakult.pk, buyer=1, units=2, amount=2_400, channel=Channel.ONLINE)
    sell(vendor, product_id=yakult.pk, buyer=2, units=1, amount=1_200, channel=Channel.WALKUP)
    sell(
        vendor, product_id=yakult.pk, buyer=3, units=3, amount=3_600, channel=Channel.CASH, hour=15
    )
    summaries_refresh()

    # When the vendor opens the insight page
    response = login(vendor.user).get(URL)

    # Then the cell is one area with every figure added up, in the table and on the map
    assert response.status_code == 200
    insight = response.context["insight"]
    (area,) = insight.where.areas
    assert (area.key, area.kind, area.buyers) == (CELL, "cell", 3)
    assert (area.figures.units, area.figures.amount, area.figures.sales) == (6, 7_200, 3)
    html = response.content.decode()
    assert f'data-area="{CELL}"' in html
    assert re.search(rf'<tr data-area="{CELL}".*?₩7,200', html, re.S)
    # ... the hours: 2 + 1 units at 10:00 and 3 at 15:00
    assert insight.when.units[(yakult.pk, 10)] == 3 and insight.when.units[(yakult.pk, 15)] == 3
    assert "Yakult" in html or "야쿠르트" in html
    # ... the channels
    by = {c.channel: c for c in insight.channels}
    assert by["online"].figures.amount == 2_400 and by["cash"].figures.units == 3
    assert by["regular"].figures.sales == 0 and by["walkup"].share == round(1_200 * 100 / 7_200)
    # ... and this week's total, with the "as of" time of the last refresh
    assert insight.weeks.this.amount == 7_200
    assert insight.as_of == SummaryState.objects.get().refreshed_at
    assert 'data-testid="as-of"' in html


def test_this_week_against_last(login, vendor, yakult):
    today = timezone.localdate()
    sell(vendor, product_id=yakult.pk, days_ago=0, hour=0, units=4, amount=4_000)
    sell(vendor, product_id=yakult.pk, days_ago=7, hour=0, units=2, amount=2_000)
    sell(vendor, product_id=yakult.pk, days_ago=today.weekday() + 8, hour=0, units=9, amount=9_000)
    summaries_refresh()

    weeks = login(vendor.user).get(URL).context["insight"].weeks

    # Monday to today against Monday to the same weekday last week; the day before is no part
    assert (weeks.this.units, weeks.last.units) == (4, 2)
    assert weeks.changes() == {"units": 100, "sales": 0, "amount": 100}
    assert weeks.days[today.weekday()][1].amount == 4_000
    assert weeks.days[today.weekday()][2].amount == 2_000


def test_an_area_with_too_few_customers_never_shows_as_its_own(login, vendor, yakult, settings):
    settings.INSIGHT_MIN_BUYERS = 3
    lone, *pooled = far_cells(4)
    for buyer in (1, 2, 3):
        sell(vendor, product_id=yakult.pk, buyer=buyer)
    sell(vendor, product_id=yakult.pk, buyer=99, cell=lone, amount=50_000)
    summaries_refresh()

    response = login(vendor.user).get(URL)
    html = response.content.decode()
    api = login(vendor.user).get(reverse("api-insights-vendor")).json()

    # The lone customer's cell is neither an area nor on the map (HTML and API), and the page says
    # one area is not shown
    assert lone not in html and lone not in str(api)
    assert [a.key for a in response.context["insight"].where.areas] == [CELL]
    assert 'data-testid="hidden-areas"' in html
    assert response.context["insight"].where.hidden == 1

    # When two more lone customers buy in two other far cells, the three are pooled as elsewhere
    for buyer, cell in zip((100, 101), pooled, strict=False):
        sell(vendor, product_id=yakult.pk, buyer=buyer, cell=cell)
    summaries_refresh()
    response = login(vendor.user).get(URL)
    html = response.content.decode()
    areas = response.context["insight"].where.areas
    assert [a.kind for a in areas] == ["cell", "elsewhere"]
    assert areas[1].buyers == 3 and areas[1].figures.amount == 50_000 + 2 * 1_200
    assert not any(cell in html for cell in (lone, *pooled))


def test_neighbours_too_small_alone_are_shown_as_their_larger_area(login, vendor, yakult):
    parent = h3.cell_to_parent(CELL, 8)
    children = sorted(h3.cell_to_children(parent, 9))[:3]
    for buyer, cell in enumerate(children, start=1):
        sell(vendor, product_id=yakult.pk, buyer=buyer, cell=cell)
    summaries_refresh()

    response = login(vendor.user).get(URL)

    (area,) = response.context["insight"].where.areas
    assert (area.key, area.kind, area.buyers, area.figures.units) == (parent, "parent", 3, 3)
    html = response.content.decode()
    assert "area-parent" in html
    assert not any(f'data-area="{c}"' in html for c in children)


def test_the_weekday_filter(login, vendor, yakult):
    today = timezone.localdate()
    sell(vendor, product_id=yakult.pk, days_ago=0, hour=0, units=4)
    sell(vendor, product_id=yakult.pk, days_ago=1, hour=0, units=7)
    summaries_refresh()
    client = login(vendor.user)

    when = client.get(URL, {"weekday": today.weekday()}).context["insight"].when
    assert when.units == {(yakult.pk, 0): 4} and when.weekday == today.weekday()
    assert client.get(URL, {"weekday": "all"}).context["insight"].when.units[(yakult.pk, 0)] == 11


@pytest.mark.parametrize("bad", ["7", "-1", "mon", "1.5", "9" * 30])
def test_a_bad_weekday_is_a_400_with_a_message(login, vendor, bad):
    response = login(vendor.user).get(URL, {"weekday": bad})
    assert response.status_code == 400
    assert 'data-testid="error"' in response.content.decode()


def test_a_new_vendor_sees_the_empty_state(login, vendor):
    response = login(vendor.user).get(URL)
    assert response.status_code == 200
    assert 'data-testid="empty"' in response.content.decode()


def test_only_the_vendor_sees_the_page(client, login, vendor, yakult, customer, staff):
    sell(vendor, product_id=yakult.pk, amount=4_321)
    summaries_refresh()
    # Anonymous: to the login page
    response = client.get(URL)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    # A customer: nothing here
    assert login(customer).get(URL).status_code == 404
    # Another vendor: their own page, never this vendor's figures, even naming it
    other = factories.VendorFactory()
    response = login(other.user).get(URL, {"vendor": vendor.pk})
    assert response.status_code == 200 and response.context["vendor"] == other
    assert "4,321" not in response.content.decode()
    # Staff: any vendor by id
    response = login(staff).get(URL, {"vendor": vendor.pk})
    assert response.status_code == 200 and "4,321" in response.content.decode()
    assert login(staff).get(URL, {"vendor": "x"}).status_code == 404
    assert login(staff).get(URL, {"vendor": 10**9}).status_code == 404


def test_the_vendor_finds_it_in_the_menu_and_from_earnings(login, vendor):
    client = login(vendor.user)
    assert f'href="{URL}"' in client.get(reverse("orders:inbox")).content.decode()
    assert f'href="{URL}"' in client.get(reverse("payments:earnings")).content.decode()


def test_peers_are_compared_anonymously(login, vendor, yakult, settings):
    settings.INSIGHT_MIN_PEERS = 5
    sell(vendor, product_id=yakult.pk, amount=40_000)
    peers = [factories.VendorFactory(name=f"이웃 카트 {i}") for i in range(5)]
    for i, peer in enumerate(peers):
        sell(peer, product_id=yakult.pk, amount=10_000 * (i + 1), hour=8)
    summaries_refresh()

    response = login(vendor.user).get(URL)

    comparison = response.context["peers"]
    assert comparison.enough and comparison.nearby
    weekly = [10_000 * (i + 1) / 4 for i in range(5)]
    assert comparison.weekly == 10_000 and comparison.weekly_median == round(weekly[2])
    assert comparison.peers_best_hour == 8
    html = response.content.decode()
    assert not any(p.name in html for p in peers)


def test_too_few_peers_say_so(login, vendor, yakult, settings):
    settings.INSIGHT_MIN_PEERS = 5
    sell(vendor, product_id=yakult.pk)
    for _ in range(4):
        sell(factories.VendorFactory(), product_id=yakult.pk)
    summaries_refresh()

    response = login(vendor.user).get(URL)

    assert not response.context["peers"].enough
    assert 'data-testid="no-peers"' in response.content.decode()


def _world(vendor, products, *, days: int) -> None:
    cells = [CELL, *sorted(h3.grid_ring(CELL, 1))]
    for d in range(days):
        for i, product in enumerate(products):
            sell(
                vendor,
                product_id=product.pk,
                days_ago=d,
                hour=6 + (d + i) % 14,
                cell=cells[(d + i) % len(cells)],
                buyer=d * 10 + i,
            )
    summaries_refresh()


def test_the_page_costs_the_same_queries_however_much_was_sold(
    login, vendor, django_assert_num_queries
):
    products = [factories.ProductFactory() for _ in range(3)]
    client = login(vendor.user)
    _world(vendor, products[:1], days=8)
    client.get(URL)  # the peers' figures are cached from here on

    with django_assert_num_queries(QUERIES):
        assert client.get(URL).status_code == 200

    _world(vendor, products, days=27)
    from django.core.cache import cache

    from insights.peers import EVERYONE, peer_group, peers_cache_key

    for group in (peer_group(vendor), EVERYONE):
        cache.delete(peers_cache_key(group=group, today=timezone.localdate()))
    client.get(URL)
    with django_assert_num_queries(QUERIES) as captured:
        assert client.get(URL).status_code == 200
    # ... and never a read of the record itself: the summaries only
    assert not any("insights_salerecord" in q["sql"] for q in captured.captured_queries)


# session, user, vendor; the cube, buyers, names, as-of; the load: history (2), the round (3),
# stock, names. The peers' figures come from the cache.
QUERIES = 14


def test_the_peers_figures_are_computed_ahead_so_the_page_reads_them_warm(
    login, vendor, yakult, settings, django_assert_max_num_queries
):
    # Given similar carts that sold, and the beat's warm-up run
    settings.INSIGHT_MIN_PEERS = 5
    sell(vendor, product_id=yakult.pk, amount=40_000)
    for i in range(5):
        sell(factories.VendorFactory(), product_id=yakult.pk, amount=10_000 * (i + 1), hour=8)
    summaries_refresh()
    from insights.peers import peers_warm
    from insights.tasks import peers_warm as peers_warm_task

    assert peers_warm() >= 2  # the district, and everyone
    # Then the page compares without adding the district's weeks up itself
    peers_warm_task.apply()
    client = login(vendor.user)
    with django_assert_max_num_queries(14) as captured:
        response = client.get(URL)
    assert response.context["peers"].enough
    assert not any("GROUP BY" in q["sql"] and '"vendor_id" IN' in q["sql"] for q in captured)


def test_the_hour_legend_says_unit_for_one_and_units_for_more():
    from django.utils import translation

    from insights.charts import legend

    with translation.override("en"):
        texts = [text for _colour, text in legend(10, money=False)]
    assert texts == ["1–2 units", "3–4 units", "5–6 units", "7–8 units", "9–10 units"]
    with translation.override("en"):
        assert [text for _c, text in legend(1, money=False)] == ["1 unit"]
