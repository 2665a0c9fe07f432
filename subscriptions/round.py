"""The vendor's daily round: today's doorstep deliveries (regulars' and accepted one-off orders) in
an order that makes sense from where the vendor is, one tap per stop, replayed from a phone that
was offline, and tomorrow's round with what to load for it.

Stops: the vendor's orders to deliver to a door whose window starts on the round's day (Korea
time) and that are still to hand over (ACCEPTED, EN_ROUTE, READY). A regular's delivery is accepted
by the system once paid (subscriptions.delivery), so it is on the round without a tap.

Route: nearest next, from the vendor's latest position (or the first stop), over a local flat
projection (equirectangular: at a neighbourhood's scale its error is far below a house); stops in
the same H3 cell stay together. Re-ordered each time the page asks (it asks as the vendor moves).

A tap (`round_act`): made on the phone with its own UUID and replayed once when back online. The
order row is locked first, then the tap's id is looked up: a replay (same id) returns the first
answer; a second phone's tap on a settled stop (another id) is recorded as "superseded" with the
stop's one outcome. What "nobody at home" does is the customer's choice on the subscription
(leave at the door, try again on the next round, refund); a one-off order is refunded. Every state
change goes through orders.services (hand over, reschedule, cancel), guarded in SQL.

The wellbeing check (opt-in per subscription): the tap may carry "all well" or "a concern", and
"earlier deliveries are still at the door" with a "nobody at home"; each is a WellbeingFlag, and
any but "all well" tells the named contact (an e-mail effect) and partners (event
`wellbeing.alert`, no address nor position in it), in the tap's transaction.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import h3
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from o2o.effects import effect_add, event_emit
from o2o.errors import NotAllowed
from orders.models import Fulfilment, Order, OrderLine, Status
from orders.services.transitions import (
    InvalidTransition,
    order_hand_over,
    order_hand_over_unattended,
    order_reschedule,
    order_vendor_cancel,
)
from tracking.models import VendorPosition
from vendors.models import Stock, Vendor
from vendors.selectors import vendor_hours

from .calendar import due_dates, weekdays_mask
from .delivery import EMAIL, delivery_window
from .models import Delivery, RoundAction, Subscription, WellbeingFlag
from .selectors import pause_windows

TO_HAND_OVER = (Status.ACCEPTED, Status.EN_ROUTE, Status.READY)
# How far back a tap's phone clock may say it was made (older: the phone's clock is wrong).
TAP_MAX_AGE = timedelta(days=2)
# A position older than this does not say where the vendor is now.
POSITION_FRESH = timedelta(minutes=30)
NOTE_MAX = 200
# Reasons recorded on the order's events, in English for staff; the customer's and the vendor's
# pages show them translated (templates/orders/_status.html: {% translate event.reason %}).
DELIVERED_REASON = gettext_noop("delivered on the round")
LEFT_AT_DOOR_REASON = gettext_noop("nobody at home: left at the door")
RETRY_REASON = gettext_noop("nobody at home: brought again on the next round")
NOT_HOME_REASON = gettext_noop("nobody at home")
# Doors in one H3 cell of this resolution (about 65 m across) are taken one after another.
ROUND_CELL_RES = 10
A = RoundAction.Action
OUT = RoundAction.Outcome
W = WellbeingFlag.Kind
WELLBEING_EMAIL = "subscription.wellbeing_email"
# What the customer's "nobody at home" e-mail says happened (subscriptions.notifications).
NOT_HOME_WORDS: dict[str, str] = {
    OUT.LEFT_AT_DOOR: "door",
    OUT.RETRY_TOMORROW: "tomorrow",
    OUT.REFUNDED: "refund",
}


@dataclass
class Stop:
    order_id: int
    address: str
    lat: float
    lng: float
    cell: str
    lines: list[tuple[str, int]]
    note: str
    window_end: datetime | None
    status: str
    subscription_id: int | None = None
    not_at_home: str = ""  # the customer's choice (Subscription.NotAtHome), "" for a one-off
    wellbeing: bool = False
    needs_code: bool = True
    distance_m: int = 0  # from the previous stop (the first: from the vendor)
    by_text: str = ""  # "by 10:30", filled in by the page


@dataclass
class Round:
    day: date
    stops: list[Stop]
    done: list[RoundAction]
    start: tuple[float, float] | None  # where the route starts (the vendor, when known)
    items: dict[str, int] = field(default_factory=dict)  # what the stops left hand over, summed


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    return start, start + timedelta(days=1)


def _stops(*, vendor: Vendor, day: date, language: str) -> list[Stop]:
    """The day's stops: two queries of plain values (a 400-stop round reads ~800 rows), no model
    instances on the way."""
    start, end = _day_bounds(day)
    sub = "subscription_delivery__subscription"
    rows = list(
        Order.objects.filter(
            vendor=vendor,
            fulfilment=Fulfilment.DELIVERY,
            status__in=TO_HAND_OVER,
            window_start__gte=start,
            window_start__lt=end,
        )
        .order_by("window_start", "pk")
        .values_list(
            "pk",
            "delivery_address",
            "delivery_lat",
            "delivery_lng",
            "note",
            "window_end",
            "status",
            f"{sub}__id",
            f"{sub}__not_at_home_policy",
            f"{sub}__wellbeing_check",
        )
    )
    names = "name_ko" if language.startswith("ko") else "name_en"
    lines: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for order_id, name, quantity, short in (
        OrderLine.objects.filter(order_id__in=[row[0] for row in rows])
        .order_by("pk")
        .values_list("order_id", names, "quantity", "short_quantity")
    ):
        if quantity > short:
            lines[order_id].append((name, quantity - short))
    stops = []
    for pk, address, lat, lng, note, window_end, status, sub_id, policy, wellbeing in rows:
        lat, lng = lat or 0.0, lng or 0.0
        stops.append(
            Stop(
                order_id=pk,
                address=address,
                lat=lat,
                lng=lng,
                cell=h3.latlng_to_cell(lat, lng, ROUND_CELL_RES),
                lines=lines[pk],
                note=note if sub_id is None else "",
                window_end=window_end,
                status=status,
                subscription_id=sub_id,
                not_at_home=policy or "",
                wellbeing=bool(wellbeing),
                needs_code=sub_id is None,
            )
        )
    return stops


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance: exact enough within a city, and cheap for a 400-stop route."""
    lat = math.radians((a[0] + b[0]) / 2)
    dx = math.radians(b[1] - a[1]) * math.cos(lat)
    dy = math.radians(b[0] - a[0])
    return 6_371_000 * math.hypot(dx, dy)


def route(stops: list[Stop], *, start: tuple[float, float] | None) -> list[Stop]:
    """Nearest next from `start` (or the first stop), each stop's distance from the one before;
    the other doors of the same cell right after. O(n²) on plain floats in list comprehensions
    (400 stops: about 80,000 squared distances, a few milliseconds)."""
    if not stops:
        return []
    here = start or (stops[0].lat, stops[0].lng)
    scale = math.cos(math.radians(here[0]))  # a degree of longitude, in degrees of latitude
    left = list(stops)
    ys = [s.lat for s in left]
    xs = [s.lng * scale for s in left]
    hy, hx = here[0], here[1] * scale
    point = here
    ordered: list[Stop] = []

    def take(i: int) -> None:
        nonlocal hy, hx, point
        stop = left.pop(i)
        ys.pop(i)
        xs.pop(i)
        stop.distance_m = round(_metres(point, (stop.lat, stop.lng)))
        ordered.append(stop)
        point = (stop.lat, stop.lng)
        hy, hx = stop.lat, stop.lng * scale

    while left:
        far = [(y - hy) * (y - hy) + (x - hx) * (x - hx) for y, x in zip(ys, xs, strict=True)]
        take(far.index(min(far)))
        cell = ordered[-1].cell
        # Others in the same cell next (one door after another in a block), nearest first.
        while True:
            same = [
                ((ys[j] - hy) ** 2 + (xs[j] - hx) ** 2, j)
                for j, s in enumerate(left)
                if s.cell == cell
            ]
            if not same:
                break
            take(min(same)[1])
    return ordered


def vendor_start(*, vendor: Vendor) -> tuple[float, float] | None:
    """Where the vendor is now (exact: this is the vendor's own page), when recent enough."""
    position = VendorPosition.objects.filter(vendor=vendor).first()
    if position is None or position.lat is None or position.lng is None:
        return None
    if position.last_ping_at is None or timezone.now() - position.last_ping_at > POSITION_FRESH:
        return None
    return (position.lat, position.lng)


def round_of(
    *,
    vendor: Vendor,
    day: date,
    start: tuple[float, float] | None = None,
    language: str = "ko",
    use_position: bool = True,
) -> Round:
    """The vendor's round for `day`: the stops left, in route order, and the taps already done."""
    if start is None and use_position:
        start = vendor_start(vendor=vendor)
    stops = _stops(vendor=vendor, day=day, language=language)
    items: dict[str, int] = defaultdict(int)
    for stop in stops:
        for name, quantity in stop.lines:
            items[name] += quantity
    done = list(
        RoundAction.objects.filter(vendor=vendor, round_date=day, applied=True)
        .select_related("order")
        .order_by("-recorded_at", "-pk")[:500]
    )
    return Round(
        day=day, stops=route(stops, start=start), done=done, start=start, items=dict(items)
    )


# --- tomorrow -------------------------------------------------------------------------------------


@dataclass
class Load:
    product_id: int
    name: str
    regulars: int  # units for regulars due that day
    orders: int  # units of orders already placed for that day
    on_cart: int

    @property
    def needed(self) -> int:
        return self.regulars + self.orders

    @property
    def to_load(self) -> int:
        return max(0, self.needed - self.on_cart)


@dataclass
class Tomorrow:
    day: date
    regulars: int  # subscriptions due that day
    orders: int  # orders to deliver that day
    loads: list[Load]


def round_next(*, vendor: Vendor, day: date, language: str = "ko") -> Tomorrow:
    """What `day`'s round will hold (regulars due by the calendar, skips and pauses applied, and
    orders already placed for it) and what to load on the cart for it, against the cart now."""
    hours = vendor_hours(vendor_ids=[vendor.pk])[vendor.pk]
    works = weekdays_mask({span.weekday for span in hours})
    units: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    names: dict[int, str] = {}
    attr = "name_ko" if language.startswith("ko") else "name_en"
    regulars = 0
    subscriptions = (
        Subscription.objects.filter(vendor=vendor, starts_on__lte=day)
        .exclude(status=Subscription.Status.CANCELLED)
        .prefetch_related("items__product", "skips")
    )
    for subscription in subscriptions:
        due = due_dates(
            schedules=[(subscription.schedule_from, subscription.schedule)],
            starts_on=subscription.starts_on,
            between=(day, day),
            skips={skip.date for skip in subscription.skips.all()},
            pauses=pause_windows(subscription),
            vendor_weekdays=works,
        )
        if not due:
            continue
        regulars += 1
        for item in subscription.items.all():
            units[item.product_id][0] += item.quantity
            names[item.product_id] = getattr(item.product, attr)
    start, end = _day_bounds(day)
    orders = Order.objects.filter(
        vendor=vendor,
        status__in=(Status.PLACED, *TO_HAND_OVER),
        window_start__gte=start,
        window_start__lt=end,
    ).exclude(subscription_delivery__isnull=False)
    order_count = 0
    for order in orders.prefetch_related("lines"):
        order_count += 1
        for line in order.lines.all():
            units[line.product_id][1] += line.quantity - line.short_quantity
            names[line.product_id] = getattr(line, attr)
    on_cart = dict(
        Stock.objects.filter(vendor=vendor, product_id__in=units).values_list(
            "product_id", "quantity"
        )
    )
    loads = [
        Load(
            product_id=pid,
            name=names[pid],
            regulars=counts[0],
            orders=counts[1],
            on_cart=on_cart.get(pid, 0),
        )
        for pid, counts in sorted(units.items(), key=lambda kv: names[kv[0]])
    ]
    return Tomorrow(day=day, regulars=regulars, orders=order_count, loads=loads)


# --- a tap ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tap:
    client_id: uuid.UUID
    order_id: int
    action: str
    tapped_at: datetime | None = None
    code: str = ""
    wellbeing: str = ""  # "", "well" or "concern" (subscriptions with the check only)
    uncollected: bool = False  # with "not home": earlier deliveries still at the door
    note: str = ""


def _next_round_window(*, vendor_id: int, after: date) -> tuple[datetime, datetime] | None:
    """The vendor's hours on the next working day after `after` (within a week): the delivery
    window a regular's order gets that day (delivery.delivery_window, asked from `after`)."""
    asked = datetime.combine(after, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    for ahead in range(1, 8):
        window = delivery_window(vendor_id=vendor_id, on=after + timedelta(days=ahead), now=asked)
        if window is not None:
            return window
    return None


def _check_tap(tap: Tap) -> None:
    if tap.action not in A.values:
        raise ValidationError({"action": _("Unknown action.")})
    if tap.wellbeing not in ("", W.WELL, W.CONCERN):
        raise ValidationError({"wellbeing": _("Unknown wellbeing mark.")})
    if len(tap.note) > NOTE_MAX:
        raise ValidationError({"note": _("Keep the note under 200 characters.")})


def _tapped_at(tap: Tap, now: datetime) -> datetime:
    """The phone's time of the tap, kept within [now - TAP_MAX_AGE, now]."""
    when = tap.tapped_at or now
    if timezone.is_naive(when):  # a phone that sent no offset: its time is Korea's
        when = timezone.make_aware(when)
    return min(max(when, now - TAP_MAX_AGE), now)


def round_act(*, vendor: Vendor, tap: Tap) -> RoundAction:
    """Carry out one tap of the round exactly once (module docstring). Raises NotAllowed for an
    order that is not this vendor's (or a vendor who can't sell), ValidationError for bad input;
    a wrong code is recorded as "refused" (a replay says the same; the vendor taps again)."""
    _check_tap(tap)
    try:
        with transaction.atomic():
            return _act(vendor=vendor, tap=tap)
    except IntegrityError:
        # The same id, raced by a replay of it on another connection: the first answer stands.
        first = RoundAction.objects.filter(client_id=tap.client_id, vendor=vendor).first()
        if first is None:
            raise
        return first


def _act(*, vendor: Vendor, tap: Tap) -> RoundAction:
    now = timezone.now()
    order = (
        Order.objects.select_for_update(of=("self",)).filter(pk=tap.order_id, vendor=vendor).first()
    )
    if order is None:
        raise NotAllowed(_("No such stop on your round."))
    first = RoundAction.objects.filter(client_id=tap.client_id).first()
    if first is not None:
        if first.vendor_id != vendor.pk or first.order_id != order.pk:
            raise ValidationError({"id": _("This id was used for another tap.")})
        return first
    round_date = timezone.localdate(order.window_start) if order.window_start else now.date()
    record = {
        "client_id": tap.client_id,
        "vendor": vendor,
        "order": order,
        "round_date": round_date,
        "action": tap.action,
        "tapped_at": _tapped_at(tap, now),
    }
    settled = RoundAction.objects.filter(order=order, round_date=round_date, applied=True).first()
    if settled is not None or order.status not in TO_HAND_OVER:
        detail = settled.outcome if settled is not None else order.status
        return RoundAction.objects.create(**record, outcome=OUT.SUPERSEDED, detail=detail)
    delivery = Delivery.objects.select_related("subscription").filter(order=order).first()
    subscription = delivery.subscription if delivery is not None else None
    try:
        outcome = _apply(vendor=vendor, order=order, subscription=subscription, tap=tap)
    except InvalidTransition as exc:
        return RoundAction.objects.create(**record, outcome=OUT.SUPERSEDED, detail=str(exc)[:200])
    except ValidationError as exc:  # a wrong or missing code: nothing changed
        return RoundAction.objects.create(**record, outcome=OUT.REFUSED, detail=exc.messages[0])
    if delivery is not None and subscription is not None:
        _wellbeing(vendor=vendor, order=order, subscription=subscription, tap=tap)
        if tap.action == A.NOT_HOME:
            effect_add(
                kind=EMAIL,
                key=f"round:{order.pk}:{round_date.isoformat()}:not_home",
                payload={
                    "delivery_id": delivery.pk,
                    "what": "not_at_home",
                    "outcome": NOT_HOME_WORDS[outcome],
                },
            )
    return RoundAction.objects.create(**record, outcome=outcome, applied=True)


def _apply(*, vendor: Vendor, order: Order, subscription: Subscription | None, tap: Tap) -> str:
    """The state change of one tap, through orders.services; returns the outcome."""
    if tap.action == A.DELIVERED:
        if subscription is None:
            order_hand_over(order_id=order.pk, vendor=vendor, code=tap.code)
        else:
            order_hand_over_unattended(order_id=order.pk, vendor=vendor, reason=DELIVERED_REASON)
        return OUT.DELIVERED
    policy = subscription.not_at_home_policy if subscription is not None else ""
    if policy == Subscription.NotAtHome.LEAVE_AT_DOOR:
        order_hand_over_unattended(order_id=order.pk, vendor=vendor, reason=LEFT_AT_DOOR_REASON)
        return OUT.LEFT_AT_DOOR
    if policy == Subscription.NotAtHome.TRY_TOMORROW:
        tried = RoundAction.objects.filter(order=order, outcome=OUT.RETRY_TOMORROW).exists()
        day = timezone.localdate(order.window_start) if order.window_start else timezone.localdate()
        window = None if tried else _next_round_window(vendor_id=vendor.pk, after=day)
        if window is not None:
            order_reschedule(
                order_id=order.pk,
                vendor=vendor,
                window_start=window[0],
                window_end=window[1],
                reason=RETRY_REASON,
            )
            return OUT.RETRY_TOMORROW
    # Refund (the customer's choice, a one-off order, or a second "nobody at home").
    order_vendor_cancel(order_id=order.pk, vendor=vendor, reason=NOT_HOME_REASON)
    return OUT.REFUNDED


def _wellbeing(*, vendor: Vendor, order: Order, subscription: Subscription, tap: Tap) -> None:
    if not subscription.wellbeing_check:
        return
    kinds = []
    if tap.wellbeing:
        kinds.append(tap.wellbeing)
    if tap.action == A.NOT_HOME and tap.uncollected:
        kinds.append(W.UNCOLLECTED)
    for kind in kinds:
        flag = WellbeingFlag.objects.create(
            subscription=subscription,
            order=order,
            kind=kind,
            note=tap.note.strip()[:NOTE_MAX],
            raised_by=vendor.user,
            contact_told=kind != W.WELL,
        )
        if kind == W.WELL:
            continue
        effect_add(kind=WELLBEING_EMAIL, key=f"wellbeing:{flag.pk}", payload={"flag_id": flag.pk})
        event_emit(
            type="wellbeing.alert",
            aggregate="subscription",
            aggregate_id=subscription.pk,
            data={
                "subscription_id": subscription.pk,
                "kind": kind,
                "vendor_id": vendor.pk,
                "flag_id": flag.pk,
            },
        )
