"""Money given back after the capture: units not supplied (short lines), a staff line refund,
and the customer's problem report."""

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from o2o.errors import NotAllowed
from payments.commission import commission_of
from payments.errors import PaymentUnavailable  # re-exported for views and APIs

from ..models import Order, OrderEvent, OrderLine, Status
from .staff import _check_staff
from .transitions import InvalidTransition

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from o2o.accounts.models import User
    from payments.models import Dispute, Refund

log = logging.getLogger(__name__)
Role = OrderEvent.Role


def short_commission(line: OrderLine) -> int:
    """The commission on a line's units not supplied: all of the line's when none was supplied,
    else the commission on their amount at the line's rate, never more than the line's."""
    if line.short_quantity >= line.quantity:
        return line.commission
    return min(commission_of(line.short_amount, line.commission_bps), line.commission)


# A short line's refund the provider refused is tried again by orders_short_refunds_retry, at
# most this many times in all; then it waits for staff (the FAILED refunds are in the admin).
SHORT_REFUND_ATTEMPTS = 5
SHORT_REFUND_RETRY_DAYS = 30


def _short_refunds(line_ref: OuterRef) -> "QuerySet[Refund]":
    """The refunds of a short line (`line_ref`: an OuterRef to the line's id)."""
    from payments.models import Refund

    return Refund.objects.filter(order_line_id=line_ref, kind=Refund.Kind.SHORT)


def orders_short_refund_due(*, limit: int = 100) -> list[int]:
    """Completed orders (of the last SHORT_REFUND_RETRY_DAYS) with a line not supplied whose
    refund was never made: refused by the provider fewer than SHORT_REFUND_ATTEMPTS times, or
    never tried, on a payment that can still be refunded."""
    from payments.models import Payment, Refund
    from payments.services import REFUNDABLE_STATES

    cutoff = timezone.now() - timedelta(days=SHORT_REFUND_RETRY_DAYS)
    failed = (
        _short_refunds(OuterRef("pk"))
        .filter(status=Refund.Status.FAILED)
        .order_by()
        .values("order_line_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    lines = (
        OrderLine.objects.filter(
            short_quantity__gt=0,
            order__status=Status.COMPLETED,
            order__completed_at__gte=cutoff,
        )
        .filter(
            Exists(
                Payment.objects.filter(
                    pk=OuterRef("order__payment_id"), status__in=REFUNDABLE_STATES
                )
            )
        )
        .exclude(Exists(_short_refunds(OuterRef("pk")).exclude(status=Refund.Status.FAILED)))
        .annotate(failed=Coalesce(Subquery(failed), 0))
        .filter(failed__lt=SHORT_REFUND_ATTEMPTS)
        .order_by("order_id")
        .values_list("order_id", flat=True)
        .distinct()
    )
    return list(lines[:limit])


def order_short_lines_refund(*, order_id: int, raise_unavailable: bool = False) -> "list[Refund]":
    """After the capture: give back each line's units not supplied, with exactly their commission,
    once per line (the refund is linked to its line, kind SHORT, and the database allows one live
    refund per line and kind). Call it outside a transaction (HTTP). A provider that does not
    answer leaves the refund PENDING (payments resends it); with `raise_unavailable` the caller
    (the order.short_refunds effect) hears it and tries again too."""
    from payments.errors import PaymentError
    from payments.models import Payment, Refund
    from payments.services import REFUNDABLE_STATES, payment_refund

    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.payment_id is None:
        return []
    short = [line for line in order.lines.all() if line.short_quantity]
    payment = Payment.objects.filter(pk=order.payment_id).first()
    # Not captured yet (the capture effect completes the order first), or refunded in full.
    if not short or payment is None or payment.status not in REFUNDABLE_STATES:
        return []
    refunds: list[Refund] = []
    unanswered = False
    for line in short:
        tries = Refund.objects.filter(order_line=line, kind=Refund.Kind.SHORT)
        if tries.exclude(status=Refund.Status.FAILED).exists():
            continue
        attempts = tries.count()
        if attempts >= SHORT_REFUND_ATTEMPTS:
            log.error(
                "order %s line %s: short refund refused %s times; left to staff",
                order_id,
                line.pk,
                attempts,
            )
            continue
        try:
            refunds.append(
                payment_refund(
                    payment_id=payment.pk,
                    amount=line.short_amount,
                    reason=(line.short_reason or "not supplied")[:200],
                    commission=short_commission(line),
                    kind=Refund.Kind.SHORT,
                    order_line_id=line.pk,
                )
            )
        except PaymentUnavailable:
            # Recorded PENDING: it counts as done here, and payments' resend sends it again.
            log.warning("order %s line %s: short refund pending at the provider", order_id, line.pk)
            unanswered = True
        except PaymentError as exc:
            # Refused (FAILED: orders_short_refunds_retry tries again), more than is left (staff
            # refunded the payment in full meanwhile), or a concurrent run made it first.
            log.error("order %s line %s: short refund not made: %s", order_id, line.pk, exc)
    if unanswered and raise_unavailable:
        raise PaymentUnavailable("a short refund is pending at the provider")
    return refunds


# --- problems and refunds after the handover ----------------------------------------------------

# Statuses after which the customer may report a problem (the payment must be captured too).
PROBLEM_STATUSES = (Status.HANDED_OVER, Status.COMPLETED)
PROBLEM_REASON_MAX = 500


def order_problem_report(*, order_id: int, customer: CustomerProfile, reason: str) -> "Dispute":
    """The order's own customer reports a problem with it (a payments Dispute is opened, which
    holds the vendor's settlement). payments.disputes.dispute_open checks the payment is captured,
    the window (DISPUTE_WINDOW_DAYS) and that no dispute is open yet; this checks who speaks.
    Someone else's order raises NotAllowed (answer it with a 404)."""
    from payments.disputes import dispute_open

    if customer is None or not Order.objects.filter(pk=order_id, customer=customer).exists():
        raise NotAllowed(_("No such order."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Tell us what went wrong.")})
    if len(reason) > PROBLEM_REASON_MAX:
        raise ValidationError(
            {"reason": _("Keep it under %(n)d characters.") % {"n": PROBLEM_REASON_MAX}}
        )
    if not Order.objects.filter(pk=order_id, status__in=PROBLEM_STATUSES).exists():
        raise InvalidTransition(_("A problem can be reported once the order was handed over."))
    return dispute_open(order_id=order_id, opened_by=customer.user, reason=reason)


def order_line_refund(*, order_id: int, line_id: int, actor: "User", reason: str) -> "Refund":
    """Staff give back one line of a captured order: its line_total less any units the vendor did
    not supply (refunded on their own), with exactly the rest of its commission (payments' refund
    takes the commission back from the platform's revenue, the rest from the vendor). A line is
    refunded once: its refund is linked to it (kind LINE), and the database keeps one live (not
    failed) refund per line and kind, so two simultaneous clicks can't both refund it. Call it
    outside a transaction (the refund goes over HTTP)."""
    from payments.models import Payment, Refund
    from payments.services import CAPTURED_STATES, payment_refund

    _check_staff(actor, "orders.change_orderline")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the line is refunded.")})
    line = OrderLine.objects.select_related("order").filter(pk=line_id, order_id=order_id).first()
    if line is None:
        raise ValidationError({"line": _("This order has no such line.")})
    order = line.order
    payment = Payment.objects.filter(pk=order.payment_id).first() if order.payment_id else None
    if payment is None or payment.status not in CAPTURED_STATES:
        raise InvalidTransition(_("Only a line of a captured order can be refunded."))
    # Units the vendor did not supply are refunded on their own (order_short_lines_refund).
    amount = line.line_total - line.short_amount
    if amount <= 0 or (
        Refund.objects.filter(order_line=line, kind=Refund.Kind.LINE)
        .exclude(status=Refund.Status.FAILED)
        .exists()
    ):
        raise InvalidTransition(_("This line was refunded already."))
    # A provider that does not answer leaves the refund PENDING (PaymentUnavailable goes up): the
    # line counts as refunded, and payment_sync sends it again. A concurrent click is refused by
    # the one-live-refund-per-line rule (InvalidTransition).
    refund = payment_refund(
        payment_id=payment.pk,
        amount=amount,
        reason=reason[:200],
        commission=line.commission - (short_commission(line) if line.short_quantity else 0),
        kind=Refund.Kind.LINE,
        order_line_id=line.pk,
    )
    log.info(
        "line %s of order %s refunded by %s (refund %s)", line.pk, order.pk, actor.pk, refund.pk
    )
    return refund
