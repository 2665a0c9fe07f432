"""Racing customer actions resolve to one outcome; staff can read everything in the admin."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Subscription, SubscriptionSkip
from subscriptions.services import subscription_cancel, subscription_pause, subscription_skip
from tests.subscriptions.factories import (
    DeliveryFactory,
    SubscriptionFactory,
    SubscriptionItemFactory,
    SubscriptionSkipFactory,
)


def race(*calls):
    """Run each call in its own thread, released together; return results and refusals."""
    barrier = threading.Barrier(len(calls))
    outcomes = []

    def run(call):
        try:
            barrier.wait()
            outcomes.append(call())
        except ValidationError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pause_racing_cancel_has_one_winner():
    sub = SubscriptionFactory(plan="commit_3m")
    SubscriptionItemFactory(subscription=sub)
    who = sub.customer
    outcomes = race(
        lambda: subscription_cancel(subscription_id=sub.pk, customer=who),
        lambda: subscription_pause(subscription_id=sub.pk, customer=who, until=None),
        lambda: subscription_cancel(subscription_id=sub.pk, customer=who),
    )
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    sub.refresh_from_db()
    # Exactly one cancel wins; the pause either came first (then a cancel still wins) or is refused
    assert sub.status == Subscription.Status.CANCELLED
    assert sum(1 for o in outcomes if getattr(o, "status", "") == "cancelled") == 1
    assert len(refused) in (1, 2)
    assert sub.cancellation_fee > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_skips_of_one_day_make_one_skip():
    sub = SubscriptionFactory(weekdays=0b111_1111)
    day = timezone.localdate() + timedelta(days=2)
    outcomes = race(
        *[lambda: subscription_skip(subscription_id=sub.pk, customer=sub.customer, on=day)] * 4
    )
    assert sorted(outcomes) == [False, False, False, True]
    assert SubscriptionSkip.objects.filter(subscription=sub, date=day).count() == 1


@pytest.mark.django_db
def test_admin_lists_and_shows_every_model(client, staff):
    sub = SubscriptionFactory()
    SubscriptionItemFactory(subscription=sub)
    SubscriptionSkipFactory(subscription=sub)
    DeliveryFactory(subscription=sub)
    client.force_login(staff)
    for model in ("subscription", "subscriptionitem", "subscriptionskip", "delivery"):
        assert client.get(reverse(f"admin:subscriptions_{model}_changelist")).status_code == 200
    assert (
        client.get(reverse("admin:subscriptions_subscription_change", args=[sub.pk])).status_code
        == 200
    )
