"""Payments' durable effects (o2o.effects): a reserved refund sent after its commit, a payout sent
after staff retried it. Each is safe to run again: the provider sees the refund's or the payout's
own idempotency key (refund-<id>, payout-<id>) and every booking is a guarded UPDATE."""

from o2o.effects import GiveUp, effect_handler

from .errors import PaymentError, PaymentRefused
from .models import Refund

MONEY = {"queue": "money", "max_attempts": 40, "backoff_cap": 300.0}


@effect_handler("refund.send", **MONEY)
def refund_send(payload: dict) -> None:
    """Tried again while the provider does not answer; a refusal leaves the refund FAILED (staff
    see it) and stops."""
    from .services import _refund_send

    refund = Refund.objects.select_related("payment").get(pk=payload["refund_id"])
    if refund.status != Refund.Status.PENDING or refund.provider_ref:
        return  # sent already (payment_sync books it once the provider made it)
    try:
        _refund_send(refund.payment, refund)
    except PaymentRefused as exc:
        raise GiveUp(f"refund {refund.pk} refused: {exc.messages[0]}") from exc


@effect_handler("payout.send", **MONEY)
def payout_send(payload: dict) -> None:
    from . import payouts
    from .errors import PaymentUnavailable

    try:
        payouts.payout_send(payout_id=payload["payout_id"])
    except PaymentUnavailable:
        raise
    except PaymentError as exc:  # e.g. no payout account: staff must act
        raise GiveUp(f"payout not sent: {exc.messages[0]}") from exc


@effect_handler("settlements.release", queue="bulk", max_attempts=20, backoff_cap=600.0)
def settlements_release(payload: dict) -> None:
    """A dispute closed: release the settlements it held, and send their payouts (each payout's
    own effect)."""
    from django.db import transaction

    from . import payouts, settlement
    from .tasks import payout_send_later

    settlement.settlements_release()
    with transaction.atomic():
        for payout_id in payouts.payouts_due():
            payout_send_later(payout_id)
