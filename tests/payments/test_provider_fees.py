"""The provider's fee: the sandbox charges SANDBOX_FEE_BPS (+ SANDBOX_FEE_FIXED) per capture,
rounded half-up, and keeps it on refunds; the platform books the fee it reports with the capture,
in the capture's transaction, once per payment (however many captures, webhooks and syncs race);
the platform bears it (no vendor's balance moves); the reconciliation reports every difference
between the provider's fees and the ledger's, and fixes none."""

from datetime import timedelta
from fractions import Fraction
from math import floor

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from payments import ledger, reconciliation, services
from payments.errors import PaymentError
from payments.gateways.base import GatewayUnavailable
from payments.gateways.sandbox import _intent
from payments.models import Discrepancy, JournalKind, JournalTransaction, Payment, Refund
from payments.sandbox.models import SandboxIntent
from payments.sandbox.services import capture_fee
from tests.factories import VendorFactory

from .conftest import over_http
from .money import captured
from .test_concurrency import in_threads

P = Payment.Status
K = Discrepancy.Kind


def _fee_journals(payment: Payment):
    return JournalTransaction.objects.filter(payment=payment, kind=JournalKind.PROVIDER_FEE)


def _window() -> dict:
    return {
        "start": timezone.now() - timedelta(hours=1),
        "end": timezone.now() + timedelta(minutes=1),
    }


# --- the sandbox's fee ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bps", "fixed", "fee"),
    [
        (4_800, 250, 0, 120),  # 2.5 % by default
        (4_900, 250, 0, 123),  # 122.5: half rounds up
        (20, 250, 0, 1),  # 0.5 → 1
        (19, 250, 0, 0),  # 0.475 → 0
        (10_000, 0, 0, 0),
        (10_000, 330, 100, 430),  # 3.3 % + ₩100
        (50, 250, 100, 50),  # never more than the amount
        (10**12 - 1, 10_000, 0, 10**12 - 1),
    ],
)
def test_the_fee_is_basis_points_rounded_half_up_plus_a_fixed_part(amount, bps, fixed, fee):
    with override_settings(SANDBOX_FEE_BPS=bps, SANDBOX_FEE_FIXED=fixed):
        assert capture_fee(amount) == fee


def test_the_default_fee_is_250_basis_points_without_a_fixed_part(settings):
    for name in ("SANDBOX_FEE_BPS", "SANDBOX_FEE_FIXED"):
        if hasattr(settings, name):
            delattr(settings, name)
    assert capture_fee(10_000) == 250


@given(
    amount=st.integers(1, 10**12 - 1),
    bps=st.integers(0, 10_000),
    fixed=st.integers(0, 10_000),
)
def test_the_fee_equals_the_exact_fraction_rounded_half_up(amount, bps, fixed):
    exact = Fraction(amount * bps, 10_000)
    with override_settings(SANDBOX_FEE_BPS=bps, SANDBOX_FEE_FIXED=fixed):
        fee = capture_fee(amount)
    assert fee == min(amount, floor(exact + Fraction(1, 2)) + fixed)
    assert 0 <= fee <= amount


@pytest.mark.parametrize(
    "wrong", [{"SANDBOX_FEE_BPS": -1}, {"SANDBOX_FEE_BPS": 10_001}, {"SANDBOX_FEE_FIXED": "5"}]
)
def test_a_misconfigured_fee_is_refused(wrong):
    with override_settings(**wrong), pytest.raises(ImproperlyConfigured):
        capture_fee(1_000)


def test_the_adapter_refuses_a_fee_that_makes_no_sense():
    base = {"id": "pi_1", "status": "captured", "amount": 100, "currency": "KRW"}
    assert _intent({**base, "amount_captured": 100, "fee": 3}).fee == 3
    assert _intent({**base, "amount_captured": 100}).fee == 0
    for fee in (-1, 101):
        with pytest.raises(GatewayUnavailable):
            _intent({**base, "amount_captured": 100, "fee": fee})


# --- the fee on capture, over HTTP ---------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_capture_books_the_providers_fee_once_and_the_vendor_bears_none(sandbox, settings):
    settings.SANDBOX_FEE_BPS = 250
    settings.SANDBOX_FEE_FIXED = 0
    # Given an authorised payment of ₩4,900 for a vendor, with 10 % commission
    vendor = VendorFactory().pk
    payment = sandbox.authorised(amount=4_900)
    Payment.objects.filter(pk=payment.pk).update(vendor_id=vendor, commission=490)
    # When it is captured
    payment = services.payment_capture(payment_id=payment.pk)
    # Then the sandbox charged 2.5 % of it, rounded half-up (122.5 → 123), and says so in its API
    intent = sandbox.intent(payment)
    assert (intent.status, intent.amount_captured, intent.fee) == ("captured", 4_900, 123)
    with sandbox.api() as api:
        assert api.get(f"intents/{intent.id}").json()["fee"] == 123
        listed = api.get("intents", params={"reference": intent.reference}).json()["data"]
    assert [(i["id"], i["fee"]) for i in listed] == [(intent.id, 123)]
    # And the platform booked that fee with the capture, once: the platform's cost
    assert (payment.status, payment.provider_fee) == (P.CAPTURED, 123)
    fee = _fee_journals(payment).get()
    assert fee.key == f"provider_fee:{payment.pk}"
    assert ledger.balance(ledger.PROVIDER_FEES) == 123
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 4_900 - 123
    assert ledger.vendor_payable(vendor) == 4_900 - 490
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 490
    # Whatever tells it again (a sync, the webhooks, a capture sent again) books nothing more
    services.payment_sync(payment_id=payment.pk)
    sandbox.deliver()
    services.payment_capture(payment_id=payment.pk)
    assert _fee_journals(payment).count() == 1
    assert ledger.balance(ledger.PROVIDER_FEES) == 123
    # When all of it is refunded, the provider keeps its fee, and so do the books
    services.payment_refund(payment_id=payment.pk, amount=4_900, reason="sold out")
    assert sandbox.intent(payment).fee == 123
    assert Payment.objects.get(pk=payment.pk).provider_fee == 123
    assert ledger.balance(ledger.PROVIDER_FEES) == 123
    assert ledger.balance(ledger.PROVIDER_CLEARING) == -123  # what the provider took from us
    assert ledger.vendor_payable(vendor) == 0
    assert ledger.balance(ledger.COMMISSION_REVENUE) == 0
    assert ledger.unbalanced_transactions() == []
    # And the reconciliation, with the provider, finds the books in step
    assert reconciliation.reconciliation_run(**_window())["found"] == 0


@over_http
def test_a_part_capture_is_charged_on_what_was_captured(sandbox, settings):
    settings.SANDBOX_FEE_BPS = 330
    settings.SANDBOX_FEE_FIXED = 100
    payment = sandbox.authorised(amount=10_000)
    payment = services.payment_capture(payment_id=payment.pk, amount=6_000)
    assert sandbox.intent(payment).fee == 198 + 100
    assert (payment.amount_captured, payment.provider_fee) == (6_000, 298)
    assert ledger.balance(ledger.PROVIDER_FEES) == 298


@over_http
def test_no_fee_books_nothing(sandbox, settings):
    settings.SANDBOX_FEE_BPS = 0
    payment = sandbox.authorised(amount=4_800)
    payment = services.payment_capture(payment_id=payment.pk)
    assert payment.provider_fee == 0 and not _fee_journals(payment).exists()
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 4_800


@pytest.mark.postgres
@over_http
def test_captures_a_webhook_and_a_sync_racing_book_the_fee_once(sandbox, settings):
    settings.SANDBOX_FEE_BPS = 250
    # Given a payment the provider captured (its capture webhook due), the platform not told yet
    payment = sandbox.authorised(amount=4_800)
    sandbox.deliver()  # the authorisation's webhook, out of the way
    with sandbox.api() as api:
        response = api.post(
            f"intents/{payment.provider_ref}/capture", json={}, headers={"Idempotency-Key": "k1"}
        )
    assert response.status_code == 200, response.text
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED
    # When two captures, a sync and the webhook delivery all apply it at the same moment, each
    # on its own connection (the webhook through the live server's)
    work = [
        lambda: services.payment_capture(payment_id=payment.pk),
        lambda: services.payment_capture(payment_id=payment.pk),
        lambda: services.payment_sync(payment_id=payment.pk),
        lambda: sandbox.deliver(),
    ]
    results = in_threads(len(work), lambda i: work[i]())
    assert not [r for r in results if isinstance(r, Exception)], results
    # Then the capture and its fee were booked once
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured, payment.provider_fee) == (
        P.CAPTURED,
        4_800,
        120,
    )
    assert _fee_journals(payment).count() == 1
    assert JournalTransaction.objects.filter(payment=payment, kind="capture").count() == 1
    assert ledger.balance(ledger.PROVIDER_FEES) == 120
    assert ledger.balance(ledger.PROVIDER_CLEARING) == 4_800 - 120


# --- the reconciliation --------------------------------------------------------------------------


@pytest.mark.postgres
@over_http
def test_a_fee_the_provider_and_the_ledger_disagree_on_is_reported_not_fixed(sandbox, settings):
    settings.SANDBOX_FEE_BPS = 250
    # Given two captured payments, one of them before the provider charged anything
    charged = services.payment_capture(payment_id=sandbox.authorised(order_id=1).pk)
    settings.SANDBOX_FEE_BPS = 0
    free = services.payment_capture(payment_id=sandbox.authorised(order_id=2).pk)
    assert list(reconciliation.provider_findings(**_window())) == []
    journals = JournalTransaction.objects.count()
    # When the provider's records say another fee for one, and a fee for the other after all
    SandboxIntent.objects.filter(pk=charged.provider_ref).update(fee=150)
    SandboxIntent.objects.filter(pk=free.provider_ref).update(fee=40)
    result = reconciliation.reconciliation_run(**_window())
    # Then each is one open discrepancy, with both figures
    assert result[K.PROVIDER_FEE_MISMATCH] == 2, result
    found = {
        d.object_ref: (d.expected, d.actual, d.detail)
        for d in Discrepancy.objects.filter(kind=K.PROVIDER_FEE_MISMATCH, status="open")
    }
    assert found == {
        f"payment:{charged.pk}": (
            "provider fee 150",
            "ledger 120",
            f"intent {charged.provider_ref}",
        ),
        f"payment:{free.pk}": ("provider fee 40", "ledger 0", f"intent {free.provider_ref}"),
    }
    # And nothing was booked or changed to make them agree
    assert JournalTransaction.objects.count() == journals
    assert ledger.balance(ledger.PROVIDER_FEES) == 120
    assert Payment.objects.get(pk=free.pk).provider_fee == 0
    # Running again records nothing new
    assert reconciliation.reconciliation_run(**_window())["new"] == 0


@pytest.mark.django_db
def test_a_payments_fee_that_differs_from_its_journal_is_reported():
    payment = captured(vendor_id=None, amount=10_000, provider_fee=250)
    other = captured(vendor_id=None, amount=10_000, provider_fee=0)
    assert list(reconciliation.ledger_findings()) == []
    Payment.objects.filter(pk=payment.pk).update(provider_fee=200)
    Payment.objects.filter(pk=other.pk).update(provider_fee=30)
    findings = {(f.object_ref, f.expected, f.actual) for f in reconciliation.ledger_findings()}
    assert findings == {
        (f"payment:{payment.pk}", "payment's fee 200", "ledger 250"),
        (f"payment:{other.pk}", "payment's fee 30", "ledger 0"),
    }


# --- the refund a caller reserves in its own transaction -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_reserving_a_refund_needs_the_callers_transaction():
    payment = captured(vendor_id=None, amount=10_000)
    with pytest.raises(RuntimeError):
        services.payment_refund_reserve(payment_id=payment.pk, amount=100, reason="x")


@over_http
def test_a_reserved_refund_is_sent_after_commit_and_never_after_a_rollback(sandbox):
    payment = services.payment_capture(payment_id=sandbox.authorised(amount=4_800).pk)
    # Given a refund reserved in a transaction that then fails
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        services.payment_refund_reserve(payment_id=payment.pk, amount=1_000, reason="x")
        1 / 0  # noqa: B018
    # Then nothing was kept or sent
    assert not Refund.objects.exists()
    assert sandbox.intent(payment).amount_refunded == 0
    # When one is reserved in a transaction that commits
    with transaction.atomic():
        refund = services.payment_refund_reserve(
            payment_id=payment.pk, amount=1_000, reason="one missing"
        )
        # (not sent while the transaction is open)
        assert refund.status == Refund.Status.PENDING
        assert sandbox.intent(payment).amount_refunded == 0
    # Then it was sent once the transaction committed, and booked
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert sandbox.intent(payment).amount_refunded == 1_000
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 1_000
    # Bad input is refused at once, inside the transaction
    with transaction.atomic(), pytest.raises(PaymentError) as bad:
        services.payment_refund_reserve(payment_id=payment.pk, amount=10_000, reason="too much")
    assert "amount" in bad.value.message_dict
