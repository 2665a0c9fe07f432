"""The order state machine: one guarded UPDATE per edge (_transition), the effects each ending
writes in the same transaction, and the vendor's, the customer's and the system's actions."""

import logging
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from o2o.errors import Conflict, NotAllowed
from o2o.hooks import on_commit_safe
from payments.errors import PaymentUnavailable
from vendors.models import Vendor
from vendors.services import stock_release

from ..models import FINAL, Fulfilment, Order, OrderEvent, OrderLine, Status

if TYPE_CHECKING:
    from o2o.accounts.models import User

log = logging.getLogger(__name__)
Role = OrderEvent.Role


HANDOVER_MAX_TRIES = 5
HANDOVER_LOCK_SECONDS = 15 * 60  # counted from the first try


class InvalidTransition(Conflict):
    """The order is not in a state that allows this (someone else acted first, or too late)."""


class CodeCheckUnavailable(PaymentUnavailable):
    """The hand-over code's try counter can't be reached (Redis down): try again shortly (503)."""


# The graph: for each action, the states it may start from and the state it leads to.
EDGES: dict[str, tuple[tuple[str, ...], str]] = {
    "authorise": ((Status.PENDING_PAYMENT,), Status.PLACED),
    "fail": ((Status.PENDING_PAYMENT,), Status.FAILED),
    "accept": ((Status.PLACED,), Status.ACCEPTED),
    "reject": ((Status.PLACED,), Status.REJECTED),
    "expire": ((Status.PLACED,), Status.EXPIRED),
    "cancel": ((Status.PENDING_PAYMENT, Status.PLACED), Status.CANCELLED),
    "depart": ((Status.ACCEPTED,), Status.EN_ROUTE),
    "ready": ((Status.ACCEPTED, Status.EN_ROUTE), Status.READY),
    "hand_over": ((Status.ACCEPTED, Status.EN_ROUTE, Status.READY), Status.HANDED_OVER),
    "complete": ((Status.HANDED_OVER,), Status.COMPLETED),
    "uncollected": ((Status.READY,), Status.CANCELLED),
    # Staff (support, admin): cancel anything not yet handed over; expire an unaccepted order now.
    "staff_cancel": (
        (Status.PENDING_PAYMENT, Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY),
        Status.CANCELLED,
    ),
    "staff_expire": ((Status.PLACED,), Status.EXPIRED),
    # The vendor, after accepting, can no longer supply the order at all (cart broke, stock gone).
    "vendor_cancel": ((Status.ACCEPTED, Status.EN_ROUTE, Status.READY), Status.CANCELLED),
}
# Endings without a handover put the stock back; those after payment return the money.
RELEASES_STOCK = {Status.FAILED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED}


def _transition(
    *,
    order_id: int,
    action: str,
    actor: "User | None" = None,
    role: str,
    reason: str = "",
    scope: dict[str, Any] | Q | None = None,
    **fields: Any,
) -> Order:
    """Move the order along one edge of the graph, in SQL, or raise InvalidTransition."""
    sources, to = EDGES[action]
    now = timezone.now()
    rows = Order.objects.filter(pk=order_id, status__in=sources)
    rows = rows.filter(scope) if isinstance(scope, Q) else rows.filter(**(scope or {}))
    current = rows.values_list("status", flat=True).first()
    if current is None or not rows.filter(status=current).update(
        status=to, updated_at=now, reason=reason[:200] if reason else "", **fields
    ):
        raise InvalidTransition(_("This order can no longer be changed that way."))
    event = OrderEvent.objects.create(
        order_id=order_id,
        from_status=current,
        to_status=to,
        actor=actor,
        role=role,
        reason=reason[:200],
    )
    if to in RELEASES_STOCK:
        order = Order.objects.get(pk=order_id)
        # Units the vendor marked as not supplied weren't there: they don't go back on the cart.
        supplied = order.lines.annotate(left=F("quantity") - F("short_quantity"))
        stock_release(
            vendor_id=order.vendor_id,
            items={pid: n for pid, n in supplied.values_list("product_id", "left") if n > 0},
            reference=order_id,  # back to the lots the order took them from
        )
    if to == Status.COMPLETED:  # the record of the sale, in the sale's transaction
        from insights.services import sale_record_order

        sale_record_order(order_id=order_id)
    # What must follow (money, e-mail, partner events) is written here, in this transaction.
    from ..effects import transition_effects_add

    transition_effects_add(order_id=order_id, from_status=current, to=to, event_id=event.pk)
    _broadcast_after_commit(order_id=order_id, to=to)
    return Order.objects.select_related("vendor", "customer__user").get(pk=order_id)


def _broadcast_after_commit(*, order_id: int, to: str) -> None:
    """The live pages hear of the change after commit: best-effort (a page that missed it resyncs
    on reconnect), and a failure never reaches the caller nor another hook."""
    from .. import notifications

    on_commit_safe(notifications.order_changed, order_id=order_id, status=to)


def _vendor_scope(vendor: Vendor) -> dict[str, Any]:
    """The filter that keeps a vendor to their own orders, after checking they may still sell.

    The status is read here, not joined into the guarded UPDATE: Django turns an UPDATE filtered
    through a join into `WHERE id IN (SELECT ...)`, and PostgreSQL does not re-check that subquery
    when a concurrent transaction changed the row, which would let two transitions both win."""
    if not Vendor.objects.filter(pk=vendor.pk, status=Vendor.Status.APPROVED).exists():
        raise NotAllowed(_("Your vendor account can't take orders now."))
    return {"vendor": vendor}


# --- the vendor -------------------------------------------------------------------------------


@transaction.atomic
def order_accept(*, order_id: int, vendor: Vendor, eta_minutes: int) -> Order:
    """PLACED -> ACCEPTED, by the order's own vendor, with an ETA."""
    if (
        isinstance(eta_minutes, bool)
        or not isinstance(eta_minutes, int)
        or not (1 <= eta_minutes <= 24 * 60)
    ):
        raise ValidationError({"eta_minutes": _("Give an ETA between 1 minute and 24 hours.")})
    now = timezone.now()
    return _transition(
        order_id=order_id,
        action="accept",
        actor=vendor.user,
        role=Role.VENDOR,
        # Past its deadline an order is no longer acceptable, even before the sweep expires it.
        scope=Q(**_vendor_scope(vendor)) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
        accepted_at=now,
        eta=now + timedelta(minutes=eta_minutes),
        expires_at=None,
    )


@transaction.atomic
def order_reject(*, order_id: int, vendor: Vendor, reason: str) -> Order:
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Tell the customer why.")})
    return _transition(
        order_id=order_id,
        action="reject",
        actor=vendor.user,
        role=Role.VENDOR,
        reason=reason.strip(),
        scope=_vendor_scope(vendor),
        expires_at=None,
    )


@transaction.atomic
def order_depart(*, order_id: int, vendor: Vendor) -> Order:
    return _transition(
        order_id=order_id,
        action="depart",
        actor=vendor.user,
        role=Role.VENDOR,
        scope=_vendor_scope(vendor),
    )


@transaction.atomic
def order_ready(*, order_id: int, vendor: Vendor) -> Order:
    """Arrived at the meeting point / door, or left at the pickup point (hold time starts)."""
    order = Order.objects.filter(pk=order_id, vendor=vendor).first()
    extra: dict[str, Any] = {}
    if order is not None and order.fulfilment == Fulfilment.PICKUP:
        extra["expires_at"] = timezone.now() + timedelta(hours=settings.PICKUP_HOLD_HOURS)
    return _transition(
        order_id=order_id,
        action="ready",
        actor=vendor.user,
        role=Role.VENDOR,
        scope=_vendor_scope(vendor),
        **extra,
    )


@transaction.atomic
def order_hand_over(*, order_id: int, vendor: Vendor, code: str) -> Order:
    """The vendor hands the goods over; the customer's code proves it is the right person."""
    order = Order.objects.filter(pk=order_id, vendor=vendor).first()
    if order is None:
        raise InvalidTransition(_("This order can no longer be changed that way."))
    # A 4-digit code is only safe with few tries: after HANDOVER_MAX_TRIES wrong ones the order
    # is locked for a while (counted in the cache, so every server process sees it). Each try is
    # counted atomically BEFORE the code is compared: parallel guesses each get their own number,
    # so no more than HANDOVER_MAX_TRIES are ever compared in one window.
    _check_code(order, code)
    return _transition(
        order_id=order_id,
        action="hand_over",
        actor=vendor.user,
        role=Role.VENDOR,
        scope=_vendor_scope(vendor),
        handed_over_at=timezone.now(),
        expires_at=None,
    )


@transaction.atomic
def order_collect_at_point(*, order_id: int, point_id: int, code: str, actor: "User") -> Order:
    """The customer collects a pickup order at its partner point: the point's staff (or its
    system, over the API) types the customer's code. The same attempt limits and the same guarded
    hand-over edge as the vendor's."""
    order = Order.objects.filter(
        pk=order_id, pickup_point_id=point_id, fulfilment=Fulfilment.PICKUP
    ).first()
    if order is None:
        raise NotAllowed(_("No such order at this pickup point."))
    if order.status != Status.READY:
        raise InvalidTransition(_("This order is not waiting at the pickup point."))
    _check_code(order, code)
    return _transition(
        order_id=order_id,
        action="hand_over",
        actor=actor,
        role=Role.STAFF,
        reason="collected at the pickup point",
        scope={"pickup_point_id": point_id},
        handed_over_at=timezone.now(),
        expires_at=None,
    )


def _check_code(order: Order, code: str) -> None:
    """Count the try, then compare the code (raises ValidationError)."""
    tries_key = f"orders:handover-tries:{order.checkout_token}"  # unique across databases
    tries = _handover_try(tries_key)
    if tries > HANDOVER_MAX_TRIES and getattr(cache, "unavailable", False):
        # The try counter lives in Redis, which is not answering: a code can't be compared
        # uncounted, and "too many wrong codes" would be a lie.
        raise CodeCheckUnavailable(
            _("Codes can't be checked for a moment. Try again in a few seconds."),
            code="unavailable",
        )
    if tries > HANDOVER_MAX_TRIES:
        raise ValidationError(
            {"code": _("Too many wrong codes. Wait 15 minutes or ask support to help.")}
        )
    # Bytes: compare_digest raises TypeError on non-ASCII str (a full-width digit, a typo).
    typed = str(code or "").strip().encode()
    if not secrets.compare_digest(typed, order.handover_code.encode()):
        raise ValidationError({"code": _("That code is not right. Ask the customer to show it.")})
    # The right code: the tries before it were typos, and whoever knows it needs no guessing.
    cache.delete(tries_key)


def _handover_try(key: str) -> int:
    """Count one handover try; the how-many-th it is in the current window. Atomic in Redis and
    in LocMemCache alike: `add` starts the window only if there is none, `incr` counts."""
    for _attempt in range(3):
        cache.add(key, 0, timeout=HANDOVER_LOCK_SECONDS)
        try:
            n = cache.incr(key)
        except ValueError:  # the window ended between add and incr: start a new one
            continue
        if n == 1:
            # Redis INCR on a key that expired after Django's exists() check creates it without
            # a timeout; the first try of a window (re)sets it, so no count outlives its window.
            cache.touch(key, HANDOVER_LOCK_SECONDS)
        return n
    return HANDOVER_MAX_TRIES + 1  # the cache keeps losing the key: refuse rather than compare


@transaction.atomic
def order_vendor_cancel(*, order_id: int, vendor: Vendor, reason: str) -> Order:
    """The vendor can't supply an accepted order after all: CANCELLED, the stock goes back and the
    money is returned (void, or refund if captured), as for every cancel."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Tell the customer why.")})
    return _transition(
        order_id=order_id,
        action="vendor_cancel",
        actor=vendor.user,
        role=Role.VENDOR,
        reason=reason,
        scope=_vendor_scope(vendor),
        expires_at=None,
    )


# --- standing orders (a regular's delivery, made by the subscriptions app) ----------------------


@transaction.atomic
def order_accept_standing(*, order_id: int) -> Order:
    """PLACED -> ACCEPTED by the system: a regular's delivery, paid, that the vendor agreed to when
    the subscription was made (it joins the day's round; nobody taps "accept" 330 times). Refused,
    like any accept, when the vendor can no longer sell."""
    order = Order.objects.select_related("vendor").get(pk=order_id)
    return _transition(
        order_id=order_id,
        action="accept",
        role=Role.SYSTEM,
        reason="a regular delivery",
        scope=_vendor_scope(order.vendor),
        accepted_at=timezone.now(),
        eta=order.window_end,
        expires_at=None,
    )


@transaction.atomic
def order_hand_over_at_cart(*, order_id: int) -> Order:
    """A walk-up sale paid at the cart (counter): accepted and handed over at once by the system,
    the buyer standing at the cart; the vendor's counter screen shows it live. At-cart orders
    only; the capture follows the handover as for any order."""
    now = timezone.now()
    scope = {"fulfilment": Fulfilment.AT_CART, "walkup": True}
    reason = "paid at the cart"
    _transition(
        order_id=order_id,
        action="accept",
        role=Role.SYSTEM,
        reason=reason,
        scope=scope,
        accepted_at=now,
        expires_at=None,
    )
    return _transition(
        order_id=order_id,
        action="hand_over",
        role=Role.SYSTEM,
        reason=reason,
        scope=scope,
        handed_over_at=now,
        expires_at=None,
    )


@transaction.atomic
def order_hand_over_unattended(*, order_id: int, vendor: Vendor, reason: str) -> Order:
    """A regular's delivery handed over without the customer's code: left at the door, as the
    customer chose beforehand (subscriptions.round checks the choice). Delivery orders only."""
    return _transition(
        order_id=order_id,
        action="hand_over",
        actor=vendor.user,
        role=Role.VENDOR,
        reason=reason,
        scope=Q(**_vendor_scope(vendor)) & Q(fulfilment=Fulfilment.DELIVERY),
        handed_over_at=timezone.now(),
        expires_at=None,
    )


@transaction.atomic
def order_reschedule(
    *, order_id: int, vendor: Vendor, window_start: datetime, window_end: datetime, reason: str
) -> Order:
    """Nobody was at home: the delivery is tried again in a later window (the money stays held).
    Not a change of state: the window moves, guarded on a state that is still to hand over."""
    if window_end <= window_start:
        raise ValidationError(_("The time window must end after it starts."))
    scope = _vendor_scope(vendor)
    moved = Order.objects.filter(
        pk=order_id,
        fulfilment=Fulfilment.DELIVERY,
        status__in=(Status.ACCEPTED, Status.EN_ROUTE, Status.READY),
        **scope,
    ).update(
        window_start=window_start,
        window_end=window_end,
        eta=window_end,
        reason=reason[:200],
        updated_at=timezone.now(),
    )
    if not moved:
        raise InvalidTransition(_("This order can no longer be changed that way."))
    order = Order.objects.select_related("vendor", "customer__user").get(pk=order_id)
    _broadcast_after_commit(order_id=order_id, to=order.status)
    return order


# Before the handover the vendor may mark units of a line as not supplied.
SHORT_STATES = (Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY)
# A short line's automatic refund is recognised by its Refund row's reason (cf. LINE_REFUND_PREFIX).
SHORT_REFUND_PREFIX = "line {line_id} short:"


@transaction.atomic
def order_line_short(
    *, order_id: int, line_id: int, vendor: Vendor, quantity: int, reason: str
) -> Order:
    """The vendor can't supply `quantity` more units of a line (damaged, miscounted): the customer
    won't pay for them (refunded right after the capture) and is told. The order row is locked, so
    a handover at the same moment either waits for this or makes it fail; the units' stock stays
    off the cart (they weren't there). Leaving nothing to hand over is refused: cancel instead."""
    scope = _vendor_scope(vendor)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValidationError({"quantity": _("Enter a whole number of 1 or more.")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Tell the customer why.")})
    order = Order.objects.select_for_update().filter(pk=order_id, **scope).first()
    if order is None:
        raise NotAllowed(_("No such order."))
    if order.status not in SHORT_STATES:
        raise InvalidTransition(_("This order can no longer be changed that way."))
    lines = list(order.lines.select_for_update().order_by("pk"))
    line = next((item for item in lines if item.pk == line_id), None)
    if line is None:
        raise ValidationError({"line": _("This order has no such line.")})
    most = line.quantity - line.short_quantity
    if quantity > most:
        raise ValidationError(
            {"quantity": _("At most %(n)d more of this line can be marked.") % {"n": most}}
        )
    if sum(item.quantity - item.short_quantity for item in lines) - quantity <= 0:
        raise InvalidTransition(_("Nothing would be left to hand over: cancel the order instead."))
    OrderLine.objects.filter(pk=line.pk).update(
        short_quantity=F("short_quantity") + quantity, short_reason=reason[:200]
    )
    log.info("order %s line %s: %s not supplied (%s)", order.pk, line.pk, quantity, reason)
    from ..effects import line_short_effects_add

    line_short_effects_add(
        order_id=order.pk,
        line_id=line.pk,
        quantity=quantity,
        short_total=line.short_quantity + quantity,
    )
    _broadcast_after_commit(order_id=order.pk, to=order.status)
    return Order.objects.select_related("vendor", "customer__user").get(pk=order.pk)


# --- the customer -----------------------------------------------------------------------------


@transaction.atomic
def order_cancel(*, order_id: int, customer: CustomerProfile, reason: str = "") -> Order:
    """The customer cancels before the vendor accepts."""
    return _transition(
        order_id=order_id,
        action="cancel",
        actor=customer.user,
        role=Role.CUSTOMER,
        reason=reason.strip() or "cancelled by the customer",
        scope={"customer": customer},
        expires_at=None,
    )


# --- the system -------------------------------------------------------------------------------


@transaction.atomic
def order_complete(*, order_id: int) -> Order | None:
    """HANDED_OVER -> COMPLETED once the money is captured."""
    try:
        return _transition(
            order_id=order_id, action="complete", role=Role.SYSTEM, completed_at=timezone.now()
        )
    except InvalidTransition:
        return None


def orders_expire(*, now: datetime | None = None, batch_size: int = 200) -> dict[str, int]:
    """Nobody accepted in time -> EXPIRED; never paid -> FAILED; pickup not collected ->
    CANCELLED. Bounded batches; each transition re-checks its state in SQL, so it is safe to run
    twice or beside a vendor accepting at the last second."""
    now = now or timezone.now()
    done = {"expired": 0, "unpaid": 0, "uncollected": 0}
    plans = (
        ("expired", "expire", {"status": Status.PLACED}),
        ("unpaid", "fail", {"status": Status.PENDING_PAYMENT}),
        ("uncollected", "uncollected", {"status": Status.READY, "fulfilment": Fulfilment.PICKUP}),
    )
    for label, action, filters in plans:
        ids = list(
            Order.objects.filter(expires_at__lt=now, **filters)
            .order_by("expires_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        for order_id in ids:
            try:
                with transaction.atomic():
                    _transition(
                        order_id=order_id,
                        action=action,
                        role=Role.SYSTEM,
                        reason={
                            "expired": "nobody accepted in time",
                            "unpaid": "not paid in time",
                            "uncollected": "not collected in time",
                        }[label],
                        # The deadline stays on the order: the page says which one was missed.
                        scope={"expires_at__lt": now},
                    )
            except InvalidTransition:
                continue
            done[label] += 1
    return done


def order_is_final(order: Order) -> bool:
    return order.status in FINAL
