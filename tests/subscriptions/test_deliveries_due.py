"""Beat's daily insert: one Delivery per subscription and due day, whatever runs twice or at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from subscriptions.models import Delivery, Subscription
from subscriptions.services import deliveries_create_due
from tests.subscriptions.factories import (
    SubscriptionFactory,
    SubscriptionSkipFactory,
    working_vendor,
)

pytestmark = pytest.mark.postgres


def next_monday():
    day = timezone.localdate() + timedelta(days=1)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


@pytest.mark.django_db
def test_twice_makes_one_each_and_never_for_paused_or_cancelled():
    monday = next_monday()
    vendor = working_vendor()
    due = SubscriptionFactory.create_batch(3, vendor=vendor, starts_on=monday)
    skipped = SubscriptionFactory(vendor=vendor, starts_on=monday)
    SubscriptionSkipFactory(subscription=skipped, date=monday)
    SubscriptionFactory(
        vendor=vendor, starts_on=monday, status="paused", paused_from=monday - timedelta(days=1)
    )
    SubscriptionFactory(
        vendor=vendor, starts_on=monday, status="cancelled", cancelled_at=timezone.now()
    )
    SubscriptionFactory(vendor=vendor, starts_on=monday, weekdays=0b10)  # Tuesdays
    SubscriptionFactory(vendor=vendor, starts_on=monday + timedelta(days=7))  # not yet
    SubscriptionFactory(vendor=working_vendor(weekdays=[1, 2]), starts_on=monday)  # off Mondays

    first = deliveries_create_due(on=monday, batch_size=2)
    second = deliveries_create_due(on=monday, batch_size=2)

    assert (first.due, first.skipped, first.existing) == (3, 1, 0)
    assert (second.due, second.skipped, second.existing) == (0, 0, 4)
    rows = Delivery.objects.filter(date=monday)
    assert sorted(rows.filter(status="due").values_list("subscription_id", flat=True)) == sorted(
        s.pk for s in due
    )
    assert rows.get(status="skipped").subscription_id == skipped.pk


@pytest.mark.django_db
def test_a_pause_that_has_ended_is_resumed_first():
    monday = next_monday()
    sub = SubscriptionFactory(
        starts_on=monday,
        status="paused",
        paused_from=monday - timedelta(days=3),
        paused_until=monday,
    )
    assert deliveries_create_due(on=monday).due == 1
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE


@pytest.mark.django_db
def test_every_n_days_counts_from_its_anchor():
    monday = next_monday()
    sub = SubscriptionFactory(starts_on=monday, weekdays=0, every_n_days=2, anchor=monday)
    assert deliveries_create_due(on=monday + timedelta(days=1)).due == 0
    assert deliveries_create_due(on=monday + timedelta(days=2)).due == 1
    assert Delivery.objects.get().subscription_id == sub.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_make_exactly_one_each():
    monday = next_monday()
    vendor = working_vendor()
    subs = SubscriptionFactory.create_batch(30, vendor=vendor, starts_on=monday)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(deliveries_create_due(on=monday, batch_size=7))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    assert sum(r.due for r in results) == 30
    assert Delivery.objects.filter(date=monday).count() == 30
    assert set(Delivery.objects.values_list("subscription_id", flat=True)) == {s.pk for s in subs}


@pytest.mark.django_db(transaction=True)
def test_a_pause_committed_while_the_run_waits_wins():
    # Given a subscription whose row a pause holds locked (its UPDATE not yet committed)
    monday = next_monday()
    sub = SubscriptionFactory(starts_on=monday)
    locked, release = threading.Event(), threading.Event()

    def pause():
        from django.db import transaction

        try:
            with transaction.atomic():
                Subscription.objects.filter(pk=sub.pk, status="active").update(
                    status="paused", paused_from=timezone.localdate()
                )
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    pauser = threading.Thread(target=pause)
    pauser.start()
    locked.wait(10)
    outcome = []

    def beat():
        try:
            outcome.append(deliveries_create_due(on=monday))
        finally:
            connection.close()

    # When beat reads it as active and then waits on the row lock while the pause commits
    runner = threading.Thread(target=beat)
    runner.start()
    runner.join(1)
    release.set()
    pauser.join()
    runner.join()

    # Then no Delivery is made for the paused subscription
    assert outcome[0].due == 0
    assert not Delivery.objects.exists()
