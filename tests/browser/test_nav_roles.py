"""Each role's navigation on a 390 px phone, in Korean and in English: one row that fits (no
sideways scroll), targets of 44 px or more, the role's own work first and the rest under "More"
(a <details>, no script); logging in lands each role where their work is."""

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import PHONE
from tests.partners.factories import PointStaffFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# role -> (how to make one, where logging in lands, the bar's links, a link under "More")
ROLES = {
    "vendor": (
        lambda: factories.VendorFactory().user,
        "/shift/",
        ["/orders/vendor/", "/shift/", "/round/", "/vendors/me/stock/", "/payments/earnings/"],
        "/vendors/",
    ),
    "customer": (
        lambda: factories.CustomerProfileFactory().user,
        "/map/",
        ["/map/", "/vendors/", "/orders/cart/", "/orders/"],
        "/vendors/apply/",
    ),
    "staff": (
        factories.StaffFactory,
        "/admin/",
        ["/map/", "/vendors/", "/orders/cart/", "/admin/"],
        "/orders/",
    ),
    "partner": (
        lambda: PointStaffFactory().user,
        "/partner/point/",
        ["/partner/point/", "/map/", "/vendors/", "/orders/cart/"],
        "/orders/",
    ),
}
MORE = {"ko": "더 보기", "en": "More"}

TARGETS = """() => [...document.querySelectorAll(
  '.main-nav .nav-bar > li > a, .main-nav summary, .top-logout button, .nav-menu a')]
  .filter((e) => e.offsetParent !== null)
  .map((e) => { const r = e.getBoundingClientRect();
    return {text: e.textContent.trim(), h: r.height, left: r.left, right: r.right}; })"""


def log_in(page, base: str, email: str, lang: str) -> None:
    page.goto(f"{base}/accounts/login/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(factories.PASSWORD)
    page.locator("form[method=post] button[type=submit]").last.click()


def check_targets(page) -> None:
    width = page.viewport_size["width"]
    for target in page.evaluate(TARGETS):
        assert target["h"] >= 44, target
        assert target["left"] >= 0 and target["right"] <= width, target


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_s_navigation_fits_a_phone(
    role, lang, live_server, new_page, shot, assert_accessible
):
    make, landing, bar, under_more = ROLES[role]
    user = make()
    page = new_page(**PHONE, locale="ko-KR")
    base = live_server.url

    # When they log in, they land where their work is
    log_in(page, base, user.email, lang)
    expect(page).to_have_url(f"{base}{landing}")

    # On an ordinary page, the navigation is one row: the role's own items, then "More"
    page.goto(f"{base}/vendors/")
    nav = page.locator("nav.main-nav")
    links = nav.locator(".nav-bar > li > a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == bar
    more = nav.locator("summary")
    expect(more).to_have_text(MORE[lang])
    expect(nav.locator(f'.nav-menu a[href="{under_more}"]')).to_be_hidden()
    check_targets(page)
    assert_accessible(page)  # includes: the page does not scroll sideways
    shot(page, f"nav-{role}-{lang}")

    # When they open "More", the rest is there, above the page, still within the screen
    more.click()
    expect(nav.locator(f'.nav-menu a[href="{under_more}"]')).to_be_visible()
    check_targets(page)
    assert_accessible(page)
    shot(page, f"nav-{role}-{lang}-more")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_visitor_s_navigation_fits_a_phone(lang, live_server, new_page, shot, assert_accessible):
    page = new_page(**PHONE, locale="ko-KR")
    page.goto(f"{live_server.url}/vendors/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    # The switch reloads the page: measure the new one, loaded with its styles, not the old one
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.wait_for_load_state("load")
    links = page.locator("nav.main-nav .nav-bar > li > a")
    expect(links).to_have_count(5)
    expect(page.locator("nav.main-nav summary")).to_have_count(0)
    check_targets(page)
    assert_accessible(page)
    shot(page, f"nav-visitor-{lang}")


def test_a_customer_sent_to_log_in_goes_on_where_they_were_going(live_server, new_page):
    customer = factories.CustomerProfileFactory().user
    page = new_page(**PHONE, locale="ko-KR")
    base = live_server.url
    page.goto(f"{base}/orders/")
    expect(page).to_have_url(f"{base}/accounts/login/?next=/orders/")
    page.locator("#id_username").fill(customer.email)
    page.locator("#id_password").fill(factories.PASSWORD)
    page.locator("form[method=post] button[type=submit]").last.click()
    expect(page).to_have_url(f"{base}/orders/")
