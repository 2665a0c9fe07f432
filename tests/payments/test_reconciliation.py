"""Reconciliation: every difference between the ledger, the payments and the provider's records
becomes one open Discrepancy for staff (never a silent fix), however often it runs."""

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.test import Client
from django.utils import timezone

from o2o.errors import NotAllowed
from payments import ledger, payouts, reconciliation, services, settlement, tasks
from payments.errors import InvalidTransition, PaymentError, PaymentUnavailable
from payments.models import Discrepancy, JournalTransaction, LedgerEntry, Payment
from payments.sandbox import api
from payments.sandbox.models import SandboxIntent, SandboxPayout
from tests.factories import StaffFactory, UserFactory, VendorFactory

from .factories import PayoutAccountFactory, SandboxIntentFactory
from .money import captured, days_later, refunded

K = Discrepancy.Kind


def _open() -> set[tuple[str, str]]:
    return set(
        Discrepancy.objects.filter(status=Discrepancy.Status.OPEN).values_list("kind", "object_ref")
    )


@pytest.mark.django_db
def test_a_sound_ledger_has_nothing_to_report():
    vendor = VendorFactory()
    payment = captured(vendor_id=vendor.pk, amount=10_001, commission=1_000)
    refunded(payment.pk, 3_333)
    refunded(payment.pk, 6_668)
    captured(vendor_id=vendor.pk, amount=5_000, commission=500)
    assert list(reconciliation.ledger_findings()) == []
    result = reconciliation.reconciliation_run(provider=False)
    assert (result["found"], result["new"]) == (0, 0)
    assert not Discrepancy.objects.exists()


@pytest.mark.django_db
def test_each_difference_is_recorded_once_and_resolved_by_staff_with_a_note():
    # Given a payment whose captured amount no longer matches its capture journal
    vendor = VendorFactory()
    payment = captured(vendor_id=vendor.pk, amount=10_000)
    other = captured(vendor_id=vendor.pk, amount=2_000, commission=200)
    Payment.objects.filter(pk=payment.pk).update(amount_captured=9_000)
    # and a refund booked in the ledger that the payment does not show
    refunded(other.pk, 500)
    Payment.objects.filter(pk=other.pk).update(amount_refunded=0)
    # and money left in the customer funds clearing account by a wrong adjustment
    ledger.adjustment_post(
        actor=StaffFactory(),
        debit=ledger.ADJUSTMENTS,
        credit=ledger.CUSTOMER_FUNDS,
        amount=70,
        reason="typo",
    )
    # When the reconciliation runs twice
    first = reconciliation.reconciliation_run(provider=False)
    second = reconciliation.reconciliation_run(provider=False)
    # Then each difference is one open discrepancy, with what was expected and found
    assert _open() == {
        (K.CAPTURE_MISMATCH, f"payment:{payment.pk}"),
        (K.REFUND_MISMATCH, f"payment:{other.pk}"),
        (K.CLEARING_NOT_ZERO, "account:customer_funds"),
    }
    assert (first["new"], second["new"], second["found"]) == (3, 0, 3)
    capture = Discrepancy.objects.get(kind=K.CAPTURE_MISMATCH)
    assert (capture.expected, capture.actual) == ("captured 9000", "ledger 10000")
    assert capture.last_seen_at > capture.detected_at
    # And nothing was fixed
    assert Payment.objects.get(pk=payment.pk).amount_captured == 9_000
    # When staff resolve one with a note
    staff = StaffFactory()
    with pytest.raises(NotAllowed):
        reconciliation.discrepancy_resolve(discrepancy_id=capture.pk, actor=UserFactory(), note="x")
    with pytest.raises(PaymentError):
        reconciliation.discrepancy_resolve(discrepancy_id=capture.pk, actor=staff, note=" ")
    done = reconciliation.discrepancy_resolve(
        discrepancy_id=capture.pk, actor=staff, note="payment row corrected by hand"
    )
    assert (done.status, done.resolved_by, done.resolution_note) == (
        Discrepancy.Status.RESOLVED,
        staff,
        "payment row corrected by hand",
    )
    with pytest.raises(InvalidTransition):
        reconciliation.discrepancy_resolve(discrepancy_id=capture.pk, actor=staff, note="again")
    # A difference still there is reported again, as a new open one
    reconciliation.reconciliation_run(provider=False)
    assert Discrepancy.objects.filter(kind=K.CAPTURE_MISMATCH).count() == 2


@pytest.mark.django_db
def test_an_unbalanced_journal_transaction_is_reported():
    # (PostgreSQL refuses to commit one: it is seen here inside a transaction rolled back after)
    with transaction.atomic():
        txn = JournalTransaction.objects.create(key="raw", kind="adjustment", currency="KRW")
        LedgerEntry.objects.create(
            transaction=txn, account=ledger.account(ledger.ADJUSTMENTS), side="D", amount=100
        )
        LedgerEntry.objects.create(
            transaction=txn, account=ledger.account(ledger.PROVIDER_CLEARING), side="C", amount=90
        )
        findings = list(reconciliation.journal_findings(batch=1))
        transaction.set_rollback(True)
    assert [(f.kind, f.object_ref, f.expected, f.actual) for f in findings] == [
        (K.JOURNAL_UNBALANCED, f"journal:{txn.pk}", "debits 100", "credits 90")
    ]


@pytest.mark.django_db
def test_staff_resolve_discrepancies_from_the_admin():
    payment = captured(vendor_id=VendorFactory().pk)
    Payment.objects.filter(pk=payment.pk).update(amount_captured=1)
    reconciliation.reconciliation_run(provider=False)
    found = Discrepancy.objects.get()
    client = Client(headers={"accept-language": "en"})
    client.force_login(StaffFactory())
    selected = {"action": "mark_resolved", ACTION_CHECKBOX_NAME: [found.pk]}
    page = client.post("/admin/payments/discrepancy/", selected)
    assert page.status_code == 200 and b"What was done about it" in page.content
    client.post("/admin/payments/discrepancy/", {**selected, "apply": "1", "note": "checked"})
    assert Discrepancy.objects.get().status == Discrepancy.Status.RESOLVED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_providers_records_are_compared_page_by_page(sandbox, monkeypatch):
    # Given captured and refunded payments through the sandbox, and a paid payout
    vendor = VendorFactory()
    PayoutAccountFactory(vendor=vendor, account_number="110123456789")
    paid = []
    for order_id in (1, 2, 3):
        payment = sandbox.authorised(order_id=order_id, amount=5_000)
        Payment.objects.filter(pk=payment.pk).update(vendor_id=vendor.pk, commission=500)
        paid.append(services.payment_capture(payment_id=payment.pk))
    services.payment_refund(payment_id=paid[0].pk, amount=1_000, reason="one item")
    settlement.settlements_run(now=days_later(1))
    payout = payouts.payout_send(payout_id=vendor.payouts.get().pk)
    window = {
        "start": timezone.now() - timedelta(hours=1),
        "end": timezone.now() + timedelta(minutes=1),
    }
    # Then, with everything in step, nothing is found (the sandbox lists 100 a page; make it 2)
    monkeypatch.setattr(api, "MAX_LIST", 2)
    assert list(reconciliation.provider_findings(**window)) == []
    # When the provider's records and ours drift apart, behind each other's back
    SandboxIntent.objects.filter(pk=paid[1].provider_ref).update(amount_refunded=700)
    unknown = SandboxIntentFactory(reference="order-99")
    Payment.objects.filter(pk=paid[2].pk).update(provider_ref="pi_gone")
    SandboxPayout.objects.filter(pk=payout.provider_ref).update(status="failed")
    stray = SandboxPayout.objects.create(
        amount=5, currency="KRW", reference="elsewhere", account_number="1234", status="paid"
    )
    # A difference on a payment that just changed is in flight, not a finding: age them
    Payment.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    result = reconciliation.reconciliation_run(**window)
    # Then each is one discrepancy, and the ledger checks still find nothing
    assert _open() == {
        (K.INTENT_MISMATCH, f"payment:{paid[1].pk}"),
        (K.INTENT_UNKNOWN, f"intent:{unknown.id}"),
        (K.INTENT_UNKNOWN, f"intent:{paid[2].provider_ref}"),
        (K.INTENT_MISSING, f"payment:{paid[2].pk}"),
        (K.PAYOUT_MISMATCH, f"payout:{payout.pk}"),
        (K.PAYOUT_UNKNOWN, f"provider_payout:{stray.id}"),
    }, result
    mismatch = Discrepancy.objects.get(kind=K.INTENT_MISMATCH)
    assert mismatch.expected == "captured captured 5000 refunded 700"
    assert mismatch.actual == "captured captured 5000 refunded 0"
    # Run again: nothing new
    assert reconciliation.reconciliation_run(**window)["new"] == 0
    assert Discrepancy.objects.count() == 6


@pytest.mark.django_db
def test_the_nightly_task_is_retried_when_the_provider_does_not_answer(settings):
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.PAYMENT_HTTP_RETRIES = 0
    payment = captured(vendor_id=VendorFactory().pk)
    Payment.objects.filter(pk=payment.pk).update(amount_captured=1)
    with pytest.raises(Retry) as retry:
        tasks.reconciliation_run.delay()
    assert isinstance(retry.value.exc, PaymentUnavailable)
    # What the ledger checks found before the provider was asked is kept
    assert _open() == {(K.CAPTURE_MISMATCH, f"payment:{payment.pk}")}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_void_in_flight_is_not_a_mismatch_until_it_is_stuck(sandbox):
    from o2o.models import Effect

    # Given an authorised payment that the provider voided (our void effect still pending)
    payment = sandbox.authorised(order_id=41, amount=5_000)
    SandboxIntent.objects.filter(pk=payment.provider_ref).update(status="voided")
    old = timezone.now() - timedelta(hours=1)
    Payment.objects.filter(pk=payment.pk).update(updated_at=old)
    Effect.objects.create(
        kind="order.money_return",
        key=f"order:{payment.order_id}:money_return",
        next_attempt_at=timezone.now(),
        deadline=timezone.now() + timedelta(hours=1),
    )
    window = {"start": old, "end": timezone.now() + timedelta(minutes=1)}
    # Then the reconciliation reports nothing while the void is on its way
    assert list(reconciliation.provider_findings(**window)) == []
    # And once nothing is on its way any more, the difference is a finding
    Effect.objects.all().delete()
    kinds = [f.kind for f in reconciliation.provider_findings(**window)]
    assert kinds == [K.INTENT_MISMATCH]
