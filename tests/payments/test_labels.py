"""Small things people read: a payout's and a settlement's label name the Korea-time day of the
period (not the UTC one), a discrepancy reads as a sentence, dates follow one format per
language, and the pages have a favicon."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.test import Client
from django.utils import translation

from payments.models import Discrepancy
from tests.factories import StaffFactory

from . import factories

pytestmark = pytest.mark.django_db
SEOUL = ZoneInfo("Asia/Seoul")


def test_a_period_starting_at_midnight_in_korea_is_labelled_with_its_korean_day():
    # Given a settlement of the period that starts on 8 December 00:00 KST (7 December in UTC)
    start = datetime(2026, 12, 8, 0, 0, tzinfo=SEOUL)
    assert start.astimezone(ZoneInfo("UTC")).day == 7
    settlement = factories.SettlementFactory(period_start=start, period_end=start.replace(day=9))
    payout = factories.PayoutFactory(settlement=settlement)
    # Then its label and its payout's name the 8th, in each language's format
    with translation.override("en"):
        assert settlement.period_label == "Dec 8"
        assert "(Dec 8)" in str(payout) and "(Dec 8)" in str(settlement)
    with translation.override("ko"):
        assert settlement.period_label == "12월 8일"
        assert "12월 8일" in str(payout)


def test_a_discrepancy_reads_as_a_sentence():
    capture = factories.DiscrepancyFactory(
        kind=Discrepancy.Kind.CAPTURE_MISMATCH,
        object_ref="payment:12",
        expected="captured 3200",
        actual="ledger 3000",
    )
    intent = factories.DiscrepancyFactory(
        kind=Discrepancy.Kind.INTENT_MISMATCH,
        object_ref="payment:13",
        expected="captured captured 3200 refunded 0",
        actual="authorised captured 0 refunded 0",
    )
    with translation.override("en"):
        assert str(capture) == (
            "Captured amount differs from the ledger, payment 12. "
            "Expected: captured 3200; found: ledger 3000."
        )
        assert "captured captured" not in str(intent)
        assert "Captured: 3200 captured, 0 refunded" in str(intent)
        assert "Authorised: 0 captured, 0 refunded" in str(intent)
    # ... and so in the admin's list
    staff = Client(headers={"accept-language": "en"})
    staff.force_login(StaffFactory(is_superuser=True))
    page = staff.get("/admin/payments/discrepancy/").content.decode()
    assert "Captured amount differs from the ledger, payment 12." in page


@pytest.mark.parametrize(
    ("language", "long", "short", "short_dt"),
    [
        ("en", "Dec 8, 2026", "Dec 8", "Dec 8, 09:05"),
        ("ko", "2026년 12월 8일", "12월 8일", "12월 8일 09:05"),
    ],
)
def test_dates_have_one_long_and_one_short_format_per_language(language, long, short, short_dt):
    moment = datetime(2026, 12, 8, 9, 5, tzinfo=SEOUL)
    template = Template(
        '{{ m|date:"DATE_FORMAT" }}|{{ m|date:"SHORT_DATE_FORMAT" }}|'
        '{{ m|date:"SHORT_DATETIME_FORMAT" }}'
    )
    with translation.override(language):
        assert template.render(Context({"m": moment})) == f"{long}|{short}|{short_dt}"


def test_the_pages_have_a_favicon():
    assert finders.find("img/favicon.svg") and finders.find("img/favicon.ico")
    page = Client().get("/accounts/login/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/img/favicon[.\w]*\.svg"', page)
