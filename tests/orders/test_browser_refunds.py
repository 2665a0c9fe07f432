"""Staff refund one line of a captured order in the admin; the customer's order page and receipt,
on a phone, show the refund and what was paid in the end. In Korean and in English, over the
sandbox for real. Screenshots land in test-artifacts/screenshots/refunds-*."""

import pytest
from playwright.sync_api import expect

from payments.models import Refund
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import log_in
from tests.orders import test_problems

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
KOREAN = {"locale": "ko-KR"}
browser = browser_fixtures.browser
new_page = browser_fixtures.new_page
shot = browser_fixtures.shot
assert_accessible = browser_fixtures.assert_accessible
axe = browser_fixtures.axe
captured = test_problems.captured

REASON = {"ko": "라떼가 식어 있었어요.", "en": "The latte was cold."}


def use_language(page, base: str, language: str) -> None:
    """Through the language buttons of the site's header (from the carts list)."""
    page.goto(f"{base}/vendors/")
    if language == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_staff_refund_a_line_and_the_customer_sees_it(
    captured, staff, live_server, new_page, shot, assert_accessible, axe, language
):
    base = live_server.url
    latte = captured.lines.get(product__sku__startswith="latte")  # ₩2,500 of ₩4,900

    # Staff find the order's lines in the admin and refund the latte, saying why
    admin = new_page(**PHONE, **KOREAN)
    log_in(admin, base, staff.email)
    use_language(admin, base, language)
    admin.goto(f"{base}/admin/orders/orderline/?q={captured.pk}")
    admin.locator(f'input[name="_selected_action"][value="{latte.pk}"]').check()
    admin.locator('select[name="action"]').select_option("refund_lines")
    admin.locator('button[name="index"]').click()
    admin.locator("#id_reason").fill(REASON[language])
    shot(admin, f"refunds-01-admin-confirm-{language}")
    admin.locator('input[type="submit"].default').click()
    expect(admin.locator(".messagelist .success")).to_be_visible()
    shot(admin, f"refunds-02-admin-done-{language}")
    refund = Refund.objects.get()
    assert (refund.status, refund.amount, refund.order_line_id) == (
        Refund.Status.SUCCEEDED,
        2_500,
        latte.pk,
    )

    # The customer opens the order on the phone: the refund is there, with the net paid
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, captured.customer.user.email)
    use_language(page, base, language)
    page.goto(f"{base}/orders/{captured.pk}/")
    section = page.get_by_test_id("refunds")
    expect(section).to_be_visible()
    row = page.get_by_test_id(f"refund-{refund.pk}")
    expect(row).to_contain_text(latte.name_ko if language == "ko" else latte.name_en)
    expect(row).to_contain_text("−₩2,500")
    expect(row).to_contain_text(REASON[language])
    expect(page.get_by_test_id("refunded-total")).to_have_text("−₩2,500")
    expect(page.get_by_test_id("net-paid")).to_have_text("₩2,400")
    section.scroll_into_view_if_needed()
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"refunds-03-order-page-{language}")

    # ... and the receipt lists it too, with the net total paid
    page.goto(f"{base}/orders/{captured.pk}/receipt/")
    expect(page.get_by_test_id(f"refund-{refund.pk}")).to_contain_text("−₩2,500")
    expect(page.get_by_test_id("net-paid")).to_have_text("₩2,400")
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"refunds-04-receipt-{language}")
