"""Every write that matters for payments. Views, webhooks, admin actions, tasks and the orders app
call these; nothing else changes a Payment or a Refund.

The provider's state is the truth. Each status change is one conditional UPDATE with the allowed
source status in its WHERE (TRANSITIONS is the whole graph), so two racing calls can't both make
it; a capture and each refund call ledger.ledger_record exactly once, in the transaction of the
change that won; payment_status_changed goes out after commit.

The public functions talk to the provider over HTTP, so they are not one transaction: no database
transaction is held while a request is out (a slow provider must not hold locks, and on the
embedded SQLite default the sandbox answering from this very process could not write). Call them
outside your own transaction.atomic() block, e.g. after it commits. Each is safe to call again: the
provider sees the same idempotency key and the guarded UPDATEs make the second call a no-op. The
one exception, payment_refund_reserve, is called inside the caller's transaction and sends its
refund after that commits.

A capture books the provider's fee (what its intent reports, ProviderIntent.fee) with the capture,
in the same transaction and once per payment; the platform bears it and refunds leave it booked.
"""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from o2o.effects import effect_add, event_emit
from o2o.money import format_money

from . import ledger
from .checks import payment_args_check, webhook_url
from .errors import (
    InvalidTransition,
    PaymentError,
    PaymentRefused,
    PaymentUnavailable,
)
from .gateways import get_gateway
from .gateways.base import (
    GatewayRefused,
    GatewayUnavailable,
    IntentStatus,
    PaymentGateway,
    ProviderIntent,
    ProviderRefund,
)
from .models import Payment, Refund

log = logging.getLogger(__name__)
P = Payment.Status
R = Refund.Status

# The whole graph of payment statuses. Refunds move CAPTURED / PARTIALLY_REFUNDED on by amount.
TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.AUTHORISED, P.FAILED}),
    P.AUTHORISED: frozenset({P.CAPTURED, P.VOIDED}),
    P.CAPTURED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED}),
    P.PARTIALLY_REFUNDED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED}),
    P.REFUNDED: frozenset(),
    P.VOIDED: frozenset(),
    P.FAILED: frozenset(),
}
CAPTURED_STATES = (P.CAPTURED, P.PARTIALLY_REFUNDED, P.REFUNDED)
REFUNDABLE_STATES = (P.CAPTURED, P.PARTIALLY_REFUNDED)
# Stored as data, in one language, like the reasons staff type.
PROVIDER_REFUND_REASON = "Refunded at the provider"
# Which of our statuses agree with the provider's.
AGREES = {
    IntentStatus.PENDING: {P.PENDING},
    IntentStatus.AUTHORISED: {P.AUTHORISED},
    IntentStatus.CAPTURED: set(CAPTURED_STATES),
    IntentStatus.VOIDED: {P.VOIDED},
    IntentStatus.FAILED: {P.FAILED},
}


# --- helpers -------------------------------------------------------------------------------------


def _positive_amount(amount: object, *, field: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentError({field: _("Enter a whole amount above zero, in minor units.")})
    return amount


def _unavailable() -> PaymentUnavailable:
    return PaymentUnavailable(
        _("The payment provider did not answer in time. Nothing was changed; try again shortly."),
        code="unavailable",
    )


def _get(payment_id: int) -> Payment:
    return Payment.objects.get(pk=payment_id)


def _status_label(status: str) -> str:
    return str(P(status).label)


def _changed(payment: Payment, status: str, *, refund_id: int | None = None) -> None:
    """Tell the order (payments never imports orders) by a durable effect written in this
    transaction: the order's reaction happens even if this process dies right after the commit."""
    status = str(status)
    if payment.order_id is None:
        return  # a cancellation fee: no order to tell (subscriptions reads the charge's outcome)
    key = f"payment:{payment.pk}:status:{status}" + (f":{refund_id}" if refund_id else "")
    effect_add(
        kind="payment.status_changed",
        key=key,
        payload={"payment_id": payment.pk, "order_id": payment.order_id, "status": status},
    )


def _move(payment: Payment, to: str, **fields: Any) -> bool:
    """One guarded UPDATE along the graph; True when this call made the move."""
    allowed_from = [s for s, targets in TRANSITIONS.items() if to in targets and s != to]
    moved = Payment.objects.filter(pk=payment.pk, status__in=allowed_from).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if moved:
        _changed(payment, to)
    return bool(moved)


# --- the transitions (each inside the caller's transaction) ------------------------------------


def _mark_authorised(payment: Payment, intent: ProviderIntent) -> bool:
    return _move(
        payment,
        P.AUTHORISED,
        authorised_at=timezone.now(),
        failure_code="",  # an earlier card's decline is history now
        failure_message="",
        card_brand=intent.card_brand[:20],
        card_last4=intent.card_last4[:4],
    )


def _mark_failed(payment: Payment, intent: ProviderIntent) -> bool:
    return _move(
        payment,
        P.FAILED,
        closed_at=timezone.now(),
        failure_code=intent.failure_code[:40],
        failure_message=intent.failure_message[:200],
        card_brand=intent.card_brand[:20],
        card_last4=intent.card_last4[:4],
    )


def _mark_captured(payment: Payment, intent: ProviderIntent) -> bool:
    """AUTHORISED → CAPTURED as the provider's intent says, with its fee: the capture, the split
    and the provider's fee are booked in this transaction, by the one call that made the move (the
    fee's journal key is the payment's, so nothing books it twice). The fee is never more than
    what was captured (the database holds to that)."""
    amount, fee = intent.amount_captured, intent.fee
    moved = _move(
        payment,
        P.CAPTURED,
        amount_captured=amount,
        provider_fee=fee,
        captured_at=timezone.now(),
    )
    if moved:
        ledger.ledger_record(
            payment_id=payment.pk, kind="capture", amount=amount, currency=payment.currency
        )
        if fee:
            ledger.provider_fee_record(payment_id=payment.pk, amount=fee, key=str(payment.pk))
    return moved


def _mark_voided(payment: Payment) -> bool:
    return _move(payment, P.VOIDED, closed_at=timezone.now())


def _refund_succeeded(payment: Payment, *, refund_id: int, provider_ref: str) -> bool:
    """A refund the provider made: the refund row, the payment's amounts and status, the ledger —
    once. The provider's word wins over a failure we recorded."""
    amount = Refund.objects.values_list("amount", flat=True).get(pk=refund_id)
    done = Refund.objects.filter(
        pk=refund_id, payment=payment, status__in=(R.PENDING, R.FAILED)
    ).update(status=R.SUCCEEDED, provider_ref=provider_ref, succeeded_at=timezone.now())
    if not done:
        return False
    moved = Payment.objects.filter(
        pk=payment.pk,
        status__in=REFUNDABLE_STATES,
        amount_refunded__lte=F("amount_captured") - amount,
    ).update(
        amount_refunded=F("amount_refunded") + amount,
        status=Case(
            When(amount_captured=F("amount_refunded") + amount, then=Value(P.REFUNDED)),
            default=Value(P.PARTIALLY_REFUNDED),
        ),
        updated_at=timezone.now(),
    )
    # The provider refunded more than we hold as captured: stop, and keep both as they were.
    if not moved:
        raise InvalidTransition(
            _("Refund %(refund)s does not fit payment %(payment)s.")
            % {"refund": refund_id, "payment": payment.pk}
        )
    ledger.ledger_record(
        payment_id=payment.pk,
        kind="refund",
        amount=amount,
        currency=payment.currency,
        refund_id=refund_id,
    )
    _changed(
        payment,
        Payment.objects.values_list("status", flat=True).get(pk=payment.pk),
        refund_id=refund_id,
    )
    refund = Refund.objects.get(pk=refund_id)
    if payment.order_id is None:  # a cancellation fee given back (by staff)
        event_emit(
            type="subscription.fee_refunded",
            aggregate="subscription",
            aggregate_id=payment.subscription_id or 0,
            data={
                "subscription_id": payment.subscription_id,
                "refund_id": refund.pk,
                "amount": refund.amount,
                "currency": payment.currency,
            },
        )
        return True
    from insights.services import sale_record_refund  # the record of sales: money came back

    sale_record_refund(refund_id=refund.pk)
    event_emit(
        type="refund.succeeded",
        aggregate="order",
        aggregate_id=payment.order_id,
        data={
            "refund_id": refund.pk,
            "order_id": payment.order_id,
            "payment_id": payment.pk,
            "amount": refund.amount,
            "currency": payment.currency,
            "kind": refund.kind,
            "order_line_id": refund.order_line_id,
        },
    )
    # The customer hears of it by e-mail, once per refund (the orders app's order.email effect).
    effect_add(
        kind="order.email",
        key=f"refund:{refund_id}:email",
        payload={"order_id": payment.order_id, "refund_id": refund_id},
    )
    return True


def _provider_refund_apply(payment: Payment, pr: ProviderRefund) -> None:
    if not pr.succeeded:
        return
    ours = Refund.objects.filter(payment=payment, provider_ref=pr.ref).first()
    refund_id = pr.reference[7:] if pr.reference.startswith("refund-") else ""
    if ours is None and refund_id.isascii() and refund_id.isdigit():  # not "²": int() can't
        ours = Refund.objects.filter(payment=payment, pk=int(refund_id)).first()
    if ours is None:
        # Refunded at the provider directly (its dashboard): recorded here as it happened there.
        try:
            with transaction.atomic():
                ours = Refund.objects.create(
                    payment=payment,
                    amount=pr.amount,
                    reason=PROVIDER_REFUND_REASON,
                    kind=Refund.Kind.PROVIDER,
                    provider_ref=pr.ref,
                )
        except IntegrityError:  # a concurrent sync recorded it first
            ours = Refund.objects.get(provider_ref=pr.ref)
    if ours.payment_id != payment.pk:
        log.error(
            "refund %s of payment %s is listed under payment %s",
            pr.ref,
            ours.payment_id,
            payment.pk,
        )
        return
    _refund_succeeded(payment, refund_id=ours.pk, provider_ref=pr.ref)


@transaction.atomic
def _apply(*, payment_id: int, intent: ProviderIntent) -> Payment:
    """Walk the payment along the graph to where the provider's intent is."""
    payment = _get(payment_id)
    if intent.status == IntentStatus.PENDING and intent.failure_code:
        # A declined card, the intent waiting for another: keep the decline to show the customer.
        Payment.objects.filter(pk=payment.pk, status=P.PENDING).exclude(
            failure_code=intent.failure_code[:40], card_last4=intent.card_last4
        ).update(
            failure_code=intent.failure_code[:40],
            failure_message=intent.failure_message[:200],
            card_last4=intent.card_last4,
            updated_at=timezone.now(),
        )
    if intent.status == IntentStatus.FAILED:
        _mark_failed(payment, intent)
    if intent.status in (IntentStatus.AUTHORISED, IntentStatus.CAPTURED, IntentStatus.VOIDED):
        _mark_authorised(payment, intent)
    if intent.status == IntentStatus.CAPTURED:
        _mark_captured(payment, intent)
    if intent.status == IntentStatus.VOIDED:
        _mark_voided(payment)
    for pr in intent.refunds:
        _provider_refund_apply(payment, pr)
    payment.refresh_from_db()
    if payment.status not in AGREES[intent.status] or (
        intent.status == IntentStatus.CAPTURED
        and (payment.amount_captured, payment.amount_refunded)
        != (intent.amount_captured, intent.amount_refunded)
    ):
        # A stale answer (a concurrent sync got a newer one first) or a real disagreement: the
        # reconciliation (next issue) looks into it; the payment never moves backwards.
        log.warning(
            "payment %s is %s (captured %s, refunded %s) but %s says %s (%s, %s)",
            payment.pk,
            payment.status,
            payment.amount_captured,
            payment.amount_refunded,
            payment.provider,
            intent.status,
            intent.amount_captured,
            intent.amount_refunded,
        )
    return payment


def _gateway(payment: Payment) -> PaymentGateway:
    return get_gateway(payment.provider)


def _fetch(payment: Payment) -> ProviderIntent:
    try:
        return _gateway(payment).get_intent(ref=payment.provider_ref)
    except GatewayUnavailable as exc:
        raise _unavailable() from exc
    except GatewayRefused as exc:
        raise PaymentRefused(exc.message, code=exc.code) from exc


def _refund_send(payment: Payment, refund: Refund) -> Refund:
    key = refund.idempotency_key
    try:
        pr = _gateway(payment).refund(
            ref=payment.provider_ref, amount=refund.amount, reference=key, idempotency_key=key
        )
    except GatewayUnavailable as exc:
        # The refund stays PENDING; payment_sync sends it again with the same key.
        raise _unavailable() from exc
    except GatewayRefused as exc:
        Refund.objects.filter(pk=refund.pk, status=R.PENDING).update(
            status=R.FAILED, failure_code=exc.code[:40], failure_message=exc.message[:200]
        )
        raise PaymentRefused(exc.message, code=exc.code) from exc
    if not pr.succeeded:
        # Taken but not made yet (a card network can take days): it stays PENDING under the
        # provider's reference, and payment_sync books it once the provider lists it as made.
        Refund.objects.filter(pk=refund.pk, status=R.PENDING, provider_ref="").update(
            provider_ref=pr.ref
        )
        return Refund.objects.get(pk=refund.pk)
    with transaction.atomic():
        _refund_succeeded(_get(payment.pk), refund_id=refund.pk, provider_ref=pr.ref)
    return Refund.objects.get(pk=refund.pk)


# --- the actions ---------------------------------------------------------------------------------


def payment_start(
    *,
    order_id: int,
    amount: int,
    currency: str,
    return_url: str,
    description: str = "",
    vendor_id: int | None = None,
    commission: int = 0,
    platform_fee: int = 0,
    expires_at: datetime | None = None,
) -> Payment:
    """Open the order's payment at the provider (settings.PAYMENT_GATEWAY) and keep its checkout
    page URL (payment.checkout_url: send the customer there). The provider sends the browser back to
    return_url?intent=<provider ref>. One payment per order: calling again for the same order
    returns the same payment. If the first call's answer was lost, calling again with the same
    arguments gets the same intent (the provider sees the key order-<id>-start and the same body;
    other arguments under that key are refused: PaymentRefused "idempotency_key_reused").

    vendor_id, commission and platform_fee are the split the ledger books at capture: the vendor
    is owed amount − commission − platform_fee. With expires_at the provider takes no card after
    it (a declined card may be followed by another until then)."""
    payment_args_check(
        amount=amount,
        currency=currency,
        commission=commission,
        platform_fee=platform_fee,
        return_url=return_url,
    )
    payment, _created = Payment.objects.get_or_create(
        order_id=order_id,
        defaults={
            "amount": amount,
            "currency": currency,
            "provider": settings.PAYMENT_GATEWAY,
            "vendor_id": vendor_id,
            "commission": commission,
            "platform_fee": platform_fee,
        },
    )
    if (payment.amount, payment.currency) != (amount, currency):
        raise InvalidTransition(_("This order already has a payment of another amount."))
    if payment.provider_ref:
        return payment
    try:
        intent = _gateway(payment).create_intent(
            amount=amount,
            currency=currency,
            reference=f"order-{order_id}",
            description=description[:200],
            return_url=return_url,
            webhook_url=webhook_url(payment.provider),
            idempotency_key=f"order-{order_id}-start",
            expires_at=expires_at,
        )
    except GatewayUnavailable as exc:
        raise _unavailable() from exc
    except GatewayRefused as exc:
        raise PaymentRefused(exc.message, code=exc.code) from exc
    Payment.objects.filter(pk=payment.pk, provider_ref="").update(
        provider_ref=intent.ref, checkout_url=intent.checkout_url, updated_at=timezone.now()
    )
    return _apply(payment_id=payment.pk, intent=intent)


def payment_sync(*, payment_id: int) -> Payment:
    """Fetch the provider's intent and bring the payment to its state (the provider is the truth):
    PENDING → AUTHORISED or FAILED, AUTHORISED → CAPTURED or VOIDED, refunds made. Sends again any
    refund of ours the provider has not got. A provider that does not answer in time leaves the
    payment as it is and raises PaymentUnavailable."""
    payment = _get(payment_id)
    if not payment.provider_ref:
        return payment
    intent = _fetch(payment)
    payment = _apply(payment_id=payment.pk, intent=intent)
    known = {pr.ref for pr in intent.refunds} | {pr.reference for pr in intent.refunds}
    for refund in payment.refunds.filter(status=R.PENDING).order_by("pk"):
        if refund.idempotency_key not in known:
            try:
                _refund_send(payment, refund)
            except PaymentError as exc:
                log.warning("refund %s still not sent: %s", refund.pk, exc.messages[0])
    return _get(payment.pk)


def payment_capture(*, payment_id: int, amount: int | None = None) -> Payment:
    """AUTHORISED → CAPTURED: take the money, all of it or `amount` of it (the rest is released).
    Captures once however often it is called, one after the other or at the same time; a payment
    already captured is returned as it is."""
    payment = _get(payment_id)
    if payment.status in CAPTURED_STATES:
        return payment
    if payment.status != P.AUTHORISED:
        raise InvalidTransition(
            _("Only an authorised payment can be captured; this one is %(status)s.")
            % {"status": _status_label(payment.status)}
        )
    if amount is not None and _positive_amount(amount) > payment.amount:
        most = format_money(payment.amount, payment.currency)
        raise PaymentError({"amount": _("At most %(amount)s can be captured.") % {"amount": most}})
    try:
        intent = _gateway(payment).capture(
            ref=payment.provider_ref, amount=amount, idempotency_key=f"payment-{payment.pk}-capture"
        )
    except GatewayUnavailable as exc:
        raise _unavailable() from exc
    except GatewayRefused as exc:
        # Perhaps the provider is ahead of us (captured already, or voided): take its word.
        payment = _apply(payment_id=payment.pk, intent=_fetch(payment))
        if payment.status in CAPTURED_STATES:
            return payment
        raise PaymentRefused(exc.message, code=exc.code) from exc
    return _apply(payment_id=payment.pk, intent=intent)


def payment_void(*, payment_id: int) -> Payment:
    """AUTHORISED → VOIDED: release the authorised money (order rejected, expired, cancelled).
    A payment already voided is returned as it is."""
    payment = _get(payment_id)
    if payment.status == P.VOIDED:
        return payment
    if payment.status != P.AUTHORISED:
        raise InvalidTransition(
            _("Only an authorised payment can be voided; this one is %(status)s.")
            % {"status": _status_label(payment.status)}
        )
    try:
        intent = _gateway(payment).void(
            ref=payment.provider_ref, idempotency_key=f"payment-{payment.pk}-void"
        )
    except GatewayUnavailable as exc:
        raise _unavailable() from exc
    except GatewayRefused as exc:
        payment = _apply(payment_id=payment.pk, intent=_fetch(payment))
        if payment.status == P.VOIDED:
            return payment
        raise PaymentRefused(exc.message, code=exc.code) from exc
    return _apply(payment_id=payment.pk, intent=intent)


def _refund_create(
    *,
    payment_id: int,
    amount: int | None,
    reason: str,
    commission: int | None = None,
    kind: str = Refund.Kind.OTHER,
    order_line_id: int | None = None,
) -> Refund | None:
    """Reserve a refund of `amount` (None: all that is left) under a lock on the payment; None when
    nothing is left to refund. A refund of an order line (kind LINE or SHORT) is one per line and
    kind (not counting failed ones): a second raises InvalidTransition."""
    reason = (reason or "").strip()
    if not reason:
        raise PaymentError({"reason": _("Say why the money is given back.")})
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status not in REFUNDABLE_STATES:
            raise InvalidTransition(
                _("Only a captured payment can be refunded; this one is %(status)s.")
                % {"status": _status_label(payment.status)}
            )
        pending = payment.refunds.filter(status=R.PENDING).aggregate(s=Sum("amount"))["s"] or 0
        left = payment.refundable - pending
        if amount is None:
            if left <= 0:
                return None
            amount = left
        if amount > left:
            raise PaymentError(
                {
                    "amount": _("At most %(left)s can be refunded.")
                    % {"left": format_money(left, payment.currency)}
                }
            )
        if order_line_id is not None and (
            payment.refunds.filter(order_line_id=order_line_id, kind=kind)
            .exclude(status=R.FAILED)
            .exists()
        ):
            raise InvalidTransition(_("This line was refunded already."), code="line_refunded")
        try:
            with transaction.atomic():
                return Refund.objects.create(
                    payment=payment,
                    amount=amount,
                    reason=reason[:200],
                    commission_hint=commission,
                    kind=kind,
                    order_line_id=order_line_id,
                )
        except IntegrityError as exc:  # the same line's refund raced with this one
            raise InvalidTransition(
                _("This line was refunded already."), code="line_refunded"
            ) from exc


def _refund_args(amount: object, commission: object) -> None:
    _positive_amount(amount)
    if commission is not None and (
        isinstance(commission, bool) or not isinstance(commission, int) or commission < 0
    ):
        raise PaymentError({"commission": _("Enter a whole amount of zero or more.")})


def payment_refund(
    *,
    payment_id: int,
    amount: int,
    reason: str,
    commission: int | None = None,
    kind: str = Refund.Kind.OTHER,
    order_line_id: int | None = None,
) -> Refund:
    """Give back `amount` of a captured payment (all that is left, or part of it): CAPTURED or
    PARTIALLY_REFUNDED → PARTIALLY_REFUNDED or REFUNDED. Each call is a new refund, sent with its
    own key (refund-<id>); a provider that does not answer leaves it PENDING (PaymentUnavailable),
    and payment_sync sends it again with the same key. `commission`: the platform's commission
    this refund gives back when the caller knows it exactly (refunded order lines); otherwise the
    ledger gives back the commission pro rata."""
    _refund_args(amount, commission)
    refund = _refund_create(
        payment_id=payment_id,
        amount=amount,
        reason=reason,
        commission=commission,
        kind=kind,
        order_line_id=order_line_id,
    )
    assert refund is not None  # an amount was given
    return _refund_send(_get(payment_id), refund)


def payment_refund_reserve(
    *,
    payment_id: int,
    amount: int,
    reason: str,
    commission: int | None = None,
    kind: str = Refund.Kind.OTHER,
    order_line_id: int | None = None,
) -> Refund:
    """Reserve a refund of `amount` of a captured payment inside the caller's database transaction
    (e.g. with the resolution of a dispute), and send it to the provider once that transaction has
    committed: the refund exists exactly when the caller's change does, and no HTTP request is out
    while the caller holds its locks. Must be called inside transaction.atomic(). Returns the
    refund, PENDING; re-read it after the commit for the provider's answer (SUCCEEDED, or FAILED
    when the provider refused it; a provider that does not answer leaves it PENDING for
    payment_sync to send again with the same key; both are logged, and neither undoes the
    caller's change). Raises at once, inside the transaction: PaymentError for a bad amount or
    reason or more than is left, InvalidTransition for a payment that is not captured.
    `commission` as for payment_refund."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("payment_refund_reserve runs inside the caller's transaction")
    _refund_args(amount, commission)
    refund = _refund_create(
        payment_id=payment_id,
        amount=amount,
        reason=reason,
        commission=commission,
        kind=kind,
        order_line_id=order_line_id,
    )
    assert refund is not None  # an amount was given
    effect_add(kind="refund.send", key=f"refund:{refund.pk}:send", payload={"refund_id": refund.pk})
    return refund


def payment_return_all(*, payment_id: int, reason: str) -> Payment:
    """Give the customer's money back at whatever stage it is (order rejected, expired, cancelled,
    not collected): first the provider's truth (payment_sync, which also sends again any refund
    still pending), then void an authorisation or refund all that is left of a capture. A payment
    never authorised, failed, voided or refunded needs nothing. Safe to call again, and at once."""
    payment = payment_sync(payment_id=payment_id)
    if payment.status == P.AUTHORISED:
        return payment_void(payment_id=payment_id)
    if payment.status in REFUNDABLE_STATES:
        refund = _refund_create(
            payment_id=payment_id,
            amount=None,
            reason=reason or "returned",
            kind=Refund.Kind.ORDER,
        )
        if refund is not None:
            _refund_send(payment, refund)
        return _get(payment_id)
    return payment


def payments_abandoned_fail(*, now: datetime | None = None, limit: int = 200) -> int:
    """Payments still PENDING whose intent was never created at the provider (the process died
    between writing the row and the provider's answer), past the order's payment window and the
    grace: FAILED, so the order follows (the status effect). Nothing was ever held."""
    from datetime import timedelta

    now = now or timezone.now()
    cutoff = now - timedelta(
        minutes=settings.ORDER_PAYMENT_MINUTES, seconds=settings.CONVERGE_GRACE_SECONDS
    )
    ids = list(
        Payment.objects.filter(status=P.PENDING, provider_ref="", created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    failed = 0
    for payment_id in ids:
        with transaction.atomic():
            payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
            if payment is None or payment.provider_ref or payment.status != P.PENDING:
                continue  # started after all (payment_start sets the reference under no lock)
            failed += _move(
                payment,
                P.FAILED,
                closed_at=now,
                failure_code="not_started",
                failure_message="The payment was never started at the provider.",
            )
    return failed


# Provider webhooks live in their own module; views and tests reach them here as before.
from .webhooks import webhook_receive  # noqa: E402, F401
