"""Payouts through the sandbox over HTTP: PENDING → SENT → PAID | FAILED, each move booked in the
ledger with the state change; a failed payout's money returns to the vendor's payable balance and
is paid again by the next settlement, or at once when staff retry it."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import translation

from o2o.errors import NotAllowed
from payments import ledger, payouts, settlement, tasks
from payments.errors import InvalidTransition, PaymentError
from payments.models import (
    JournalKind,
    JournalTransaction,
    Payout,
    PayoutAccount,
    Settlement,
    SettlementLine,
)
from payments.sandbox import services as bank
from payments.sandbox.models import SandboxIdempotencyKey, SandboxPayout
from tests.factories import StaffFactory, UserFactory, VendorFactory

from .factories import PayoutAccountFactory
from .money import captured, days_later

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
P = Payout.Status
PAYS, FAILS, PENDS = "110123456789", "000000000002", "000000000077"


def _settled(account: str | None = PAYS, *, amount: int = 10_000, day: int = 1) -> Payout:
    """A vendor with one captured order, its day settled: a PENDING payout of 9,000."""
    vendor = VendorFactory()
    if account:
        PayoutAccountFactory(vendor=vendor, account_number=account)
    captured(vendor_id=vendor.pk, amount=amount, commission=amount // 10)
    settlement.settlements_run(now=days_later(day))
    return Payout.objects.get(vendor=vendor)


def _kinds(payout: Payout) -> list[str]:
    return sorted(
        JournalTransaction.objects.filter(key__endswith=f":{payout.pk}")
        .filter(kind__startswith="payout")
        .values_list("kind", flat=True)
    )


def test_a_payout_is_sent_and_paid_and_booked(sandbox):
    payout = _settled(PAYS)
    assert payout.status == P.PENDING
    # When it is sent
    payout = payouts.payout_send(payout_id=payout.pk)
    # Then the sandbox paid it once, and the ledger moved the money out of the payable balance
    assert payout.status == P.PAID and payout.provider_ref.startswith("po_")
    at_bank = SandboxPayout.objects.get()
    assert (at_bank.amount, at_bank.reference, at_bank.account_number) == (
        9_000,
        f"payout-{payout.pk}",
        PAYS,
    )
    assert _kinds(payout) == ["payout", "payout_paid"]
    assert ledger.vendor_payable(payout.vendor_id) == 0
    assert ledger.balance(ledger.PAYOUTS_IN_TRANSIT) == 0
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 10_000 - 9_000
    assert payout.account_number == PAYS  # the account it went to is kept
    # Sending again does nothing
    assert payouts.payout_send(payout_id=payout.pk).status == P.PAID
    assert SandboxPayout.objects.count() == 1 and len(_kinds(payout)) == 2


def test_a_pending_payout_is_finished_by_a_status_fetch(sandbox):
    payout = payouts.payout_send(payout_id=_settled(PENDS).pk)
    assert payout.status == P.SENT
    assert ledger.balance(ledger.PAYOUTS_IN_TRANSIT) == 9_000
    assert ledger.vendor_payable(payout.vendor_id) == 0
    # Still in transit at the bank: the sync changes nothing
    assert tasks.payouts_sync.delay().get() == 1
    assert Payout.objects.get(pk=payout.pk).status == P.SENT
    # The bank pays it; the next sync books it
    bank.payout_finish(payout_id=payout.provider_ref, paid=True)
    tasks.payouts_sync.delay()
    assert Payout.objects.get(pk=payout.pk).status == P.PAID
    assert ledger.balance(ledger.PAYOUTS_IN_TRANSIT) == 0


def test_a_failed_payout_returns_the_money_and_the_next_settlement_pays_it(sandbox):
    # Given a payout to the account that fails
    payout = payouts.payout_send(payout_id=_settled(FAILS).pk)
    assert (payout.status, payout.failure_code) == (P.FAILED, "account_closed")
    assert _kinds(payout) == ["payout", "payout_failed"]
    # Then the money is owed to the vendor again
    assert ledger.vendor_payable(payout.vendor_id) == 9_000
    assert ledger.balance(ledger.PAYOUTS_IN_TRANSIT) == 0
    # When the vendor's account is fixed and the next day is settled
    PayoutAccount.objects.filter(vendor_id=payout.vendor_id).update(account_number=PAYS)
    settlement.settlements_run(now=days_later(2))
    # Then the next settlement lists the returned money, and its payout pays it
    nxt = Settlement.objects.exclude(pk=payout.settlement_id).get()
    assert (nxt.returned, nxt.net, nxt.line_count) == (9_000, 9_000, 1)
    second = payouts.payout_send(payout_id=nxt.payout.pk)
    assert second.status == P.PAID
    assert ledger.vendor_payable(payout.vendor_id) == 0
    assert SandboxPayout.objects.filter(status="paid").count() == 1
    # And staff can no longer retry it: its money was paid again
    with pytest.raises(InvalidTransition):
        payouts.payout_retry(payout_id=payout.pk, actor=StaffFactory())


def test_staff_retry_a_failed_payout_at_once_and_only_once(sandbox):
    payout = payouts.payout_send(payout_id=_settled(FAILS).pk)
    staff = StaffFactory()
    with pytest.raises(NotAllowed):
        payouts.payout_retry(payout_id=payout.pk, actor=UserFactory())
    PayoutAccount.objects.filter(vendor_id=payout.vendor_id).update(account_number=PAYS)
    # When staff retry it
    retry = payouts.payout_retry(payout_id=payout.pk, actor=staff)
    # Then a retry settlement lists the returned money, with a new payout of it
    assert retry.settlement.kind == Settlement.Kind.RETRY
    assert retry.settlement.retry_of_id == payout.pk
    assert (retry.amount, retry.status) == (9_000, P.PENDING)
    assert payouts.payout_send(payout_id=retry.pk).status == P.PAID
    # Once only, and the next settlement does not pay it a third time
    with pytest.raises(InvalidTransition):
        payouts.payout_retry(payout_id=payout.pk, actor=staff)
    settlement.settlements_run(now=days_later(2))
    failed_txn = JournalTransaction.objects.get(kind=JournalKind.PAYOUT_FAILED)
    assert SettlementLine.objects.filter(journal_transaction=failed_txn).count() == 1
    assert Payout.objects.count() == 2
    assert ledger.vendor_payable(payout.vendor_id) == 0
    # A payout that did not fail can't be retried
    with pytest.raises(InvalidTransition):
        payouts.payout_retry(payout_id=retry.pk, actor=staff)


def test_without_a_payout_account_the_payout_waits(sandbox):
    payout = _settled(account=None)
    with translation.override("en"), pytest.raises(PaymentError, match="no payout account"):
        payouts.payout_send(payout_id=payout.pk)
    assert Payout.objects.get(pk=payout.pk).status == P.PENDING
    assert not SandboxIdempotencyKey.objects.exists()
    # The task does not retry what staff must fix
    assert tasks.payout_send.delay(payout.pk).get() == "not_sent"
    PayoutAccountFactory(vendor_id=payout.vendor_id, account_number=PAYS)
    assert tasks.payout_send.delay(payout.pk).get() == P.PAID


def test_the_admin_retries_and_sends_payouts(sandbox):
    payout = payouts.payout_send(payout_id=_settled(FAILS).pk)
    PayoutAccount.objects.filter(vendor_id=payout.vendor_id).update(account_number=PAYS)
    client = Client(headers={"accept-language": "en"})
    client.force_login(StaffFactory())
    response = client.post(
        "/admin/payments/payout/",
        {"action": "retry", ACTION_CHECKBOX_NAME: [payout.pk]},
        follow=True,
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("being paid again" in t for t in texts), texts
    # The new payout was sent after commit (an eager task here)
    retry = Payout.objects.exclude(pk=payout.pk).get()
    assert retry.status == P.PAID
    # Retrying it again is refused with a message, not an error page
    response = client.post(
        "/admin/payments/payout/",
        {"action": "retry", ACTION_CHECKBOX_NAME: [payout.pk, retry.pk]},
        follow=True,
    )
    assert response.status_code == 200
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert sum("retried" in t or "failed payout" in t for t in texts) == 2, texts
