"""Each role's navigation (its own items first, the rest under "More"), and where logging in
lands each role, with ?next= respected."""

import re

import pytest
from django.test import Client

from tests import factories
from tests.factories import PASSWORD
from tests.partners.factories import PointStaffFactory
from tracking.models import VendorPosition
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


def nav(client: Client) -> tuple[list[str], list[str]]:
    """The hrefs of the main navigation's bar and of its "More" menu, on the list of carts."""
    html = client.get("/vendors/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    block = re.search(r'<nav class="main-nav".*?</nav>', html, re.S)
    assert block, "no main navigation"
    more = re.search(r'<ul class="nav-menu">(.*?)</ul>', block.group(0), re.S)
    menu = re.findall(r'href="([^"]+)"', more.group(1)) if more else []
    bar_html = block.group(0).replace(more.group(0), "") if more else block.group(0)
    return re.findall(r'href="([^"]+)"', bar_html), menu


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_vendor_gets_their_work_first_and_the_customer_s_pages_under_more():
    vendor = factories.VendorFactory()
    bar, more = nav(logged_in(vendor.user))
    assert bar == [
        "/orders/vendor/",
        "/shift/",
        "/round/",
        "/vendors/me/stock/",
        "/payments/earnings/",
    ]
    assert more == [
        "/vendors/me/",
        "/insights/",
        "/map/",
        "/vendors/",
        "/orders/cart/",
        "/orders/",
        "/favourites/",
        "/accounts/password_change/",
    ]


def test_a_customer_keeps_map_carts_basket_and_orders():
    customer = factories.CustomerProfileFactory().user
    bar, more = nav(logged_in(customer))
    assert bar == ["/map/", "/vendors/", "/orders/cart/", "/orders/"]
    assert more == [
        "/favourites/",
        "/subscriptions/",
        "/payments/cards/",
        "/vendors/apply/",
        "/accounts/password_change/",
    ]


def test_staff_also_get_admin():
    staff = factories.StaffFactory()
    bar, more = nav(logged_in(staff))
    assert bar == ["/map/", "/vendors/", "/orders/cart/", "/admin/"]
    assert more == ["/orders/", "/accounts/password_change/"]


def test_a_vendor_who_is_staff_finds_admin_under_more():
    vendor = factories.VendorFactory(user=factories.StaffFactory())
    bar, more = nav(logged_in(vendor.user))
    assert "/admin/" not in bar and "/admin/" in more


def test_a_pickup_point_partner_gets_their_point_first():
    partner = PointStaffFactory().user
    bar, more = nav(logged_in(partner))
    assert bar == ["/partner/point/", "/map/", "/vendors/", "/orders/cart/"]
    assert more == ["/orders/", "/accounts/password_change/"]


def test_a_visitor_can_log_in_or_sign_up():
    bar, more = nav(Client())
    assert bar == ["/map/", "/vendors/", "/orders/cart/", "/accounts/login/", "/accounts/signup/"]
    assert more == []


def log_in(email: str, next_url: str | None = None) -> str:
    url = "/accounts/login/" + (f"?next={next_url}" if next_url else "")
    response = Client().post(url, {"username": email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]
    return response["Location"]


def test_a_vendor_off_shift_lands_on_the_shift_page_and_on_shift_on_the_inbox():
    vendor = factories.VendorFactory()
    assert log_in(vendor.user.email) == "/shift/"
    VendorPosition.objects.create(vendor=vendor, on_shift=True)
    assert log_in(vendor.user.email) == "/orders/vendor/"


def test_a_vendor_not_approved_yet_lands_on_their_cart_s_page():
    vendor = factories.VendorFactory(status=Vendor.Status.PENDING)
    assert log_in(vendor.user.email) == "/vendors/me/"


def test_a_partner_lands_on_their_point_staff_in_the_admin_a_customer_on_the_map():
    assert log_in(PointStaffFactory().user.email) == "/partner/point/"
    assert log_in(factories.StaffFactory().email) == "/admin/"
    assert log_in(factories.CustomerProfileFactory().user.email) == "/map/"


@pytest.mark.parametrize("role", ["customer", "vendor", "partner", "staff"])
def test_everybody_goes_where_they_were_going(role):
    user = {
        "customer": lambda: factories.CustomerProfileFactory().user,
        "vendor": lambda: factories.VendorFactory().user,
        "partner": lambda: PointStaffFactory().user,
        "staff": factories.StaffFactory,
    }[role]()
    assert log_in(user.email, "/orders/checkout/") == "/orders/checkout/"
    # ... but never to another site
    assert log_in(user.email, "https://evil.example/") != "https://evil.example/"


def test_an_open_login_page_sends_a_logged_in_vendor_to_their_landing():
    vendor = factories.VendorFactory()
    response = logged_in(vendor.user).get("/accounts/login/")
    assert response.status_code == 302 and response["Location"] == "/shift/"
