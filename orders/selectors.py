"""Reads of orders shared by pages, APIs and sockets, with what each list joins decided once.

Someone else's order is simply not found (Order.DoesNotExist): callers turn that into a 404 so
nobody learns that an order exists."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import h3
from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from customers.models import CustomerProfile
from o2o.geo import cell_boundary, distance_m, is_valid_cell
from tracking.models import Presence
from tracking.selectors import public_time, vendor_public_state
from vendors.models import PickupPoint, Vendor

from .models import FINAL, Fulfilment, Order, OrderEvent, OrderLine, PaymentMethod, Status

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from o2o.accounts.models import User

# What a vendor acts on, in the order the inbox shows it (paid and not yet handed over).
INBOX = (Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY)
# While these hold, the customer shows the handover code to the vendor.
CODE_SHOWN = (Status.PLACED, Status.ACCEPTED, Status.EN_ROUTE, Status.READY)
# Orders that were never paid have no receipt.
UNPAID = (Status.PENDING_PAYMENT, Status.FAILED)


def _lines() -> "Prefetch[str]":
    return Prefetch("lines", queryset=OrderLine.objects.order_by("pk"))


def orders_of_customer(*, customer: CustomerProfile) -> QuerySet[Order]:
    return (
        Order.objects.filter(customer=customer)
        .select_related("vendor", "pickup_point")
        .prefetch_related(_lines())
        .order_by("-created_at", "-pk")
    )


def order_of_customer(*, customer: CustomerProfile | None, order_id: int) -> Order:
    """The customer's own order with everything its page shows; Order.DoesNotExist otherwise."""
    if customer is None:
        raise Order.DoesNotExist
    return (
        Order.objects.filter(customer=customer)
        .select_related("vendor", "pickup_point")
        .prefetch_related(
            _lines(), Prefetch("events", queryset=OrderEvent.objects.order_by("at", "pk"))
        )
        .get(pk=order_id)
    )


def orders_for_vendor(*, vendor: Vendor, statuses: tuple[str, ...]) -> QuerySet[Order]:
    return (
        Order.objects.filter(vendor=vendor, status__in=statuses)
        .select_related("vendor", "customer__user", "pickup_point")
        .prefetch_related(_lines())
    )


def vendor_inbox(*, vendor: Vendor) -> dict[str, list[Order]]:
    """The vendor's orders to act on, grouped by status (oldest first: first come, first served)."""
    groups: dict[str, list[Order]] = {status: [] for status in INBOX}
    for order in orders_for_vendor(vendor=vendor, statuses=INBOX).order_by("created_at", "pk"):
        # Where to go: the centre of the area the customer chose (the vendor needs the spot).
        order.meet_centre = h3.cell_to_latlng(order.meet_cell) if order.meet_cell else None  # type: ignore[attr-defined]
        groups[order.status].append(order)
    return groups


def vendor_history(*, vendor: Vendor) -> QuerySet[Order]:
    """Orders the vendor is done with (handed over or ended after payment), newest first."""
    return (
        orders_for_vendor(vendor=vendor, statuses=(Status.HANDED_OVER, *FINAL))
        .filter(placed_at__isnull=False)
        .order_by("-created_at", "-pk")
    )


def cash_sales_today(*, vendor: Vendor, now: datetime | None = None) -> QuerySet[Order]:
    """The vendor's cash sales since local midnight (undone ones too), newest first."""
    local = timezone.localtime(now or timezone.now())
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        Order.objects.filter(
            vendor=vendor, payment_method=PaymentMethod.CASH, completed_at__gte=midnight
        )
        .prefetch_related("lines")
        .order_by("-completed_at", "-pk")
    )


def order_of_vendor(*, vendor: Vendor | None, order_id: int) -> Order:
    """One of the vendor's orders; orders never paid are not the vendor's business."""
    if vendor is None:
        raise Order.DoesNotExist
    return (
        orders_for_vendor(vendor=vendor, statuses=tuple(Status.values))
        .filter(placed_at__isnull=False)
        .get(pk=order_id)
    )


def order_for_receipt(*, user: "User | AnonymousUser", order_id: int) -> Order:
    """A paid order, for its customer or its vendor."""
    if not user.is_authenticated:
        raise Order.DoesNotExist
    order = (
        Order.objects.select_related("vendor", "customer__user", "pickup_point")
        .prefetch_related(_lines())
        .exclude(status__in=UNPAID)
        .get(pk=order_id)
    )
    if order.customer.user_id != user.pk and order.vendor.user_id != user.pk:
        raise Order.DoesNotExist
    return order


def order_watchers(*, order_id: int) -> tuple[int, int] | None:
    """(customer's user id, vendor's user id) of an order: who may follow it live."""
    return (
        Order.objects.filter(pk=order_id)
        .values_list("customer__user_id", "vendor__user_id")
        .first()
    )


# --- checkout choices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetCell:
    cell: str
    is_vendor: bool  # the cell the vendor is in now
    boundary: list[list[float]]
    direction: str  # compass point from the vendor's cell ("" for the vendor's own)
    distance_m: int


COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def _bearing(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Degrees clockwise from north, from the first point to the second."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lng2 - lng1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360) % 360


def meet_cells(*, vendor: Vendor) -> list[MeetCell]:
    """Where a customer may meet the vendor: the public cell the vendor is in now and its
    neighbours. Built from the public cell alone; empty when the vendor is not on the map."""
    payload, _coarse = vendor_public_state(vendor_id=vendor.pk)
    if payload is None:
        return []
    centre_cell = payload["cell"]
    c_lat, c_lng = h3.cell_to_latlng(centre_cell)
    out = [MeetCell(centre_cell, True, cell_boundary(centre_cell), "", 0)]
    around = []
    for cell in set(h3.grid_disk(centre_cell, 1)) - {centre_cell}:
        lat, lng = h3.cell_to_latlng(cell)
        around.append((_bearing(c_lat, c_lng, lat, lng), cell, lat, lng))
    for bearing, cell, lat, lng in sorted(around):  # clockwise from north
        out.append(
            MeetCell(
                cell=cell,
                is_vendor=False,
                boundary=cell_boundary(cell),
                direction=COMPASS[int((bearing + 22.5) // 45) % 8],
                distance_m=int(round(distance_m(c_lat, c_lng, lat, lng) / 50.0) * 50),
            )
        )
    return out


def pickup_points_near(*, vendor: Vendor) -> list[PickupPoint]:
    """Active partner points within PICKUP_MAX_KM of the vendor's home base, nearest first."""
    limit = settings.PICKUP_MAX_KM * 1000
    # A bounding box in SQL first (1° of latitude is ~111 km), then the exact distance.
    span = settings.PICKUP_MAX_KM / 111.0 * 1.5
    rows = PickupPoint.objects.filter(
        is_active=True,
        lat__range=(vendor.home_lat - span, vendor.home_lat + span),
        lng__range=(vendor.home_lng - span * 1.5, vendor.home_lng + span * 1.5),
    ).prefetch_related("hours")
    found = [(distance_m(p.lat, p.lng, vendor.home_lat, vendor.home_lng), p) for p in rows]
    return [p for d, p in sorted(found, key=lambda item: (item[0], item[1].pk)) if d <= limit]


def vendor_cell_for(order: Order) -> dict[str, Any] | None:
    """The vendor's approximate area (public cell) while on the way to a meeting; else None."""
    if order.fulfilment != Fulfilment.MEET or order.status != Status.EN_ROUTE:
        return None
    payload, _coarse = vendor_public_state(vendor_id=order.vendor_id)
    if payload is None:
        return None
    return {
        "cell": payload["cell"],
        "boundary": payload["boundary"],
        "last_seen": payload["last_seen"],
    }


# --- the last few hundred metres of a meeting ----------------------------------------------------

# While these hold, the customer of a meet order may see the vendor close to the meeting point.
NEARBY_SHOWN = (Status.ACCEPTED, Status.EN_ROUTE, Status.READY)
# From these on, never again (handed over, or ended).
NEARBY_OVER = (Status.HANDED_OVER, *FINAL)


def snap_to_grid(lat: float, lng: float, metres: float) -> tuple[float, float]:
    """The point moved to the nearest corner of a grid `metres` apart (street level, not exact)."""
    step_lat = metres / 111_320.0
    snapped_lat = round(lat / step_lat) * step_lat
    step_lng = metres / (111_320.0 * max(math.cos(math.radians(snapped_lat)), 0.01))
    return round(snapped_lat, 6), round(round(lng / step_lng) * step_lng, 6)


def vendor_nearby_state(
    *, order_id: int, user_id: int | None, now: datetime | None = None
) -> tuple[dict[str, Any] | None, bool]:
    """(what the customer may see of the vendor now or None, whether it is over for good).

    Only the order's own customer, only for a meet order that is accepted, on the way or arrived,
    only from a fresh fix of a vendor on shift, and only while that fix is within
    ORDER_NEARBY_RADIUS_M of the meeting point (the centre of the meeting area): then the
    position snapped to a grid of ORDER_NEARBY_PRECISION_M, and its distance to the meeting point
    (to 10 m). Anyone else, any other order or state: None. Staff and the vendor have their own
    views; this is the one way an exact-ish position reaches a customer."""
    if user_id is None:
        return None, True
    row = (
        Order.objects.filter(pk=order_id, customer__user_id=user_id, fulfilment=Fulfilment.MEET)
        .values(
            "status",
            "meet_cell",
            "vendor__position__on_shift",
            "vendor__position__presence",
            "vendor__position__lat",
            "vendor__position__lng",
            "vendor__position__last_ping_at",
        )
        .first()
    )
    if row is None or row["status"] in NEARBY_OVER:
        return None, True
    lat, lng = row["vendor__position__lat"], row["vendor__position__lng"]
    seen = row["vendor__position__last_ping_at"]
    now = now or timezone.now()
    if (
        row["status"] not in NEARBY_SHOWN
        or not is_valid_cell(row["meet_cell"])
        or not row["vendor__position__on_shift"]
        or row["vendor__position__presence"] == Presence.OFFLINE
        or lat is None
        or lng is None
        or seen is None
        or seen < now - timedelta(seconds=settings.ORDER_NEARBY_MAX_AGE_S)
    ):
        return None, False
    meet_lat, meet_lng = h3.cell_to_latlng(row["meet_cell"])
    if distance_m(lat, lng, meet_lat, meet_lng) > settings.ORDER_NEARBY_RADIUS_M:
        return None, False
    precision = settings.ORDER_NEARBY_PRECISION_M
    snapped = snap_to_grid(lat, lng, precision)
    away = distance_m(*snapped, meet_lat, meet_lng)
    return {
        "lat": snapped[0],
        "lng": snapped[1],
        "precision_m": precision,
        "distance_m": int(round(away / 10.0) * 10),
        "meet": [round(meet_lat, 6), round(meet_lng, 6)],
        "seen_at": public_time(seen),
    }, False


def vendor_nearby(*, order_id: int, user_id: int | None) -> dict[str, Any] | None:
    return vendor_nearby_state(order_id=order_id, user_id=user_id)[0]


def problem_state(order: Order) -> dict[str, bool]:
    """What the order page shows of "report a problem": `open` while a dispute of the order is
    open; `reportable` when a report may be made now (handed over or completed, the payment
    captured, within DISPUTE_WINDOW_DAYS of the capture, no dispute open)."""
    from payments.disputes import dispute_window_ends
    from payments.models import Dispute, Payment
    from payments.services import CAPTURED_STATES

    state = {"open": False, "reportable": False}
    if order.status not in (Status.HANDED_OVER, Status.COMPLETED) or order.payment_id is None:
        return state
    state["open"] = Dispute.objects.filter(order_id=order.pk, status=Dispute.Status.OPEN).exists()
    payment = Payment.objects.filter(pk=order.payment_id).first()
    ends = dispute_window_ends(payment) if payment is not None else None
    state["reportable"] = (
        not state["open"]
        and ends is not None
        and payment is not None
        and payment.status in CAPTURED_STATES
        and timezone.now() <= ends
    )
    return state


# --- deadlines, reasons and the state of the payment: what the order page and the API say --------


def _clock(at: datetime, now: datetime) -> str:
    """A deadline in words, in Korea time: the time alone today, with the date on another day."""
    local = timezone.localtime(at)
    if local.date() == timezone.localtime(now).date():
        return date_format(local, "TIME_FORMAT")
    return date_format(local, "SHORT_DATETIME_FORMAT")


@dataclass(frozen=True)
class Deadline:
    kind: str  # pay_by, accept_by, collect_by, window
    at: datetime
    text: str
    until: datetime | None = None  # the end of a window


def order_deadlines(order: Order, *, now: datetime | None = None) -> list[Deadline]:
    """The deadlines that matter now: pay by (waiting for payment), the vendor accepts by
    (placed), collect by (waiting at a pickup point), and the time window asked for."""
    now = now or timezone.now()
    found: list[Deadline] = []
    due = order.expires_at
    if due is not None and order.status == Status.PENDING_PAYMENT:
        found.append(Deadline("pay_by", due, _("Pay by %(time)s.") % {"time": _clock(due, now)}))
    elif due is not None and order.status == Status.PLACED:
        text = _("The vendor has until %(time)s to accept.") % {"time": _clock(due, now)}
        found.append(Deadline("accept_by", due, text))
    elif due is not None and order.status == Status.READY and order.fulfilment == Fulfilment.PICKUP:
        found.append(
            Deadline("collect_by", due, _("Collect by %(time)s.") % {"time": _clock(due, now)})
        )
    if (
        order.window_start
        and order.window_end
        and order.status in (*CODE_SHOWN, Status.PENDING_PAYMENT)
    ):
        span = {"start": _clock(order.window_start, now), "end": _clock(order.window_end, now)}
        windows: dict[str, str] = {
            Fulfilment.DELIVERY: _("Delivery between %(start)s and %(end)s."),
            Fulfilment.PICKUP: _("At the pickup point between %(start)s and %(end)s."),
            Fulfilment.MEET: _("Meeting between %(start)s and %(end)s."),
        }
        text = windows.get(order.fulfilment, _("Between %(start)s and %(end)s.")) % span
        found.append(Deadline("window", order.window_start, text, until=order.window_end))
    return found


@dataclass(frozen=True)
class Ending:
    code: str  # why the order ended without a handover (or was refunded)
    by: str  # customer, vendor, staff or system
    text: str  # in words, for the customer
    reason: str  # what the vendor or staff typed ("" when nobody did)


def _last_event(order: Order) -> OrderEvent | None:
    events = list(order.events.all())  # prefetched by order_of_customer
    last = events[-1] if events else None
    return last if last is not None and last.to_status == order.status else None


def order_ending(order: Order, *, now: datetime | None = None) -> Ending | None:
    """Why an ended order ended, in words; None while it is going on or when it was completed."""
    now = now or timezone.now()
    if order.status not in (
        Status.FAILED,
        Status.REJECTED,
        Status.EXPIRED,
        Status.CANCELLED,
        Status.REFUNDED,
    ):
        return None
    last = _last_event(order)
    by = last.role if last is not None else OrderEvent.Role.SYSTEM
    typed = last.reason if last is not None and by in ("vendor", "staff") else ""
    due = _clock(order.expires_at, now) if order.expires_at else ""
    system_reason = last.reason if last is not None else order.reason
    if order.status == Status.FAILED:
        if system_reason == "not paid in time":
            text = (
                _("The time to pay ran out at %(time)s. You were not charged.") % {"time": due}
                if due
                else _("The time to pay ran out. You were not charged.")
            )
            return Ending("not_paid_in_time", by, text, "")
        return Ending(
            "payment_failed", by, _("The payment did not go through. You were not charged."), ""
        )
    if order.status == Status.REJECTED:
        text = _("The vendor could not take this order. You will not be charged.")
        return Ending("rejected_by_vendor", by, text, typed or order.reason)
    if order.status == Status.EXPIRED:
        if by == OrderEvent.Role.STAFF:
            text = _("Our support team closed this order before the vendor accepted it.")
            return Ending("expired_by_staff", by, text + " " + _("You will not be charged."), "")
        text = (
            _("The vendor did not accept this order by %(time)s. You will not be charged.")
            % {"time": due}
            if due
            else _("Nobody could take this order in time. You will not be charged.")
        )
        return Ending("not_accepted_in_time", by, text, "")
    if order.status == Status.CANCELLED:
        if by == OrderEvent.Role.STAFF:
            text = _("Our support team cancelled this order. Any payment is returned to your card.")
            return Ending("cancelled_by_staff", by, text, typed)
        if by == OrderEvent.Role.VENDOR:
            text = _("The vendor had to cancel this order. Any payment is returned to your card.")
            return Ending("cancelled_by_vendor", by, text, typed)
        if by == OrderEvent.Role.CUSTOMER:
            text = _("This order is cancelled. You cancelled it, so you will not be charged.")
            return Ending("cancelled_by_you", by, text, "")
        if system_reason == "not collected in time":
            text = (
                _("It was not collected by %(time)s, so it was cancelled.") % {"time": due}
                if due
                else _("It was not collected in time, so it was cancelled.")
            )
            return Ending(
                "not_collected", by, text + " " + _("Your payment is returned to your card."), ""
            )
        return Ending("cancelled", by, _("This order is cancelled. You will not be charged."), "")
    return Ending("refunded", by, _("This order was refunded."), "")


DECLINES = {
    "card_declined": _lazy("Your card was declined."),
    "insufficient_funds": _lazy("Your card has insufficient funds."),
    "authentication_failed": _lazy("The payment was not confirmed with your bank."),
    "expired_card": _lazy("Your card has expired."),
}


@dataclass(frozen=True)
class PaymentState:
    """A payment still open: pay (again) until `pay_by`; the last card's decline if it was."""

    can_pay: bool
    pay_by: datetime | None
    declined: bool
    decline_code: str
    decline_text: str
    card_last4: str
    checkout_url: str  # the provider's card page, while the order can still be paid


def order_payment_state(order: Order, *, now: datetime | None = None) -> PaymentState | None:
    """For an order waiting for payment: whether it can still be paid (the window is open) and
    why the last card was declined (another card may be tried). None otherwise."""
    from payments.selectors import payment_for_order

    if order.status != Status.PENDING_PAYMENT:
        return None
    now = now or timezone.now()
    payment = payment_for_order(order_id=order.pk) if order.payment_id else None
    code = payment.failure_code if payment is not None and payment.status == "pending" else ""
    can_pay = order.expires_at is None or order.expires_at > now
    return PaymentState(
        can_pay=can_pay,
        pay_by=order.expires_at,
        declined=bool(code),
        decline_code=code,
        decline_text=str(DECLINES.get(code, _lazy("Your card was declined."))) if code else "",
        card_last4=payment.card_last4 if payment is not None and code else "",
        checkout_url=payment.checkout_url if payment is not None and can_pay else "",
    )
