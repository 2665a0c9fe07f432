"""A visitor picks a product on the live map that no cart in view has: the page tells the platform
once (a miss in the map centre's area, never the position), and nothing when a cart there has
it. Staff then read demand over the city on a map and in a table. Chromium over the real ASGI app
(websockets)."""

from datetime import timedelta

import h3
import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from insights.models import CellBuyers, MissCube, MissKind, MissRecord
from tests import factories
from tests.browser import test_live_map
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_live_map import CENTRE
from tests.browser.test_map_counts import east, on_the_map
from tests.insights.factories import SalesCubeFactory
from tracking.models import Presence

live_server = test_live_map.live_server  # the real ASGI app, websockets included
pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def wait_for(predicate, page, timeout_ms: int = 8_000) -> None:
    for _ in range(timeout_ms // 200):
        if predicate():
            return
        page.wait_for_timeout(200)
    assert predicate()


def test_picking_a_product_no_cart_near_has_records_one_miss(live_server, new_page, shot):
    # Given a cart in view with coffee only
    yakult = factories.ProductFactory(name_ko="야쿠르트", name_en="Yakult")
    coffee = factories.ProductFactory(name_ko="커피", name_en="Coffee")
    cart = factories.VendorFactory(name="커피 카트")
    factories.StockFactory(vendor=cart, product=coffee, quantity=5)
    on_the_map(cart, east(200), Presence.MOVING)
    beacons: list[str] = []
    page = new_page(**PHONE, locale="ko-KR")
    page.on("request", lambda r: beacons.append(r.post_data or "") if "/misses/" in r.url else None)
    page.goto(f"{live_server.url}/map/")
    expect(page.locator("#vendor-list li[data-vendor]")).to_have_count(1)

    # When the visitor picks coffee, the cart has it: nothing is sent
    page.locator("#product-filter").select_option(str(coffee.pk))
    page.wait_for_timeout(1_500)
    assert beacons == [] and not MissRecord.objects.exists()

    # When they pick yakult, which no cart has
    page.locator("#product-filter").select_option(str(yakult.pk))
    expect(page.locator("#list-empty")).to_be_visible()
    # Then one miss is recorded, in the map centre's area, and no position is kept
    wait_for(lambda: MissRecord.objects.exists(), page)
    miss = MissRecord.objects.get()
    assert (miss.kind, miss.product_id) == (MissKind.NONE_NEAR, yakult.pk)
    assert miss.cell == h3.latlng_to_cell(*CENTRE, 9)
    shot(page, "demand-01-map-miss")

    # And picking it again at the same place sends nothing more
    page.locator("#product-filter").select_option(str(coffee.pk))
    page.locator("#product-filter").select_option(str(yakult.pk))
    page.wait_for_timeout(1_500)
    assert len(beacons) == 1
    assert MissRecord.objects.count() == 1


def test_staff_read_demand_over_the_city(live_server, new_page, shot, assert_accessible):
    # Given a month of summaries: sales in Mapo by three buyers, misses in Jongno
    day = timezone.localdate() - timedelta(days=1)
    mapo = h3.latlng_to_cell(*CENTRE, 9)
    for n, cell in enumerate(sorted(h3.grid_disk(mapo, 1))[:3]):
        SalesCubeFactory(vendor_id=1, day=day, cell=cell, units=3 + n, amount=3600 + 1200 * n)
        CellBuyers.objects.create(vendor_id=1, day=day, hour=12, cell=cell, buyer=n + 1)
    jongno = h3.latlng_to_cell(37.5796, 126.9770, 9)
    product = factories.ProductFactory(name_ko="야쿠르트", name_en="Yakult")
    MissCube.objects.create(
        day=day, weekday=day.weekday(), hour=12, cell=jongno, product_id=product.pk,
        kind=MissKind.NONE_NEAR, misses=6,
    )  # fmt: skip
    client = Client()
    client.force_login(factories.StaffFactory())
    page = new_page(**DESKTOP)
    page.context.add_cookies(
        [
            {"name": "django_language", "value": "en", "url": live_server.url},
            {
                "name": "sessionid",
                "value": client.cookies["sessionid"].value,
                "url": live_server.url,
            },
        ]
    )
    # When staff open the page from the admin index
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Demand over the city").click()
    expect(page.locator("body[data-demand-ready]")).to_have_count(1)
    # Then the map draws the areas and the table ranks Jongno first
    expect(page.locator("#demand-map path.leaflet-interactive")).to_have_count(2)
    top = page.get_by_test_id("demand-top")
    expect(top.locator("tbody tr").first).to_have_attribute(
        "data-cell", h3.cell_to_parent(jongno, 8)
    )
    expect(top).to_contain_text("Yakult")
    expect(page.get_by_test_id("demand-areas")).to_contain_text("₩14,400")
    shot(page, "demand-02-staff-page")
    # And colouring by misses is one choice away
    page.get_by_label("Colour the map by").select_option("misses")
    page.get_by_role("button", name="Show").or_(page.locator("input[type=submit]")).first.click()
    expect(page.locator("body[data-demand-ready]")).to_have_count(1)
    shot(page, "demand-03-staff-page-misses")
