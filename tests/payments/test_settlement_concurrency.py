"""Settlement and payout races on real PostgreSQL connections (each thread its own): two runs at
once make one settlement; a refund racing a settlement is settled exactly once, by it or the next;
a payout send that crashed after the provider paid, retried, pays once."""

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count, Sum

from payments import ledger, payouts, settlement
from payments.models import (
    JournalKind,
    JournalTransaction,
    Payout,
    Settlement,
    SettlementLine,
)
from payments.sandbox.models import SandboxIdempotencyKey, SandboxPayout
from tests.factories import VendorFactory

from .factories import PayoutAccountFactory
from .money import captured, days_later, refunded
from .test_concurrency import in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
S = Settlement.Status


def _each_journal_settled_once() -> None:
    assert not (
        SettlementLine.objects.values("journal_transaction")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )


def _settled_plus_unsettled_is_the_balance(vendor_id: int, until) -> None:
    payable = ledger.vendor_payable_account(vendor_id)
    settled = (
        SettlementLine.objects.filter(settlement__vendor_id=vendor_id).aggregate(s=Sum("net"))["s"]
        or 0
    )
    unsettled = 0
    for side, amount in ledger.LedgerEntry.objects.filter(
        account=payable,
        transaction_id__in=settlement._unsettled(payable.pk, until).values("transaction_id"),
    ).values_list("side", "amount"):
        unsettled += amount if side == "C" else -amount
    assert settled + unsettled == ledger.vendor_payable(vendor_id)


def test_two_settlement_runs_at_once_make_one_settlement_per_vendor_and_period():
    # Given three vendors with four orders each
    vendors = [VendorFactory() for _ in range(3)]
    for v in vendors:
        for _ in range(4):
            captured(vendor_id=v.pk, amount=1_000, commission=100)
    # When two runs settle the day at the same moment, one journal transaction per batch
    results = in_threads(2, lambda i: settlement.settlements_run(now=days_later(1), batch_size=1))
    assert all(isinstance(r, dict) for r in results), results
    # Then each vendor has one settlement listing each order once, with one payout
    assert Settlement.objects.count() == 3
    for v in vendors:
        s = Settlement.objects.get(vendor=v)
        assert (s.status, s.line_count, s.net) == (S.RELEASED, 4, 3_600)
        assert s.lines.count() == 4
    _each_journal_settled_once()
    assert Payout.objects.count() == 3


def _refund_while_settling(*, commit_before_the_run_ends: bool):
    """A settlement run and a refund of the same vendor, interleaved at a chosen point."""
    vendor = VendorFactory()
    payments = [captured(vendor_id=vendor.pk, amount=1_000, commission=100) for _ in range(3)]
    first_batch_done, refund_done = threading.Event(), threading.Event()
    refund_open = threading.Event()
    real = settlement._lines

    def lines_with_a_pause(*args, **kwargs):
        out = real(*args, **kwargs)
        if not first_batch_done.is_set():
            first_batch_done.set()
            if commit_before_the_run_ends:
                assert refund_done.wait(timeout=20)  # the refund commits mid-run
        return out

    settlement._lines = lines_with_a_pause

    def work(i: int):
        if i == 0:
            if not commit_before_the_run_ends:
                assert refund_open.wait(timeout=20)  # its rows are written, not committed
            return settlement.settlements_run(now=days_later(1), batch_size=1)
        if commit_before_the_run_ends:
            assert first_batch_done.wait(timeout=20)
            refund = refunded(payments[0].pk, 400)
            refund_done.set()
            return refund
        with transaction.atomic():
            refund = refunded(payments[0].pk, 400)
            refund_open.set()
            # hold the commit until the run has finished its settlement
            while not Settlement.objects.exclude(status=S.BUILDING).exists():
                threading.Event().wait(0.05)
        return refund

    try:
        results = in_threads(2, work)
    finally:
        settlement._lines = real
    assert not any(isinstance(r, Exception) for r in results), results
    return vendor


@pytest.mark.parametrize("commit_before_the_run_ends", [True, False], ids=["mid-run", "after"])
def test_a_refund_racing_a_settlement_is_settled_exactly_once(commit_before_the_run_ends):
    vendor = _refund_while_settling(commit_before_the_run_ends=commit_before_the_run_ends)
    reversal = JournalTransaction.objects.get(kind=JournalKind.REVERSAL)
    first = Settlement.objects.get()
    in_first = first.lines.filter(journal_transaction=reversal).exists()
    # Mid-run, the run takes it; committed after the run, the next period does
    assert in_first == commit_before_the_run_ends
    assert first.net == (2_700 - 360 if in_first else 2_700)
    _settled_plus_unsettled_is_the_balance(vendor.pk, days_later(9))
    # The next period: negative on its own (carried forward) until new sales come in
    settlement.settlements_run(now=days_later(2))
    carried = Settlement.objects.filter(status=S.CARRIED_FORWARD).count()
    assert carried == (0 if in_first else 1)
    captured(vendor_id=vendor.pk, amount=1_000, commission=100)
    settlement.settlements_run(now=days_later(3))
    # Then the reversal was settled exactly once, and the settlements add up to the ledger
    assert SettlementLine.objects.filter(journal_transaction=reversal).count() == 1
    _each_journal_settled_once()
    total = Settlement.objects.exclude(status=S.CARRIED_FORWARD).aggregate(s=Sum("net"))["s"]
    assert total == ledger.vendor_payable(vendor.pk) == 3_600 - 360
    _settled_plus_unsettled_is_the_balance(vendor.pk, days_later(9))


def test_two_runs_and_refunds_all_at_once_stay_consistent():
    vendors = [VendorFactory() for _ in range(2)]
    payments = [
        captured(vendor_id=v.pk, amount=2_000, commission=200) for v in vendors for _ in range(3)
    ]

    def work(i: int):
        if i < 2:
            return settlement.settlements_run(now=days_later(1), batch_size=1)
        return refunded(payments[i - 2].pk, 500 + i)

    results = in_threads(5, work)
    assert not any(isinstance(r, Exception) for r in results), results
    settlement.settlements_run(now=days_later(2))
    _each_journal_settled_once()
    for v in vendors:
        _settled_plus_unsettled_is_the_balance(v.pk, days_later(3))
    # Refunds the first run did not see may leave the next period negative (carried forward);
    # with a new sale the day after, everything is settled, once
    for v in vendors:
        captured(vendor_id=v.pk, amount=5_000, commission=500)
    settlement.settlements_run(now=days_later(3))
    _each_journal_settled_once()
    for v in vendors:
        _settled_plus_unsettled_is_the_balance(v.pk, days_later(4))
        assert not settlement._unsettled(
            ledger.vendor_payable_account(v.pk).pk, days_later(4)
        ).exists()


@pytest.fixture
def a_payout_due(sandbox):
    vendor = VendorFactory()
    PayoutAccountFactory(vendor=vendor, account_number="110123456789")
    captured(vendor_id=vendor.pk, amount=10_000, commission=1_000)
    settlement.settlements_run(now=days_later(1))
    return Payout.objects.get()


def test_a_payout_send_killed_after_the_provider_paid_pays_once_when_retried(
    a_payout_due, monkeypatch
):
    # Given a send that dies after the provider answered and before SENT was written
    real = payouts.payout_mark_sent

    def killed(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(payouts, "payout_mark_sent", killed)
    with pytest.raises(SystemExit):
        payouts.payout_send(payout_id=a_payout_due.pk)
    assert Payout.objects.get().status == Payout.Status.PENDING
    assert SandboxPayout.objects.count() == 1  # the bank paid
    # When the task is retried
    monkeypatch.setattr(payouts, "payout_mark_sent", real)
    from payments import tasks

    assert tasks.payout_send.delay(a_payout_due.pk).get() == Payout.Status.PAID
    # Then the provider paid once (same key, same answer) and the ledger booked it once
    assert SandboxPayout.objects.count() == 1
    assert SandboxIdempotencyKey.objects.filter(key=f"payout-{a_payout_due.pk}").count() == 1
    payout = Payout.objects.get()
    assert payout.provider_ref == SandboxPayout.objects.get().id
    assert JournalTransaction.objects.filter(kind=JournalKind.PAYOUT).count() == 1
    assert ledger.vendor_payable(payout.vendor_id) == 0


def test_a_payout_sent_twice_at_once_pays_once(a_payout_due):
    results = in_threads(2, lambda i: payouts.payout_send(payout_id=a_payout_due.pk))
    assert [getattr(r, "status", r) for r in results] == ["paid", "paid"], results
    assert SandboxPayout.objects.count() == 1
    assert JournalTransaction.objects.filter(kind=JournalKind.PAYOUT).count() == 1
    assert JournalTransaction.objects.filter(kind=JournalKind.PAYOUT_PAID).count() == 1
    connection.close()
