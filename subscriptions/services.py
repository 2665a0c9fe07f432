"""Writes about subscriptions: each one transaction, each state change guarded in SQL.

What follows `deliveries_create_due` lives in subscriptions/delivery.py (issue 15, item 2): the
evening notice, the morning order through orders.services.order_place with the shortage policy,
the off-session charge as a durable effect (subscriptions/effects.py) with retries of soft
declines, the pause after a failed payment (`subscription_pause_for_payment`, here), and the
nightly completeness check. The plan's price advantage is on the order's lines and paid to the
vendor by the platform at capture (payments.ledger); the cancellation fee recorded by
subscription_cancel is charged by subscriptions/fees.py.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Address, CustomerProfile
from customers.selectors import in_vendor_area
from o2o.effects import effect_add
from o2o.errors import Conflict, DomainError, NotAllowed
from payments.models import SavedCard
from vendors.models import Stock, Vendor
from vendors.selectors import vendor_hours

from .calendar import Schedule, due_dates, weekdays_mask
from .fees import fee_collect_start
from .models import (
    Delivery,
    Subscription,
    SubscriptionItem,
    SubscriptionPause,
    SubscriptionSkip,
)
from .selectors import (
    add_months,
    cancellation_fee_quote,
    pause_windows,
    today,
    upcoming_dates,
    vendor_weekdays,
)

MAX_EVERY_N_DAYS = 28
# How far ahead a change reports the deliveries it affects.
CHANGE_HORIZON_DAYS = 28
DUE_BATCH_SIZE = 500
LIVE = (Subscription.Status.ACTIVE, Subscription.Status.PAUSED)


@dataclass(frozen=True)
class ItemIn:
    product_id: int
    quantity: int


def _schedule(
    *, vendor_id: int, weekdays: Collection[int] | None, every_n_days: int | None, anchor: date
) -> Schedule:
    """Validate a schedule against the vendor's working weekdays."""
    works = vendor_weekdays(vendor_id=vendor_id)
    if not works:
        raise DomainError(_("This vendor has no working days for regular deliveries."))
    if bool(weekdays) == (every_n_days is not None):
        raise DomainError(_("Choose either days of the week or every N days."), code="schedule")
    if every_n_days is not None:
        if not 1 <= every_n_days <= MAX_EVERY_N_DAYS:
            raise DomainError(
                _("Every N days: N is between 1 and %(max)d.") % {"max": MAX_EVERY_N_DAYS}
            )
        return Schedule(every_n_days=every_n_days, anchor=anchor)
    assert weekdays is not None
    try:
        mask = weekdays_mask(weekdays)
    except ValueError as exc:
        raise DomainError(_("Unknown day of the week.")) from exc
    if mask & ~works:
        raise DomainError(_("The vendor does not work on some of the days chosen."), code="days")
    return Schedule(weekdays=mask)


def _items(*, vendor: Vendor, items: Sequence[ItemIn]) -> list[tuple[int, int, int]]:
    """Validate lines against the vendor's catalogue: (product_id, quantity, unit price)."""
    if not items:
        raise DomainError(_("Choose at least one product."), code="items")
    ids = [item.product_id for item in items]
    if len(set(ids)) != len(ids):
        raise DomainError(_("Each product once, please."), code="items")
    limit = settings.SUBSCRIPTION_MAX_QUANTITY
    for item in items:
        if not 1 <= item.quantity <= limit:
            raise DomainError(
                _("Quantities are between 1 and %(max)d.") % {"max": limit}, code="quantity"
            )
    prices = dict(
        Stock.objects.filter(
            vendor=vendor, product_id__in=ids, product__is_active=True
        ).values_list("product_id", "product__price")
    )
    if set(ids) - prices.keys():
        raise DomainError(_("Some products are not on this vendor's list."), code="items")
    return [(item.product_id, item.quantity, prices[item.product_id]) for item in items]


@transaction.atomic
def subscription_create(
    *,
    customer: CustomerProfile,
    vendor: Vendor,
    address_id: int,
    plan: str,
    items: Sequence[ItemIn],
    starts_on: date,
    weekdays: Collection[int] | None = None,
    every_n_days: int | None = None,
    shortage_policy: str = Subscription.Shortage.SUPPLY_WHAT_YOU_CAN,
    not_at_home_policy: str = Subscription.NotAtHome.LEAVE_AT_DOOR,
    card_id: int | None = None,
) -> Subscription:
    """Subscribe a customer to a vendor's products on a schedule. Every-N-days counts from
    starts_on. A commitment ends (first free day) the plan's months after starts_on."""
    terms = settings.SUBSCRIPTION_PLANS.get(plan)
    if terms is None:
        raise DomainError(_("Unknown plan."), code="plan")
    if not vendor.can_sell:
        raise DomainError(_("This vendor is not taking subscriptions."))
    if starts_on < today():
        raise DomainError(_("The first delivery can't be in the past."), code="starts_on")
    if shortage_policy not in Subscription.Shortage.values:
        raise DomainError(_("Unknown choice for a short cart."))
    if not_at_home_policy not in Subscription.NotAtHome.values:
        raise DomainError(_("Unknown choice for nobody at home."))
    address = Address.objects.filter(pk=address_id, customer=customer).first()
    if address is None:
        raise DomainError(_("Choose one of your addresses."), code="address")
    if not in_vendor_area(vendor_id=vendor.pk, lat=address.lat, lng=address.lng):
        raise DomainError(_("This address is outside the vendor's area."), code="address")
    schedule = _schedule(
        vendor_id=vendor.pk, weekdays=weekdays, every_n_days=every_n_days, anchor=starts_on
    )
    lines = _items(vendor=vendor, items=items)
    card = _card(customer=customer, card_id=card_id)
    months = int(terms["months"])
    subscription = Subscription.objects.create(
        customer=customer,
        vendor=vendor,
        address=address,
        plan=plan,
        plan_months=months,
        discount_bps=int(terms["discount_bps"]),
        cancel_fee_bps=int(terms["cancel_fee_bps"]),
        starts_on=starts_on,
        commitment_ends_on=add_months(starts_on, months) if months else None,
        weekdays=schedule.weekdays,
        every_n_days=schedule.every_n_days,
        anchor=schedule.anchor,
        schedule_from=starts_on,
        shortage_policy=shortage_policy,
        not_at_home_policy=not_at_home_policy,
        card=card,
    )
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(subscription=subscription, product_id=pid, quantity=qty, unit_price=price)
        for pid, qty, price in lines
    )
    return subscription


def _card(*, customer: CustomerProfile, card_id: int | None) -> SavedCard:
    """The customer's own ACTIVE saved card each delivery is charged to (pages and the API pass
    the default card, selectors.default_card_id, when the customer chose none)."""
    if card_id is None:
        raise DomainError(
            _("Save a card first: each delivery is paid with it when it is ordered."), code="card"
        )
    card = SavedCard.objects.filter(
        pk=card_id, customer=customer, status=SavedCard.Status.ACTIVE
    ).first()
    if card is None:
        raise DomainError(_("Choose one of your cards that can be charged."), code="card")
    return card


def _own(*, subscription_id: int, customer: CustomerProfile) -> Subscription:
    """The customer's subscription, locked for this transaction (NotAllowed: not theirs)."""
    found = (
        Subscription.objects.select_for_update()
        .filter(pk=subscription_id, customer=customer)
        .first()
    )
    if found is None:
        raise NotAllowed(_("No such subscription."))
    return found


def _cancel_due(*, subscription_id: int, since: date, until: date | None, reason: str) -> int:
    """Deliveries made but not yet ordered in [since, until) no longer happen."""
    rows = Delivery.objects.filter(
        subscription_id=subscription_id, date__gte=since, status=Delivery.Status.DUE
    )
    if until is not None:
        rows = rows.filter(date__lt=until)
    return rows.update(status=Delivery.Status.CANCELLED, reason=reason)


@transaction.atomic
def subscription_pause(
    *, subscription_id: int, customer: CustomerProfile, until: date | None
) -> Subscription:
    """ACTIVE -> PAUSED from today until `until` (the first day delivered again; None: until
    resumed). Deliveries already made for the window and not yet ordered are cancelled."""
    start = today()
    if until is not None and until <= start:
        raise DomainError(_("Pause until a day after today."), code="until")
    _own(subscription_id=subscription_id, customer=customer)
    changed = Subscription.objects.filter(
        pk=subscription_id, status=Subscription.Status.ACTIVE
    ).update(status=Subscription.Status.PAUSED, paused_from=start, paused_until=until)
    if not changed:
        raise Conflict(_("Only an active subscription can be paused."))
    pause = SubscriptionPause.objects.create(
        subscription_id=subscription_id, starts_on=start, ends_on=until
    )
    _cancel_due(subscription_id=subscription_id, since=start, until=until, reason="paused")
    effect_add(
        kind="subscription.notify",
        key=f"subscription:{subscription_id}:paused:{pause.pk}",
        payload={"subscription_id": subscription_id, "what": "paused", "pause_id": pause.pk},
    )
    return Subscription.objects.get(pk=subscription_id)


@transaction.atomic
def subscription_pause_for_payment(*, subscription_id: int, reason: str) -> bool:
    """ACTIVE -> PAUSED by the platform, from today until the customer resumes, because a
    delivery's payment failed for good (subscriptions.delivery): `reason` is kept on the row.
    Deliveries made and not yet ordered from today on are cancelled. False when it was not
    active (already paused or cancelled: nothing changes)."""
    changed = Subscription.objects.filter(
        pk=subscription_id, status=Subscription.Status.ACTIVE
    ).update(
        status=Subscription.Status.PAUSED,
        paused_from=today(),
        paused_until=None,
        pause_reason=reason[:200],
    )
    if changed:
        SubscriptionPause.objects.create(
            subscription_id=subscription_id, starts_on=today(), reason=reason[:200]
        )
        _cancel_due(
            subscription_id=subscription_id, since=today(), until=None, reason="payment failed"
        )
    return bool(changed)


@transaction.atomic
def subscription_resume(*, subscription_id: int, customer: CustomerProfile) -> Subscription:
    """PAUSED -> ACTIVE now; the next due day is delivered again."""
    _own(subscription_id=subscription_id, customer=customer)
    changed = Subscription.objects.filter(
        pk=subscription_id, status=Subscription.Status.PAUSED
    ).update(
        status=Subscription.Status.ACTIVE, paused_from=None, paused_until=None, pause_reason=""
    )
    if not changed:
        raise Conflict(_("Only a paused subscription can be resumed."))
    # Today's deliveries were made last evening, while paused: the first day back is tomorrow.
    _pause_end(subscription_id=subscription_id, on=today() + timedelta(days=1))
    return Subscription.objects.get(pk=subscription_id)


def _pause_end(*, subscription_id: int, on: date) -> None:
    """The open pause (no end, or an end after `on`) ends on `on`: delivered again from then."""
    SubscriptionPause.objects.filter(subscription_id=subscription_id).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gt=on)
    ).update(ends_on=on)


def subscriptions_resume_ended_pauses(*, on: date) -> int:
    """PAUSED -> ACTIVE for every pause whose end (first day back) has come by `on`."""
    return Subscription.objects.filter(
        status=Subscription.Status.PAUSED, paused_until__isnull=False, paused_until__lte=on
    ).update(
        status=Subscription.Status.ACTIVE, paused_from=None, paused_until=None, pause_reason=""
    )


@transaction.atomic
def subscription_skip(*, subscription_id: int, customer: CustomerProfile, on: date) -> bool:
    """Skip one future due day. Idempotent: skipping it again changes nothing (returns False).
    A Delivery already made for the day and not yet ordered becomes "skipped"."""
    subscription = _own(subscription_id=subscription_id, customer=customer)
    if subscription.status == Subscription.Status.CANCELLED:
        raise Conflict(_("This subscription is cancelled."))
    if on <= today():
        raise DomainError(_("Only a delivery after today can be skipped."), code="date")
    if SubscriptionSkip.objects.filter(subscription=subscription, date=on).exists():
        return False
    due = due_dates(
        schedules=[(subscription.schedule_from, subscription.schedule)],
        starts_on=subscription.starts_on,
        between=(on, on),
        pauses=pause_windows(subscription),
        vendor_weekdays=vendor_weekdays(vendor_id=subscription.vendor_id),
    )
    if not due:
        raise DomainError(_("No delivery is due that day."), code="date")
    SubscriptionSkip.objects.create(subscription=subscription, date=on)
    Delivery.objects.filter(subscription=subscription, date=on, status=Delivery.Status.DUE).update(
        status=Delivery.Status.SKIPPED, reason="skipped by the customer"
    )
    return True


@dataclass(frozen=True)
class Change:
    """What a change did: from which day it counts, and the upcoming days it touches."""

    subscription: Subscription
    effective_from: date
    added: list[date] = field(default_factory=list)
    removed: list[date] = field(default_factory=list)
    repriced: list[date] = field(default_factory=list)


@transaction.atomic
def subscription_change(
    *,
    subscription_id: int,
    customer: CustomerProfile,
    items: Sequence[ItemIn] | None = None,
    weekdays: Collection[int] | None = None,
    every_n_days: int | None = None,
) -> Change:
    """Change items/quantities and/or days, effective from the next day not yet ordered:
    max(tomorrow, starts_on, the day after the last Delivery no longer "due"). An every-N-days
    schedule counts from that day. Due Deliveries from then on that the new days no longer hit are
    cancelled. Products kept keep their snapshotted price; new ones take today's."""
    subscription = _own(subscription_id=subscription_id, customer=customer)
    if subscription.status not in LIVE:
        raise Conflict(_("This subscription is cancelled."))
    last_done = (
        Delivery.objects.filter(subscription=subscription)
        .exclude(status=Delivery.Status.DUE)
        .order_by("-date")
        .values_list("date", flat=True)
        .first()
    )
    effective_from = max(
        today() + timedelta(days=1),
        subscription.starts_on,
        last_done + timedelta(days=1) if last_done else subscription.starts_on,
    )
    horizon = (effective_from, effective_from + timedelta(days=CHANGE_HORIZON_DAYS))
    before = set(upcoming_dates(subscription=subscription, n=100, after=effective_from))
    items_changed = False
    if weekdays is not None or every_n_days is not None:
        schedule = _schedule(
            vendor_id=subscription.vendor_id,
            weekdays=weekdays,
            every_n_days=every_n_days,
            anchor=effective_from,
        )
        Subscription.objects.filter(pk=subscription.pk).update(
            weekdays=schedule.weekdays,
            every_n_days=schedule.every_n_days,
            anchor=schedule.anchor,
            schedule_from=effective_from,
        )
    if items is not None:
        lines = _items(vendor=subscription.vendor, items=items)
        kept = dict(subscription.items.values_list("product_id", "unit_price"))
        old = sorted(subscription.items.values_list("product_id", "quantity", "unit_price"))
        new = sorted((pid, qty, kept.get(pid, price)) for pid, qty, price in lines)
        items_changed = old != new
        subscription.items.all().delete()
        SubscriptionItem.objects.bulk_create(
            SubscriptionItem(subscription=subscription, product_id=pid, quantity=qty, unit_price=up)
            for pid, qty, up in new
        )
    subscription = Subscription.objects.get(pk=subscription.pk)
    after = set(upcoming_dates(subscription=subscription, n=100, after=effective_from))

    def in_horizon(days: set[date]) -> list[date]:
        return sorted(day for day in days if day <= horizon[1])

    still_due = Delivery.objects.filter(
        subscription=subscription, date__gte=effective_from, status=Delivery.Status.DUE
    )
    still_due.exclude(date__in=after).update(
        status=Delivery.Status.CANCELLED, reason="schedule changed"
    )
    return Change(
        subscription=subscription,
        effective_from=effective_from,
        added=in_horizon(after - before),
        removed=in_horizon(before - after),
        repriced=in_horizon(before & after) if items_changed else [],
    )


@transaction.atomic
def subscription_preferences_set(
    *,
    subscription_id: int,
    customer: CustomerProfile,
    shortage_policy: str,
    not_at_home_policy: str,
    wellbeing_check: bool,
    contact_name: str = "",
    contact_email: str = "",
    consent: bool = False,
) -> Subscription:
    """What happens at the door: the choices for a short cart and for nobody at home (from the
    next round on), and the wellbeing check. The check needs the subscriber's consent, given
    here, and a contact to tell; turning it off forgets the contact."""
    subscription = _own(subscription_id=subscription_id, customer=customer)
    if subscription.status not in LIVE:
        raise Conflict(_("This subscription is cancelled."))
    if shortage_policy not in Subscription.Shortage.values:
        raise DomainError(_("Unknown choice for a short cart."))
    if not_at_home_policy not in Subscription.NotAtHome.values:
        raise DomainError(_("Unknown choice for nobody at home."))
    fields: dict[str, Any] = {
        "shortage_policy": shortage_policy,
        "not_at_home_policy": not_at_home_policy,
        "wellbeing_check": wellbeing_check,
    }
    if wellbeing_check:
        email = (contact_email or "").strip()
        try:
            validate_email(email)
        except ValidationError as exc:
            raise DomainError(
                _("Give the e-mail address of the person to tell."), code="contact_email"
            ) from exc
        if not consent:
            raise DomainError(
                _("The wellbeing check needs your agreement that this person is told."),
                code="consent",
            )
        fields.update(
            wellbeing_contact_name=(contact_name or "").strip()[:100],
            wellbeing_contact_email=email,
            wellbeing_consent_at=subscription.wellbeing_consent_at
            if subscription.wellbeing_check
            and subscription.wellbeing_contact_email == email
            and subscription.wellbeing_consent_at
            else timezone.now(),
        )
    else:
        fields.update(
            wellbeing_contact_name="", wellbeing_contact_email="", wellbeing_consent_at=None
        )
    Subscription.objects.filter(pk=subscription.pk, status__in=LIVE).update(**fields)
    return Subscription.objects.get(pk=subscription.pk)


@transaction.atomic
def subscription_cancel(*, subscription_id: int, customer: CustomerProfile) -> Subscription:
    """ACTIVE/PAUSED -> CANCELLED today, recording the cancellation fee
    (selectors.cancellation_fee_quote has the one rule: cancel_fee_bps of the remaining committed
    value, half-up; 0 for cancel-anytime). Due deliveries from today on are cancelled. A fee is
    charged to the saved card after the commit by a durable effect written here
    (subscriptions/fees.py), and booked in the ledger when captured."""
    subscription = _own(subscription_id=subscription_id, customer=customer)
    on = today()
    fee = cancellation_fee_quote(subscription=subscription, on=on)
    changed = Subscription.objects.filter(pk=subscription_id, status__in=LIVE).update(
        status=Subscription.Status.CANCELLED,
        cancelled_at=timezone.now(),
        cancellation_fee=fee,
        paused_from=None,
        paused_until=None,
    )
    if not changed:
        raise Conflict(_("This subscription is already cancelled."))
    _pause_end(subscription_id=subscription_id, on=on)
    _cancel_due(subscription_id=subscription_id, since=on, until=None, reason="cancelled")
    if fee:
        fee_collect_start(subscription_id=subscription_id)
    return Subscription.objects.get(pk=subscription_id)


@dataclass(frozen=True)
class DueCounts:
    due: int = 0
    skipped: int = 0
    existing: int = 0


# One statement per batch: the schedule, the status and the start are tested again in the INSERT's
# own SELECT, under FOR SHARE, so a pause, cancel or change committed while the batch was being read
# (or waiting on the row lock) wins; the unique key makes a second run, or a concurrent one, insert
# nothing. Every-N-days: (day - anchor) is an integer number of days in PostgreSQL.
_INSERT_DUE = """
INSERT INTO subscriptions_delivery (subscription_id, date, status, reason, created_at, order_id)
SELECT s.id, %(on)s,
       CASE WHEN k.id IS NULL THEN 'due' ELSE 'skipped' END,
       CASE WHEN k.id IS NULL THEN '' ELSE 'skipped by the customer' END,
       %(now)s, NULL
FROM subscriptions_subscription s
LEFT JOIN subscriptions_subscriptionskip k ON k.subscription_id = s.id AND k.date = %(on)s
WHERE s.id = ANY(%(ids)s)
  AND s.status = 'active'
  AND s.starts_on <= %(on)s
  AND s.vendor_id = ANY(%(vendors)s)
  AND ((s.every_n_days IS NULL AND (s.weekdays & %(bit)s) <> 0)
       OR (s.every_n_days IS NOT NULL AND (%(on)s::date - s.anchor) %% s.every_n_days = 0))
FOR SHARE OF s
ON CONFLICT (subscription_id, date) DO NOTHING
RETURNING status
"""


def _insert_due_embedded(*, on: date, ids: list[int], bit: int) -> list[str]:
    """The same rule as _INSERT_DUE for the embedded demo's SQLite, which takes one writer at a
    time (the transaction holds the database's write lock, so nothing races it): the statuses of
    the rows inserted."""
    with transaction.atomic():
        rows = Subscription.objects.filter(
            pk__in=ids, status=Subscription.Status.ACTIVE, starts_on__lte=on
        ).values_list("pk", "weekdays", "every_n_days", "anchor")
        due_ids = [
            pk
            for pk, weekdays, every_n, anchor in rows
            if (every_n is None and weekdays & bit)
            or (every_n is not None and anchor is not None and (on - anchor).days % every_n == 0)
        ]
        had = set(
            Delivery.objects.filter(subscription_id__in=due_ids, date=on).values_list(
                "subscription_id", flat=True
            )
        )
        skipped = set(
            SubscriptionSkip.objects.filter(subscription_id__in=due_ids, date=on).values_list(
                "subscription_id", flat=True
            )
        )
        new = [
            Delivery(
                subscription_id=pk,
                date=on,
                status=Delivery.Status.SKIPPED if pk in skipped else Delivery.Status.DUE,
                reason="skipped by the customer" if pk in skipped else "",
            )
            for pk in due_ids
            if pk not in had
        ]
        Delivery.objects.bulk_create(new, ignore_conflicts=True)
    return [d.status for d in new]


def deliveries_create_due(*, on: date, batch_size: int = DUE_BATCH_SIZE) -> DueCounts:
    """Insert the one Delivery of each active subscription due on `on` ("due", or "skipped"
    where the customer skipped the day), in batches of `batch_size`, each its own transaction.
    Never for a paused or cancelled subscription; safe to run twice or at once (ON CONFLICT DO
    NOTHING on (subscription, date)). Pauses whose end has come are resumed first. `existing`
    counts subscriptions due that day whose Delivery was already there.

    Days the vendor does not work are not due. A day before `schedule_from` is judged by the
    current schedule (a late run after a change; the normal nightly run precedes any change)."""
    subscriptions_resume_ended_pauses(on=on)
    weekday = on.weekday()
    bit = 1 << weekday
    candidates = Subscription.objects.filter(
        status=Subscription.Status.ACTIVE, starts_on__lte=on
    ).order_by("pk")
    due = skipped = existing = 0
    last_pk = 0
    while True:
        batch = list(candidates.filter(pk__gt=last_pk).values_list("pk", "vendor_id")[:batch_size])
        if not batch:
            break
        last_pk = batch[-1][0]
        hours = vendor_hours(vendor_ids={vid for _pk, vid in batch})
        working = [
            vid for vid, spans in hours.items() if any(sp.weekday == weekday for sp in spans)
        ]
        ids = [pk for pk, vid in batch if vid in working]
        if not ids:
            continue
        params: dict[str, Any] = {
            "on": on,
            "now": timezone.now(),
            "ids": ids,
            "vendors": working,
            "bit": bit,
        }
        if connection.vendor == "postgresql":
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_INSERT_DUE, params)
                inserted = [row[0] for row in cursor.fetchall()]
        else:
            inserted = _insert_due_embedded(on=on, ids=ids, bit=bit)
        due += inserted.count(Delivery.Status.DUE)
        skipped += inserted.count(Delivery.Status.SKIPPED)
        existing += Delivery.objects.filter(subscription_id__in=ids, date=on).count() - len(
            inserted
        )
    return DueCounts(due=due, skipped=skipped, existing=existing)
