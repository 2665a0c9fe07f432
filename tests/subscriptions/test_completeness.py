"""The nightly completeness check after random sequences of subscribe / pause / resume / skip /
cancel and the beat's runs, day after day (hypothesis): every due day has exactly one settled
Delivery, so the check finds nothing; and a day whose run was missed is found.

Time is simulated: the services' "today" is the simulated day (subscriptions.selectors.today and
its import in services), and the beat's runs take their day as an argument. The carts hold no
stock and each subscription skips a delivery it can't fill, so each morning run settles its rows
without a payment."""

from datetime import datetime, time, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o2o.errors import Conflict, DomainError
from subscriptions import delivery as flow
from subscriptions import selectors, services
from subscriptions.models import Delivery, Subscription
from tests.subscriptions.factories import (
    SubscriptionFactory,
    SubscriptionItemFactory,
    stocked,
    working_vendor,
)
from vendors.models import Stock

DAYS = 12
ACTIONS = st.sampled_from(["none", "pause", "pause_until", "resume", "skip", "cancel"])
DAY_PLAN = st.lists(st.tuples(ACTIONS, st.integers(1, 4)), min_size=3, max_size=3)


class Clock:
    def __init__(self, day):
        self.day = day

    def __call__(self):
        return self.day


def _subscriptions(start):
    vendor = working_vendor(weekdays=range(7))
    product = stocked(vendor)
    Stock.objects.filter(vendor=vendor).update(quantity=0)
    subs = []
    for weekdays in (0b1111111, 0b0101010, 0b1000101):
        sub = SubscriptionFactory(
            vendor=vendor,
            starts_on=start,
            schedule_from=start,
            weekdays=weekdays,
            shortage_policy=Subscription.Shortage.SKIP,
        )
        SubscriptionItemFactory(subscription=sub, product=product)
        subs.append(sub)
    return subs


def _act(sub, action, k, today):
    sub.refresh_from_db()
    try:
        if action == "pause":
            services.subscription_pause(subscription_id=sub.pk, customer=sub.customer, until=None)
        elif action == "pause_until":
            services.subscription_pause(
                subscription_id=sub.pk, customer=sub.customer, until=today + timedelta(days=k)
            )
        elif action == "resume":
            services.subscription_resume(subscription_id=sub.pk, customer=sub.customer)
        elif action == "skip":
            services.subscription_skip(
                subscription_id=sub.pk, customer=sub.customer, on=today + timedelta(days=k)
            )
        elif action == "cancel":
            services.subscription_cancel(subscription_id=sub.pk, customer=sub.customer)
            # The cancel happened on the simulated day (its time is what the check reads)
            noon = datetime.combine(today, time(12), tzinfo=timezone.get_current_timezone())
            Subscription.objects.filter(pk=sub.pk).update(cancelled_at=noon)
    except (Conflict, DomainError):
        pass  # a move the state does not allow (pausing a paused one, skipping a free day)


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(DAY_PLAN, min_size=DAYS, max_size=DAYS))
def test_every_due_day_is_settled_once_whatever_the_customers_do(monkeypatch, plans):
    start = timezone.localdate() + timedelta(days=1)
    clock = Clock(start - timedelta(days=1))
    monkeypatch.setattr(selectors, "today", clock)
    monkeypatch.setattr(services, "today", clock)
    with transaction.atomic():
        subs = _subscriptions(start)
        # The evening before the first day
        flow.deliveries_prepare(on=start)
        for n, plan in enumerate(plans):
            day = start + timedelta(days=n)
            clock.day = day
            # Morning: the day's orders (here: skipped, nothing on the cart)
            flow.deliveries_place(on=day, limit=1000)
            # During the day: what each customer does
            for sub, (action, k) in zip(subs, plan, strict=True):
                _act(sub, action, k, day)
            # Evening: tomorrow's rows and notices
            flow.deliveries_prepare(on=day + timedelta(days=1))
        last = start + timedelta(days=DAYS - 1)
        # Then the night's check through the last day finds nothing
        found = flow.deliveries_check(through=last, days=DAYS)
        rows = list(Delivery.objects.values_list("subscription_id", "date"))
        transaction.set_rollback(True)
    assert found == 0
    assert len(rows) == len(set(rows))


@pytest.mark.django_db
def test_a_missed_morning_run_is_found(monkeypatch):
    start = timezone.localdate() + timedelta(days=1)
    clock = Clock(start)
    monkeypatch.setattr(selectors, "today", clock)
    monkeypatch.setattr(services, "today", clock)
    subs = _subscriptions(start)
    flow.deliveries_prepare(on=start)
    # The morning run never happened; then a pause that ended does not hide the day
    services.subscription_pause(
        subscription_id=subs[1].pk, customer=subs[1].customer, until=start + timedelta(days=2)
    )
    services.subscription_resume(subscription_id=subs[1].pk, customer=subs[1].customer)
    found = flow.deliveries_check(through=start, days=1)
    expected_due = sum(
        1 for s in subs if Delivery.objects.filter(subscription=s, date=start, status="due")
    )
    assert found == expected_due >= 1
