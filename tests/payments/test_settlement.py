"""Settlement per vendor and period, built from the ledger only: each vendor-payable journal
transaction listed once, the parts adding up to the vendor's payable balance, held while a dispute
is open, carried forward when negative, and restartable after a crash half-way."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from payments import disputes, ledger, settlement
from payments.models import JournalKind, JournalTransaction, Payout, Settlement, SettlementLine
from tests.factories import StaffFactory, VendorFactory

from .money import captured, days_later, refunded

pytestmark = pytest.mark.django_db
S = Settlement.Status
SEOUL = ZoneInfo("Asia/Seoul")


def _lines(vendor_id: int) -> list[tuple]:
    return list(
        SettlementLine.objects.filter(settlement__vendor_id=vendor_id)
        .order_by("journal_transaction_id")
        .values_list("kind", "order_id", "gross", "commission", "net")
    )


# --- periods -------------------------------------------------------------------------------------


def test_periods_start_at_local_midnight(settings):
    settings.TIME_ZONE = "Asia/Seoul"
    settings.SETTLEMENT_PERIOD_DAYS = 1
    # 23:30 UTC on the 4th is 08:30 on the 5th in Seoul
    moment = datetime(2026, 3, 4, 23, 30, tzinfo=ZoneInfo("UTC"))
    period = settlement.period_of(moment)
    assert period.start == datetime(2026, 3, 5, tzinfo=SEOUL)
    assert period.end == datetime(2026, 3, 6, tzinfo=SEOUL)
    assert settlement.last_ended_period(moment).start == datetime(2026, 3, 4, tzinfo=SEOUL)
    # Weekly periods start on Mondays (2026-03-02 is a Monday)
    settings.SETTLEMENT_PERIOD_DAYS = 7
    week = settlement.period_of(moment)
    assert (week.start, week.end) == (
        datetime(2026, 3, 2, tzinfo=SEOUL),
        datetime(2026, 3, 9, tzinfo=SEOUL),
    )
    assert week.start.weekday() == 0


# --- what a settlement lists ---------------------------------------------------------------------


def test_a_settlement_lists_each_order_refund_and_adjustment_once_and_adds_up():
    # Given a vendor with two captured orders, a partial refund and a staff adjustment, and
    # another vendor with one order
    vendor, other = VendorFactory(), VendorFactory()
    first = captured(vendor_id=vendor.pk, amount=10_000, commission=1_000)
    second = captured(vendor_id=vendor.pk, amount=5_000, commission=500)
    refunded(first.pk, 2_000)  # commission back: 200
    ledger.adjustment_post(
        actor=StaffFactory(),
        debit=ledger.ADJUSTMENTS,
        credit=f"vendor_payable:{vendor.pk}",
        amount=300,
        reason="goodwill",
    )
    captured(vendor_id=other.pk, amount=7_000, commission=700)
    # When the day is settled
    result = settlement.settlements_run(now=days_later(1))
    # Then each vendor has one settlement, listing exactly its vendor-payable transactions
    assert result["released"] == 2
    mine = Settlement.objects.get(vendor=vendor)
    assert _lines(vendor.pk) == [
        ("commission", first.order_id, 10_000, 1_000, 9_000),
        ("commission", second.order_id, 5_000, 500, 4_500),
        ("reversal", first.order_id, -2_000, -200, -1_800),
        ("adjustment", None, 0, 0, 300),
    ]
    # And its parts add up to the vendor's payable balance in the ledger, to the won
    assert (mine.gross, mine.refunds, mine.commission, mine.adjustments, mine.net) == (
        15_000,
        2_000,
        1_300,
        300,
        12_000,
    )
    assert mine.net == ledger.vendor_payable(vendor.pk)
    assert mine.line_count == 4 and mine.status == S.RELEASED
    # And a payout of the net waits to be sent
    assert Payout.objects.get(settlement=mine).amount == 12_000
    assert Payout.objects.get(settlement__vendor=other).amount == 6_300
    # When the run is repeated, nothing changes
    again = settlement.settlements_run(now=days_later(1))
    assert again.get("released", 0) == 2
    assert Settlement.objects.count() == 2 and SettlementLine.objects.count() == 5
    assert Payout.objects.count() == 2


def test_what_was_booked_after_the_run_goes_to_the_next_period():
    vendor = VendorFactory()
    captured(vendor_id=vendor.pk, amount=10_000)
    settlement.settlements_run(now=days_later(1))
    # A refund booked after the settlement was built (a late commit of the same day, say)
    payment = captured(vendor_id=vendor.pk, amount=4_000, commission=400)
    refunded(payment.pk, 4_000)
    # is listed by the next period's settlement, once
    settlement.settlements_run(now=days_later(2))
    first, second = Settlement.objects.order_by("period_start")
    assert (first.net, second.net) == (9_000, 0)
    assert second.status == S.NOTHING_DUE and second.line_count == 2
    assert first.net + second.net == ledger.vendor_payable(vendor.pk)
    assert SettlementLine.objects.count() == 3


def test_a_negative_period_is_carried_forward():
    # Given a settled and paid day
    vendor = VendorFactory()
    payment = captured(vendor_id=vendor.pk, amount=10_000, commission=1_000)
    settlement.settlements_run(now=days_later(1))
    # When the next day has only a refund of it
    refunded(payment.pk, 5_000)
    settlement.settlements_run(now=days_later(2))
    # Then that day's settlement is negative: nothing paid, its refund left for later
    negative = Settlement.objects.get(status=S.CARRIED_FORWARD)
    assert (negative.net, negative.refunds, negative.line_count) == (-4_500, 5_000, 0)
    assert not Payout.objects.filter(settlement=negative).exists()
    # And the day after nets it against new sales
    captured(vendor_id=vendor.pk, amount=8_000, commission=800)
    settlement.settlements_run(now=days_later(3))
    third = Settlement.objects.order_by("-period_start").first()
    assert (third.status, third.net, third.line_count) == (S.RELEASED, 7_200 - 4_500, 2)


def test_a_settlement_is_held_while_a_dispute_on_its_orders_is_open():
    vendor = VendorFactory()
    disputed = captured(vendor_id=vendor.pk, amount=10_000)
    captured(vendor_id=vendor.pk, amount=3_000, commission=300)
    dispute = disputes.dispute_open(
        order_id=disputed.order_id, opened_by=None, reason="the milk was sour"
    )
    settlement.settlements_run(now=days_later(1))
    held = Settlement.objects.get()
    assert held.status == S.HELD and not Payout.objects.exists()
    # Rerunning keeps it held
    settlement.settlements_run(now=days_later(1))
    assert Settlement.objects.get().status == S.HELD
    # When staff reject the dispute, the settlement is released with its payout
    disputes.dispute_resolve(dispute_id=dispute.pk, actor=StaffFactory(), note="fine", reject=True)
    assert settlement.settlements_release() == 1
    released = Settlement.objects.get()
    assert released.status == S.RELEASED and released.payout.amount == 11_700


def test_a_run_killed_half_way_finishes_on_the_next_run_with_each_line_once(monkeypatch):
    # Given a vendor with five orders, settled one journal transaction per batch
    vendor = VendorFactory()
    for _ in range(5):
        captured(vendor_id=vendor.pk, amount=1_000, commission=100)
    real, calls = settlement._lines, []

    def crash_on_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the worker is killed here
        return real(*args, **kwargs)

    monkeypatch.setattr(settlement, "_lines", crash_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        settlement.settlements_run(now=days_later(1), batch_size=1)
    # Then the settlement is still being built, with the first two lines
    building = Settlement.objects.get()
    assert building.status == S.BUILDING and building.lines.count() == 2
    assert not Payout.objects.exists()
    # When the run is started again, it finishes: every order once, one payout
    monkeypatch.setattr(settlement, "_lines", real)
    settlement.settlements_run(now=days_later(1), batch_size=2)
    done = Settlement.objects.get()
    assert (done.status, done.line_count, done.net) == (S.RELEASED, 5, 4_500)
    commission_txns = JournalTransaction.objects.filter(kind=JournalKind.COMMISSION)
    assert SettlementLine.objects.filter(journal_transaction__in=commission_txns).count() == 5
    assert (
        SettlementLine.objects.values("journal_transaction")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
        == 0
    )
    assert Payout.objects.get().amount == 4_500


def test_vendors_are_settled_in_batches(settings):
    settings.SETTLEMENT_VENDOR_BATCH = 2
    vendors = [VendorFactory() for _ in range(5)]
    for v in vendors:
        captured(vendor_id=v.pk, amount=2_000, commission=200)
    settlement.settlements_run(now=days_later(1))
    assert Settlement.objects.filter(status=S.RELEASED).count() == 5
    assert Payout.objects.aggregate(s=Sum("amount"))["s"] == 5 * 1_800


def test_the_database_refuses_a_second_settlement_of_a_period():
    vendor = VendorFactory()
    captured(vendor_id=vendor.pk)
    settlement.settlements_run(now=days_later(1))
    first = Settlement.objects.get()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Settlement.objects.create(
            vendor=vendor,
            currency="KRW",
            period_start=first.period_start,
            period_end=first.period_end,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        SettlementLine.objects.create(
            settlement=first,
            journal_transaction=first.lines.first().journal_transaction,
            kind="commission",
            booked_at=timezone.now(),
        )


def test_nothing_to_settle_makes_no_settlement():
    VendorFactory()
    assert settlement.settlements_run(now=days_later(1)).get("released", 0) == 0
    assert not Settlement.objects.exists()
    # A vendor's activity of today is not settled before the day is over
    vendor = VendorFactory()
    captured(vendor_id=vendor.pk)
    settlement.settlements_run(now=timezone.now() - timedelta(days=1))
    assert not Settlement.objects.exists()
