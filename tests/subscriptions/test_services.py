"""Subscribing, pausing, skipping, changing and cancelling: the rules and the exact fee."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from o2o.effects import effects_run
from o2o.models import Effect
from subscriptions.models import Delivery, Subscription
from subscriptions.selectors import add_months, upcoming_deliveries
from subscriptions.services import (
    ItemIn,
    subscription_cancel,
    subscription_change,
    subscription_create,
    subscription_pause,
    subscription_resume,
    subscription_skip,
)
from tests.factories import AddressFactory, CustomerProfileFactory, ProductFactory
from tests.subscriptions.factories import (
    DeliveryFactory,
    SavedCardFactory,
    stocked,
    working_vendor,
)

pytestmark = pytest.mark.django_db


def next_weekday(weekday: int, after: date | None = None) -> date:
    """The first `weekday` strictly after `after` (today)."""
    day = (after or timezone.localdate()) + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


@pytest.fixture
def shop():
    vendor = working_vendor()
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer)
    product = stocked(vendor, price=1235)
    return vendor, customer, address, product


def create(shop, **overrides):
    vendor, customer, address, product = shop
    args = dict(
        customer=customer,
        vendor=vendor,
        address_id=address.pk,
        plan="anytime",
        items=[ItemIn(product_id=product.pk, quantity=1)],
        starts_on=next_weekday(0),
        weekdays={0},
        card_id=SavedCardFactory(customer=customer).pk,
    )
    args.update(overrides)
    return subscription_create(**args)


def test_create_snapshots_the_plan_and_prices(shop):
    sub = create(shop, plan="commit_3m")
    assert (sub.plan_months, sub.discount_bps, sub.cancel_fee_bps) == (3, 500, 1000)
    assert sub.commitment_ends_on == add_months(sub.starts_on, 3)
    assert [(i.quantity, i.unit_price) for i in sub.items.all()] == [(1, 1235)]
    assert sub.status == Subscription.Status.ACTIVE


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"weekdays": {5}}, "does not work"),
        ({"weekdays": set(), "every_n_days": None}, "either days"),
        ({"weekdays": {0}, "every_n_days": 3}, "either days"),
        ({"weekdays": None, "every_n_days": 29}, "between 1 and 28"),
        ({"starts_on": date(2020, 1, 6)}, "past"),
        ({"plan": "forever"}, "Unknown plan"),
        ({"items": []}, "at least one product"),
    ],
)
def test_bad_input_is_refused_with_a_message(shop, overrides, message):
    with pytest.raises(ValidationError) as caught:
        create(shop, **overrides)
    assert message in " ".join(caught.value.messages)
    assert not Subscription.objects.exists()


def test_items_must_be_on_the_vendors_list_and_bounded(shop, settings):
    settings.SUBSCRIPTION_MAX_QUANTITY = 5
    stranger = ProductFactory()
    with pytest.raises(ValidationError, match="not on this vendor"):
        create(shop, items=[ItemIn(product_id=stranger.pk, quantity=1)])
    with pytest.raises(ValidationError, match="between 1 and 5"):
        create(shop, items=[ItemIn(product_id=shop[3].pk, quantity=6)])
    with pytest.raises(ValidationError, match="between 1 and 5"):
        create(shop, items=[ItemIn(product_id=shop[3].pk, quantity=0)])


def test_an_address_outside_the_area_or_someone_elses_is_refused(shop):
    far = AddressFactory(customer=shop[1], lat=35.1796, lng=129.0756)  # Busan
    with pytest.raises(ValidationError, match="outside the vendor"):
        create(shop, address_id=far.pk)
    other = AddressFactory()
    with pytest.raises(ValidationError, match="your addresses"):
        create(shop, address_id=other.pk)


def test_upcoming_deliveries_cost_items_less_discount_plus_fee(shop):
    sub = create(shop, plan="commit_6m", items=[ItemIn(product_id=shop[3].pk, quantity=3)])
    first = upcoming_deliveries(subscription=sub, n=3)
    # 10% off 1235 per unit: 123.5 -> 124 (half-up), 1111 a unit; 3 × 1111 + the vendor's fee 1000
    assert [d.cost.total for d in first] == [3 * 1111 + 1000] * 3
    assert [d.date for d in first] == [sub.starts_on + timedelta(weeks=k) for k in range(3)]


def test_pause_resume_guarded_and_cancels_due_rows(shop):
    sub = create(shop)
    DeliveryFactory(subscription=sub, date=sub.starts_on)
    back = sub.starts_on + timedelta(days=7)
    paused = subscription_pause(subscription_id=sub.pk, customer=shop[1], until=back)
    assert paused.status == Subscription.Status.PAUSED
    assert Delivery.objects.get().status == Delivery.Status.CANCELLED
    assert upcoming_deliveries(subscription=paused, n=1)[0].date == back
    with pytest.raises(ValidationError, match="Only an active"):
        subscription_pause(subscription_id=sub.pk, customer=shop[1], until=back)
    assert subscription_resume(subscription_id=sub.pk, customer=shop[1]).status == "active"
    with pytest.raises(ValidationError, match="Only a paused"):
        subscription_resume(subscription_id=sub.pk, customer=shop[1])
    # The pause was confirmed by e-mail (an effect written with it; sent while still paused)
    [notify] = Effect.objects.filter(kind="subscription.notify")
    assert notify.payload["what"] == "paused" and notify.payload["subscription_id"] == sub.pk
    subscription_pause(subscription_id=sub.pk, customer=shop[1], until=back)
    assert Effect.objects.filter(kind="subscription.notify").count() == 2  # a second pause: again
    effects_run(kinds=["subscription.notify"])
    sent = [m for m in mail.outbox if "paused" in m.subject]
    assert len(sent) == 1  # the first was for a pause that had ended: not sent
    assert back.strftime("%Y") in sent[0].body and shop[1].user.email in sent[0].to


def test_pause_until_today_or_earlier_is_refused(shop):
    sub = create(shop)
    with pytest.raises(ValidationError, match="after today"):
        subscription_pause(subscription_id=sub.pk, customer=shop[1], until=timezone.localdate())


def test_someone_else_cannot_touch_it(shop):
    sub = create(shop)
    with pytest.raises(ValidationError, match="No such subscription"):
        subscription_pause(subscription_id=sub.pk, customer=CustomerProfileFactory(), until=None)


def test_skip_only_a_future_due_day_and_idempotently(shop):
    sub = create(shop)
    assert subscription_skip(subscription_id=sub.pk, customer=shop[1], on=sub.starts_on)
    assert not subscription_skip(subscription_id=sub.pk, customer=shop[1], on=sub.starts_on)
    assert sub.skips.count() == 1
    with pytest.raises(ValidationError, match="No delivery is due"):
        subscription_skip(
            subscription_id=sub.pk, customer=shop[1], on=sub.starts_on + timedelta(days=1)
        )
    with pytest.raises(ValidationError, match="after today"):
        subscription_skip(subscription_id=sub.pk, customer=shop[1], on=timezone.localdate())
    first = upcoming_deliveries(subscription=sub, n=1)[0]
    assert first.date == sub.starts_on + timedelta(weeks=1)


def test_change_of_days_reports_the_dates_it_moves(shop):
    sub = create(shop)  # Mondays
    due_row = DeliveryFactory(subscription=sub, date=sub.starts_on)
    change = subscription_change(subscription_id=sub.pk, customer=shop[1], weekdays={2})
    assert change.effective_from == sub.starts_on
    assert change.removed[0] == sub.starts_on
    assert change.added[0] == sub.starts_on + timedelta(days=2)
    assert all(d.weekday() == 0 for d in change.removed)
    assert all(d.weekday() == 2 for d in change.added)
    assert change.repriced == []
    due_row.refresh_from_db()
    assert due_row.status == Delivery.Status.CANCELLED


def test_change_of_items_keeps_kept_prices_and_reports_repriced(shop):
    vendor, customer, _address, product = shop
    sub = create(shop)
    product.price = 9999
    product.save()
    extra = stocked(vendor, price=500)
    change = subscription_change(
        subscription_id=sub.pk,
        customer=customer,
        items=[ItemIn(product_id=product.pk, quantity=2), ItemIn(product_id=extra.pk, quantity=1)],
    )
    prices = sorted((i.unit_price, i.quantity) for i in sub.items.all())
    assert prices == [(500, 1), (1235, 2)]
    assert change.added == change.removed == []
    assert change.repriced and change.repriced[0] == sub.starts_on


def test_change_starts_after_the_last_day_already_ordered(shop):
    sub = create(shop)
    DeliveryFactory(subscription=sub, date=sub.starts_on, status=Delivery.Status.SKIPPED)
    change = subscription_change(subscription_id=sub.pk, customer=shop[1], weekdays={1})
    assert change.effective_from == sub.starts_on + timedelta(days=1)


def test_cancel_anytime_costs_nothing(shop):
    sub = create(shop)
    cancelled = subscription_cancel(subscription_id=sub.pk, customer=shop[1])
    assert (cancelled.status, cancelled.cancellation_fee) == ("cancelled", 0)
    assert cancelled.cancelled_at is not None
    with pytest.raises(ValidationError, match="already cancelled"):
        subscription_cancel(subscription_id=sub.pk, customer=shop[1])


def test_cancelling_a_commitment_charges_10_percent_of_what_remains(shop):
    # Given a 3-month plan of one item at 1235 on Mondays, cancelled before it starts
    sub = create(shop, plan="commit_3m")
    ends = add_months(sub.starts_on, 3)
    mondays = (ends - sub.starts_on).days // 7 + (1 if (ends - sub.starts_on).days % 7 else 0)
    assert mondays in (13, 14)
    # Each delivery's value: 1235 - 5% (61.75 -> 62) = 1173; fee: 10% of mondays × 1173
    expected = {13: 1525, 14: 1642}[mondays]  # 1524.9 -> 1525; 1642.2 -> 1642
    cancelled = subscription_cancel(subscription_id=sub.pk, customer=shop[1])
    assert cancelled.cancellation_fee == expected


def test_a_skip_does_not_lower_the_fee_but_past_days_do(shop):
    vendor, customer, address, product = shop
    sub = create(
        shop, plan="commit_6m", starts_on=timezone.localdate(), weekdays=None, every_n_days=1
    )
    subscription_skip(
        subscription_id=sub.pk, customer=customer, on=timezone.localdate() + timedelta(days=1)
    )
    ends = add_months(sub.starts_on, 6)
    # Days from tomorrow to the day before the end that the vendor (Mon-Fri) works
    remaining = sum(
        1
        for k in range(1, (ends - sub.starts_on).days)
        if (sub.starts_on + timedelta(days=k)).weekday() < 5
    )
    # 1235 - 10% (123.5 -> 124) = 1111 per delivery; fee 10%, half-up
    assert (
        subscription_cancel(subscription_id=sub.pk, customer=customer).cancellation_fee
        == (remaining * 1111 * 1000 + 5000) // 10000
    )
