"""A commitment's cancellation fee, collected (issue 15, item 4).

subscription_cancel records the fee (selectors.cancellation_fee_quote) and, in the same
transaction, `fee_collect_start` marks it CHARGING and writes the durable effect
`subscription.fee_charge` (key subscription:<id>:fee:<try>). The effect runs
`cancellation_fee_charge`: one off-session charge of the subscription's saved card for the fee,
captured at once (a fee has nothing to hand over), on a Payment of its own (purpose
cancellation_fee, one per subscription: payments.vault). The capture books the fee in the ledger
as the platform's revenue (payments.ledger: cancellation_fee_revenue; the platform funded the
commitment's price advantage the fee makes up for).

Outcomes: PAID (an e-mail receipt, the partner event subscription.fee_charged); a soft decline is
tried again on settings.OFF_SESSION_RETRY_HOURS (the next try's row written by this one); a hard
decline, a card that needs its holder, the last try, or no usable card: UNPAID with the reason,
the customer told how to settle it, staff see it in the admin (and may waive it). A fee waived by
staff is never charged, whatever races with it: the charge runs with the subscription row locked
and checks CHARGING first. The provider not answering raises (the relay tries again, same key).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from o2o.effects import effect_add, event_emit
from o2o.errors import DomainError
from payments.errors import PaymentRefused
from payments.gateways.base import DeclineKind
from payments.models import CardCharge, Payment, SavedCard
from payments.vault import card_charge_get, charge_retry_at, payment_charge_off_session

from .models import FeeStatus, Subscription

FEE_CHARGE = "subscription.fee_charge"
NOTIFY = "subscription.notify"
PAID_STATES = (
    Payment.Status.CAPTURED,
    Payment.Status.PARTIALLY_REFUNDED,
    Payment.Status.REFUNDED,
)


class FeeNotCharged(Exception):
    """No charge may be made (waived, paid already): the effect gives up with the reason."""


def fee_collect_start(*, subscription_id: int) -> bool:
    """In the cancel's transaction: a cancelled subscription with a fee starts being charged."""
    started = Subscription.objects.filter(
        pk=subscription_id,
        status=Subscription.Status.CANCELLED,
        cancellation_fee__gt=0,
        fee_status="",
    ).update(fee_status=FeeStatus.CHARGING, fee_note="")
    if started:
        _schedule(subscription_id, attempt=1)
    return bool(started)


def _schedule(subscription_id: int, *, attempt: int, run_at=None) -> None:
    effect_add(
        kind=FEE_CHARGE,
        key=f"subscription:{subscription_id}:fee:{attempt}",
        payload={"subscription_id": subscription_id, "attempt": attempt},
        run_at=run_at,
    )


def _key(subscription_id: int, attempt: int) -> str:
    return f"subscription-{subscription_id}-fee-try-{attempt}"


def _end(subscription: Subscription, status: str, note: str, *, email: str) -> None:
    Subscription.objects.filter(pk=subscription.pk, fee_status=FeeStatus.CHARGING).update(
        fee_status=status, fee_note=note[:200]
    )
    effect_add(
        kind=NOTIFY,
        key=f"subscription:{subscription.pk}:fee_{email}",
        payload={"subscription_id": subscription.pk, "what": f"fee_{email}"},
    )


def cancellation_fee_charge(*, subscription_id: int, attempt: int) -> str:
    """Try `attempt` (1 = the first) of charging a cancelled subscription's fee. Returns paid,
    retry (another try is scheduled) or unpaid. Raises FeeNotCharged when no charge may be
    made, and payments' PaymentUnavailable when the provider did not answer (all rolled back)."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("card")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            raise FeeNotCharged(f"no subscription {subscription_id}")
        if subscription.fee_status != FeeStatus.CHARGING:
            raise FeeNotCharged(f"the fee is {subscription.fee_status or 'not due'}")
        card: SavedCard | None = subscription.card
        if card is None or card.status != SavedCard.Status.ACTIVE:
            _end(subscription, FeeStatus.UNPAID, "no card that can be charged", email="unpaid")
            return "unpaid"
        key = _key(subscription.pk, attempt)
        try:
            payment = payment_charge_off_session(
                subscription_id=subscription.pk,
                card_id=card.pk,
                idempotency_key=key,
                amount=subscription.cancellation_fee,
                currency=subscription.currency,
                vendor_id=subscription.vendor_id,
                capture=True,
                description=f"O2O subscription #{subscription.pk}: cancellation fee",
            )
        except PaymentRefused as exc:
            _end(subscription, FeeStatus.UNPAID, f"card refused: {exc.messages[0]}", email="unpaid")
            return "unpaid"
        if payment.status in PAID_STATES:
            _end(subscription, FeeStatus.PAID, "", email="paid")
            event_emit(
                type="subscription.fee_charged",
                aggregate="subscription",
                aggregate_id=subscription.pk,
                data={
                    "subscription_id": subscription.pk,
                    "payment_id": payment.pk,
                    "amount": payment.amount_captured,
                    "currency": payment.currency,
                },
            )
            return "paid"
        tried = card_charge_get(idempotency_key=key)
        kind = tried.decline_kind if tried is not None else ""
        words = (tried.failure_message or tried.failure_code) if tried is not None else ""
        next_at = charge_retry_at(attempt=attempt, decline_kind=kind, now=timezone.now())
        if next_at is not None:
            _schedule(subscription.pk, attempt=attempt + 1, run_at=next_at)
            Subscription.objects.filter(pk=subscription.pk).update(
                fee_note=f"try {attempt} declined ({words}); next try at {next_at:%Y-%m-%d %H:%M}"[
                    :200
                ]
            )
            return "retry"
        if tried is not None and tried.outcome == CardCharge.Outcome.AUTHENTICATION_REQUIRED:
            note = "the card holder must confirm the payment"
        elif kind == DeclineKind.SOFT:
            note = f"card declined {attempt} times, last: {words}"
        else:
            note = f"card declined: {words or 'no reason given'}"
        _end(subscription, FeeStatus.UNPAID, note, email="unpaid")
        return "unpaid"


@transaction.atomic
def fee_waive(*, subscription_id: int, actor, reason: str) -> Subscription:
    """Staff waive a fee not yet paid (CHARGING or UNPAID): it is never charged after this (a try
    in flight finds it WAIVED under the row lock). A paid fee is given back by a refund instead."""
    if actor is None or not getattr(actor, "is_staff", False):
        raise DomainError(_("Only staff can waive a cancellation fee."), code="forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Say why the fee is waived."), code="reason")
    done = Subscription.objects.filter(
        pk=subscription_id, fee_status__in=(FeeStatus.CHARGING, FeeStatus.UNPAID)
    ).update(fee_status=FeeStatus.WAIVED, fee_note=f"waived by {actor.pk}: {reason}"[:200])
    if not done:
        raise DomainError(_("Only a fee not yet paid can be waived."), code="state")
    return Subscription.objects.get(pk=subscription_id)


def fee_payment(*, subscription_id: int) -> Payment | None:
    """The payment that charged (or tries to charge) a subscription's cancellation fee."""
    return Payment.objects.filter(
        subscription_id=subscription_id, purpose=Payment.Purpose.CANCELLATION_FEE
    ).first()
