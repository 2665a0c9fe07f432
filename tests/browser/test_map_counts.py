"""The live map counts one thing, the carts listed (in the map's view, with the chosen product),
and says it once in the status line and once over the list, the same number, updated when the
filter or the view changes; a legend says what the hexagons' colours mean. Chromium on a phone,
in Korean and in English, over the real ASGI app (websockets)."""

import math
import re

import h3
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories
from tests.browser import test_live_map
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import CENTRE, log_in
from tracking.models import Presence, VendorPosition

live_server = test_live_map.live_server  # the real ASGI app, websockets included
pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

STATUS = {
    "ko": lambda n: f"실시간 · 주변 카트 {n}대",
    "en": lambda n: f"Live · {n} cart{'' if n == 1 else 's'} nearby",
}


def east(metres: float) -> tuple[float, float]:
    return CENTRE[0], CENTRE[1] + metres / (111_320 * math.cos(math.radians(CENTRE[0])))


def on_the_map(vendor, point: tuple[float, float], presence: str) -> None:
    cell = h3.latlng_to_cell(*point, settings.PUBLIC_CELL_RES)
    VendorPosition.objects.update_or_create(
        vendor=vendor,
        defaults={
            "on_shift": True,
            "presence": presence,
            "lat": point[0],
            "lng": point[1],
            "accuracy_m": 10,
            "recorded_at": timezone.now(),
            "last_ping_at": timezone.now(),
            "public_cell": cell,
            "coarse_cell": h3.cell_to_parent(cell, settings.MAP_GROUP_RES),
        },
    )


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_one_count_that_follows_the_filter_and_the_view(
    lang,
    live_server,
    new_page,
    shot,
    assert_accessible,
):
    # Given three carts in the phone's first view: one moving with yakult, one standing still
    # with coffee only, one not heard from for a while with yakult ...
    yakult = factories.ProductFactory(name_ko="야쿠르트", name_en="Yakult")
    coffee = factories.ProductFactory(name_ko="커피", name_en="Coffee")
    carts = {
        "moving": (factories.VendorFactory(name="달리는 카트"), CENTRE, Presence.MOVING, yakult),
        "still": (
            factories.VendorFactory(name="서 있는 카트"),
            east(300),
            Presence.STATIONARY,
            coffee,
        ),
        "stale": (factories.VendorFactory(name="조용한 카트"), east(-300), Presence.STALE, yakult),
        # ... and one 1.9 km west, in a group of cells the map subscribes to (groups cover more
        # than the view), so sent to the page but not in view: not counted (it was, before)
        "away": (factories.VendorFactory(name="먼 카트"), east(-1900), Presence.MOVING, yakult),
    }
    for vendor, point, presence, product in carts.values():
        factories.StockFactory(vendor=vendor, product=product, quantity=5)
        on_the_map(vendor, point, presence)

    # When a customer with a saved address out west opens the map on a phone
    customer = factories.CustomerProfileFactory().user
    factories.AddressFactory(
        customer=customer.customer, label="회사", lat=carts["away"][1][0], lng=carts["away"][1][1]
    )
    customer.password = PBKDF2PasswordHasher().encode(factories.PASSWORD, "map-counts-salt")
    customer.save(update_fields=["password"])
    page = new_page(**PHONE, locale="ko-KR")
    log_in(page, live_server.url, customer.email)
    page.goto(f"{live_server.url}/map/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    status, count = page.locator("#map-status"), page.locator("#list-count")
    items = page.locator("#vendor-list li[data-vendor]")

    # Then the status line and the list say the same number: the three carts in view
    expect(items).to_have_count(3)
    expect(status).to_have_text(STATUS[lang](3))
    expect(count).to_have_text("(3)")
    # (the far cart was sent, and is drawn where it is, but it is not in view)
    expect(page.locator("#map path[data-vendor]")).to_have_count(4)
    # ... and the legend explains the three colours, matching the hexagons'
    legend = page.get_by_role("list", name=re.compile("colour|색"))
    expect(legend.get_by_role("listitem")).to_have_count(3)
    for presence in ("moving", "stationary", "stale"):
        swatch = page.locator(f'.map-legend [data-presence="{presence}"] .swatch')
        fill = swatch.evaluate("e => getComputedStyle(e).borderTopColor")
        vendor = next(v for v, _p, s, _pr in carts.values() if s == presence)
        hexagon = page.locator(f'#map path[data-vendor="{vendor.slug}"]')
        assert hexagon.get_attribute("stroke") == _hex(fill), presence
    assert_accessible(page)
    shot(page, f"map-counts-01-three-in-view-{lang}")

    # When the customer keeps only carts that have yakult
    page.locator("#product-filter").select_option(str(yakult.pk))
    # Then both numbers drop to the two listed
    expect(items).to_have_count(2)
    expect(status).to_have_text(STATUS[lang](2))
    expect(count).to_have_text("(2)")
    shot(page, f"map-counts-02-filtered-{lang}")

    # When they move the map west, to the far cart, by centring it on a saved address there
    # (the filter still on)
    page.locator("#address-select").select_option(label="회사")
    # Then the count follows the view: only the far cart now
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("먼 카트")
    expect(status).to_have_text(STATUS[lang](1))
    expect(count).to_have_text("(1)")
    assert_accessible(page)
    shot(page, f"map-counts-03-moved-{lang}")


def _hex(css_colour: str) -> str:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"
