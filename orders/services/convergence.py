"""Convergence: find every order and payment that disagree and drive each to the right state through
the same services (beat runs orders_converge every minute). Effects normally keep them in step;
this catches what an effect could not do (a refusal that gave up, a row written before this code
existed, a payment whose order never heard of it). What it cannot fix becomes a discrepancy for
staff. Pairs that changed within the grace window (CONVERGE_GRACE_SECONDS), or with an effect
still pending, are left alone: they are in flight, not stuck.

    ended without a handover, money still held   -> void / refund (payment_return_all)
    handed over, money only authorised           -> capture, complete (the capture effect's work)
    handed over, money captured                  -> complete
    handed over, authorisation gone              -> a discrepancy for staff
    waiting for payment, payment authorised      -> PLACED;  payment failed -> FAILED
    payment pending, never sent to the provider  -> FAILED once its window is over
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from ..models import Order, Status
from .transitions import RELEASES_STOCK

if TYPE_CHECKING:
    from o2o.models import Effect

log = logging.getLogger(__name__)

# How far back the minute-by-minute sweep looks (the nightly check looks at everything).
SWEEP_DAYS = 14


@dataclass(frozen=True)
class Disagreement:
    order_id: int
    payment_id: int
    problem: str
    order_status: str
    payment_status: str


def _problem(order_status: str, payment_status: str) -> str | None:
    from payments.models import Payment

    P = Payment.Status
    if order_status in RELEASES_STOCK and payment_status in (
        P.AUTHORISED,
        P.CAPTURED,
        P.PARTIALLY_REFUNDED,
    ):
        return "ended_money_held"
    if order_status == Status.HANDED_OVER and payment_status == P.AUTHORISED:
        return "handed_over_not_captured"
    if order_status == Status.HANDED_OVER and payment_status in (P.CAPTURED, P.PARTIALLY_REFUNDED):
        return "captured_not_completed"
    if order_status == Status.HANDED_OVER and payment_status in (P.PENDING, P.VOIDED, P.FAILED):
        return "handed_over_unpaid"  # the goods are gone and no money can be taken: staff
    if order_status == Status.PENDING_PAYMENT and payment_status == P.AUTHORISED:
        return "paid_order_waiting"
    if order_status == Status.PENDING_PAYMENT and payment_status in (P.FAILED, P.VOIDED):
        return "failed_order_waiting"
    if order_status == Status.COMPLETED and payment_status not in (
        P.CAPTURED,
        P.PARTIALLY_REFUNDED,
        P.REFUNDED,
    ):
        return "completed_not_captured"
    if (
        order_status in (Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY)
        and payment_status != P.AUTHORISED
    ):
        return "live_order_not_authorised"
    return None


def _pending_effects(order_id: int, payment_id: int) -> QuerySet[Effect]:
    from o2o.models import Effect

    return Effect.objects.filter(
        Q(key__startswith=f"order:{order_id}:") | Q(key__startswith=f"payment:{payment_id}:"),
        status=Effect.Status.PENDING,
    )


def orders_payments_disagreeing(
    *,
    grace: timedelta | None = None,
    since: datetime | None = None,
    limit: int | None = 500,
    now: datetime | None = None,
) -> list[Disagreement]:
    """Order/payment pairs that disagree and have been still for longer than `grace` (linked by
    the payment's order id, so a payment whose order never stored it is found too); with
    `since`, only orders changed since then."""
    from payments.models import Payment

    now = now or timezone.now()
    grace = timedelta(seconds=settings.CONVERGE_GRACE_SECONDS) if grace is None else grace
    payments = Payment.objects.filter(order_id=OuterRef("pk"))
    rows = (
        Order.objects.filter(updated_at__lt=now - grace)
        .annotate(
            pay_id=Subquery(payments.values("pk")[:1]),
            pay_status=Subquery(payments.values("status")[:1]),
            pay_updated=Subquery(payments.values("updated_at")[:1]),
        )
        .filter(pay_id__isnull=False, pay_updated__lt=now - grace)
    )
    if since is not None:
        rows = rows.filter(updated_at__gte=since)
    # Only the combinations that can disagree (most orders are COMPLETED with a capture).
    rows = rows.filter(
        Q(
            status__in=RELEASES_STOCK,
            pay_status__in=("authorised", "captured", "partially_refunded"),
        )
        | Q(status=Status.HANDED_OVER)
        | Q(status=Status.PENDING_PAYMENT, pay_status__in=("authorised", "failed", "voided"))
        | Q(status=Status.COMPLETED, pay_status__in=("pending", "authorised", "failed", "voided"))
        | Q(
            status__in=(Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY),
            pay_status__in=("pending", "failed", "voided", "captured", "refunded"),
        )
    ).order_by("updated_at", "pk")
    found: list[Disagreement] = []
    for order_id, status, pay_id, pay_status in rows.values_list(
        "pk", "status", "pay_id", "pay_status"
    ).iterator(chunk_size=500):
        problem = _problem(status, pay_status)
        if problem is None or _pending_effects(order_id, pay_id).exists():
            continue
        found.append(Disagreement(order_id, pay_id, problem, status, pay_status))
        if limit is not None and len(found) >= limit:
            break
    return found


def _fix(d: Disagreement) -> None:
    from payments import services as payments

    from ..effects import order_capture
    from .payment import order_payment_settled
    from .transitions import order_complete

    Order.objects.filter(pk=d.order_id, payment_id__isnull=True).update(payment_id=d.payment_id)
    if d.problem == "ended_money_held":
        reason = Order.objects.values_list("reason", flat=True).get(pk=d.order_id)
        payments.payment_return_all(payment_id=d.payment_id, reason=reason or d.order_status)
    elif d.problem == "handed_over_not_captured":
        order_capture({"order_id": d.order_id})
    elif d.problem == "captured_not_completed":
        order_complete(order_id=d.order_id)
    elif d.problem == "paid_order_waiting":
        order_payment_settled(order_id=d.order_id, payment_status="authorised")
    elif d.problem == "failed_order_waiting":
        order_payment_settled(order_id=d.order_id, payment_status="failed")
    else:
        # Completed without a capture, or a live order without money: not for a machine to
        # decide (the provider is asked first: a stale status of ours is brought up to date).
        payments.payment_sync(payment_id=d.payment_id)
        raise RuntimeError(f"{d.problem}: needs staff")


def orders_converge(*, limit: int = 200, now: datetime | None = None) -> dict[str, int]:
    """Drive each disagreeing pair of the last SWEEP_DAYS to the right state, through the same
    services (each safe to run twice); record what it could not fix as a discrepancy."""
    from payments.models import Discrepancy, Payment
    from payments.reconciliation import Finding, discrepancy_record
    from payments.services import payments_abandoned_fail

    now = now or timezone.now()
    counts = {"found": 0, "fixed": 0, "failed": 0, "abandoned": 0}
    counts["abandoned"] = payments_abandoned_fail(now=now)
    for d in orders_payments_disagreeing(
        since=now - timedelta(days=SWEEP_DAYS), limit=limit, now=now
    ):
        counts["found"] += 1
        try:
            _fix(d)
        except Exception as exc:  # noqa: BLE001 - one pair's trouble must not stop the sweep
            counts["failed"] += 1
            log.warning(
                "order %s / payment %s (%s) not fixed: %s", d.order_id, d.payment_id, d.problem, exc
            )
            pay_status = Payment.objects.values_list("status", flat=True).get(pk=d.payment_id)
            order_status = Order.objects.values_list("status", flat=True).get(pk=d.order_id)
            if _problem(order_status, pay_status) is not None:
                discrepancy_record(
                    Finding(
                        Discrepancy.Kind.ORDER_PAYMENT_MISMATCH,
                        f"order:{d.order_id}",
                        f"{d.problem} fixed",
                        f"order {order_status}, payment {pay_status}"[:100],
                        f"{type(exc).__name__}: {exc}"[:300],
                    )
                )
        else:
            counts["fixed"] += 1
    return counts


def orders_reconcile(*, now: datetime | None = None) -> int:
    """Nightly, beside the payments reconciliation: every order/payment pair of all time that
    still disagrees past the grace window (the sweep looks at SWEEP_DAYS only and fixes what it
    can) becomes a discrepancy for staff, without changing anything. Returns how many."""
    from payments.models import Discrepancy
    from payments.reconciliation import Finding, discrepancy_record

    found = orders_payments_disagreeing(limit=None, now=now)
    for d in found:
        discrepancy_record(
            Finding(
                Discrepancy.Kind.ORDER_PAYMENT_MISMATCH,
                f"order:{d.order_id}",
                "order and payment agree",
                f"order {d.order_status}, payment {d.payment_status}"[:100],
                d.problem,
            )
        )
    return len(found)
