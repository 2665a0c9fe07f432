"""Everything the sandbox provider does to its intents. Each state change is one conditional UPDATE
with the allowed source status in its WHERE, and queues a webhook event in the same transaction."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F, Model, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from o2o.money import MINOR_UNITS, basis_points_of

from .models import (
    SandboxEvent,
    SandboxIntent,
    SandboxPayout,
    SandboxRefund,
    SandboxWebhookDelivery,
)
from .objects import intent_data, refund_data

S = SandboxIntent.Status
MAX_AMOUNT = 10**12
# PostgreSQL refuses a NUL character in text (an error, a 500, if one got there): no id or text
# stored has one, so input with one is refused before it reaches a query.
NUL = "\x00"
_M = TypeVar("_M", bound=Model)  # the model of a listed query set


class SandboxError(Exception):
    """A request the sandbox refuses, with the code and HTTP status its API answers with."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TestCard:
    outcome: str  # "approve", "decline", "challenge" or "slow"
    failure_code: str = ""
    failure_message: str = ""
    # What an off-session charge of this card, once saved, does: "approve", "decline" (with the
    # failure code above) or "authentication_required" (the card holder must come back).
    # "" = like its on-session outcome (a challenge card needs the card holder: it can't confirm
    # off-session).
    off_session: str = ""

    @property
    def off_session_outcome(self) -> str:
        if self.off_session:
            return self.off_session
        return {"slow": "approve", "challenge": "authentication_required"}.get(
            self.outcome, self.outcome
        )


TEST_CARDS: dict[str, TestCard] = {
    "4242424242424242": TestCard("approve"),
    "4000000000000002": TestCard("decline", "card_declined", "The card was declined."),
    "4000000000009995": TestCard(
        "decline", "insufficient_funds", "The card has insufficient funds."
    ),
    "4000000000000119": TestCard(
        "decline", "try_again_later", "The card issuer could not be reached; try again later."
    ),
    "4000000000003220": TestCard("challenge"),
    "4000000000000077": TestCard("slow"),
    # Approved while the card holder is there; every off-session charge needs them back.
    "4000002500003155": TestCard("approve", off_session="authentication_required"),
}
# Whether a charge that failed with this code may be tried again later: "soft" (the same card may
# work tomorrow) or "hard" (never again with this card; any code not listed is hard).
# "authentication_required" is its own kind: only the card holder can confirm it.
SOFT_DECLINES = frozenset({"insufficient_funds", "try_again_later"})
DECLINE_KINDS = ("hard", "soft", "authentication_required")


def decline_kind(code: str) -> str:
    if code == "authentication_required":
        return "authentication_required"
    return "soft" if code in SOFT_DECLINES else "hard"


def capture_fee(amount: int) -> int:
    """What the sandbox charges the merchant for capturing `amount` (minor units):
    settings.SANDBOX_FEE_BPS basis points of it (default 250, i.e. 2.5 %), rounded half-up, plus
    settings.SANDBOX_FEE_FIXED (default 0, in the same minor units), never more than the amount.
    Fixed on the intent when it is captured; a refund does not give any of it back (as card
    acquirers do: the fee pays for the capture, which happened)."""
    bps = getattr(settings, "SANDBOX_FEE_BPS", 250)
    fixed = getattr(settings, "SANDBOX_FEE_FIXED", 0)
    for name, value, top in (("SANDBOX_FEE_BPS", bps, 10_000), ("SANDBOX_FEE_FIXED", fixed, None)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ImproperlyConfigured(f"{name} is a whole number of zero or more")
        if top is not None and value > top:
            raise ImproperlyConfigured(f"{name} is at most {top}")
    return min(amount, basis_points_of(amount, bps) + fixed)


def _currency(value: object) -> str:
    if not isinstance(value, str) or value not in MINOR_UNITS:
        raise SandboxError("invalid_request", "currency must be an ISO 4217 code we know.")
    return value


def _amount(value: object, *, field: str = "amount") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError("invalid_request", f"{field} must be an integer in minor units.")
    if not 0 < value < MAX_AMOUNT:
        raise SandboxError("invalid_request", f"{field} must be positive.")
    return value


def _url(value: object, *, field: str, required: bool) -> str:
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or len(value) > 500 or NUL in value:
        raise SandboxError("invalid_request", f"{field} must be an http(s) URL.")
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError as exc:
        raise SandboxError("invalid_request", f"{field} must be an http(s) URL.") from exc
    return value


def _text(value: object, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_length:
        raise SandboxError("invalid_request", f"{field} must be text of {max_length} or fewer.")
    return _without_nul(value, field=field)


def _without_nul(value: str, *, field: str) -> str:
    if NUL in value:
        raise SandboxError("invalid_request", f"{field} must not contain NUL characters.")
    return value


def _get(intent_id: str, *, lock: bool = False) -> SandboxIntent:
    qs = SandboxIntent.objects.select_for_update() if lock else SandboxIntent.objects
    try:
        if NUL in intent_id:  # no intent's id has one
            raise SandboxIntent.DoesNotExist
        return qs.get(pk=intent_id)
    except SandboxIntent.DoesNotExist as exc:
        raise SandboxError("not_found", "No such intent.", 404) from exc


def _event_emit(*, intent_id: str, type: str, data: dict[str, Any] | None = None) -> SandboxEvent:
    """Queue the webhook event for a state change (in the caller's transaction)."""
    intent = SandboxIntent.objects.get(pk=intent_id)
    event = SandboxEvent(type=type, intent=intent)
    body = {
        "id": event.id,
        "object": "event",
        "type": type,
        "created": int(timezone.now().timestamp()),
        "data": {"object": data if data is not None else intent_data(intent)},
    }
    event.body = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    event.save()
    if intent.webhook_url:
        SandboxWebhookDelivery.objects.create(
            event=event, url=intent.webhook_url, next_attempt_at=timezone.now()
        )
    return event


def _refused(intent_id: str, action: str, allowed: str) -> SandboxError:
    current = SandboxIntent.objects.filter(pk=intent_id).values_list("status", flat=True).first()
    if current is None:
        return SandboxError("not_found", "No such intent.", 404)
    return SandboxError(
        "invalid_state", f"This intent is {current}; only {allowed} intents can be {action}.", 409
    )


def _expiry(value: object) -> datetime | None:
    """expires_at: unix seconds (as Stripe's Checkout Sessions take it), or nothing."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**40:
        raise SandboxError("invalid_request", "expires_at must be unix seconds.")
    return datetime.fromtimestamp(value, tz=UTC)


@transaction.atomic
def intent_create(
    *,
    amount: object,
    currency: object,
    return_url: object,
    reference: object = None,
    description: object = None,
    webhook_url: object = None,
    expires_at: object = None,
    checkout_base: str,
) -> SandboxIntent:
    """A new intent waiting for the card. `checkout_base` is the scheme and host of the card page.
    With `expires_at` (unix seconds) no card is taken after that time: the intent then fails
    with the code "expired" (intent_expire_if_due)."""
    currency = _currency(currency)
    intent = SandboxIntent(
        amount=_amount(amount),
        currency=currency,
        reference=_text(reference, field="reference", max_length=100),
        description=_text(description, field="description", max_length=200),
        return_url=_url(return_url, field="return_url", required=True),
        webhook_url=_url(webhook_url, field="webhook_url", required=False),
        expires_at=_expiry(expires_at),
    )
    base = (settings.SANDBOX_PUBLIC_URL or checkout_base).rstrip("/")
    intent.checkout_url = base + reverse("sandbox:pay", args=[intent.id])
    intent.save()
    return intent


def _open(now: datetime) -> Q:
    """Still taking a card at `now`: no deadline, or one not reached."""
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


@transaction.atomic
def intent_expire_if_due(*, intent_id: str) -> bool:
    """An unpaid intent past its expires_at fails for good (code "expired") and says so in a
    webhook; True if this call did it. Checked whenever the intent is fetched or its page shown."""
    now = timezone.now()
    changed = SandboxIntent.objects.filter(
        pk=intent_id, status__in=(S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_ACTION), expires_at__lte=now
    ).update(
        status=S.FAILED,
        failure_code="expired",
        failure_message="The time to pay ran out.",
        updated_at=now,
    )
    if changed:
        _event_emit(intent_id=intent_id, type="intent.failed")
    return bool(changed)


def intent_fetch(*, intent_id: str) -> tuple[SandboxIntent, float]:
    """The intent, and how long the answer must wait (the slow test card's one slow fetch)."""
    _get(intent_id)
    intent_expire_if_due(intent_id=intent_id)
    intent = _get(intent_id)
    slow = SandboxIntent.objects.filter(pk=intent_id, slow_fetches_left__gt=0).update(
        slow_fetches_left=F("slow_fetches_left") - 1
    )
    return intent, settings.SANDBOX_SLOW_SECONDS if slow else 0.0


def _page(qs: QuerySet[_M], *, cursor: str | None, limit: int) -> tuple[list[_M], bool]:
    """One page of `qs` in (created_at, id) order, after the row named by `cursor` (the id of the
    last row of the previous page): stable however many rows are added meanwhile."""
    qs = qs.order_by("created_at", "id")
    if cursor:
        after = None
        if NUL not in cursor:  # no object's id has one
            manager = qs.model.objects  # type: ignore[attr-defined]  # every model here has it
            after = manager.filter(pk=cursor).values_list("created_at", flat=True).first()
        if after is None:
            raise SandboxError("invalid_request", "cursor names no object of this list.")
        qs = qs.filter(Q(created_at__gt=after) | Q(created_at=after, id__gt=cursor))
    rows = list(qs[: limit + 1])
    return rows[:limit], len(rows) > limit


def _created_between(
    qs: QuerySet[_M], created_from: datetime | None, created_to: datetime | None
) -> QuerySet[_M]:
    if created_from:
        qs = qs.filter(created_at__gte=created_from)
    if created_to:
        qs = qs.filter(created_at__lt=created_to)
    return qs


def intents_list(
    *,
    reference: str | None = None,
    since: datetime | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[SandboxIntent], bool]:
    """Intents created in [created_from, created_to) (`since` is created_from's older name),
    oldest first, a page at a time."""
    qs = SandboxIntent.objects.prefetch_related("refunds")
    if reference:
        qs = qs.filter(reference=_without_nul(reference, field="reference"))
    qs = _created_between(qs, created_from or since, created_to)
    return _page(qs, cursor=cursor, limit=limit)


def _declined(
    *, intent_id: str, source: str, now: datetime, code: str, message: str, **card: Any
) -> int:
    """A declined try: like Stripe's, the intent goes back to waiting for a card (another one may
    be tried until it expires), with the decline kept as its last error."""
    return SandboxIntent.objects.filter(_open(now), pk=intent_id, status=source).update(
        status=S.REQUIRES_PAYMENT_METHOD,
        failure_code=code,
        failure_message=message,
        decline_kind=decline_kind(code),
        declines=F("declines") + 1,
        updated_at=now,
        **card,
    )


@transaction.atomic
def card_submit(*, intent_id: str, number: str) -> SandboxIntent:
    """The card holder entered a (valid) test card on the hosted page. A declined card leaves the
    intent waiting for another card; past its expires_at no card is taken."""
    card = TEST_CARDS.get(number)
    if card is None:
        raise SandboxError("card_unknown", "Use one of the test cards.")
    now = timezone.now()
    waiting = SandboxIntent.objects.filter(
        _open(now), pk=intent_id, status=S.REQUIRES_PAYMENT_METHOD
    )
    common = {"card_brand": "visa", "card_last4": number[-4:], "updated_at": now}
    if card.outcome in ("approve", "slow"):
        changed = waiting.update(
            status=S.AUTHORISED,
            slow_fetches_left=1 if card.outcome == "slow" else 0,
            failure_code="",
            failure_message="",
            **common,
        )
        event = "intent.authorised"
    elif card.outcome == "challenge":
        changed = waiting.update(status=S.REQUIRES_ACTION, **common)
        event = "intent.requires_action"
    else:
        changed = _declined(
            intent_id=intent_id,
            source=S.REQUIRES_PAYMENT_METHOD,
            now=now,
            code=card.failure_code,
            message=card.failure_message,
            card_brand="visa",
            card_last4=number[-4:],
        )
        event = "intent.payment_failed"
    if not changed:
        intent_expire_if_due(intent_id=intent_id)
        raise _refused(intent_id, "paid", "unpaid")
    _event_emit(intent_id=intent_id, type=event)
    return SandboxIntent.objects.get(pk=intent_id)


@transaction.atomic
def challenge_resolve(*, intent_id: str, approve: bool) -> SandboxIntent:
    """The card holder answered the 3-D-Secure-like challenge: a refusal is a decline (another
    card may be tried)."""
    now = timezone.now()
    waiting = SandboxIntent.objects.filter(_open(now), pk=intent_id, status=S.REQUIRES_ACTION)
    if approve:
        changed = waiting.update(
            status=S.AUTHORISED,
            failure_code="",
            failure_message="",
            decline_kind="",
            updated_at=now,
        )
    else:
        changed = _declined(
            intent_id=intent_id,
            source=S.REQUIRES_ACTION,
            now=now,
            code="authentication_failed",
            message="The card holder did not confirm the payment.",
        )
    if not changed:
        intent_expire_if_due(intent_id=intent_id)
        raise _refused(intent_id, "confirmed", "challenged")
    _event_emit(
        intent_id=intent_id, type="intent.authorised" if approve else "intent.payment_failed"
    )
    return SandboxIntent.objects.get(pk=intent_id)


@transaction.atomic
def intent_capture(*, intent_id: str, amount: object = None) -> SandboxIntent:
    """Capture an authorised intent, in full or in part (once: the rest is released), and charge
    its fee (capture_fee)."""
    intent = _get(intent_id)
    amount = intent.amount if amount is None else _amount(amount)
    if amount > intent.amount:
        raise SandboxError("invalid_request", "amount is more than was authorised.")
    changed = SandboxIntent.objects.filter(pk=intent_id, status=S.AUTHORISED).update(
        status=S.CAPTURED,
        amount_captured=amount,
        fee=capture_fee(amount),
        updated_at=timezone.now(),
    )
    if not changed:
        raise _refused(intent_id, "captured", "authorised")
    _event_emit(intent_id=intent_id, type="intent.captured")
    return SandboxIntent.objects.get(pk=intent_id)


@transaction.atomic
def intent_void(*, intent_id: str) -> SandboxIntent:
    """Release an authorisation that will not be captured."""
    _get(intent_id)
    changed = SandboxIntent.objects.filter(pk=intent_id, status=S.AUTHORISED).update(
        status=S.VOIDED, updated_at=timezone.now()
    )
    if not changed:
        raise _refused(intent_id, "voided", "authorised")
    _event_emit(intent_id=intent_id, type="intent.voided")
    return SandboxIntent.objects.get(pk=intent_id)


@transaction.atomic
def refund_create(*, intent_id: object, amount: object, reference: object = None) -> SandboxRefund:
    """Give back part or all of what was captured, never more than is left."""
    if not isinstance(intent_id, str) or not intent_id:
        raise SandboxError("invalid_request", "intent is required.")
    _get(intent_id)
    amount = _amount(amount)
    reference = _text(reference, field="reference", max_length=100)
    changed = SandboxIntent.objects.filter(
        pk=intent_id,
        status=S.CAPTURED,
        amount_refunded__lte=F("amount_captured") - amount,
    ).update(amount_refunded=F("amount_refunded") + amount, updated_at=timezone.now())
    if not changed:
        intent = SandboxIntent.objects.get(pk=intent_id)
        if intent.status != S.CAPTURED:
            raise _refused(intent_id, "refunded", "captured")
        raise SandboxError(
            "amount_too_large",
            f"Only {intent.amount_captured - intent.amount_refunded} is left to refund.",
            409,
        )
    refund = SandboxRefund.objects.create(intent_id=intent_id, amount=amount, reference=reference)
    _event_emit(intent_id=intent_id, type="refund.succeeded", data=refund_data(refund))
    return refund


# --- payouts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestAccount:
    outcome: str  # "paid", "failed" or "pending"
    failure_code: str = ""
    failure_message: str = ""


# Any other account number is paid at once.
PAYOUT_TEST_ACCOUNTS: dict[str, TestAccount] = {
    "000000000002": TestAccount("failed", "account_closed", "The bank account is closed."),
    "000000000077": TestAccount("pending"),
}
PAYOUT_ACCOUNT_CHARS = set("0123456789-")


def _destination(value: object) -> tuple[str, str, str]:
    if not isinstance(value, dict):
        raise SandboxError("invalid_request", "destination must be an object.")
    number = value.get("account_number")
    if not isinstance(number, str) or not 4 <= len(number) <= 34:
        raise SandboxError("invalid_request", "destination.account_number is required.")
    if not set(number) <= PAYOUT_ACCOUNT_CHARS:
        raise SandboxError("invalid_request", "destination.account_number takes digits only.")
    return (
        _text(value.get("bank"), field="destination.bank", max_length=40),
        number,
        _text(value.get("holder"), field="destination.holder", max_length=80),
    )


@transaction.atomic
def payout_create(
    *, amount: object, currency: object, destination: object, reference: object = None
) -> SandboxPayout:
    """Send money to a bank account: paid or failed at once, or pending, by the test account."""
    currency = _currency(currency)
    bank, number, holder = _destination(destination)
    account = PAYOUT_TEST_ACCOUNTS.get(number.replace("-", ""), TestAccount("paid"))
    return SandboxPayout.objects.create(
        amount=_amount(amount),
        currency=currency,
        reference=_text(reference, field="reference", max_length=100),
        bank=bank,
        account_number=number,
        holder=holder,
        status=account.outcome,
        failure_code=account.failure_code,
        failure_message=account.failure_message,
    )


def payout_fetch(*, payout_id: str) -> SandboxPayout:
    try:
        if NUL in payout_id:  # no payout's id has one
            raise SandboxPayout.DoesNotExist
        return SandboxPayout.objects.get(pk=payout_id)
    except SandboxPayout.DoesNotExist as exc:
        raise SandboxError("not_found", "No such payout.", 404) from exc


def payouts_list(
    *,
    reference: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[SandboxPayout], bool]:
    qs = SandboxPayout.objects.all()
    if reference:
        qs = qs.filter(reference=_without_nul(reference, field="reference"))
    qs = _created_between(qs, created_from, created_to)
    return _page(qs, cursor=cursor, limit=limit)


@transaction.atomic
def payout_finish(*, payout_id: str, paid: bool) -> SandboxPayout:
    """The bank's answer for a pending payout (from the sandbox's admin, or a test)."""
    payout_fetch(payout_id=payout_id)
    fields = (
        {"status": SandboxPayout.Status.PAID}
        if paid
        else {
            "status": SandboxPayout.Status.FAILED,
            "failure_code": "bank_rejected",
            "failure_message": "The bank sent the payout back.",
        }
    )
    changed = SandboxPayout.objects.filter(
        pk=payout_id, status=SandboxPayout.Status.PENDING
    ).update(updated_at=timezone.now(), **fields)
    if not changed:
        raise SandboxError("invalid_state", "Only a pending payout can be finished.", 409)
    return SandboxPayout.objects.get(pk=payout_id)
