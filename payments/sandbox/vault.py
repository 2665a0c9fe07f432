"""The sandbox provider's customer vault: customers, their saved cards (payment methods), the
hosted setup page that saves a card without charging it, and off-session charges of a saved card.

A saved card keeps its test number server-side, so an off-session charge behaves as that test card
does (services.TEST_CARDS[number].off_session_outcome): approved (authorised, or captured when the
merchant asks), declined with a code and a decline kind ("hard": never retry; "soft": retry
later), or "authentication_required": the intent waits (requires_action) for the card holder to
open its checkout_url and confirm. A declined intent waits for another try (intent_confirm), as
Stripe's PaymentIntents do, so one merchant payment can be retried on a schedule.

Every state change is one conditional UPDATE with the allowed source state in its WHERE, and an
intent's change queues its webhook event (services._event_emit) in the same transaction.
"""

from datetime import date
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from . import services
from .models import SandboxCustomer, SandboxIntent, SandboxPaymentMethod, SandboxSetupSession
from .services import NUL, TEST_CARDS, SandboxError, _open, _text, _url

S = SandboxIntent.Status
_M = TypeVar("_M", bound=Model)


def _one(model: type[_M], object_id: object, what: str) -> _M:
    if not isinstance(object_id, str) or not object_id or NUL in object_id:
        raise SandboxError("not_found", f"No such {what}.", 404)
    try:
        return model._default_manager.get(pk=object_id)
    except ObjectDoesNotExist as exc:
        raise SandboxError("not_found", f"No such {what}.", 404) from exc


def customer_get(*, customer_id: object) -> SandboxCustomer:
    return _one(SandboxCustomer, customer_id, "customer")


def payment_method_get(*, payment_method_id: object) -> SandboxPaymentMethod:
    return _one(SandboxPaymentMethod, payment_method_id, "payment method")


def setup_get(*, setup_id: object) -> SandboxSetupSession:
    return _one(SandboxSetupSession, setup_id, "setup session")


@transaction.atomic
def customer_create(
    *, reference: object = None, email: object = None, name: object = None
) -> SandboxCustomer:
    return SandboxCustomer.objects.create(
        reference=_text(reference, field="reference", max_length=100),
        email=_text(email, field="email", max_length=254),
        name=_text(name, field="name", max_length=100),
    )


def payment_methods_list(*, customer_id: object) -> list[SandboxPaymentMethod]:
    """The customer's saved cards that can still be charged, oldest first."""
    customer = customer_get(customer_id=customer_id)
    return list(customer.payment_methods.filter(detached_at__isnull=True).order_by("created_at"))


@transaction.atomic
def payment_method_detach(*, payment_method_id: object) -> SandboxPaymentMethod:
    """The card is forgotten for charging: no later charge can use it. Detaching twice is refused
    (409), as Stripe does."""
    pm = payment_method_get(payment_method_id=payment_method_id)
    changed = SandboxPaymentMethod.objects.filter(pk=pm.pk, detached_at__isnull=True).update(
        detached_at=timezone.now()
    )
    if not changed:
        raise SandboxError("invalid_state", "This payment method is already detached.", 409)
    return SandboxPaymentMethod.objects.get(pk=pm.pk)


@transaction.atomic
def setup_create(
    *, customer_id: object, return_url: object, checkout_base: str
) -> SandboxSetupSession:
    """A hosted page (url) where the card holder saves a card for `customer_id`; nothing is
    charged. The browser comes back to return_url?setup_session=<id>."""
    customer = customer_get(customer_id=customer_id)
    session = SandboxSetupSession(
        customer=customer, return_url=_url(return_url, field="return_url", required=True)
    )
    base = (settings.SANDBOX_PUBLIC_URL or checkout_base).rstrip("/")
    session.url = base + reverse("sandbox:setup", args=[session.id])
    session.save()
    return session


@transaction.atomic
def setup_complete(*, setup_id: str, number: str, expiry: date) -> SandboxSetupSession:
    """The card holder entered a test card on the setup page: it is saved for the customer and the
    session succeeds, once (a second submission is refused, 409)."""
    if number not in TEST_CARDS:
        raise SandboxError("card_unknown", "Use one of the test cards.")
    session = setup_get(setup_id=setup_id)
    pm = SandboxPaymentMethod.objects.create(
        customer_id=session.customer_id,
        number=number,
        last4=number[-4:],
        exp_month=expiry.month,
        exp_year=expiry.year,
    )
    changed = SandboxSetupSession.objects.filter(
        pk=session.pk, status=SandboxSetupSession.Status.OPEN
    ).update(
        status=SandboxSetupSession.Status.SUCCEEDED, payment_method=pm, updated_at=timezone.now()
    )
    if not changed:
        raise SandboxError("invalid_state", "This card was already saved.", 409)
    return SandboxSetupSession.objects.get(pk=session.pk)


def _chargeable(
    payment_method_id: object, customer: SandboxCustomer | None
) -> SandboxPaymentMethod:
    pm = payment_method_get(payment_method_id=payment_method_id)
    if customer is not None and pm.customer_id != customer.pk:
        raise SandboxError("invalid_request", "This payment method belongs to another customer.")
    if pm.detached_at is not None:
        raise SandboxError("invalid_request", "This payment method was detached.")
    return pm


def _charge(*, intent_id: str, pm: SandboxPaymentMethod, capture: bool) -> SandboxIntent:
    """Charge the saved card off-session, as its test card does, from REQUIRES_PAYMENT_METHOD."""
    card = TEST_CARDS[pm.number]
    outcome = card.off_session_outcome
    today = timezone.localdate()
    if (pm.exp_year, pm.exp_month) < (today.year, today.month):
        outcome = "expired"
    now = timezone.now()
    common = {
        "card_brand": pm.brand,
        "card_last4": pm.last4,
        "payment_method": pm,
        "customer_id": pm.customer_id,
        "off_session": True,
        "updated_at": now,
    }
    waiting = SandboxIntent.objects.filter(
        _open(now), pk=intent_id, status=S.REQUIRES_PAYMENT_METHOD
    )
    if outcome == "approve":
        changed = waiting.update(
            status=S.AUTHORISED, failure_code="", failure_message="", decline_kind="", **common
        )
        event = "intent.authorised"
    elif outcome == "authentication_required":
        changed = waiting.update(
            status=S.REQUIRES_ACTION,
            failure_code="authentication_required",
            failure_message="The card holder must confirm this payment.",
            decline_kind="authentication_required",
            **common,
        )
        event = "intent.requires_action"
    else:
        code, message = (
            ("expired_card", "The card has expired.")
            if outcome == "expired"
            else (card.failure_code, card.failure_message)
        )
        card_fields = {k: v for k, v in common.items() if k != "updated_at"}
        changed = services._declined(
            intent_id=intent_id,
            source=S.REQUIRES_PAYMENT_METHOD,
            now=now,
            code=code,
            message=message,
            **card_fields,
        )
        event = "intent.payment_failed"
    if not changed:
        services.intent_expire_if_due(intent_id=intent_id)
        raise services._refused(intent_id, "charged", "unpaid")
    services._event_emit(intent_id=intent_id, type=event)
    if outcome == "approve" and capture:
        return services.intent_capture(intent_id=intent_id)
    return SandboxIntent.objects.get(pk=intent_id)


def _flag(value: object, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SandboxError("invalid_request", f"{field} must be true or false.")
    return value


@transaction.atomic
def intent_create_off_session(
    *,
    amount: object,
    currency: object,
    return_url: object,
    payment_method: object,
    customer: object = None,
    off_session: object = None,
    capture: object = None,
    reference: object = None,
    description: object = None,
    webhook_url: object = None,
    checkout_base: str,
) -> SandboxIntent:
    """A new intent charged at once to a saved card, the card holder absent (off_session must be
    true). Approved: AUTHORISED (CAPTURED with capture=true). Declined: REQUIRES_PAYMENT_METHOD
    with failure_code and decline_kind, waiting for intent_confirm. Authentication required:
    REQUIRES_ACTION, the card holder confirms on checkout_url. The intent is created either way
    (a 201), so an Idempotency-Key replays a decline as it replays an approval."""
    if _flag(off_session, "off_session") is not True:
        raise SandboxError(
            "invalid_request", "A saved card is charged here only with off_session: true."
        )
    owner = customer_get(customer_id=customer) if customer is not None else None
    pm = _chargeable(payment_method, owner)
    intent = services.intent_create(
        amount=amount,
        currency=currency,
        return_url=return_url,
        reference=reference,
        description=description,
        webhook_url=webhook_url,
        checkout_base=checkout_base,
    )
    return _charge(intent_id=intent.id, pm=pm, capture=_flag(capture, "capture"))


@transaction.atomic
def intent_confirm(
    *, intent_id: str, payment_method: object = None, capture: object = None
) -> SandboxIntent:
    """Try a declined off-session intent again, with the same saved card or another of the same
    customer's. Only an intent waiting for a card (REQUIRES_PAYMENT_METHOD) can be confirmed."""
    intent = services._get(intent_id)
    if intent.customer_id is None:
        raise SandboxError("invalid_request", "Only an intent of a saved card can be confirmed.")
    pm = _chargeable(
        payment_method if payment_method is not None else intent.payment_method_id,
        intent.customer,
    )
    return _charge(intent_id=intent.id, pm=pm, capture=_flag(capture, "capture"))
