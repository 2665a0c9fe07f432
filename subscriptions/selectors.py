"""Reads about subscriptions, shared by the pages and the API.

The cost of one delivery, written down once: items = Σ quantity × unit price (snapshotted);
discount = Σ quantity × (unit price − plan_unit_price), the plan's discount_bps taken off each
unit's price rounded half-up (o2o.money.basis_points_of); cost = items − discount + the vendor's delivery fee. Integer KRW.
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from customers.models import CustomerProfile
from o2o.errors import NotAllowed
from o2o.money import basis_points_of
from vendors.selectors import vendor_hours

from .calendar import PauseWindow, due_dates, next_due_dates, weekdays_mask
from .models import Delivery, Subscription, SubscriptionItem


@dataclass(frozen=True)
class DeliveryCost:
    items: int
    discount: int
    delivery_fee: int

    @property
    def total(self) -> int:
        return self.items - self.discount + self.delivery_fee


@dataclass(frozen=True)
class UpcomingDelivery:
    date: date
    cost: DeliveryCost


def today() -> date:
    """Today in the platform's time zone (Asia/Seoul)."""
    return timezone.localdate()


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def vendor_weekdays(*, vendor_id: int) -> int:
    """The weekdays the vendor works (published hours, else the platform's), as a bitmask."""
    return weekdays_mask({span.weekday for span in vendor_hours(vendor_ids=[vendor_id])[vendor_id]})


def subscriptions_of(*, customer: CustomerProfile | None) -> QuerySet[Subscription]:
    """A customer's subscriptions, newest first, with what the cost needs loaded."""
    if customer is None:
        return Subscription.objects.none()
    return (
        Subscription.objects.filter(customer=customer)
        .select_related("vendor", "address")
        .prefetch_related(
            Prefetch("items", queryset=SubscriptionItem.objects.select_related("product")),
            "skips",
        )
    )


def default_card_id(*, customer: CustomerProfile) -> int | None:
    """The customer's default ACTIVE saved card (what a new subscription is charged to when they
    choose none), or None."""
    from payments.models import SavedCard

    return (
        SavedCard.objects.filter(customer=customer, status=SavedCard.Status.ACTIVE, is_default=True)
        .values_list("pk", flat=True)
        .first()
    )


def subscription_of(*, customer: CustomerProfile | None, subscription_id: int) -> Subscription:
    """The customer's own subscription; anyone else's is NotAllowed (shown as a 404)."""
    found = subscriptions_of(customer=customer).filter(pk=subscription_id).first()
    if found is None:
        raise NotAllowed("No such subscription.")
    return found


def plan_unit_price(*, unit_price: int, discount_bps: int) -> int:
    """What one unit costs on the plan: the saved price less the plan's discount, rounded half-up
    per unit. The one rounding rule: the notice, the order's lines and the charge all use it, so
    what the customer is told is what is charged."""
    return unit_price - basis_points_of(unit_price, discount_bps)


def delivery_cost(*, subscription: Subscription) -> DeliveryCost:
    lines = [(item.quantity, item.unit_price) for item in subscription.items.all()]
    items = sum(q * price for q, price in lines)
    on_plan = sum(
        q * plan_unit_price(unit_price=price, discount_bps=subscription.discount_bps)
        for q, price in lines
    )
    return DeliveryCost(
        items=items, discount=items - on_plan, delivery_fee=subscription.vendor.delivery_fee
    )


def pause_windows(subscription: Subscription) -> list[PauseWindow]:
    if subscription.status == Subscription.Status.PAUSED and subscription.paused_from:
        return [(subscription.paused_from, subscription.paused_until)]
    return []


def pause_history(subscription: Subscription) -> list[PauseWindow]:
    """Every pause the subscription had (SubscriptionPause), ended ones too, with the current
    one: what the completeness check must not take for missed days."""
    windows: list[PauseWindow] = [
        (p.starts_on, p.ends_on) for p in subscription.pauses.all() if p.ends_on != p.starts_on
    ]
    return windows + pause_windows(subscription)


def upcoming_dates(
    *,
    subscription: Subscription,
    n: int = 6,
    after: date | None = None,
    works: int | None = None,
) -> list[date]:
    """The next `n` days the subscription will be delivered, from `after` (today) on. `works`:
    the vendor's working weekdays when the caller has them (a list reads them once for all)."""
    if subscription.status == Subscription.Status.CANCELLED:
        return []
    if works is None:
        works = vendor_weekdays(vendor_id=subscription.vendor_id)
    if after is None:
        after = today()
        # Today's delivery, once ordered (or skipped, failed…), is no longer to come: it is among
        # the recent ones, with its order.
        made = Delivery.objects.filter(subscription=subscription, date=after).exclude(
            status=Delivery.Status.DUE
        )
        if made.exists():
            after += timedelta(days=1)
    return next_due_dates(
        schedules=[(subscription.schedule_from, subscription.schedule)],
        starts_on=subscription.starts_on,
        after=after,
        n=n,
        skips={skip.date for skip in subscription.skips.all()},
        pauses=pause_windows(subscription),
        vendor_weekdays=works,
    )


def upcoming_deliveries(
    *,
    subscription: Subscription,
    n: int = 6,
    after: date | None = None,
    works: int | None = None,
) -> list[UpcomingDelivery]:
    """The list shown to the customer: each next delivery with what it will cost."""
    cost = delivery_cost(subscription=subscription)
    return [
        UpcomingDelivery(date=day, cost=cost)
        for day in upcoming_dates(subscription=subscription, n=n, after=after, works=works)
    ]


def upcoming_deliveries_of(
    *, subscriptions: list[Subscription], n: int = 6
) -> dict[int, list[UpcomingDelivery]]:
    """upcoming_deliveries for a list (from subscriptions_of), the vendors' hours read once."""
    hours = vendor_hours(vendor_ids={s.vendor_id for s in subscriptions})
    works = {vid: weekdays_mask({span.weekday for span in spans}) for vid, spans in hours.items()}
    day = today()
    made_today = set(
        Delivery.objects.filter(subscription__in=subscriptions, date=day)
        .exclude(status=Delivery.Status.DUE)
        .values_list("subscription_id", flat=True)
    )
    return {
        s.pk: upcoming_deliveries(
            subscription=s,
            n=n,
            works=works[s.vendor_id],
            after=day + timedelta(days=1) if s.pk in made_today else day,
        )
        for s in subscriptions
    }


def cancellation_fee_quote(*, subscription: Subscription, on: date | None = None) -> int:
    """The fee for cancelling on `on` (today). The rule (one, exact):

    fee = cancel_fee_bps × the remaining committed value / 10 000, rounded half-up once, where
    the remaining committed value is Σ (items − discount) over the days the schedule (as it stands,
    on the days the vendor works) hits from the day after `on` (or starts_on, if later) up to the
    day before commitment_ends_on. Skips and pauses do not reduce it (the commitment is to the
    schedule); delivery fees are not part of it. 0 for cancel-anytime plans and once the
    commitment has ended.
    """
    on = on or today()
    ends = subscription.commitment_ends_on
    if not subscription.plan_months or ends is None or on >= ends:
        return 0
    per_delivery = delivery_cost(subscription=subscription)
    days = due_dates(
        schedules=[(subscription.schedule_from, subscription.schedule)],
        starts_on=subscription.starts_on,
        between=(on + timedelta(days=1), ends - timedelta(days=1)),
        vendor_weekdays=vendor_weekdays(vendor_id=subscription.vendor_id),
    )
    remaining = len(days) * (per_delivery.items - per_delivery.discount)
    return basis_points_of(remaining, subscription.cancel_fee_bps)


def recent_deliveries(*, subscription: Subscription, n: int = 10) -> list[Delivery]:
    """The subscription's last `n` delivery days up to today, each with its order (newest first),
    for the customer's page: what came, what was skipped or failed and why."""
    return list(
        Delivery.objects.filter(subscription=subscription, date__lte=today() + timedelta(days=1))
        .select_related("order")
        .order_by("-date")[:n]
    )
