"""Money movements for the settlement, payout and reconciliation tests, driven at the ledger level
as payments.services does it (the payment rows and ledger_record in one transaction), without the
provider: fast enough for hypothesis and for races."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from payments import ledger
from payments.models import Payment, Refund

from . import factories


def captured(
    *,
    vendor_id: int,
    amount: int = 10_000,
    commission: int = 1_000,
    platform_fee: int = 0,
    provider_fee: int = 0,
    price_advantage: int = 0,
) -> Payment:
    """A payment captured in full, its capture, split and provider fee booked (as
    payments.services does it: in one transaction, the fee once per payment)."""
    payment = factories.PaymentFactory(
        amount=amount,
        commission=commission,
        platform_fee=platform_fee,
        price_advantage=price_advantage,
        vendor_id=vendor_id,
        status=Payment.Status.AUTHORISED,
    )
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.CAPTURED,
            amount_captured=amount,
            provider_fee=provider_fee,
            captured_at=timezone.now(),
        )
        ledger.ledger_record(payment_id=payment.pk, kind="capture", amount=amount, currency="KRW")
        if provider_fee:
            ledger.provider_fee_record(
                payment_id=payment.pk, amount=provider_fee, key=str(payment.pk)
            )
    payment.refresh_from_db()
    return payment


def refunded(payment_id: int, amount: int) -> Refund:
    """A refund of `amount` that succeeded, booked (amounts and status as services do it)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        assert amount <= payment.refundable
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason="test",
            status=Refund.Status.SUCCEEDED,
            succeeded_at=timezone.now(),
        )
        full = payment.amount_refunded + amount == payment.amount_captured
        Payment.objects.filter(pk=payment_id).update(
            amount_refunded=F("amount_refunded") + amount,
            status=Payment.Status.REFUNDED if full else Payment.Status.PARTIALLY_REFUNDED,
        )
        ledger.ledger_record(
            payment_id=payment_id,
            kind="refund",
            amount=amount,
            currency="KRW",
            refund_id=refund.pk,
        )
    return refund


def days_later(n: int, *, at: datetime | None = None) -> datetime:
    return (at or timezone.now()) + timedelta(days=n)
