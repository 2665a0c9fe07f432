"""A vendor reads their money pages on a phone in their language: earnings, an order's money, the
statements and one statement, then downloads its PDF. In Korean no English sentence shows on any of
them (they once were half English); switching to English with the language buttons makes the pages
English and remembers the choice on the vendor, so the statement's PDF is English too.
Screenshots land in test-artifacts/screenshots/ (korean-money-*)."""

import io

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from payments.models import Payout
from payments.payouts import payout_mark_sent
from tests import factories
from tests.browser.conftest import PHONE
from tests.o2o.test_korean_pages import english_in
from tests.payments.test_earnings import adjusted, captured, refunded
from tests.payments.test_statements import settled
from vendors.models import Vendor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KOREAN = {"locale": "ko-KR"}
# What each page says in each language (its <h1>, and a figure's label on it)
WORDS = {
    "ko": {"earnings": "지금 받을 정산액", "statements": "정산서", "pdf": "요약", "lang": "한국어"},
    "en": {
        "earnings": "Owed to you now",
        "statements": "Statements",
        "pdf": "Summary",
        "lang": "English",
    },
}


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("이메일", exact=True).fill(email)
    page.get_by_label("비밀번호").fill(factories.PASSWORD)
    page.get_by_role("button", name="로그인", exact=True).click()
    expect(page.get_by_role("button", name="로그아웃")).to_be_visible()


def no_english(page, allowed: set[str]) -> None:
    found = english_in(page.content(), allowed)
    assert found == [], f"English on {page.url}: {found}"


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_vendor_reads_the_money_pages_in_their_language(
    language, live_server, new_page, shot, assert_accessible
):
    # Given a vendor with sales, a refund and an adjustment, settled and its payout sent
    vendor = factories.VendorFactory(name="프레시 카트 망원")
    factories.CustomerProfileFactory(user=vendor.user)
    sale = captured(vendor, amount=12_500, commission=1_250)
    refunded(captured(vendor, amount=4_800, commission=480), 4_800)
    adjusted(vendor, 700)
    settlement = settled(vendor)
    payout_mark_sent(payout_id=Payout.objects.get(settlement=settlement).pk, provider_ref="po_1")
    words = WORDS[language]
    base = live_server.url

    # When the vendor logs in on a phone (Korean by default) and picks their language
    page = new_page(**PHONE, **KOREAN)
    log_in(page, base, vendor.user.email)
    page.goto(f"{base}/payments/earnings/")
    if language == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", language)
    # ... which is remembered on the vendor (statements made for them follow it)
    assert Vendor.objects.get(pk=vendor.pk).language == language

    # Then earnings say what is owed in that language, and in Korean nothing in English
    expect(page.locator("main")).to_contain_text(words["earnings"])
    if language == "ko":
        no_english(page, set())
    assert_accessible(page)
    shot(page, f"korean-money-01-earnings-{language}")

    # ... an order's money
    page.goto(f"{base}/payments/earnings/orders/{sale.order_id}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{sale.order_id}")
    if language == "ko":
        no_english(page, set())
    assert_accessible(page)
    shot(page, f"korean-money-02-order-{language}")

    # ... the statements and one statement
    page.goto(f"{base}/payments/statements/")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["statements"])
    if language == "ko":
        no_english(page, set())
    assert_accessible(page)
    shot(page, f"korean-money-03-statements-{language}")
    page.goto(f"{base}/payments/statements/{settlement.pk}/")
    if language == "ko":
        no_english(page, {"cooler broke, goodwill"})
    assert_accessible(page)
    shot(page, f"korean-money-04-statement-{language}")

    # ... and its PDF, downloaded from the page, is in the vendor's language too
    link = page.locator(f'a[href$="/payments/statements/{settlement.pk}.pdf"]').first
    with page.expect_download() as download:
        link.click()
    with open(download.value.path(), "rb") as fh:
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(fh.read())).pages)
    assert words["pdf"] in text
    assert vendor.name in text
