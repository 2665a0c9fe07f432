"""Placing an order: checks, the snapshot of prices and commission, stock reserved, all or nothing."""

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import h3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from o2o.errors import Conflict, NotAllowed
from o2o.geo import distance_m
from o2o.money import format_money
from payments.commission import commission_bps_for, commission_of
from tracking.models import VendorPosition
from vendors.models import OpeningHours, PickupPoint, Product, ServiceCell, Vendor
from vendors.selectors import Availability, vendor_availability
from vendors.services import stock_reserve

from ..models import Fulfilment, Order, OrderEvent, OrderLine, Status

log = logging.getLogger(__name__)
Role = OrderEvent.Role


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


# Ways to receive that don't need the vendor now: an off-shift cart takes them for later.
WAYS_AHEAD = (Fulfilment.DELIVERY, Fulfilment.PICKUP)


def ways_allowed(availability: Availability) -> tuple[str, ...]:
    if availability.on_shift:
        return tuple(Fulfilment.values)
    return WAYS_AHEAD if availability.has_hours else ()


def receive_time_check(*, availability: Availability, receive: Receive) -> None:
    """Refuse what an off-shift cart can't take (vendors.selectors.Availability, the one rule the
    pages show): meeting or buying at the cart, a window outside the published hours or too soon."""
    if availability.on_shift:
        return
    if not availability.has_hours:
        raise ValidationError(
            _("This vendor is off shift now and has published no hours. Try again later."),
            code="off_shift",
        )
    if receive.fulfilment not in ways_allowed(availability):
        raise ValidationError(
            {
                "fulfilment": _(
                    "This vendor is off shift now: order ahead for delivery or pickup instead."
                )
            },
            code="off_shift",
        )
    start, end = receive.window_start, receive.window_end
    if start is not None and end is not None and not availability.window_allowed(start, end):
        raise ValidationError(
            {
                "window": _(
                    "This vendor is off shift now: choose a time within the vendor's hours, "
                    "at least %(minutes)s minutes from now."
                )
                % {"minutes": availability.lead_minutes}
            },
            code="off_shift",
        )


def _position_of(vendor: Vendor) -> VendorPosition | None:
    """The vendor's position, read with the vendor (select_related): no query of its own."""
    try:
        return vendor.position
    except VendorPosition.DoesNotExist:
        return None


def _check_window(receive: Receive, now: datetime) -> None:
    start, end = receive.window_start, receive.window_end
    if start is None or end is None:
        raise ValidationError(_("Choose a time window."))
    if end <= start:
        raise ValidationError(_("The time window must end after it starts."))
    if end < now or start > now + timedelta(days=2):
        raise ValidationError(_("Choose a time window between now and the day after tomorrow."))


def _pickup_open(start: datetime, end: datetime) -> Exists:
    """Is the pickup point (the outer query's row) open for the whole window? An annotation, so
    that the point and its hours are one query."""
    local_start, local_end = timezone.localtime(start), timezone.localtime(end)
    return Exists(
        OpeningHours.objects.filter(
            point=OuterRef("pk"),
            weekday=local_start.weekday(),
            opens__lte=local_start.time(),
            closes__gte=local_end.time() if local_end.date() == local_start.date() else "23:59",
        )
    )


def _receive_fields(
    *,
    receive: Receive,
    customer: CustomerProfile,
    vendor: Vendor,
    position: VendorPosition | None,
    now: datetime,
) -> dict[str, Any]:
    """Check the way to receive against its rules; the fields it puts on the order."""
    kind = receive.fulfilment
    if kind == Fulfilment.DELIVERY:
        # pk=None finds nothing: answered just below.
        address = customer.addresses.filter(pk=receive.address_id).first()  # type: ignore[misc]
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
        points = PickupPoint.objects.filter(pk=receive.pickup_point_id, is_active=True)  # type: ignore[misc]
        if receive.window_start is not None and receive.window_end is not None:
            points = points.annotate(
                open_then=_pickup_open(receive.window_start, receive.window_end)
            )
        point = points.first()
        if point is None:
            raise ValidationError({"pickup_point": _("Choose an open pickup point.")})
        if distance_m(point.lat, point.lng, vendor.home_lat, vendor.home_lng) > (
            settings.PICKUP_MAX_KM * 1000
        ):
            raise ValidationError(
                {"pickup_point": _("This pickup point is too far from the vendor.")}
            )
        _check_window(receive, now)
        # _check_window passed: both ends are set, so the point was read with open_then.
        if not point.open_then:  # type: ignore[attr-defined]
            raise ValidationError(
                {"pickup_point": _("The pickup point is closed at that time. Choose another time.")}
            )
        return {
            "pickup_point": point,
            "window_start": receive.window_start,
            "window_end": receive.window_end,
        }
    if kind == Fulfilment.MEET:
        pos = position
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


def lines_create(
    *,
    order: Order,
    products: dict[int, Product],
    items: dict[int, int],
    price: dict[int, int],
    line_bps: dict[int, int],
    line_commission: dict[int, int],
) -> None:
    """The order's lines, each with its price and commission snapshotted (placement, cash sales)."""
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                product=products[pid],
                name_ko=products[pid].name_ko,
                name_en=products[pid].name_en,
                unit_price=price[pid],
                quantity=q,
                line_total=price[pid] * q,
                commission_bps=line_bps[pid],
                commission=line_commission[pid],
            )
            for pid, q in sorted(items.items())
        ]
    )


class _OrderRowRefused(Exception):
    """The order row's INSERT failed (its checkout token is taken) in a transaction of our own:
    the whole transaction is rolled back and the first order looked up after it."""


def _placed_already(*, checkout_token: uuid.UUID, customer: CustomerProfile) -> Order | None:
    existing = Order.objects.filter(checkout_token=checkout_token).first()
    if existing is not None and existing.customer_id != customer.pk:
        raise NotAllowed(_("This checkout belongs to someone else."))
    return existing


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
    unit_prices: dict[int, int] | None = None,
) -> Order:
    """Create the order and reserve its stock, all or nothing. Idempotent on checkout_token: the
    same checkout submitted twice gives back the first order. Payment starts after commit
    (order_payment_start), outside this transaction: no network call holds database locks.

    `expected_total` is the total (items and delivery fee, in minor units) the customer was shown;
    when given and the total at current prices differs, PricesChanged and nothing is placed.
    `unit_prices`: a price per product agreed elsewhere (a subscription's snapshot), used instead
    of the catalogue's for those products."""
    # Inside a caller's transaction the order row's INSERT needs a savepoint, so that a taken
    # checkout token leaves that transaction usable; in a transaction of our own nothing is
    # written before that INSERT, so rolling the whole of it back does the same for two round
    # trips less.
    nested = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic():
            order = _order_place(
                customer=customer,
                vendor_id=vendor_id,
                lines=lines,
                receive=receive,
                checkout_token=checkout_token,
                note=note,
                now=now,
                expected_total=expected_total,
                unit_prices=unit_prices,
                savepoint=nested,
            )
            if order is not None:
                return order
            existing = _placed_already(checkout_token=checkout_token, customer=customer)
    except _OrderRowRefused:
        existing = _placed_already(checkout_token=checkout_token, customer=customer)
    # The same checkout raced with itself: the other request created it (nothing of this one is
    # written); give that back.
    if existing is None:
        raise Conflict(_("This checkout is already being placed."))
    return existing


def _order_place(
    *,
    customer: CustomerProfile,
    vendor_id: int,
    lines: list[LineIn],
    receive: Receive,
    checkout_token: uuid.UUID,
    note: str,
    now: datetime | None,
    expected_total: int | None,
    unit_prices: dict[int, int] | None,
    savepoint: bool,
) -> Order | None:
    """order_place inside its transaction; None when the order row's INSERT failed in a savepoint
    (`savepoint`), _OrderRowRefused when it failed without one."""
    now = now or timezone.now()
    # The vendor, its position and whether this checkout is placed already: one query.
    placed = Order.objects.filter(checkout_token=checkout_token).values("pk")[:1]
    vendor = (
        Vendor.objects.select_related("position")
        .annotate(placed_id=Subquery(placed))
        .filter(pk=vendor_id)
        .first()
    )
    if vendor is None or vendor.placed_id is not None:
        existing = _placed_already(checkout_token=checkout_token, customer=customer)
        if existing is not None:
            return existing
    if vendor is None or not vendor.can_sell:
        raise ValidationError(_("This vendor is not selling now."))
    if vendor.user_id == customer.user_id:
        raise ValidationError(_("You can't order from your own cart."))
    items = _items(lines)
    products = {p.pk: p for p in Product.objects.filter(pk__in=items, is_active=True)}
    if len(products) != len(items):
        raise ValidationError(_("A product in the cart is no longer on sale."))
    position = _position_of(vendor)
    # On shift, receive_time_check allows everything: the hours are read only when off shift.
    if position is None or not position.on_shift:
        receive_time_check(
            availability=vendor_availability(vendor_id=vendor.pk, now=now), receive=receive
        )
    extra = _receive_fields(
        receive=receive, customer=customer, vendor=vendor, position=position, now=now
    )
    price = {pid: (unit_prices or {}).get(pid, products[pid].price) for pid in items}
    subtotal = sum(price[pid] * q for pid, q in items.items())
    delivery_fee = extra.pop("delivery_fee", 0)
    if expected_total is not None and expected_total != subtotal + delivery_fee:
        raise PricesChanged.of(total=subtotal + delivery_fee, currency=settings.CURRENCY)
    # The commission plans in force now, snapshotted per line (a category may have its own).
    vendor_bps, category_bps = commission_bps_for(
        vendor_id=vendor.pk, category_ids={p.category_id for p in products.values()}, at=now
    )
    line_bps = {pid: category_bps[products[pid].category_id] for pid in items}
    line_commission = {
        pid: commission_of(price[pid] * q, line_bps[pid]) for pid, q in items.items()
    }
    platform_fee = delivery_fee if settings.DELIVERY_FEE_TO == "platform" else 0
    # The order row first: its unique checkout token makes a duplicate of this checkout wait
    # here (not on the stock) and get the first order back, even for the last unit on the cart.
    fields: dict[str, Any] = dict(
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
    try:
        if savepoint:
            with transaction.atomic():
                order = Order.objects.create(**fields)
        else:
            order = Order.objects.create(**fields)
    except IntegrityError as exc:
        if savepoint:
            return None
        raise _OrderRowRefused from exc
    lines_create(
        order=order,
        products=products,
        items=items,
        price=price,
        line_bps=line_bps,
        line_commission=line_commission,
    )
    # OutOfStock rolls the order back; the lots each line took are recorded under the order's id.
    stock_reserve(vendor_id=vendor.pk, items=items, reference=order.pk)
    OrderEvent.objects.create(
        order=order, to_status=Status.PENDING_PAYMENT, actor=customer.user, role=Role.CUSTOMER
    )
    return order
