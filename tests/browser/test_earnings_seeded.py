"""A fresh demo has money to show: the demo vendor opens Earnings on a phone, in Korean and in
English, and sees the balance owed, why the next payout waits, the commission plan in force (and
the change scheduled), the week's orders and the paid statements, with dates in the language's
format. Staff see why another vendor's payout waits and settle yesterday's period now. Screenshots
land in test-artifacts/screenshots/ (look at them)."""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext
from playwright.sync_api import expect

from o2o.money import format_money
from payments import ledger
from payments.models import Payout, Settlement
from vendors.management.commands.seed_demo import ADMIN, DEMO_PASSWORD, VENDOR
from vendors.models import Vendor

from .conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def texts(language: str) -> dict[str, str]:
    """What the pages say, in `language`, from the catalogues (the same msgids the code uses)."""
    with translation.override(language):
        return {
            "earnings": gettext("Earnings"),
            "commission": gettext("%(rate)s%% of each sale") % {"rate": "8"},
            "next": gettext("%(rate)s%% of each sale") % {"rate": "9"},
            "paid": str(Payout.Status.PAID.label),
            "admin_wait": gettext("No payout account"),
        }


def log_in(page, base_url: str, email: str, language: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("이메일", exact=True).fill(email)
    page.get_by_label("비밀번호").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="로그인", exact=True).click()
    expect(page.get_by_role("button", name="로그아웃")).to_be_visible()
    if language != "ko":
        page.goto(f"{base_url}/")  # staff land in the admin, which has no language buttons
        page.locator(f'form.lang button[value="{language}"]').click()
        expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_demo_vendor_reads_a_week_of_money_on_a_phone(
    language, live_server, new_page, shot, assert_accessible
):
    # Given a freshly seeded demo
    call_command("seed_demo", "--quiet")
    vendor = Vendor.objects.get(user__email=VENDOR[0])
    owed = ledger.vendor_payable(vendor.pk)
    text = texts(language)
    base = live_server.url

    # When the demo vendor logs in on a phone and opens Earnings
    page = new_page(**PHONE, locale="ko-KR")
    log_in(page, base, VENDOR[0], language)
    page.goto(f"{base}/payments/earnings/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(text["earnings"])

    # Then the balance is the ledger's, and the page says why the next payout waits
    expect(page.get_by_test_id("balance")).to_have_text(format_money(owed, "KRW"))
    expect(page.get_by_test_id("payout-wait")).to_have_attribute("data-code", "period_open")
    # ... the commission plan in force, since when, and what changes next
    expect(page.get_by_test_id("commission-rate")).to_contain_text(text["commission"])
    expect(page.get_by_test_id("commission-next")).to_contain_text(text["next"])
    # ... the week's orders and the paid statements, dated in the language's format
    expect(page.get_by_test_id("orders").locator("li.card")).to_have_count(13)
    expect(page.get_by_test_id("today").locator('[data-field="gross"]')).not_to_have_text("₩0")
    statements = page.get_by_test_id("statements").locator("li.statement-item")
    expect(statements).to_have_count(5)
    expect(statements.first).to_contain_text(text["paid"])
    latest = Settlement.objects.filter(vendor=vendor).order_by("-period_start").first()
    with translation.override(language):
        date = date_format(timezone.localtime(latest.period_start), "DATE_FORMAT")
    expect(statements.first).to_contain_text(date)
    assert_accessible(page)
    shot(page, f"seeded-01-earnings-phone-{language}")

    # When the vendor opens the latest statement
    statements.first.locator("a").first.click()
    expect(page.get_by_test_id("statement-totals").locator('[data-field="net"]')).to_have_text(
        format_money(latest.net, "KRW")
    )
    expect(page.get_by_test_id("payout")).to_contain_text(text["paid"])
    assert_accessible(page)
    shot(page, f"seeded-02-statement-phone-{language}")


@pytest.mark.parametrize("language", ["ko", "en"])
def test_staff_see_why_a_payout_waits_and_settle_now(language, live_server, new_page, shot):
    # Given a freshly seeded demo: yesterday's sales are not settled yet, and another vendor's
    # payout waits for a payout account
    call_command("seed_demo", "--quiet")
    vendor = Vendor.objects.get(user__email=VENDOR[0])
    waiting = Payout.objects.exclude(vendor=vendor).get()
    text = texts(language)
    base = live_server.url
    page = new_page(**PHONE, locale="ko-KR")
    log_in(page, base, ADMIN[0], language)

    # When staff open the payouts in the admin
    page.goto(f"{base}/admin/payments/payout/")
    row = page.locator(
        "#result_list tbody tr", has=page.locator(f'a[href*="/{waiting.pk}/change/"]')
    )
    # Then the waiting payout says why
    expect(row).to_contain_text(text["admin_wait"])
    shot(page, f"seeded-03-admin-payouts-phone-{language}")
    # ... in the column right after the status (the table scrolls sideways on a phone)
    page.locator("#changelist .results").evaluate("e => { e.scrollLeft = 260; }")
    expect(row.locator("td.field-wait_reason")).to_be_in_viewport()
    shot(page, f"seeded-03b-admin-payouts-why-phone-{language}")

    # When staff settle yesterday now, from the settlements list, confirming
    page.goto(f"{base}/admin/payments/settlement/")
    page.locator('a[href="/admin/payments/settlement/settle-now/"]').click()
    expect(page.locator("#id_day")).to_have_value(
        (timezone.localdate() - timedelta(days=1)).isoformat()
    )
    page.locator("#id_vendor").select_option(str(vendor.pk))
    shot(page, f"seeded-04-settle-now-phone-{language}")
    page.locator('input[type="submit"]').click()
    expect(page.locator(".errorlist")).to_be_visible()  # not confirmed
    page.locator("#id_confirm").check()
    page.locator('input[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/admin/payments/settlement/$"))
    expect(page.locator(".messagelist")).to_be_visible()
    shot(page, f"seeded-05-settled-phone-{language}")
    # ... yesterday's period is settled, once
    yesterday = Settlement.objects.filter(vendor=vendor).order_by("-period_start").first()
    assert timezone.localtime(yesterday.period_start).date() == timezone.localdate() - timedelta(
        days=1
    )
    assert yesterday.status in ("released", "nothing_due")
