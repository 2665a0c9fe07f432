"""Saved cards and off-session charges: the customer vault on the platform's side.

A customer saves a card on the provider's hosted setup page (card_setup_start → the page →
card_setup_complete, which reads the outcome from the provider, never from the browser); the card
is a SavedCard holding only the provider's token. payment_charge_off_session then charges it for
an order without the customer: one CardCharge row per attempt, keyed by the caller's idempotency
key, and the order's one Payment moved by the provider's answer exactly as payment_start's is.

A declined off-session charge leaves the Payment PENDING (its failure_code says why): the order is
not ended by it, the caller (subscriptions) decides, using the attempt's decline kind and
charge_retry_at — a soft decline is tried again on the OFF_SESSION_RETRY_HOURS schedule (the same
intent, confirmed again), a hard decline never, and "authentication_required" waits for the card
holder to confirm on the attempt's action_url. Hard declines and authentication_required mark the
card NEEDS_ATTENTION, so it is not charged again until the customer acts.

Like payments.services, the functions that talk to the provider hold no transaction while a
request is out: call them outside your own transaction.atomic().
"""

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile

from .checks import payment_args_check, return_url_check, webhook_url
from .errors import InvalidTransition, PaymentRefused, PaymentUnavailable
from .gateways import get_gateway
from .gateways.base import (
    DeclineKind,
    GatewayRefused,
    GatewayUnavailable,
    IntentStatus,
    OffSessionCharge,
    ProviderPaymentMethod,
)
from .models import CardCharge, CardSetup, Payment, SavedCard, VaultCustomer
from .services import CAPTURED_STATES, _apply

log = logging.getLogger(__name__)
C = SavedCard.Status
O = CardCharge.Outcome  # noqa: E741 - the outcomes, as P is the payment statuses
P = Payment.Status
MAX_KEY_LENGTH = 100


def _unavailable(exc: GatewayUnavailable) -> PaymentUnavailable:
    log.warning("payment provider unavailable: %s", exc)
    return PaymentUnavailable(
        _("The payment provider did not answer in time. Nothing was changed; try again shortly."),
        code="unavailable",
    )


def cards_page_url() -> str:
    """The customer's cards page, absolute (the provider sends browsers back to it)."""
    base: str = settings.PLATFORM_BASE_URL
    return base.rstrip("/") + reverse("payments:cards")


def cards_of(*, customer: CustomerProfile) -> QuerySet[SavedCard]:
    """The customer's cards that are not removed: the default first, then the newest."""
    return SavedCard.objects.filter(customer=customer).exclude(status=C.DETACHED)


def card_of(*, customer: CustomerProfile, card_id: object) -> SavedCard:
    """One of the customer's own cards; another customer's is as unknown as a missing one."""
    card = None
    if isinstance(card_id, int) and not isinstance(card_id, bool):
        card = SavedCard.objects.filter(pk=card_id, customer=customer).first()
    if card is None:
        raise ValidationError(_("No such card."), code="not_found")
    return card


def _vault_customer(customer: CustomerProfile, provider: str) -> VaultCustomer:
    """The customer's account at the provider, made the first time (once, however many ask at
    once: the provider sees one idempotency key, the table one row per customer and provider)."""
    found = VaultCustomer.objects.filter(customer=customer, provider=provider).first()
    if found:
        return found
    try:
        pc = get_gateway(provider).customer_create(
            reference=f"customer-{customer.pk}",
            email=customer.user.email,
            idempotency_key=f"customer-{customer.pk}-vault",
        )
    except GatewayUnavailable as exc:
        raise _unavailable(exc) from exc
    except GatewayRefused as exc:
        raise PaymentRefused(exc.message, code=exc.code) from exc
    try:
        with transaction.atomic():
            return VaultCustomer.objects.create(
                customer=customer, provider=provider, provider_ref=pc.ref
            )
    except IntegrityError:
        return VaultCustomer.objects.get(customer=customer, provider=provider)


def card_setup_start(*, customer: CustomerProfile, return_url: str) -> str:
    """Open the provider's hosted page where the customer saves a card (nothing is charged) and
    return its URL. The browser comes back to return_url?setup_session=<ref>; then call
    card_setup_complete with that ref."""
    return_url_check(return_url)
    provider = settings.PAYMENT_GATEWAY
    account = _vault_customer(customer, provider)
    try:
        setup = get_gateway(provider).setup_create(
            customer_ref=account.provider_ref,
            return_url=return_url,
            idempotency_key=f"setup-{customer.pk}-{secrets.token_hex(8)}",
        )
    except GatewayUnavailable as exc:
        raise _unavailable(exc) from exc
    except GatewayRefused as exc:
        raise PaymentRefused(exc.message, code=exc.code) from exc
    CardSetup.objects.create(
        customer=customer, provider=provider, provider_ref=setup.ref, url=setup.url
    )
    return setup.url


def _card_save(customer: CustomerProfile, provider: str, pm: ProviderPaymentMethod) -> SavedCard:
    """The saved card (once per token); the customer's default if they have no other."""
    card, _created = SavedCard.objects.get_or_create(
        provider=provider,
        payment_method_ref=pm.ref,
        defaults={
            "customer": customer,
            "provider_customer_ref": pm.customer_ref,
            "brand": pm.brand[:20],
            "last4": pm.last4[:4],
            "exp_month": pm.exp_month,
            "exp_year": pm.exp_year,
        },
    )
    if card.customer_id != customer.pk:  # a token of another customer's: never theirs
        raise ValidationError(_("No such card setup."), code="not_found")
    if not cards_of(customer=customer).filter(status=C.ACTIVE, is_default=True).exists():
        try:
            with transaction.atomic():
                SavedCard.objects.filter(pk=card.pk, status=C.ACTIVE).update(is_default=True)
        except IntegrityError:
            pass  # another card became the default meanwhile (one default, by constraint)
    return SavedCard.objects.get(pk=card.pk)


def card_setup_complete(*, customer: CustomerProfile, setup_ref: str) -> SavedCard:
    """The customer came back from the setup page: ask the provider what was saved and keep it.
    Only the customer who started the setup can complete it; completing again returns the same
    card. A setup the card holder did not finish is refused (ValidationError "not_saved")."""
    setup = None
    if isinstance(setup_ref, str) and 0 < len(setup_ref) <= 64 and "\x00" not in setup_ref:
        setup = CardSetup.objects.filter(customer=customer, provider_ref=setup_ref).first()
    if setup is None:
        raise ValidationError(_("No such card setup."), code="not_found")
    if setup.card_id is not None:
        return SavedCard.objects.get(pk=setup.card_id)
    try:
        answer = get_gateway(setup.provider).setup_get(ref=setup.provider_ref)
    except GatewayUnavailable as exc:
        raise _unavailable(exc) from exc
    except GatewayRefused as exc:
        raise PaymentRefused(exc.message, code=exc.code) from exc
    if not answer.succeeded or answer.payment_method is None:
        raise ValidationError(_("No card was saved. Try again."), code="not_saved")
    with transaction.atomic():
        card = _card_save(customer, setup.provider, answer.payment_method)
        CardSetup.objects.filter(pk=setup.pk, card__isnull=True).update(
            card=card, completed_at=timezone.now()
        )
    return card


def card_detach(*, customer: CustomerProfile, card_id: object) -> SavedCard:
    """Remove one of the customer's cards: forgotten at the provider, never charged again. If it
    was the default, their newest other active card becomes the default."""
    card = card_of(customer=customer, card_id=card_id)
    if card.status == C.DETACHED:
        raise InvalidTransition(_("This card was already removed."))
    try:
        get_gateway(card.provider).payment_method_detach(
            ref=card.payment_method_ref, idempotency_key=f"card-{card.pk}-detach"
        )
    except GatewayUnavailable as exc:
        raise _unavailable(exc) from exc
    except GatewayRefused as exc:
        if exc.code not in ("invalid_state", "not_found"):  # already gone there: fine
            raise PaymentRefused(exc.message, code=exc.code) from exc
    with transaction.atomic():
        changed = SavedCard.objects.filter(
            pk=card.pk, status__in=(C.ACTIVE, C.NEEDS_ATTENTION)
        ).update(status=C.DETACHED, is_default=False, updated_at=timezone.now())
        if not changed:
            raise InvalidTransition(_("This card was already removed."))
        if card.is_default:
            heir = (
                cards_of(customer=customer).filter(status=C.ACTIVE).order_by("-created_at").first()
            )
            if heir:
                SavedCard.objects.filter(pk=heir.pk, status=C.ACTIVE).update(is_default=True)
    return SavedCard.objects.get(pk=card.pk)


# --- off-session charges -------------------------------------------------------------------------


def _key(idempotency_key: object) -> str:
    if (
        not isinstance(idempotency_key, str)
        or not 0 < len(idempotency_key) <= MAX_KEY_LENGTH
        or "\x00" in idempotency_key
    ):
        raise ValidationError(
            _("Give an idempotency key of 1 to %(n)s characters.") % {"n": MAX_KEY_LENGTH},
            code="invalid",
        )
    return idempotency_key


def _outcome(charge: OffSessionCharge) -> str:
    if charge.intent.status == IntentStatus.CAPTURED:
        return O.CAPTURED
    if charge.intent.status == IntentStatus.AUTHORISED:
        return O.AUTHORISED
    if charge.decline_kind == DeclineKind.AUTHENTICATION_REQUIRED:
        return O.AUTHENTICATION_REQUIRED
    return O.DECLINED


@transaction.atomic
def _record(*, attempt: CardCharge, payment: Payment, charge: OffSessionCharge) -> None:
    """The provider's answer, in one transaction: the payment moved along its graph (as
    payment_start's answers are), the attempt's outcome, and the card's state."""
    intent = charge.intent
    Payment.objects.filter(pk=payment.pk, provider_ref="").update(
        provider_ref=intent.ref, updated_at=timezone.now()
    )
    Payment.objects.filter(pk=payment.pk, provider_ref=intent.ref).exclude(
        checkout_url=intent.checkout_url
    ).update(checkout_url=intent.checkout_url)
    _apply(payment_id=payment.pk, intent=intent)
    outcome = _outcome(charge)
    CardCharge.objects.filter(pk=attempt.pk, outcome=O.SENT).update(
        outcome=outcome,
        decline_kind=str(charge.decline_kind or ""),
        failure_code=intent.failure_code[:40],
        failure_message=intent.failure_message[:200],
        action_url=charge.action_url,
        answered_at=timezone.now(),
    )
    if charge.decline_kind in (DeclineKind.HARD, DeclineKind.AUTHENTICATION_REQUIRED):
        SavedCard.objects.filter(pk=attempt.card_id, status=C.ACTIVE).update(
            status=C.NEEDS_ATTENTION, updated_at=timezone.now()
        )


def payment_charge_off_session(
    *,
    order_id: int | None = None,
    card_id: int,
    idempotency_key: str,
    amount: int,
    currency: str,
    vendor_id: int | None = None,
    commission: int = 0,
    platform_fee: int = 0,
    price_advantage: int = 0,
    subscription_id: int | None = None,
    description: str = "",
    capture: bool = False,
    return_url: str = "",
) -> Payment:
    """Charge a saved card for the order, the customer absent, and return the order's Payment.

    The outcome is the CardCharge of `idempotency_key` (card_charge_get): AUTHORISED (or CAPTURED
    with capture=True; the Payment moved likewise, telling the order), DECLINED with decline_kind
    "hard" or "soft", or AUTHENTICATION_REQUIRED with the action_url the customer opens to
    confirm (the Payment's checkout_url too). A decline leaves the Payment PENDING: the order is
    not ended by it, the caller decides (charge_retry_at). A retry is a new call with a new key:
    the same provider intent is tried again. The same key again charges nothing: it returns the
    recorded outcome, or, if the answer was lost, asks the provider again under the same key.

    One Payment per order (as payment_start): the amount and split are fixed by the first call;
    return_url is where the customer lands after confirming (default: their cards page).
    price_advantage: a regular's commitment advantage the platform pays the vendor at capture.
    Without an order, `subscription_id` names the subscription whose cancellation fee this is
    (one fee payment per subscription; the platform's revenue, no vendor)."""
    key = _key(idempotency_key)
    if (order_id is None) == (subscription_id is None):
        raise ValueError("an off-session charge is for an order or a subscription's fee")
    if isinstance(price_advantage, bool) or not isinstance(price_advantage, int):
        raise ValidationError(_("Enter a whole amount of zero or more, in minor units."))
    if price_advantage < 0 or (subscription_id is not None and price_advantage):
        raise ValidationError(_("Enter a whole amount of zero or more, in minor units."))
    if order_id is not None:
        target: dict[str, Any] = {"order_id": order_id}
        reference = f"order-{order_id}"
    else:
        target = {"subscription_id": subscription_id, "purpose": Payment.Purpose.CANCELLATION_FEE}
        reference = f"subscription-{subscription_id}-fee"
    return_url = return_url or cards_page_url()
    payment_args_check(
        amount=amount,
        currency=currency,
        commission=commission,
        platform_fee=platform_fee,
        return_url=return_url,
    )
    card = SavedCard.objects.filter(pk=card_id).first() if isinstance(card_id, int) else None
    if card is None:
        raise ValidationError(_("No such card."), code="not_found")
    earlier = CardCharge.objects.filter(idempotency_key=key).select_related("payment").first()
    if earlier is not None:
        mine = (earlier.payment.order_id, earlier.payment.subscription_id) == (
            order_id,
            subscription_id,
        )
        if not mine or earlier.card_id != card.pk:
            raise ValidationError(
                _("This idempotency key was used for another charge."), code="key_reused"
            )
        if earlier.outcome != O.SENT:
            return Payment.objects.get(pk=earlier.payment_id)
    elif card.status != C.ACTIVE:
        raise InvalidTransition(_("This card can't be charged: it was removed or needs attention."))
    payment, _created = Payment.objects.get_or_create(
        **target,
        defaults={
            "amount": amount,
            "currency": currency,
            "provider": card.provider,
            "vendor_id": vendor_id,
            "commission": commission,
            "platform_fee": platform_fee,
            "price_advantage": price_advantage,
        },
    )
    if (payment.amount, payment.currency, payment.provider) != (amount, currency, card.provider):
        raise InvalidTransition(_("This order already has another payment."))
    if payment.status != P.PENDING:
        if payment.status in (P.AUTHORISED, *CAPTURED_STATES):
            return payment  # paid already: nothing to charge
        raise InvalidTransition(_("This order's payment is closed."))
    try:
        attempt, _new = CardCharge.objects.get_or_create(
            idempotency_key=key, defaults={"payment": payment, "card": card}
        )
    except IntegrityError as exc:  # another key's attempt for this order is in flight
        raise InvalidTransition(
            _("A charge for this order is already under way; try again shortly.")
        ) from exc
    try:
        charge = get_gateway(card.provider).charge_off_session(
            amount=amount,
            currency=currency,
            customer_ref=card.provider_customer_ref,
            payment_method_ref=card.payment_method_ref,
            reference=reference,
            description=description[:200],
            return_url=return_url,
            webhook_url=webhook_url(card.provider),
            idempotency_key=f"offsession-{key}",
            capture=capture,
            intent_ref=payment.provider_ref,
        )
    except GatewayUnavailable as exc:
        raise _unavailable(exc) from exc  # the attempt stays SENT: the same key asks again
    except GatewayRefused as exc:
        CardCharge.objects.filter(pk=attempt.pk, outcome=O.SENT).update(
            outcome=O.DECLINED,
            decline_kind=DeclineKind.HARD,
            failure_code=exc.code[:40],
            failure_message=exc.message[:200],
            answered_at=timezone.now(),
        )
        raise PaymentRefused(exc.message, code=exc.code) from exc
    _record(attempt=attempt, payment=payment, charge=charge)
    return Payment.objects.get(pk=payment.pk)


def card_charge_get(*, idempotency_key: str) -> CardCharge | None:
    """The attempt made under this key, with its outcome."""
    return CardCharge.objects.filter(idempotency_key=idempotency_key).first()


def charge_retry_at(*, attempt: int, decline_kind: str, now: datetime) -> datetime | None:
    """When to try an off-session charge again after attempt number `attempt` (1 = the first)
    failed with `decline_kind`: settings.OFF_SESSION_RETRY_HOURS[attempt - 1] hours after `now`
    for a soft decline; None (never again) after the last one, after a hard decline, or when the
    card holder must confirm (that waits for them, not for a clock)."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError("attempt counts from 1")
    if decline_kind != DeclineKind.SOFT:
        return None
    hours: list[int] = list(settings.OFF_SESSION_RETRY_HOURS)
    if attempt > len(hours):
        return None
    return now + timedelta(hours=hours[attempt - 1])
