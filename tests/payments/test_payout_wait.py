"""Why a payout waits: one selector (payments.selectors) over the rule payout_send applies
(payouts.payout_waits_for), shown to staff in the admin and to the vendor on the earnings page;
and staff's "settle now" in the admin, over the service the nightly run uses."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone, translation

from payments import payouts, selectors
from payments.errors import PaymentError
from payments.models import Dispute, Payout, Settlement
from payments.settlement import period_of, settlement_create
from tests.factories import StaffFactory

from . import factories
from .test_earnings import a_vendor, captured

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def settled_now(vendor, amount: int = 10_000) -> Settlement:
    """A sale, settled at once (its period's settlement): its payout is made, PENDING."""
    captured(vendor, amount=amount, commission=amount // 10)
    settlement = settlement_create(vendor_id=vendor.pk, period=period_of(timezone.now()))
    assert settlement is not None and settlement.status == Settlement.Status.RELEASED
    return settlement


def test_a_payout_without_a_payout_account_waits_for_one_and_payout_send_agrees():
    # Given a vendor with a released settlement and no payout account
    vendor = a_vendor()
    settlement = settled_now(vendor)
    payout = Payout.objects.select_related("settlement").get(settlement=settlement)
    # Then the reason is "no payout account", said as a sentence
    wait = selectors.payout_wait(payout=payout)
    assert wait is not None and wait.code == payouts.WAIT_NO_ACCOUNT
    assert "account" in wait.message and wait.until is None
    assert selectors.settlement_wait(settlement=settlement).code == payouts.WAIT_NO_ACCOUNT
    assert selectors.vendor_payout_wait(vendor_id=vendor.pk).code == payouts.WAIT_NO_ACCOUNT
    # ... and payout_send refuses for that very reason, sending nothing
    with pytest.raises(PaymentError) as refused:
        payouts.payout_send(payout_id=payout.pk)
    assert refused.value.code == "no_payout_account"
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PENDING


def test_with_an_account_the_payout_is_ready_to_send():
    vendor = a_vendor()
    factories.PayoutAccountFactory(vendor=vendor)
    payout = Payout.objects.get(settlement=settled_now(vendor))
    assert payouts.payout_waits_for(payout) is None
    assert selectors.payout_wait(payout=payout).code == "queued"


def test_an_open_dispute_holds_the_payout():
    # Given a released settlement whose order gets a dispute before its payout is sent
    vendor = a_vendor()
    factories.PayoutAccountFactory(vendor=vendor)
    settlement = settled_now(vendor)
    line = settlement.lines.exclude(order_id=None).first()
    payment = factories.PaymentFactory(order_id=line.order_id + 10_000, vendor_id=vendor.pk)
    Dispute.objects.create(
        order_id=line.order_id, vendor_id=vendor.pk, payment=payment, reason="broken bottle"
    )
    payout = Payout.objects.get(settlement=settlement)
    # Then the reason is the dispute, and payout_send holds it (the settlement goes to HELD)
    assert selectors.payout_wait(payout=payout).code == payouts.WAIT_DISPUTE
    assert payouts.payout_send(payout_id=payout.pk).status == Payout.Status.PENDING
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.HELD
    assert selectors.settlement_wait(settlement=settlement).code == payouts.WAIT_DISPUTE


def test_money_not_yet_settled_waits_until_the_period_ends():
    vendor = a_vendor()
    factories.PayoutAccountFactory(vendor=vendor)
    captured(vendor, amount=5_000, commission=500)
    now = timezone.now()
    wait = selectors.vendor_payout_wait(vendor_id=vendor.pk, now=now)
    assert wait.code == "period_open"
    assert wait.until == period_of(now).end
    # Nothing owed: nothing waits
    assert selectors.vendor_payout_wait(vendor_id=a_vendor().pk) is None


def test_a_sent_payout_waits_for_the_bank_and_a_paid_one_for_nothing():
    vendor = a_vendor()
    factories.PayoutAccountFactory(vendor=vendor)
    payout = Payout.objects.get(settlement=settled_now(vendor))
    payouts.payout_mark_sent(payout_id=payout.pk, provider_ref="po_1")
    payout.refresh_from_db()
    assert selectors.payout_wait(payout=payout).code == "in_transit"
    payouts.payout_mark_paid(payout_id=payout.pk)
    payout.refresh_from_db()
    assert selectors.payout_wait(payout=payout) is None


def test_a_negative_period_is_carried_forward():
    settlement = factories.SettlementFactory(status=Settlement.Status.CARRIED_FORWARD)
    assert selectors.settlement_wait(settlement=settlement).code == "carried_forward"


# --- the admin -----------------------------------------------------------------------------------


def test_staff_see_why_in_the_payout_and_settlement_lists():
    vendor = a_vendor()
    settlement = settled_now(vendor)
    payout = Payout.objects.get(settlement=settlement)
    staff = Client(headers={"accept-language": "en"})
    staff.force_login(StaffFactory(is_superuser=True))
    # The lists say it in a few words (the sentence as their tooltip); the records in full
    for url in ("/admin/payments/payout/", "/admin/payments/settlement/"):
        page = staff.get(url)
        assert page.status_code == 200, url
        assert "No payout account" in page.content.decode(), url
        assert "Waiting for a payout account" in page.content.decode(), url
    for url in (
        f"/admin/payments/payout/{payout.pk}/change/",
        f"/admin/payments/settlement/{settlement.pk}/change/",
    ):
        page = staff.get(url)
        assert page.status_code == 200, url
        assert "Waiting for a payout account" in page.content.decode(), url


def test_settle_now_settles_an_ended_period_after_confirming():
    # Given a vendor's sale booked in a period that has ended
    vendor = a_vendor()
    factories.PayoutAccountFactory(vendor=vendor)
    captured(vendor, amount=8_000, commission=800)
    staff = Client(headers={"accept-language": "en"})
    staff.force_login(StaffFactory(is_superuser=True))
    url = "/admin/payments/settlement/settle-now/"
    # The change list links to the page
    assert url in staff.get("/admin/payments/settlement/").content.decode()
    page = staff.get(url)
    assert page.status_code == 200 and "Settle now" in page.content.decode()
    today = timezone.localdate()
    # When staff send it without confirming, or for a period still running: a form error, nothing
    refused = staff.post(url, {"day": today.isoformat(), "vendor": vendor.pk})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    running = staff.post(url, {"day": today.isoformat(), "vendor": vendor.pk, "confirm": "on"})
    assert running.status_code == 200 and "has not ended yet" in running.content.decode()
    garbage = staff.post(url, {"day": "2026-13-45", "vendor": "x", "confirm": "on"})
    assert garbage.status_code == 200
    assert not Settlement.objects.exists()
    # When the period the sale is in has ended (tomorrow), staff settle it for the vendor
    later = timezone.now() + timedelta(days=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.utils.timezone.now", lambda: later)
        done = staff.post(url, {"day": today.isoformat(), "vendor": vendor.pk, "confirm": "on"})
    assert done.status_code == 302
    settlement = Settlement.objects.get(vendor=vendor)
    assert settlement.status == Settlement.Status.RELEASED and settlement.net == 8_000 - 800
    assert Payout.objects.filter(settlement=settlement).exists()
    # ... and again: nothing new
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.utils.timezone.now", lambda: later)
        staff.post(url, {"day": today.isoformat(), "vendor": vendor.pk, "confirm": "on"})
    assert Settlement.objects.count() == 1 and Payout.objects.count() == 1


def test_settle_now_is_for_staff_who_may_send_payouts():
    page = Client()
    page.force_login(StaffFactory(is_superuser=False))  # staff without payments permissions
    assert page.get("/admin/payments/settlement/settle-now/").status_code == 403
