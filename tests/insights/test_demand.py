"""The staff demand page and its API show the summaries' figures per district-sized area (res 8),
never an area's sales with fewer buyers than INSIGHT_MIN_BUYERS behind them, misses only from
that many up, carts on shift and carts that sold there; rank where a new vendor would sell; and
are for staff with the right only."""

from datetime import timedelta

import h3
import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from insights.models import CellBuyers, Channel, MissCube, MissKind
from tests.factories import (
    MAPO,
    CustomerProfileFactory,
    ProductFactory,
    StaffFactory,
    UserFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tests.insights.factories import SalesCubeFactory

pytestmark = pytest.mark.django_db

PAGE = "/insights/demand/"
API = "/api/insights/demand/"
AREA = h3.latlng_to_cell(*MAPO, 8)  # Mapo: 3 buyers
A1, A2 = sorted(h3.cell_to_children(AREA, 9))[:2]
LONELY = h3.latlng_to_cell(37.4979, 127.0276, 9)  # Gangnam: 1 buyer, far from the rest
ASKED = h3.latlng_to_cell(37.5796, 126.9770, 9)  # Jongno: misses, no cart
FEW = h3.latlng_to_cell(37.5512, 127.0880, 9)  # Gwangjin: 2 misses, too few to show
LONELY_AMOUNT = 777_777


def sale(
    *, cell, buyers, vendor_id=1, hour=12, units=2, amount=2400, days_ago=1, channel=Channel.ONLINE
):
    day = timezone.localdate() - timedelta(days=days_ago)
    SalesCubeFactory(
        vendor_id=vendor_id,
        day=day,
        hour=hour,
        cell=cell,
        units=units,
        amount=amount,
        channel=channel,
    )
    for buyer in buyers:
        CellBuyers.objects.get_or_create(
            vendor_id=vendor_id, day=day, hour=hour, cell=cell, buyer=buyer
        )


def miss(*, cell, n, kind=MissKind.NONE_NEAR, product_id=1, hour=12, days_ago=1):
    day = timezone.localdate() - timedelta(days=days_ago)
    MissCube.objects.create(
        day=day,
        weekday=day.weekday(),
        hour=hour,
        cell=cell,
        product_id=product_id,
        kind=kind,
        misses=n,
    )


@pytest.fixture
def world():
    product = ProductFactory()
    sale(cell=A1, buyers=[1, 2], vendor_id=1)
    sale(cell=A2, buyers=[3], vendor_id=2, units=1, amount=1000)
    sale(cell=A2, buyers=[3], vendor_id=2, hour=8, units=5, amount=5000)  # morning
    sale(cell=LONELY, buyers=[9], vendor_id=3, units=1, amount=LONELY_AMOUNT)
    sale(cell=A1, buyers=[4], vendor_id=1, days_ago=20, units=10, amount=10_000)  # 28 days only
    miss(cell=ASKED, n=3, product_id=product.pk)
    miss(cell=ASKED, n=1, kind=MissKind.SOLD_OUT, product_id=product.pk)
    miss(cell=FEW, n=2)
    VendorPositionFactory(vendor=VendorFactory(), lat=MAPO[0], lng=MAPO[1])  # on shift in AREA
    return product


def staff_api() -> APIClient:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(StaffFactory())
    return api


def by_cell(body) -> dict:
    return {a["cell"]: a for a in body["areas"]}


def test_the_api_gives_the_summaries_figures_per_area(world):
    body = staff_api().get(API, {"days": 7}).json()
    areas = by_cell(body)
    mapo = areas[AREA]
    assert (mapo["units"], mapo["amount"], mapo["buyers"]) == (2 + 1 + 5, 2400 + 1000 + 5000, 3)
    assert (mapo["carts_now"], mapo["carts_sold"]) == (1, 2)
    assert mapo["misses"] is None
    assert len(mapo["boundary"]) == 6
    jongno = areas[h3.cell_to_parent(ASKED, 8)]
    assert (jongno["misses"], jongno["none_near"], jongno["sold_out"]) == (4, 3, 1)
    assert (jongno["units"], jongno["carts_now"]) == (None, 0)
    # Over 28 days the older sale counts too, and its buyer
    mapo28 = by_cell(staff_api().get(API, {"days": 28}).json())[AREA]
    assert (mapo28["units"], mapo28["buyers"]) == (18, 4)


def test_an_hour_band_keeps_only_its_hours(world):
    lunch = by_cell(staff_api().get(API, {"days": 7, "band": "lunch"}).json())
    assert lunch[AREA]["units"] == 3 and lunch[AREA]["amount"] == 3400
    morning = staff_api().get(API, {"days": 7, "band": "morning"}).json()
    # One buyer in the morning: the area is not shown with sales (and nothing else is there)
    assert all(a["units"] is None for a in morning["areas"]), morning
    assert morning["hidden_buyers"] is True


def test_an_hour_band_counts_only_the_buyers_of_its_own_hours(settings):
    # Given an area where two buyers bought at lunch and three others that morning, same cart
    settings.INSIGHT_MIN_BUYERS = 3
    sale(cell=A1, buyers=[1, 2], hour=12)
    sale(cell=A1, buyers=[3, 4, 5], hour=8)
    # Then the whole day shows it (five buyers), but lunch alone (two) does not
    assert by_cell(staff_api().get(API, {"days": 7}).json())[AREA]["buyers"] == 5
    lunch = staff_api().get(API, {"days": 7, "band": "lunch"}).json()
    assert all(a["units"] is None for a in lunch["areas"]) and lunch["hidden_buyers"] is True


def test_no_area_shows_sales_of_fewer_buyers_than_the_minimum(world, settings):
    body = staff_api().get(API, {"days": 7}).json()
    lonely_area = h3.cell_to_parent(LONELY, 8)
    assert lonely_area not in by_cell(body)
    assert str(LONELY_AMOUNT) not in str(body)
    assert body["hidden_buyers"] is True
    for a in body["areas"]:
        if a["units"] is not None:
            assert a["buyers"] >= settings.INSIGHT_MIN_BUYERS
    # A stricter rule hides Mapo too
    settings.INSIGHT_MIN_BUYERS = 4
    assert by_cell(staff_api().get(API, {"days": 7}).json())[AREA]["units"] is None


def test_misses_are_shown_only_from_the_minimum_up(world):
    areas = by_cell(staff_api().get(API, {"days": 7}).json())
    few = areas[h3.cell_to_parent(FEW, 8)]
    assert (few["misses"], few["none_near"], few["sold_out"]) == (None, 0, 0)


def test_small_areas_are_merged_with_their_neighbours(settings):
    # Three buyers, each alone in a neighbouring res-8 area of the same res-7 parent
    parent = h3.cell_to_parent(AREA, 7)
    children = sorted(h3.cell_to_children(parent, 8))[:3]
    for n, child in enumerate(children):
        sale(cell=h3.cell_to_center_child(child, 9), buyers=[n + 1], amount=1000)
    areas = by_cell(staff_api().get(API, {"days": 7}).json())
    assert areas[parent]["merged"] is True
    assert (areas[parent]["amount"], areas[parent]["buyers"]) == (3000, 3)
    assert not set(children) & set(areas)


def test_where_a_new_vendor_would_sell(world):
    body = staff_api().get(API, {"days": 7}).json()
    top = body["top"]
    assert [a["cell"] for a in top] == [h3.cell_to_parent(ASKED, 8)]
    assert top[0]["score"] == 4.0  # 4 misses, no cart
    assert top[0]["reason"] == "4 asked here and no cart works here."
    assert top[0]["top_product_id"] == world.pk


def test_bad_input_is_400_with_the_field():
    response = staff_api().get(API, {"days": 5, "band": "night"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"days", "band"}


def test_the_api_reads_in_a_few_queries_whatever_the_areas(world, django_assert_max_num_queries):
    api = staff_api()
    for n in range(30):
        sale(
            cell=h3.latlng_to_cell(37.45 + n * 0.01, 126.95, 9), buyers=[100 + n, 200 + n, 300 + n]
        )
    with django_assert_max_num_queries(9):
        assert api.get(API, {"days": 28}).status_code == 200


# --- the page --------------------------------------------------------------------------------------


def test_the_page_shows_the_same_figures_and_hides_the_small_area(world, client):
    client.force_login(StaffFactory())
    response = client.get(PAGE, {"days": 7, "band": "all"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-cell="{AREA}"' in html
    assert "₩8,400" in html  # Mapo's sales
    assert h3.cell_to_parent(LONELY, 8) not in html
    assert "777,777" not in html
    assert "4 asked here and no cart works here." in html
    areas = response.context["areas_geojson"]["features"]
    assert {f["properties"]["cell"] for f in areas} == set(
        by_cell(staff_api().get(API, {"days": 7}).json())
    )
    assert "demand-areas" in html and 'id="demand-map"' in html


def test_a_bad_period_on_the_page_is_400_with_the_message(client):
    client.force_login(StaffFactory())
    response = client.get(PAGE, {"days": "9"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_the_admin_index_and_the_money_dashboard_link_to_it(client):
    client.force_login(StaffFactory())
    for url in ("/admin/", "/payments/staff/money/"):
        assert f'href="{PAGE}"' in client.get(url).content.decode(), url


# --- who may see it --------------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_the_admin_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert APIClient().get(API).status_code == 401


@pytest.mark.parametrize("who", ["customer", "vendor", "staff without the right"])
def test_others_get_no_page(client, who):
    if who == "customer":
        user = CustomerProfileFactory().user
    elif who == "vendor":
        user = VendorFactory().user
    else:
        user = UserFactory(is_staff=True)
    client.force_login(user)
    assert client.get(PAGE).status_code == 404
    api = APIClient()
    api.force_authenticate(user)
    assert api.get(API).status_code == 404


def test_staff_with_the_right_may_read_it(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_salescube"))
    client.force_login(user)
    assert client.get(PAGE).status_code == 200
    api = APIClient()
    api.force_authenticate(user)
    assert api.get(API).status_code == 200


# --- the money dashboard's sales by channel ---------------------------------------------------------


def test_the_money_dashboard_shows_sales_by_channel_and_day(client):
    today = timezone.localdate()
    sale(cell=A1, buyers=[1], days_ago=1, units=2, amount=2400, channel=Channel.ONLINE)
    sale(cell=A2, buyers=[2], days_ago=1, units=1, amount=1000, channel=Channel.WALKUP)
    sale(cell=A1, buyers=[3], days_ago=1, hour=9, units=4, amount=4000, channel=Channel.ONLINE)
    sale(cell="", buyers=[4], days_ago=2, units=3, amount=3600, channel=Channel.CASH)
    sale(cell=A1, buyers=[5], days_ago=2, units=1, amount=900, channel=Channel.REGULAR)
    sale(cell=A1, buyers=[6], days_ago=40, units=50, amount=99_999, channel=Channel.CASH)  # before
    client.force_login(StaffFactory())
    first = today - timedelta(days=6)
    response = client.get(
        "/payments/staff/money/",
        {"start": first.isoformat(), "end": today.isoformat(), "currency": "KRW"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    rows = {r.day: dict((c, (u, a)) for c, u, a in r.figures) for r in response.context["channels"]}
    day1, day2 = today - timedelta(days=1), today - timedelta(days=2)
    assert rows[day1] == {
        "online": (6, 6400),
        "regular": (0, 0),
        "walkup": (1, 1000),
        "cash": (0, 0),
    }
    assert rows[day2] == {
        "online": (0, 0),
        "regular": (1, 900),
        "walkup": (0, 0),
        "cash": (3, 3600),
    }
    assert rows[None] == {
        "online": (6, 6400),
        "regular": (1, 900),
        "walkup": (1, 1000),
        "cash": (3, 3600),
    }
    html = response.content.decode()
    table = html[html.index('data-testid="channel-table"') :]
    assert 'data-field="online-amount">₩6,400<' in table
    assert 'data-field="cash-units">3<' in table
    assert "99,999" not in table
    for label in ("Ordered online", "Regulars", "Paid at the cart by QR", "Cash at the cart"):
        assert label in table
