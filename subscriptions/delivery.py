"""Each due delivery of a subscription exactly once: noticed, ordered, charged, checked.

The day's run, in Korea time (beat, subscriptions/tasks.py):

1. The evening before, at SUBSCRIPTION_NOTICE_HOUR: `deliveries_prepare(on=tomorrow)` makes the
   day's Delivery rows (services.deliveries_create_due) and writes one e-mail effect per "due"
   row (key `delivery:<id>:notice`: written once, however often the run repeats) telling the
   customer what comes, what it costs, and how to skip it.
2. From SUBSCRIPTION_ORDER_HOUR on the day: `deliveries_place(on=today, limit=…)` (every few
   minutes, bounded batches) turns each "due" row into an order, one transaction per row:
   the subscription locked first, then the Delivery (`select_for_update(skip_locked)`, "due" in
   the WHERE), the same order as subscription_pause/cancel take, so they never deadlock. Not
   active -> the row is cancelled, never charged. Stock short -> the shortage policy (supply what
   there is, or skip). The order is placed through orders.services.order_place (delivery to the
   subscription's address, a window inside the vendor's hours that day, the subscription's
   snapshotted unit prices, a checkout token derived from the Delivery id so a repeat of the same
   placement returns the same order), its payment deadline moved to the end of that window (a
   guarded UPDATE in the same transaction: the charge may be retried until then), the row marked
   "ordered" with it, and the charge effect `subscription.charge` written, key
   `delivery:<id>:charge:1`.
3. The charge (`delivery_charge`, run by the effect): the subscription and the Delivery locked
   again and held while the provider is asked, so a pause or cancel either commits before (then
   nothing is charged) or waits the few seconds the provider takes (then it comes after a charge
   that was made while the subscription was active). This deliberately holds one subscription
   row across the provider call, against payments.vault's advice; the lock is one row only the
   customer's own pause/cancel/change contends for, and the provider call is bounded by its
   timeout. If the provider does not answer, everything rolls back (the attempt row too) and the
   relay retries: the provider sees the same idempotency key, so at most one charge is made.
   Authorised -> orders.services.order_payment_settled (the order is PLACED; the vendor accepts
   and hands over as usual; the money is captured at the handover). A soft decline -> the next
   try at payments.vault.charge_retry_at, as a new effect row (`…:charge:<n+1>`, run_at) if that
   is before the order's payment deadline; otherwise, and after a hard decline or when the card
   holder must confirm, the Delivery fails with the reason, the order fails (stock back, the
   payment closed by the order's own money_return effect), the subscription pauses
   (services.subscription_pause_for_payment) and the customer gets an e-mail with a link to their
   cards page (and to the provider's confirmation page when the card holder must act).
4. Nightly: `deliveries_check(through=today)` compares the calendar with the rows: every due day
   of an active-or-recent subscription has exactly one Delivery no longer "due" after its day;
   anything else is a payments.Discrepancy (kind delivery_incomplete, one open per
   subscription+day).

Money is integer KRW. The order's lines carry the plan's unit prices (selectors.plan_unit_price),
so the order, the charge and the evening notice agree. For the next session: booking the price
advantage on its own ledger account, a card change by the customer after a failure, and charging
the cancellation fee.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from o2o.effects import effect_add
from orders.models import Fulfilment, Order, Status
from orders.services.payment import order_payment_settled, payment_outcome
from orders.services.placement import LineIn, Receive, order_place
from orders.services.transitions import RELEASES_STOCK, order_accept_standing
from payments.errors import PaymentRefused
from payments.gateways.base import DeclineKind
from payments.models import CardCharge, Discrepancy, SavedCard
from payments.vault import card_charge_get, charge_retry_at, payment_charge_off_session
from vendors.models import Stock, Vendor
from vendors.selectors import vendor_hours
from vendors.services import OutOfStock

from .calendar import due_dates
from .models import Delivery, Subscription, SubscriptionItem
from .selectors import pause_history, plan_unit_price, vendor_weekdays
from .services import DUE_BATCH_SIZE, deliveries_create_due, subscription_pause_for_payment

log = logging.getLogger(__name__)

CHARGE = "subscription.charge"
EMAIL = "subscription.email"
PLACE_BATCH_SIZE = 200
# How far back the nightly check looks (each night re-checks the last days: a late fix shows).
CHECK_DAYS = 7
# A cancelled subscription is still checked for this long after it was cancelled.
CHECK_CANCELLED_DAYS = 7
# Namespace of the checkout tokens of deliveries' orders: uuid5(namespace, "delivery:<id>").
TOKEN_NAMESPACE = uuid.UUID("6f1c2b9e-4d1a-5b7e-9c3f-2a8e1d0b7c45")
D = Delivery.Status
S = Subscription.Status


class NotCharged(Exception):
    """The charge of a delivery will not be made (its subscription is no longer active, its
    order no longer waits for payment): the reason, for the effect's record."""


def checkout_token(delivery_id: int) -> uuid.UUID:
    """The checkout token of a delivery's order: the same on every try of its placement."""
    return uuid.uuid5(TOKEN_NAMESPACE, f"delivery:{delivery_id}")


# --- 1. the evening notice ------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    due: int
    skipped: int
    existing: int
    noticed: int  # notices written by this run (a repeat writes none)


def deliveries_prepare(*, on: date, batch_size: int = DUE_BATCH_SIZE) -> Prepared:
    """The evening before `on`: make the day's Delivery rows and tell each customer with a
    "due" one what will come and what it costs (one e-mail effect per Delivery, key
    `delivery:<id>:notice`). Safe to run twice or at once: rows and effects are unique."""
    from o2o.models import Effect

    counts = deliveries_create_due(on=on, batch_size=batch_size)
    noticed = 0
    last = 0
    while True:
        ids = list(
            Delivery.objects.filter(date=on, status=D.DUE, pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        last = ids[-1]
        keys = {f"delivery:{pk}:notice": pk for pk in ids}
        with transaction.atomic():
            known = set(Effect.objects.filter(key__in=keys).values_list("key", flat=True))
            for key, pk in keys.items():
                if key not in known:
                    effect_add(kind=EMAIL, key=key, payload={"delivery_id": pk, "what": "notice"})
                    noticed += 1
    return Prepared(
        due=counts.due, skipped=counts.skipped, existing=counts.existing, noticed=noticed
    )


# --- 2. the morning order -------------------------------------------------------------------------


def delivery_window(*, vendor_id: int, on: date, now: datetime) -> tuple[datetime, datetime] | None:
    """The delivery window of `on`: the vendor's first published stretch of hours that day that
    ends after the earliest start an order placed `now` may have (ORDER_AHEAD_MIN_MINUTES on),
    from that earliest start or its opening, whichever is later, to its close. None: no hours."""
    zone = timezone.get_current_timezone()
    earliest = now + timedelta(minutes=settings.ORDER_AHEAD_MIN_MINUTES)
    for span in vendor_hours(vendor_ids=[vendor_id])[vendor_id]:
        if span.weekday != on.weekday():
            continue
        start = datetime.combine(on, span.opens, tzinfo=zone)
        end = datetime.combine(on, span.closes, tzinfo=zone)
        start = max(start, earliest)
        if start < end:
            return start, end
    return None


def _lines(subscription: Subscription) -> tuple[dict[int, int], dict[int, int], list[str]]:
    """(wanted {product: qty}, available now {product: qty on the cart}, names of the short)."""
    items = list(subscription.items.select_related("product"))
    wanted = {item.product_id: item.quantity for item in items}
    available = dict(
        Stock.objects.filter(
            vendor_id=subscription.vendor_id, product_id__in=wanted, product__is_active=True
        ).values_list("product_id", "quantity")
    )
    short = [
        str(item.product) for item in items if available.get(item.product_id, 0) < item.quantity
    ]
    return wanted, available, short


def _skipped(delivery: Delivery, reason: str) -> str:
    """The morning run skips a delivery for want of stock (the customer's choice for a short cart,
    or nothing there): the Delivery says why, and the customer is told (nothing is charged)."""
    if _settle(delivery.pk, status=D.SKIPPED, reason=reason, since=(D.DUE,)):
        effect_add(
            kind=EMAIL,
            key=f"delivery:{delivery.pk}:skipped",
            payload={"delivery_id": delivery.pk, "what": "skipped"},
        )
    return "skipped"


def _settle(delivery_id: int, *, status: str, reason: str, since: tuple[str, ...]) -> bool:
    """Delivery `since` -> `status` with `reason`, guarded in SQL."""
    return bool(
        Delivery.objects.filter(pk=delivery_id, status__in=since).update(
            status=status, reason=reason[:200]
        )
    )


def delivery_place(*, delivery_id: int, now: datetime | None = None) -> str:
    """Turn one "due" Delivery into its order (module docstring, step 2), in one transaction.
    Returns what became of it: ordered, skipped, cancelled, failed, or "" (not due any more, or
    another run has it locked now)."""
    now = now or timezone.now()
    subscription_id = (
        Delivery.objects.filter(pk=delivery_id).values_list("subscription_id", flat=True).first()
    )
    if subscription_id is None:
        return ""
    with transaction.atomic():
        # SKIP LOCKED: a subscription another run is placing (or its customer is pausing) is left
        # for the next run, so runs side by side take different rows instead of queueing on one.
        subscription = (
            Subscription.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("vendor", "card", "customer")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return ""
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=D.DUE)
            .first()
        )
        if delivery is None:
            return ""
        if subscription.status != S.ACTIVE:
            _settle(
                delivery.pk,
                status=D.CANCELLED,
                reason=f"subscription {subscription.status}",
                since=(D.DUE,),
            )
            return "cancelled"
        if subscription.vendor.status != Vendor.Status.APPROVED:
            # The vendor can't sell (suspended): nothing is ordered nor charged; the customer
            # hears why (one e-mail per delivery day).
            _settle(
                delivery.pk,
                status=D.CANCELLED,
                reason=f"the vendor is {subscription.vendor.status}",
                since=(D.DUE,),
            )
            effect_add(
                kind=EMAIL,
                key=f"delivery:{delivery.pk}:vendor_unavailable",
                payload={"delivery_id": delivery.pk, "what": "vendor_unavailable"},
            )
            return "cancelled"
        wanted, available, short = _lines(subscription)
        lines = wanted
        note = ""
        if short:
            if subscription.shortage_policy == Subscription.Shortage.SKIP:
                return _skipped(delivery, "not enough stock: " + ", ".join(short))
            lines = {
                pid: min(qty, available.get(pid, 0))
                for pid, qty in wanted.items()
                if available.get(pid, 0) > 0
            }
            if not lines:
                return _skipped(delivery, "nothing in stock: " + ", ".join(short))
            note = "supplied only what there was of: " + ", ".join(short)
        card = subscription.card
        if card is None or card.status != SavedCard.Status.ACTIVE:
            _payment_failed(
                delivery=delivery,
                order_id=None,
                reason="no card that can be charged (removed or needs attention)",
                action_url="",
            )
            return "failed"
        window = delivery_window(vendor_id=subscription.vendor_id, on=delivery.date, now=now)
        if window is None:
            _settle(
                delivery.pk,
                status=D.FAILED,
                reason="the vendor has no hours left that day",
                since=(D.DUE,),
            )
            return "failed"
        prices = dict(subscription.items.values_list("product_id", "unit_price"))
        try:
            order = order_place(
                customer=subscription.customer,
                vendor_id=subscription.vendor_id,
                lines=[LineIn(product_id=pid, quantity=qty) for pid, qty in sorted(lines.items())],
                receive=Receive(
                    fulfilment=Fulfilment.DELIVERY,
                    address_id=subscription.address_id,
                    window_start=window[0],
                    window_end=window[1],
                ),
                checkout_token=checkout_token(delivery.pk),
                note="",  # the order knows its subscription (order.subscription_delivery)
                now=now,
                # the plan's price: what the evening notice said (selectors.delivery_cost)
                unit_prices={
                    pid: plan_unit_price(
                        unit_price=prices[pid], discount_bps=subscription.discount_bps
                    )
                    for pid in lines
                },
            )
        except OutOfStock:
            # Taken from the cart between the read and the reservation (nothing was placed).
            return _skipped(delivery, "the stock ran out while the order was made")
        except ValidationError as exc:
            _settle(delivery.pk, status=D.FAILED, reason=exc.messages[0], since=(D.DUE,))
            return "failed"
        # The payment may take until the end of the day's window (retries of a soft decline).
        Order.objects.filter(pk=order.pk, status=Status.PENDING_PAYMENT).update(
            expires_at=window[1]
        )
        changed = Delivery.objects.filter(pk=delivery.pk, status=D.DUE).update(
            status=D.ORDERED, order=order, reason=note[:200]
        )
        if not changed:  # (the row is locked: cannot happen) roll everything back
            raise RuntimeError(f"delivery {delivery.pk} changed under its lock")
        effect_add(
            kind=CHARGE,
            key=f"delivery:{delivery.pk}:charge:1",
            payload={"delivery_id": delivery.pk, "attempt": 1},
        )
    return "ordered"


def deliveries_place(
    *, on: date, limit: int = PLACE_BATCH_SIZE, now: datetime | None = None
) -> dict[str, int]:
    """Place the orders of up to `limit` Deliveries "due" on `on` (each its own transaction:
    delivery_place). Safe to run twice or at once: a row is placed once (locked, "due" in the
    WHERE), and its order once (the checkout token). Counts what became of them."""
    ids = list(
        Delivery.objects.filter(date=on, status=D.DUE)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    counts: Counter[str] = Counter()
    for delivery_id in ids:
        counts[delivery_place(delivery_id=delivery_id, now=now) or "untouched"] += 1
    return dict(counts)


# --- 3. the charge --------------------------------------------------------------------------------


def _payment_failed(
    *, delivery: Delivery, order_id: int | None, reason: str, action_url: str
) -> None:
    """A delivery that can't be paid (in the caller's transaction): the order fails (stock back,
    its payment closed by the order's money_return effect), the Delivery fails with the reason,
    the subscription pauses, and the customer is told how to fix the card."""
    if order_id is not None:
        order_payment_settled(order_id=order_id, payment_status="failed")
    _settle(delivery.pk, status=D.FAILED, reason=reason, since=(D.DUE, D.ORDERED))
    subscription_pause_for_payment(subscription_id=delivery.subscription_id, reason=reason)
    effect_add(
        kind=EMAIL,
        key=f"delivery:{delivery.pk}:payment_failed",
        payload={"delivery_id": delivery.pk, "what": "payment_failed", "action_url": action_url},
    )


def _charge_key(delivery_id: int, attempt: int) -> str:
    return f"delivery-{delivery_id}-try-{attempt}"


def delivery_charge(*, delivery_id: int, attempt: int) -> str:
    """Try `attempt` (1 = the first) of charging an ordered Delivery's order to its
    subscription's card off-session (module docstring, step 3). Returns authorised, retry
    (another try is scheduled) or failed. Raises NotCharged when no charge may be made (the
    reason also recorded on the Delivery where that ends it), and payments' PaymentUnavailable
    when the provider did not answer (all rolled back: the effect is tried again, same key)."""
    subscription_id = (
        Delivery.objects.filter(pk=delivery_id).values_list("subscription_id", flat=True).first()
    )
    if subscription_id is None:
        raise NotCharged(f"no delivery {delivery_id}")
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("card")
            .get(pk=subscription_id)
        )
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        order = None
        if delivery.order_id is not None:
            order = Order.objects.filter(pk=delivery.order_id).first()
        if delivery.status != D.ORDERED or order is None:
            raise NotCharged(f"the delivery is {delivery.status}")
        if order.status == Status.PENDING_PAYMENT and subscription.status == S.ACTIVE:
            return _charge_locked(
                delivery=delivery, order=order, card=subscription.card, attempt=attempt
            )
        if order.status not in RELEASES_STOCK and order.status != Status.PENDING_PAYMENT:
            return "authorised"  # paid already (a repeat of a try that succeeded)
        if order.status in RELEASES_STOCK:
            refusal = f"its order ended ({order.status}) before it was paid"
            _settle(delivery.pk, status=D.FAILED, reason=refusal, since=(D.ORDERED,))
        else:
            refusal = f"the subscription was {subscription.status} before the charge"
            order_payment_settled(order_id=order.pk, payment_status="failed")
            _settle(delivery.pk, status=D.CANCELLED, reason=refusal, since=(D.ORDERED,))
    raise NotCharged(refusal)


def price_advantage(*, order: Order, subscription_id: int) -> int:
    """The commitment's price advantage on a delivery's order: Σ (the subscription's list price −
    the line's plan price) × quantity, over the order's lines (what was placed, after a short
    cart). The platform pays it to the vendor at capture (payments.ledger); 0 for cancel-anytime
    plans, whose plan price is the list price."""
    listed = dict(
        SubscriptionItem.objects.filter(subscription_id=subscription_id).values_list(
            "product_id", "unit_price"
        )
    )
    return sum(
        max(0, listed.get(line.product_id, line.unit_price) - line.unit_price) * line.quantity
        for line in order.lines.all()
    )


def _charge_locked(
    *, delivery: Delivery, order: Order, card: SavedCard | None, attempt: int
) -> str:
    """The provider asked, the subscription and the Delivery still locked (delivery_charge)."""
    if card is None or card.status != SavedCard.Status.ACTIVE:
        _payment_failed(
            delivery=delivery,
            order_id=order.pk,
            reason="no card that can be charged (removed or needs attention)",
            action_url="",
        )
        return "failed"
    key = _charge_key(delivery.pk, attempt)
    try:
        payment = payment_charge_off_session(
            price_advantage=price_advantage(order=order, subscription_id=delivery.subscription_id),
            order_id=order.pk,
            card_id=card.pk,
            idempotency_key=key,
            amount=order.total,
            currency=order.currency,
            vendor_id=order.vendor_id,
            commission=order.commission,
            platform_fee=order.platform_fee,
            description=f"O2O order #{order.pk} (regular delivery {delivery.date})",
        )
    except PaymentRefused as exc:
        _payment_failed(
            delivery=delivery,
            order_id=order.pk,
            reason=f"card refused: {exc.messages[0]}",
            action_url="",
        )
        return "failed"
    Order.objects.filter(pk=order.pk, payment_id__isnull=True).update(payment_id=payment.pk)
    if payment_outcome(payment.status) == "authorised":
        order_payment_settled(order_id=order.pk, payment_status="authorised")
        # Paid: it joins the vendor's round for the day (subscriptions.round), accepted already.
        order_accept_standing(order_id=order.pk)
        return "authorised"
    tried = card_charge_get(idempotency_key=key)
    kind = tried.decline_kind if tried is not None else ""
    words = (tried.failure_message or tried.failure_code) if tried is not None else ""
    next_at = charge_retry_at(attempt=attempt, decline_kind=kind, now=timezone.now())
    if next_at is not None and order.expires_at is not None and next_at < order.expires_at:
        effect_add(
            kind=CHARGE,
            key=f"delivery:{delivery.pk}:charge:{attempt + 1}",
            payload={"delivery_id": delivery.pk, "attempt": attempt + 1},
            run_at=next_at,
        )
        Delivery.objects.filter(pk=delivery.pk, status=D.ORDERED).update(
            reason=f"try {attempt} declined ({words}); next try at {next_at:%Y-%m-%d %H:%M}"[:200]
        )
        return "retry"
    if tried is not None and tried.outcome == CardCharge.Outcome.AUTHENTICATION_REQUIRED:
        reason = "the card holder must confirm the payment"
    elif kind == DeclineKind.SOFT:
        reason = f"card declined {attempt} times, last: {words}"
    else:
        reason = f"card declined: {words or 'no reason given'}"
    _payment_failed(
        delivery=delivery,
        order_id=order.pk,
        reason=reason,
        action_url=tried.action_url if tried is not None else "",
    )
    return "failed"


# --- 4. the completeness check --------------------------------------------------------------------


def deliveries_check(*, through: date, days: int = CHECK_DAYS) -> int:
    """Every due day in the `days` up to `through` of every active, paused or recently cancelled
    subscription has exactly one Delivery that is ordered, skipped, failed or cancelled (not
    still "due": `through` itself counts as over, the check runs at night). Anything else is an
    open payments.Discrepancy of kind delivery_incomplete, one per subscription+day however often
    this runs. Returns how many problems it saw.

    The calendar is the subscription's as it stands (schedule, the vendor's days) with every pause
    it had, ended ones too (SubscriptionPause). Known limit: the schedule before a change of days is
    not kept, so days before `schedule_from` are checked only for rows left "due", not for
    missing ones."""
    from payments.reconciliation import Finding, discrepancy_record

    since = through - timedelta(days=days - 1)
    recent = timezone.now() - timedelta(days=CHECK_CANCELLED_DAYS)
    subscriptions = (
        Subscription.objects.filter(starts_on__lte=through)
        .filter(
            Q(status__in=(S.ACTIVE, S.PAUSED)) | Q(status=S.CANCELLED, cancelled_at__gte=recent)
        )
        .order_by("pk")
    )
    problems = 0
    for subscription in subscriptions.iterator(chunk_size=500):
        last_day = through
        if subscription.cancelled_at is not None:
            last_day = min(
                through, timezone.localdate(subscription.cancelled_at) - timedelta(days=1)
            )
        first_day = max(since, subscription.starts_on)
        if last_day < first_day:
            continue
        expected = due_dates(
            schedules=[(subscription.schedule_from, subscription.schedule)],
            starts_on=subscription.starts_on,
            between=(first_day, last_day),
            pauses=pause_history(subscription),
            vendor_weekdays=vendor_weekdays(vendor_id=subscription.vendor_id),
        )
        rows = dict(
            Delivery.objects.filter(
                subscription=subscription, date__gte=first_day, date__lte=last_day
            ).values_list("date", "status")
        )
        for day in sorted(set(expected) | {d for d, st in rows.items() if st == D.DUE}):
            status = rows.get(day)
            if status is not None and status != D.DUE:
                continue
            problems += 1
            discrepancy_record(
                Finding(
                    kind=Discrepancy.Kind.DELIVERY_INCOMPLETE,
                    object_ref=f"subscription:{subscription.pk}:{day.isoformat()}",
                    expected="one delivery ordered, skipped, failed or cancelled",
                    actual="no delivery" if status is None else "still due after its day",
                    detail=(
                        f"Subscription #{subscription.pk} was due on {day.isoformat()} but "
                        + (
                            "no Delivery was made for that day (was the evening run missed?)."
                            if status is None
                            else "its Delivery was never ordered (was the morning run missed?)."
                        )
                    )[:300],
                )
            )
    return problems
