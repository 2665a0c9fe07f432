"""Pages are light (issue #18 item 5): the map, a vendor's page and a customer's order page, each
loaded cold on the throttled phone (o2o.page_budget.PROFILE), stay within their budget of
requests, bytes and script bytes (o2o.page_budget.BUDGET).

The test holds the counts only: requests and decoded bytes are the same on every run and every
machine (decoded, so the test server's uncompressed static files weigh what production's gzipped
ones do once unpacked). First paint moves with the machine's load (this one is shared with CI),
so it is held by bench/page_weight.py on the real server, not here, where it would be flaky.
Outside requests (the map's tiles) are aborted by new_page and not counted."""

import pytest
from django.test import Client
from django.urls import reverse

from o2o.page_budget import BUDGET, context_options, over_budget, weigh
from tests import factories
from tests.orders.factories import place_paid, stock_up, vendor_on_shift

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    """A cart on shift with a dozen products in stock, a few more carts on the map, and a
    customer whose paid order waits for the vendor."""
    vendor = vendor_on_shift(name="프레시 카트 망원")
    products = stock_up(vendor, *[8] * 12)
    for _ in range(4):
        stock_up(vendor_on_shift(), 5, 5, 5)
    customer = factories.CustomerProfileFactory()
    order = place_paid(customer=customer, vendor=vendor, items=[(products[0], 2), (products[1], 1)])
    return {
        "map": (reverse("tracking:map"), None),
        "vendor": (reverse("vendors:detail", args=[vendor.slug]), None),
        "order": (reverse("orders:detail", args=[order.pk]), customer.user),
    }


def open_as(new_page, live_server, user):
    page = new_page(**context_options())
    if user is not None:
        client = Client()
        client.force_login(user)
        page.context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
    return page


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_page_within_its_budget(live_server, new_page, shot, world, name):
    # Given the page, cold, on the throttled phone
    path, user = world[name]
    page = open_as(new_page, live_server, user)

    # When it loads
    weight = weigh(page, live_server.url + path)
    shot(page, f"page-budget-{name}")

    # Then it stays within its budget, and it did load its scripts and styles
    assert over_budget(name, weight, timings=False) == [], weight
    assert weight["by_kind"]["script"]["requests"] >= 1
    assert weight["by_kind"]["css"]["requests"] >= 1


def test_a_heavy_script_breaks_the_budget(live_server, new_page, world):
    # Given the vendor's page, whose app.js is replaced by 500 KB of script on the way
    path, _ = world["vendor"]
    page = open_as(new_page, live_server, None)
    heavy = "/* padding */\n" + "var o2oPadding = 0;\n" * 25_000  # 500,000 bytes
    page.route(
        "**/static/js/app.js",
        lambda route: route.fulfill(body=heavy, content_type="text/javascript"),
    )

    # When it loads
    weight = weigh(page, live_server.url + path)

    # Then the budget says so
    assert weight["script_bytes"] >= 500_000
    assert any(
        "script_bytes" in problem for problem in over_budget("vendor", weight, timings=False)
    )
