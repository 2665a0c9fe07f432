"""Every write of an order: placement (stock reserved, payment started), and one function per
state transition, each guarded in SQL (the allowed source states sit in the UPDATE's WHERE), each
writing an OrderEvent and, after commit, telling the customer's and the vendor's live pages.

    checkout -> PENDING_PAYMENT --authorised--> PLACED --accept--> ACCEPTED --depart--> EN_ROUTE
       --ready--> READY --hand over (code)--> HANDED_OVER --captured--> COMPLETED
    PENDING_PAYMENT --declined / abandoned--> FAILED
    PLACED --reject--> REJECTED;  PLACED --nobody accepts in time--> EXPIRED
    PENDING_PAYMENT | PLACED --customer cancels--> CANCELLED
    READY (pickup) --not collected in the hold time--> CANCELLED (money returned)
    ACCEPTED | EN_ROUTE | READY --the vendor can't supply it after all--> CANCELLED
Stock goes back on the cart whenever an order ends without a handover. Before the handover the
vendor may mark units of a line as not supplied (order_line_short): they are refunded, with exactly
their commission, right after the capture (order_short_lines_refund).
"""

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import h3
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from o2o.errors import Conflict, Forbidden, NotAllowed
from o2o.geo import distance_m
from o2o.money import format_money
from payments.commission import commission_bps_for, commission_of
from payments.errors import PaymentUnavailable  # re-exported for views and APIs
from tracking.models import VendorPosition
from vendors.models import OpeningHours, PickupPoint, Product, ServiceCell, Vendor
from vendors.services import stock_release, stock_reserve

from .models import FINAL, Fulfilment, Order, OrderEvent, OrderLine, Status

log = logging.getLogger(__name__)
Role = OrderEvent.Role
HANDOVER_MAX_TRIES = 5
HANDOVER_LOCK_SECONDS = 15 * 60  # counted from the first try


class InvalidTransition(Conflict):
    """The order is not in a state that allows this (someone else acted first, or too late)."""


class PricesChanged(Conflict):
    """The total is no longer the one the customer saw and agreed to (a price or the delivery fee
    changed since the checkout page was drawn): nothing is placed. `total` is the new total."""

    total: int | None = None

    @classmethod
    def of(cls, *, total: int, currency: str) -> "PricesChanged":
        exc = cls(
            _(
                "The prices changed since you opened this page: the total is now %(total)s. "
                "Check your order and send it again."
            )
            % {"total": format_money(total, currency)},
            code="prices_changed",
        )
        exc.total = total
        return exc


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


@dataclass(frozen=True)
class LineIn:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class Receive:
    """How the customer receives the order, with what each way needs."""

    fulfilment: str
    address_id: int | None = None
    pickup_point_id: int | None = None
    meet_cell: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None


def _items(lines: list[LineIn]) -> dict[int, int]:
    if not lines:
        raise ValidationError(_("The cart is empty."))
    items: dict[int, int] = {}
    for line in lines:
        q = line.quantity
        if isinstance(q, bool) or not isinstance(q, int) or q < 1:
            raise ValidationError(_("Quantities must be at least 1."))
        items[line.product_id] = items.get(line.product_id, 0) + q
    # The limit is per product, so it applies after lines of the same product are merged.
    if max(items.values()) > settings.ORDER_MAX_QUANTITY:
        raise ValidationError(
            _("At most %(n)s of one product per order.") % {"n": settings.ORDER_MAX_QUANTITY}
        )
    return items


def _vendor_position(vendor: Vendor) -> VendorPosition | None:
    return VendorPosition.objects.filter(vendor=vendor).first()


def _check_window(receive: Receive, now: datetime) -> None:
    start, end = receive.window_start, receive.window_end
    if start is None or end is None:
        raise ValidationError(_("Choose a time window."))
    if end <= start:
        raise ValidationError(_("The time window must end after it starts."))
    if end < now or start > now + timedelta(days=2):
        raise ValidationError(_("Choose a time window between now and the day after tomorrow."))


def _pickup_open(point: PickupPoint, start: datetime, end: datetime) -> bool:
    local_start, local_end = timezone.localtime(start), timezone.localtime(end)
    return OpeningHours.objects.filter(
        point=point,
        weekday=local_start.weekday(),
        opens__lte=local_start.time(),
        closes__gte=local_end.time() if local_end.date() == local_start.date() else "23:59",
    ).exists()


def _receive_fields(
    *, receive: Receive, customer: CustomerProfile, vendor: Vendor, now: datetime
) -> dict:
    """Check the way to receive against its rules; the fields it puts on the order."""
    kind = receive.fulfilment
    if kind == Fulfilment.DELIVERY:
        address = customer.addresses.filter(pk=receive.address_id).first()
        if address is None:
            raise ValidationError({"address": _("Choose one of your addresses.")})
        area_cell = h3.latlng_to_cell(address.lat, address.lng, settings.SERVICE_AREA_RES)
        if not ServiceCell.objects.filter(vendor=vendor, cell=area_cell).exists():
            raise ValidationError(
                {"address": _("This address is outside the area this vendor delivers to.")}
            )
        _check_window(receive, now)
        return {
            "delivery_address": f"{address.line1} {address.line2}".strip(),
            "delivery_lat": address.lat,
            "delivery_lng": address.lng,
            "delivery_fee": vendor.delivery_fee,
            "window_start": receive.window_start,
            "window_end": receive.window_end,
        }
    if kind == Fulfilment.PICKUP:
        point = PickupPoint.objects.filter(pk=receive.pickup_point_id, is_active=True).first()
        if point is None:
            raise ValidationError({"pickup_point": _("Choose an open pickup point.")})
        if distance_m(point.lat, point.lng, vendor.home_lat, vendor.home_lng) > (
            settings.PICKUP_MAX_KM * 1000
        ):
            raise ValidationError(
                {"pickup_point": _("This pickup point is too far from the vendor.")}
            )
        _check_window(receive, now)
        if not _pickup_open(point, receive.window_start, receive.window_end):
            raise ValidationError(
                {"pickup_point": _("The pickup point is closed at that time. Choose another time.")}
            )
        return {
            "pickup_point": point,
            "window_start": receive.window_start,
            "window_end": receive.window_end,
        }
    if kind == Fulfilment.MEET:
        pos = _vendor_position(vendor)
        if pos is None or not pos.is_public:
            raise ValidationError(
                _("This vendor is not on the road now; choose pickup or delivery.")
            )
        cell = receive.meet_cell
        valid = isinstance(cell, str) and h3.is_valid_cell(cell) if cell else False
        if not valid or h3.get_resolution(cell) != settings.PUBLIC_CELL_RES:
            raise ValidationError({"meet_cell": _("Choose a meeting point on the map.")})
        cell = h3.int_to_str(h3.str_to_int(cell))  # the one spelling: "89AB…" or "８９…" too
        try:
            rings = h3.grid_distance(cell, pos.public_cell)
        except h3.H3BaseException:  # no grid path (far apart, across a pentagon): too far
            rings = settings.MEET_MAX_RINGS + 1
        if rings > settings.MEET_MAX_RINGS:
            raise ValidationError({"meet_cell": _("Choose a meeting point nearer the vendor.")})
        _check_window(receive, now)
        return {
            "meet_cell": cell,
            "window_start": receive.window_start,
            "window_end": receive.window_end,
        }
    if kind == Fulfilment.AT_CART:
        return {}
    raise ValidationError({"fulfilment": _("Choose how to receive the order.")})


@transaction.atomic
def order_place(
    *,
    customer: CustomerProfile,
    vendor_id: int,
    lines: list[LineIn],
    receive: Receive,
    checkout_token: uuid.UUID,
    note: str = "",
    now: datetime | None = None,
    expected_total: int | None = None,
) -> Order:
    """Create the order and reserve its stock, all or nothing. Idempotent on checkout_token: the
    same checkout submitted twice gives back the first order. Payment starts after commit
    (order_payment_start), outside this transaction: no network call holds database locks.

    `expected_total` is the total (items and delivery fee, in minor units) the customer was shown;
    when given and the total at current prices differs, PricesChanged and nothing is placed."""
    now = now or timezone.now()
    existing = Order.objects.filter(checkout_token=checkout_token).first()
    if existing is not None:
        if existing.customer_id != customer.pk:
            raise NotAllowed(_("This checkout belongs to someone else."))
        return existing
    vendor = Vendor.objects.filter(pk=vendor_id).first()
    if vendor is None or not vendor.can_sell:
        raise ValidationError(_("This vendor is not selling now."))
    pos = _vendor_position(vendor)
    if pos is None or not pos.on_shift:
        raise ValidationError(_("This vendor is off shift now. Try again later."))
    if vendor.user_id == customer.user_id:
        raise ValidationError(_("You can't order from your own cart."))
    items = _items(lines)
    products = {p.pk: p for p in Product.objects.filter(pk__in=items, is_active=True)}
    if len(products) != len(items):
        raise ValidationError(_("A product in the cart is no longer on sale."))
    extra = _receive_fields(receive=receive, customer=customer, vendor=vendor, now=now)
    subtotal = sum(products[pid].price * q for pid, q in items.items())
    delivery_fee = extra.pop("delivery_fee", 0)
    if expected_total is not None and expected_total != subtotal + delivery_fee:
        raise PricesChanged.of(total=subtotal + delivery_fee, currency=settings.CURRENCY)
    # The commission plans in force now, snapshotted per line (a category may have its own).
    vendor_bps, category_bps = commission_bps_for(
        vendor_id=vendor.pk, category_ids={p.category_id for p in products.values()}, at=now
    )
    line_bps = {pid: category_bps[products[pid].category_id] for pid in items}
    line_commission = {
        pid: commission_of(products[pid].price * q, line_bps[pid]) for pid, q in items.items()
    }
    platform_fee = delivery_fee if settings.DELIVERY_FEE_TO == "platform" else 0
    # The order row first: its unique checkout token makes a duplicate of this checkout wait
    # here (not on the stock) and get the first order back, even for the last unit on the cart.
    try:
        with transaction.atomic():
            order = Order.objects.create(
                customer=customer,
                vendor=vendor,
                status=Status.PENDING_PAYMENT,
                fulfilment=receive.fulfilment,
                note=note.strip()[:200],
                currency=settings.CURRENCY,
                subtotal=subtotal,
                delivery_fee=delivery_fee,
                total=subtotal + delivery_fee,
                commission_bps=vendor_bps,
                commission=sum(line_commission.values()),
                platform_fee=platform_fee,
                handover_code=f"{secrets.randbelow(10**4):04d}",
                checkout_token=checkout_token,
                expires_at=now + timedelta(minutes=settings.ORDER_PAYMENT_MINUTES),
                **extra,
            )
    except IntegrityError:
        # The same checkout raced with itself: the other request created it (nothing of this
        # one is written yet); give that back.
        existing = Order.objects.filter(checkout_token=checkout_token).first()
        if existing is None:
            raise Conflict(_("This checkout is already being placed.")) from None
        if existing.customer_id != customer.pk:
            raise NotAllowed(_("This checkout belongs to someone else.")) from None
        return existing
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                product=products[pid],
                name_ko=products[pid].name_ko,
                name_en=products[pid].name_en,
                unit_price=products[pid].price,
                quantity=q,
                line_total=products[pid].price * q,
                commission_bps=line_bps[pid],
                commission=line_commission[pid],
            )
            for pid, q in sorted(items.items())
        ]
    )
    stock_reserve(vendor_id=vendor.pk, items=items)  # OutOfStock rolls the order back
    OrderEvent.objects.create(
        order=order, to_status=Status.PENDING_PAYMENT, actor=customer.user, role=Role.CUSTOMER
    )
    return order


def _transition(
    *,
    order_id: int,
    action: str,
    actor=None,
    role: str,
    reason: str = "",
    scope: dict | Q | None = None,
    **fields,
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
    OrderEvent.objects.create(
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
        )
    transaction.on_commit(partial(_after_transition, order_id=order_id, to=to), robust=True)
    return Order.objects.select_related("vendor", "customer__user").get(pk=order_id)


def _after_transition(*, order_id: int, to: str) -> None:
    from . import notifications

    notifications.order_changed(order_id=order_id, status=to)
    if to in (Status.REJECTED, Status.EXPIRED, Status.CANCELLED, Status.FAILED):
        from .tasks import order_money_return

        order_money_return.delay(order_id)
    elif to == Status.HANDED_OVER:
        from .tasks import order_capture

        order_capture.delay(order_id)


def _vendor_scope(vendor: Vendor) -> dict:
    """The filter that keeps a vendor to their own orders, after checking they may still sell.

    The status is read here, not joined into the guarded UPDATE: Django turns an UPDATE filtered
    through a join into `WHERE id IN (SELECT ...)`, and PostgreSQL does not re-check that subquery
    when a concurrent transaction changed the row, which would let two transitions both win."""
    if not Vendor.objects.filter(pk=vendor.pk, status=Vendor.Status.APPROVED).exists():
        raise NotAllowed(_("Your vendor account can't take orders now."))
    return {"vendor": vendor}


# --- payment --------------------------------------------------------------------------------


def order_payment_start(*, order_id: int, return_url: str) -> str:
    """Start the payment at the provider; the URL of its card page. Safe to call twice."""
    from payments.services import payment_start

    order = Order.objects.get(pk=order_id)
    if order.status != Status.PENDING_PAYMENT:
        raise InvalidTransition(_("This order is not waiting for payment."))
    payment = payment_start(
        order_id=order.pk,
        amount=order.total,
        currency=order.currency,
        return_url=return_url,
        description=f"O2O order #{order.pk}",
        vendor_id=order.vendor_id,
        commission=order.commission,
        platform_fee=order.platform_fee,
    )
    Order.objects.filter(pk=order.pk, payment_id__isnull=True).update(payment_id=payment.pk)
    return payment.checkout_url


@transaction.atomic
def order_payment_settled(*, order_id: int, payment_status: str) -> Order | None:
    """The payment of a waiting order was decided at the provider: PLACED or FAILED.
    Repeated or late news (a webhook after the return page) changes nothing."""
    now = timezone.now()
    try:
        if payment_status == "authorised":
            return _transition(
                order_id=order_id,
                action="authorise",
                role=Role.SYSTEM,
                placed_at=now,
                expires_at=now + timedelta(minutes=settings.ORDER_ACCEPT_MINUTES),
            )
        if payment_status == "failed":
            return _transition(
                order_id=order_id, action="fail", role=Role.SYSTEM, reason="payment declined"
            )
    except InvalidTransition:
        return None
    return None


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
    extra = {}
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
    tries_key = f"orders:handover-tries:{order.checkout_token}"  # unique across databases
    if _handover_try(tries_key) > HANDOVER_MAX_TRIES:
        raise ValidationError(
            {"code": _("Too many wrong codes. Wait 15 minutes or ask support to help.")}
        )
    # Bytes: compare_digest raises TypeError on non-ASCII str (a full-width digit, a typo).
    typed = str(code or "").strip().encode()
    if not secrets.compare_digest(typed, order.handover_code.encode()):
        raise ValidationError({"code": _("That code is not right. Ask the customer to show it.")})
    # The right code: the tries before it were typos, and whoever knows it needs no guessing.
    cache.delete(tries_key)
    return _transition(
        order_id=order_id,
        action="hand_over",
        actor=vendor.user,
        role=Role.VENDOR,
        scope=_vendor_scope(vendor),
        handed_over_at=timezone.now(),
        expires_at=None,
    )


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
    transaction.on_commit(
        partial(_after_short, order_id=order.pk, line_id=line.pk, quantity=quantity), robust=True
    )
    return Order.objects.select_related("vendor", "customer__user").get(pk=order.pk)


def _after_short(*, order_id: int, line_id: int, quantity: int) -> None:
    from . import notifications

    notifications.line_short(order_id=order_id, line_id=line_id, quantity=quantity)


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


def _short_refunds(line_ref):
    """The payment's refunds of a short line (`line_ref`: an OuterRef to the line's id)."""
    from django.db.models import CharField
    from django.db.models.functions import Cast, Concat

    from payments.models import Refund

    return Refund.objects.filter(
        payment_id=OuterRef("order__payment_id"),
        reason__startswith=Concat(
            Value("line "), Cast(line_ref, output_field=CharField()), Value(" short:")
        ),
    )


def orders_short_refund_due(*, limit: int = 100) -> list[int]:
    """Completed orders (of the last SHORT_REFUND_RETRY_DAYS) with a line not supplied whose
    refund was never made: refused by the provider fewer than SHORT_REFUND_ATTEMPTS times, or
    never tried (the capture task stopped before it), on a payment that can still be refunded."""
    from payments.models import Payment, Refund
    from payments.services import REFUNDABLE_STATES

    cutoff = timezone.now() - timedelta(days=SHORT_REFUND_RETRY_DAYS)
    failed = (
        _short_refunds(OuterRef("pk"))
        .filter(status=Refund.Status.FAILED)
        .order_by()
        .values("payment_id")
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


def order_short_lines_refund(*, order_id: int) -> list:
    """After the capture: give back each line's units not supplied, with exactly their commission,
    once (a Refund row of that line not FAILED means done; a short cache lock keeps two runs of
    the capture task from both passing the check). Call it outside a transaction (HTTP). A
    provider that does not answer leaves the refund PENDING: payments resends it."""
    from payments.errors import PaymentError
    from payments.models import Payment, Refund
    from payments.services import REFUNDABLE_STATES, payment_refund

    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.payment_id is None:
        return []
    short = [line for line in order.lines.all() if line.short_quantity]
    payment = Payment.objects.filter(pk=order.payment_id).first()
    # Not captured yet (the capture task calls again), or refunded in full already by staff.
    if not short or payment is None or payment.status not in REFUNDABLE_STATES:
        return []
    refunds = []
    for line in short:
        prefix = SHORT_REFUND_PREFIX.format(line_id=line.pk)
        lock = f"orders:short-refund:{order.checkout_token}:{line.pk}"
        if not cache.add(lock, 1, timeout=60):
            continue
        try:
            done = Refund.objects.filter(payment=payment, reason__startswith=prefix).exclude(
                status=Refund.Status.FAILED
            )
            if done.exists():
                continue
            attempts = Refund.objects.filter(payment=payment, reason__startswith=prefix).count()
            if attempts >= SHORT_REFUND_ATTEMPTS:
                log.error(
                    "order %s line %s: short refund refused %s times; left to staff",
                    order_id,
                    line.pk,
                    attempts,
                )
                continue
            refunds.append(
                payment_refund(
                    payment_id=payment.pk,
                    amount=line.short_amount,
                    reason=f"{prefix} {line.short_reason or 'not supplied'}"[:200],
                    commission=short_commission(line),
                )
            )
        except PaymentUnavailable:
            # Recorded PENDING: it counts as done here, and payments' resend sends it again.
            log.warning("order %s line %s: short refund pending at the provider", order_id, line.pk)
        except PaymentError as exc:
            # Refused (FAILED: orders_short_refunds_retry tries again) or more than is left
            # (staff refunded the payment in full meanwhile): nothing to do here but say so.
            log.error("order %s line %s: short refund not made: %s", order_id, line.pk, exc)
        finally:
            cache.delete(lock)
    return refunds


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


# --- staff ------------------------------------------------------------------------------------


def _check_staff(actor, perm: str) -> None:
    """Staff actions need an active staff account with the permission the matching admin action
    asks for (`perm`), read fresh: either may have been revoked since the actor logged in."""
    from django.contrib.auth import get_user_model

    pk = getattr(actor, "pk", None)
    user = get_user_model().objects.filter(pk=pk, is_active=True, is_staff=True).first()
    if pk is None or user is None:
        raise NotAllowed(_("Only staff can do this."))
    if not user.has_perm(perm):
        raise Forbidden(_("Your staff account may not change orders."))


@transaction.atomic
def order_staff_cancel(*, order_id: int, actor, reason: str) -> Order:
    """Staff cancel an order that was not handed over yet (from any earlier state): the stock goes
    back on the cart and, after commit, the money is returned (void, or refund if captured) and
    the customer and the vendor are told, with the reason."""
    _check_staff(actor, "orders.change_order")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give a reason: the customer and the vendor see it.")})
    return _transition(
        order_id=order_id,
        action="staff_cancel",
        actor=actor,
        role=Role.STAFF,
        reason=reason,
        expires_at=None,
    )


@transaction.atomic
def order_expire_now(*, order_id: int, actor) -> Order:
    """Staff expire an order nobody accepted yet, without waiting for its deadline."""
    _check_staff(actor, "orders.change_order")
    return _transition(
        order_id=order_id,
        action="staff_expire",
        actor=actor,
        role=Role.STAFF,
        reason="expired by staff",
        expires_at=None,
    )


# --- problems and refunds after the handover ----------------------------------------------------

# Statuses after which the customer may report a problem (the payment must be captured too).
PROBLEM_STATUSES = (Status.HANDED_OVER, Status.COMPLETED)
PROBLEM_REASON_MAX = 500
# A line's refund is recognised by the reason of its Refund row: "line <line id>: <reason>".
LINE_REFUND_PREFIX = "line {line_id}:"


def order_problem_report(*, order_id: int, customer: CustomerProfile, reason: str):
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


def order_line_refund(*, order_id: int, line_id: int, actor, reason: str):
    """Staff give back one line of a captured order: its line_total less any units the vendor did
    not supply (refunded on their own), with exactly the rest of its commission (payments' refund
    takes the commission back from the platform's revenue, the rest from the vendor). A line is
    refunded once: its Refund row's reason starts with "line <line id>:", and a row of that line
    not FAILED refuses another. A short cache lock keeps two simultaneous clicks
    from both passing the check. Call it outside a transaction (the refund goes over HTTP)."""
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
    prefix = LINE_REFUND_PREFIX.format(line_id=line.pk)
    lock = f"orders:line-refund:{order.checkout_token}:{line.pk}"
    if not cache.add(lock, 1, timeout=60):
        raise InvalidTransition(_("This line is being refunded already."))
    try:
        done = Refund.objects.filter(payment=payment, reason__startswith=prefix).exclude(
            status=Refund.Status.FAILED
        )
        # Units the vendor did not supply are refunded on their own (order_short_lines_refund).
        amount = line.line_total - line.short_amount
        if done.exists() or amount <= 0:
            raise InvalidTransition(_("This line was refunded already."))
        # A provider that does not answer leaves the refund PENDING (PaymentUnavailable goes up):
        # the line counts as refunded, and payment_sync sends it again.
        refund = payment_refund(
            payment_id=payment.pk,
            amount=amount,
            reason=f"{prefix} {reason}"[:200],
            commission=line.commission - (short_commission(line) if line.short_quantity else 0),
        )
    finally:
        cache.delete(lock)
    log.info(
        "line %s of order %s refunded by %s (refund %s)", line.pk, order.pk, actor.pk, refund.pk
    )
    return refund


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
                        scope={"expires_at__lt": now},
                        expires_at=None,
                    )
            except InvalidTransition:
                continue
            done[label] += 1
    return done


def order_is_final(order: Order) -> bool:
    return order.status in FINAL


def order_payment_refresh(*, order_id: int) -> Order:
    """Ask the provider how the payment of a waiting order stands and apply it (the return from
    the card page, a webhook, or a customer pressing "check again"). The provider is the truth.
    Raises payments' PaymentUnavailable when the provider does not answer in time."""
    from payments.services import payment_sync

    order = Order.objects.get(pk=order_id)
    # An order that ended while its card page was open (cancelled) is asked too: money
    # authorised late is given back (on_payment_status_changed).
    waiting = order.status == Status.PENDING_PAYMENT
    if order.payment_id is not None and (waiting or order.status in RELEASES_STOCK):
        payment = payment_sync(payment_id=order.payment_id)
        order_payment_settled(order_id=order_id, payment_status=payment_outcome(payment.status))
        order.refresh_from_db()
    return order


def payment_outcome(status: str) -> str:
    """What a payment's status means for a waiting order: authorised, failed or still pending."""
    s = str(status).lower()
    if s in ("authorised", "captured", "partially_refunded", "refunded"):
        return "authorised"
    if s in ("failed", "voided"):
        return "failed"
    return "pending"


def on_payment_status_changed(sender, *, order_id: int, status: str, **kwargs) -> None:
    """A payment changed at the provider (webhook, sync, capture): a waiting order follows it.
    Money authorised for an order that already ended without a handover (cancelled by staff or
    the customer while the card page was still open) is given back."""
    if payment_outcome(status) != "pending":
        settled = order_payment_settled(order_id=order_id, payment_status=payment_outcome(status))
        if (
            settled is None
            and str(status).lower() == "authorised"
            and Order.objects.filter(pk=order_id, status__in=RELEASES_STOCK).exists()
        ):
            from .tasks import order_money_return

            transaction.on_commit(partial(order_money_return.delay, order_id), robust=True)
