"""A vendor opens their insight page on a 360 px phone, in Korean and in English: the map of where
they sold (a customer alone far off is not on it), the hours by product filtered to one weekday,
this week against last, the channels, similar carts, and tomorrow's load. Nothing scrolls
sideways; screenshots land in test-artifacts/screenshots/insights-*.png (look at them)."""

from datetime import timedelta

import h3
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from insights.summaries import summaries_refresh
from tests import factories
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_earnings_page import log_in
from tests.insights.factories import CELL, SaleRecordFactory
from tests.subscriptions.factories import SubscriptionFactory, SubscriptionItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NARROW_PHONE = {
    "viewport": {"width": 360, "height": 780},
    "device_scale_factor": 2,
    "is_mobile": True,
}


def seed():
    vendor = factories.VendorFactory(name="프레시 카트 망원")
    factories.CustomerProfileFactory(user=vendor.user)
    for day in range(7):
        factories.VendorHoursFactory(vendor=vendor, weekday=day)
    yakult = factories.StockFactory(
        vendor=vendor,
        quantity=4,
        product=factories.ProductFactory(name_ko="야쿠르트", name_en="Yakult"),
    ).product
    latte = factories.ProductFactory(name_ko="카페라떼", name_en="Cafe latte")
    cells = [CELL, *sorted(h3.grid_ring(CELL, 1))[:3]]
    now = timezone.now()
    for i in range(60):
        for peer in [vendor] + ([factories.VendorFactory()] if i < 6 else []):
            SaleRecordFactory(
                vendor_id=peer.pk,
                product_id=(yakult if i % 3 else latte).pk,
                occurred_at=now - timedelta(days=i % 27, hours=i % 9),
                cell=cells[i % 4],
                buyer=1000 + i % 11,
                units=1 + i % 3,
                amount=1_200 * (1 + i % 3),
                channel=["online", "walkup", "cash", "regular"][i % 4],
            )
    lone = h3.grid_ring(CELL, 40)[0]
    SaleRecordFactory(vendor_id=vendor.pk, product_id=yakult.pk, cell=lone, buyer=5)
    summaries_refresh()
    sub = SubscriptionFactory(vendor=vendor, weekdays=0b1111111, starts_on=timezone.localdate())
    SubscriptionItemFactory(subscription=sub, product=yakult, quantity=3)
    return vendor, yakult, lone


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_vendor_reads_the_insight_page_on_a_phone(
    language, live_server, new_page, shot, assert_accessible
):
    vendor, yakult, lone = seed()
    base = live_server.url

    # When the vendor logs in on a narrow phone, picks a language and opens Insight from "More"
    page = new_page(**NARROW_PHONE, locale="ko-KR")
    log_in(page, base, vendor.user.email)
    if language == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.locator(".nav-more summary").click()
    page.get_by_test_id("insights-link").click()
    expect(page).to_have_url(f"{base}/insights/")
    expect(page.locator("html")).to_have_attribute("lang", language)

    # Then the map is drawn (an image with a name) with the areas of enough customers, never the
    # lone customer's cell
    where = page.get_by_test_id("where")
    expect(where.locator('svg[role="img"]')).to_be_visible()
    expect(where.locator(f'[data-area="{CELL}"]').first).to_be_attached()
    assert page.locator(f'[data-area="{lone}"]').count() == 0
    expect(page.get_by_test_id("hidden-areas")).to_be_visible()
    # ... the hours by product, the weeks, the channels, similar carts and tomorrow's load
    expect(page.get_by_test_id("hours").locator(f'[data-product="{yakult.pk}"]')).to_be_visible()
    expect(page.get_by_test_id("weeks").locator('svg[role="img"]')).to_be_visible()
    expect(page.get_by_test_id("channels").locator("[data-channel]")).to_have_count(4)
    expect(page.get_by_test_id("standing")).to_be_visible()
    load_row = page.get_by_test_id("load").locator(f'tr[data-product="{yakult.pk}"]').first
    expect(load_row.locator('[data-field="regulars"]')).to_have_text("3")
    expect(load_row.locator('[data-field="on-cart"]')).to_have_text("4")
    assert_accessible(page)
    shot(page, f"insights-01-phone-{language}")

    # When the vendor narrows the hours to today's weekday
    weekday = timezone.localdate().weekday()
    page.locator("#weekday").select_option(str(weekday))
    page.locator(".weekday-filter button").click()
    expect(page).to_have_url(f"{base}/insights/?weekday={weekday}")
    expect(page.locator("#weekday")).to_have_value(str(weekday))
    assert_accessible(page)
    page.get_by_test_id("when").screenshot(
        path=str(SCREENSHOTS / f"insights-02-hours-{language}.png")
    )


def test_a_new_vendor_sees_where_the_insight_will_be(
    live_server, new_page, shot, assert_accessible
):
    vendor = factories.VendorFactory()
    factories.CustomerProfileFactory(user=vendor.user)
    page = new_page(**NARROW_PHONE, locale="ko-KR")
    log_in(page, live_server.url, vendor.user.email)
    page.goto(f"{live_server.url}/insights/")
    expect(page.get_by_test_id("empty")).to_be_visible()
    assert_accessible(page)
    shot(page, "insights-03-empty-ko")
