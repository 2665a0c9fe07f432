"""Celery wrappers over the money services: thin, take ids, safe to run twice (acks_late), and
retried with backoff when the provider does not answer (PaymentUnavailable).

Beat (settings.CELERY_BEAT_SCHEDULE) runs settlements_run, payouts_sync and reconciliation_run;
the others are queued by them, by the admin and by dispute resolution.
"""

import logging
from datetime import timedelta
from typing import Any, Literal, TypedDict

from celery import Task, shared_task
from django.utils import timezone

from . import payouts, reconciliation, services, settlement
from .errors import PaymentError, PaymentUnavailable
from .models import Refund

log = logging.getLogger(__name__)


class _RetryOptions(TypedDict):
    bind: Literal[True]
    acks_late: bool
    ignore_result: bool
    max_retries: int
    retry_backoff: bool
    retry_backoff_max: int
    autoretry_for: tuple[type[BaseException], ...]


RETRYING: _RetryOptions = {
    "bind": True,
    "acks_late": True,
    "ignore_result": True,
    "max_retries": 8,
    "retry_backoff": True,
    "retry_backoff_max": 3600,
    "autoretry_for": (PaymentUnavailable,),
}


def payout_send_later(payout_id: int) -> None:
    """Send a payout once the current transaction commits: a durable effect written in it."""
    from o2o.effects import effect_add

    effect_add(kind="payout.send", key=f"payout:{payout_id}:send", payload={"payout_id": payout_id})


@shared_task(acks_late=True, ignore_result=True)
def settlements_run() -> dict[str, Any]:
    """Settle the last ended period of every vendor, release held settlements, and queue the
    sending of every payout due (each its own task, so one slow bank does not hold the rest)."""
    result = settlement.settlements_run()
    for payout_id in payouts.payouts_due():
        payout_send.delay(payout_id)
    return result


@shared_task(acks_late=True, ignore_result=True)
def settlements_release() -> int:
    """After a dispute closed: release the settlements it held, and send their payouts."""
    released = settlement.settlements_release()
    for payout_id in payouts.payouts_due():
        payout_send.delay(payout_id)
    return released


@shared_task(**RETRYING)
def payout_send(self: "Task[Any, Any]", payout_id: int) -> str:
    """Send one payout. Killed half-way and run again it pays once: the provider sees the same
    idempotency key (payout-<id>) and the SENT transition is guarded."""
    try:
        return payouts.payout_send(payout_id=payout_id).status
    except PaymentUnavailable:
        raise
    except PaymentError as exc:  # e.g. no payout account: staff must act, retrying won't help
        log.warning("payout %s not sent: %s", payout_id, exc.messages[0])
        return "not_sent"


@shared_task(**RETRYING)
def payouts_sync(self: "Task[Any, Any]") -> int:
    """Fetch the final state of every payout in transit; returns how many were asked about."""
    ids = payouts.payouts_in_transit()
    unanswered = 0
    for payout_id in ids:
        try:
            payouts.payout_sync(payout_id=payout_id)
        except PaymentUnavailable:
            unanswered += 1
        except PaymentError as exc:
            log.warning("payout %s not synced: %s", payout_id, exc.messages[0])
    if ids and unanswered == len(ids):
        raise PaymentUnavailable("the provider answered about no payout")
    return len(ids)


@shared_task(**RETRYING)
def reconciliation_run(self: "Task[Any, Any]") -> dict[str, Any]:
    """Nightly: the ledger against itself, the payments and the provider (the last ended day)."""
    return reconciliation.reconciliation_run()


@shared_task(**RETRYING)
def refunds_resend(self: "Task[Any, Any]", older_than_seconds: int = 60) -> int:
    """Send again refunds left PENDING by a provider that did not answer (payment_sync does it)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    payment_ids = list(
        Refund.objects.filter(status=Refund.Status.PENDING, created_at__lt=cutoff)
        .values_list("payment_id", flat=True)
        .distinct()[:100]
    )
    for payment_id in payment_ids:
        try:
            services.payment_sync(payment_id=payment_id)
        except PaymentError as exc:
            log.warning("payment %s: pending refunds not sent: %s", payment_id, exc.messages[0])
    return len(payment_ids)
