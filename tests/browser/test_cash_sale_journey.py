"""A cash sale in Chromium on a phone (issue 16, item 2): the vendor taps a product twice and
"cash received"; the sale is recorded with an undo, the stock page shows two fewer, and undoing puts
them back. Screenshots cash-<lang>-01 (tiles tapped), -02 (recorded), -03 (the stock page).
"""

import pytest
from django.test import Client
from playwright.sync_api import expect

from orders.models import Order, PaymentMethod, Status
from tests.browser.conftest import PHONE
from tests.factories import VendorFactory
from tests.orders.conftest import open_shop
from vendors.models import Stock

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_cash_sale_in_two_taps_updates_the_stock_and_can_be_undone(
    live_server, new_page, shot, assert_accessible, language
):
    base = live_server.url
    shop = open_shop(VendorFactory())
    client = Client()
    client.force_login(shop.vendor.user)
    page = new_page(**PHONE)
    page.context.add_cookies(
        [
            {"name": "django_language", "value": language, "url": base},
            {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base},
        ]
    )
    page.goto(f"{base}/orders/vendor/cash/")
    tile = page.locator(f'li[data-product="{shop.yakult.pk}"] [data-cash-add]')
    tile.click()
    tile.click()
    expect(page.locator(f"#q{shop.yakult.pk}")).to_have_value("2")
    assert_accessible(page)
    shot(page, f"cash-{language}-01")
    page.get_by_test_id("cash-received").click()
    expect(page.get_by_test_id("cash-banner")).to_be_visible()
    shot(page, f"cash-{language}-02")
    sale = Order.objects.get()
    assert (sale.payment_method, sale.status, sale.total) == (
        PaymentMethod.CASH,
        Status.COMPLETED,
        2400,
    )
    assert Stock.objects.get(vendor=shop.vendor, product=shop.yakult).quantity == 8

    # The stock page shows it
    page.goto(f"{base}/vendors/me/stock/")
    row = page.locator(f'tr:has(input[name$="-product_id"][value="{shop.yakult.pk}"])')
    expect(row.locator('input[name$="-quantity"]')).to_have_value("8")
    shot(page, f"cash-{language}-03")

    # Undo within the window puts them back
    page.goto(f"{base}/orders/vendor/cash/")
    page.locator(f'tr[data-order="{sale.pk}"] form button').click()
    expect(page.locator(f'tr[data-order="{sale.pk}"] form')).to_have_count(0)
    sale.refresh_from_db()
    assert sale.status == Status.CANCELLED
    assert Stock.objects.get(vendor=shop.vendor, product=shop.yakult).quantity == 10
