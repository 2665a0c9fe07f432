"""axe-core (vendored, tests/browser/assets) on the main pages of every role, in Korean and in
English, on a phone: no serious or critical violation. The pages hold real content (a vendor with
stock, a paid order, money on the ledger) so that axe sees what people see."""

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests import factories
from tests.browser.conftest import PHONE
from tests.orders.factories import place_paid, stock_up, vendor_on_shift

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def pages_of(role: str, *, vendor, order) -> list[str]:
    pages = {
        "anonymous": [
            reverse("tracking:map"),
            reverse("vendors:list"),
            reverse("vendors:detail", args=[vendor.slug]),
            reverse("login"),
            reverse("signup"),
        ],
        "customer": [
            reverse("orders:cart"),
            reverse("orders:list"),
            reverse("orders:detail", args=[order.pk]),
            reverse("orders:receipt", args=[order.pk]),
            reverse("vendors:apply"),
        ],
        "vendor": [
            reverse("orders:inbox"),
            reverse("orders:vendor-history"),
            reverse("vendors:dashboard"),
            reverse("vendors:stock"),
            reverse("tracking:shift"),
            reverse("payments:earnings"),
            reverse("payments:statements"),
        ],
        "staff": [
            reverse("admin:index"),
            reverse("payments:money-dashboard"),
            reverse("admin:orders_order_changelist"),
            reverse("admin:orders_order_change", args=[order.pk]),
        ],
    }
    try:
        pages["partner"] = [reverse("partners:point")]
    except NoReverseMatch:
        pages["partner"] = []
    return pages[role]


def signed_in(page, user, base_url: str, language: str) -> None:
    """The browser gets the session of a logged-in user and the language cookie."""
    cookies = [{"name": "django_language", "value": language, "url": base_url}]
    if user is not None:
        client = Client()
        client.force_login(user)
        cookies.append(
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}
        )
    page.context.add_cookies(cookies)


@pytest.mark.parametrize("language", ["ko", "en"])
@pytest.mark.parametrize("role", ["anonymous", "customer", "vendor", "partner", "staff"])
def test_no_serious_accessibility_violation(live_server, new_page, axe, role, language):
    # Given a vendor on shift with stock, a customer with a paid order, and a person in the role
    vendor = vendor_on_shift(name="프레시 카트 망원")
    products = stock_up(vendor, 12, 3)
    customer = factories.CustomerProfileFactory()
    order = place_paid(customer=customer, vendor=vendor, items=[(products[0], 2)])
    user = {
        "anonymous": None,
        "customer": customer.user,
        "vendor": vendor.user,
        "staff": factories.StaffFactory(is_superuser=True),
        "partner": None,
    }[role]
    if role == "partner":
        from partners.models import PointStaff  # created with the partner point's page

        point = factories.PickupPointFactory()
        user = PointStaff.objects.create(user=factories.UserFactory(), pickup_point=point).user
    urls = pages_of(role, vendor=vendor, order=order)
    page = new_page(**PHONE)
    signed_in(page, user, live_server.url, language)

    # When each page is opened, then axe finds nothing serious or critical on it
    found = {}
    for url in urls:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        assert page.locator("html").get_attribute("lang") == language, url
        violations = axe(page)
        if violations:
            found[url] = violations
    assert found == {}
