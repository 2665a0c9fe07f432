"""Disputes: a customer reports a problem with a paid order; staff resolve it (perhaps refunding
part of the payment) or reject it. While a dispute is open, the settlement listing its order is
held: its payout is not sent (payments.settlement, payments.payouts).

The two services below are what pages, APIs and the admin call:

    dispute_open(order_id=…, opened_by=user, reason="…")            -> Dispute (OPEN)
    dispute_resolve(dispute_id=…, actor=staff, note="…",
                    refund_amount=None | int, reject=False)         -> Dispute (RESOLVED / REJECTED)

payments does not know orders, so dispute_open does not check who may speak for the order: the
caller does (the orders app knows the order's customer; staff may open one for a customer). Both
raise DomainErrors with a message for people (PaymentError with a field dict for bad input,
InvalidTransition when the state does not allow it, NotAllowed for non-staff), which views and
APIs answer with a 4xx.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from o2o.effects import effect_add
from o2o.errors import NotAllowed

from . import services
from .errors import InvalidTransition, PaymentError
from .models import Dispute, Payment, Refund

log = logging.getLogger(__name__)
MAX_TEXT = 1000


def _text(value: str | None, *, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise PaymentError({field: message})
    if len(value) > MAX_TEXT:
        raise PaymentError({field: _("Keep it under %(n)d characters.") % {"n": MAX_TEXT}})
    return value


def dispute_window_ends(payment: Payment) -> datetime | None:
    """Until when a problem with this payment's order can be reported (None: not captured)."""
    if payment.captured_at is None:
        return None
    return payment.captured_at + timedelta(days=settings.DISPUTE_WINDOW_DAYS)


def dispute_open(*, order_id: int, opened_by, reason: str, at: datetime | None = None) -> Dispute:
    """Report a problem with a paid order, within DISPUTE_WINDOW_DAYS of its capture; one open
    dispute per order. `opened_by` is the user speaking (the caller has checked they may).
    Holds the settlement of the order until the dispute is closed."""
    reason = _text(reason, field="reason", message=_("Tell us what went wrong."))
    payment = Payment.objects.filter(order_id=order_id).first()
    if payment is None:
        raise PaymentError(_("This order has no payment to dispute."), code="not_found")
    ends = dispute_window_ends(payment)
    if ends is None or payment.status not in services.CAPTURED_STATES:
        raise InvalidTransition(_("Only a paid order can be disputed."), code="not_captured")
    if (at or timezone.now()) > ends:
        raise PaymentError(
            _("Problems can be reported within %(days)d days of payment.")
            % {"days": settings.DISPUTE_WINDOW_DAYS},
            code="window_closed",
        )
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                order_id=order_id,
                vendor_id=payment.vendor_id,
                payment=payment,
                reason=reason,
                opened_by=opened_by,
                opened_at=at or timezone.now(),
            )
    except IntegrityError as exc:  # dispute_one_open_per_order
        raise InvalidTransition(
            _("A problem with this order is already being looked into."), code="already_open"
        ) from exc
    log.info("dispute %s opened on order %s", dispute.pk, order_id)
    return dispute


def dispute_resolve(
    *,
    dispute_id: int,
    actor,
    note: str,
    refund_amount: int | None = None,
    reject: bool = False,
) -> Dispute:
    """Close an OPEN dispute, by staff: RESOLVED (optionally giving `refund_amount` back to the
    customer, sent to the provider with its own idempotency key) or REJECTED (no refund). The
    refund is reserved in the same transaction as the resolution and sent once it commits
    (payments.services.payment_refund_reserve); a provider that does not answer leaves it pending
    for payment_sync to send again, a provider that refuses it marks it failed
    (dispute.refund.status tells). Held settlements are released after commit. Call it outside a
    database transaction, so that the refund is sent (over HTTP) before it returns."""
    if actor is None or not getattr(actor, "is_staff", False):
        raise NotAllowed(_("Only staff can resolve a dispute."), code="forbidden")
    note = _text(note, field="note", message=_("Say how the dispute was settled."))
    if refund_amount is not None:
        if reject:
            raise PaymentError({"refund_amount": _("A rejected dispute refunds nothing.")})
        if (
            isinstance(refund_amount, bool)
            or not isinstance(refund_amount, int)
            or refund_amount <= 0
        ):
            raise PaymentError(
                {"refund_amount": _("Enter a whole amount above zero, in minor units.")}
            )
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().get(pk=dispute_id)
        if dispute.status != Dispute.Status.OPEN:
            raise InvalidTransition(_("This dispute is already closed."), code="closed")
        refund = None
        if refund_amount:
            # Sent to the provider after this transaction commits.
            refund = services.payment_refund_reserve(
                payment_id=dispute.payment_id,
                amount=refund_amount,
                reason=f"dispute {dispute.pk}: {note}"[:200],
                kind=Refund.Kind.DISPUTE,
            )
        Dispute.objects.filter(pk=dispute.pk, status=Dispute.Status.OPEN).update(
            status=Dispute.Status.REJECTED if reject else Dispute.Status.RESOLVED,
            resolved_by=actor,
            resolution_note=note,
            resolved_at=timezone.now(),
            refund=refund,
        )
        # Held settlements are released (and their payouts sent) by a durable effect.
        effect_add(kind="settlements.release", key=f"dispute:{dispute.pk}:release")
    log.info("dispute %s closed by %s", dispute.pk, actor.pk)
    return Dispute.objects.select_related("refund").get(pk=dispute.pk)
