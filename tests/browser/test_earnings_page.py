"""A vendor checks the day's earnings on a phone, in Korean: the balance owed, today and this week,
each order's money, the next payout, and a statement downloaded as PDF and CSV; every number as the
ledger has it. Then staff look at the money dashboard on a desktop. Screenshots land in
test-artifacts/screenshots/ (look at them)."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from o2o.money import format_money
from payments import earnings, ledger
from payments.models import JournalTransaction, Payout
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE
from tests.payments.test_earnings import adjusted, captured, refunded
from tests.payments.test_statements import settled

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KOREAN = {"locale": "ko-KR"}


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("이메일", exact=True).fill(email)
    page.get_by_label("비밀번호").fill(factories.PASSWORD)
    page.get_by_role("button", name="로그인", exact=True).click()
    expect(page.get_by_role("button", name="로그아웃")).to_be_visible()


def won(amount: int) -> str:
    return format_money(amount, "KRW")


def test_a_vendor_reads_the_days_earnings_on_a_phone(
    live_server, new_page, shot, assert_accessible
):
    # Given a vendor whose yesterday-or-earlier sales were settled (a payout on its way), and who
    # sold more since: one order partly refunded, one with a goodwill adjustment from staff
    vendor = factories.VendorFactory(name="프레시 카트 망원")
    factories.CustomerProfileFactory(user=vendor.user)
    early = captured(vendor, amount=12_500, commission=1_250)
    settlement = settled(vendor)
    payout = Payout.objects.get(settlement=settlement)
    later = captured(vendor, amount=10_001, commission=1_000)
    refunded(later, 3_333)
    captured(vendor, amount=4_800, commission=480)
    adjusted(vendor, 700)
    owed = ledger.vendor_payable(vendor.pk)
    today = earnings.vendor_figures(
        vendor_id=vendor.pk, start=earnings.day_start(timezone.localdate())
    )
    base = live_server.url

    # When the vendor logs in on a phone (Korean by default) and opens Earnings from the menu
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, vendor.user.email)
    page.get_by_role("navigation", name="주 메뉴").locator('a[href="/payments/earnings/"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator('a[href="/payments/earnings/"]')).to_have_attribute("aria-current", "page")

    # Then the balance, today's figures and the next payout are the ledger's, to the won
    expect(page.get_by_test_id("balance")).to_have_text(won(owed))
    box = page.get_by_test_id("today")
    expect(box.locator('[data-field="gross"]')).to_have_text(won(today.gross))
    expect(box.locator('[data-field="commission"]')).to_have_text(f"−{won(today.commission)}")
    expect(box.locator('[data-field="refunds"]')).to_have_text(f"−{won(today.refunds)}")
    expect(box.locator('[data-field="net"]')).to_have_text(won(today.net))
    assert today.gross == 12_500 + 10_001 + 4_800 and today.refunds == 3_333
    expect(page.get_by_test_id("next-payout")).to_contain_text(won(payout.amount))
    # ... each order is listed with its own money
    orders = page.get_by_test_id("orders").locator("li")
    expect(orders).to_have_count(3)
    row = page.locator(f'[data-order="{later.order_id}"]')
    expect(row.locator('[data-field="net"]')).to_have_text(won(10_001 - 1_000 - (3_333 - 333)))
    assert_accessible(page)
    shot(page, "earnings-01-phone-ko")

    # When the vendor opens the partly refunded order
    row.locator("a").first.click()
    total = page.get_by_test_id("order-total")
    expect(total.locator('[data-field="refunds"]')).to_have_text(f"−{won(3_333)}")
    expect(page.locator("[data-kind]")).to_have_count(2)
    assert_accessible(page)
    shot(page, "earnings-02-order-phone-ko")

    # ... and the statement of the settled sales, then downloads it as PDF and CSV
    page.go_back()
    page.locator(f'[data-settlement="{settlement.pk}"] a').first.click()
    expect(page.get_by_test_id("statement-totals").locator('[data-field="net"]')).to_have_text(
        won(settlement.net)
    )
    # ... its lines fit the phone: the net column is on screen without scrolling sideways
    net = page.get_by_test_id("statement-line-total").locator('[data-field="net"]')
    expect(net).to_have_text(won(settlement.net))
    box = net.bounding_box()
    assert box["x"] + box["width"] <= PHONE["viewport"]["width"]
    assert_accessible(page)
    shot(page, "earnings-03-statement-phone-ko")
    with page.expect_download() as pdf:
        page.locator(f'a[href="/payments/statements/{settlement.pk}.pdf"]').click()
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF-")
    with page.expect_download() as download:
        page.locator(f'a[href="/payments/statements/{settlement.pk}.csv"]').click()
    text = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    total_row = list(csv.DictReader(io.StringIO(text.split("\r\n\r\n")[0])))[-1]
    assert int(total_row["net"]) == settlement.net == 12_500 - 1_250
    assert early.order_id


def test_staff_read_the_money_dashboard(live_server, new_page, shot, assert_accessible):
    vendor = factories.VendorFactory()
    payment = captured(vendor, amount=22_000, commission=2_200)
    refunded(payment, 2_000)
    staff = factories.StaffFactory()
    page = new_page(**DESKTOP, **KOREAN)
    log_in(page, live_server.url, staff.email)
    page.goto(f"{live_server.url}/admin/")
    shot(page, "earnings-06-admin-index")
    page.locator('a[href="/payments/staff/money/"]').click()
    table = page.get_by_test_id("money-table")
    expect(table.locator('tfoot [data-field="gmv"]')).to_have_text(won(22_000))
    expect(table.locator('tfoot [data-field="refunds"]')).to_have_text(won(2_000))
    expect(table.locator('tfoot [data-field="payables"]')).to_have_text(
        won(ledger.vendor_payable(vendor.pk))
    )
    expect(page.get_by_test_id("money-chart")).to_be_visible()
    shot(page, "earnings-04-dashboard-desktop")

    # Staff post a manual adjustment from the admin index, confirming it; sending the same form
    # again (back, submit) posts nothing more
    page.goto(f"{live_server.url}/admin/")
    page.locator('a[href="/payments/staff/adjustments/new/"]').click()
    page.locator("#id_debit").fill("adjustments")
    page.locator("#id_credit").fill(f"vendor_payable:{vendor.pk}")
    page.locator("#id_amount").fill("1500")
    page.locator("#id_reason").fill("냉장고 고장 보상")
    shot(page, "earnings-05-adjustment-form")
    page.locator('input[type="submit"]').click()
    expect(page.locator(".errorlist")).to_be_visible()  # not confirmed yet
    page.locator("#id_confirm").check()
    page.locator('input[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/admin/payments/journaltransaction/\d+/change/$"))
    assert ledger.vendor_payable(vendor.pk) == 22_000 - 2_200 - (2_000 - 200) + 1_500
    page.go_back()
    page.locator("#id_confirm").check()
    page.locator('input[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/admin/payments/journaltransaction/\d+/change/$"))
    assert JournalTransaction.objects.filter(kind="adjustment").count() == 1
