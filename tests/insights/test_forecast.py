"""What to load tomorrow: the pure suggestion over a demand history (a weekday pattern is found,
expected waste never falls as the load grows) and the selector that feeds it from SalesCube (the
last eight same weekdays, outside the round; a week the cart was off is left out, a worked day
with no sale counts as 0)."""

import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from insights.forecast import demand_history, expected_waste, load_plan, quantile, suggest_load
from insights.models import Channel
from tests import factories
from tests.insights.factories import SalesCubeFactory
from tests.subscriptions.factories import (
    SubscriptionFactory,
    SubscriptionItemFactory,
    working_vendor,
)

# --- the pure part ---------------------------------------------------------------------------------


def synthetic_history(weeks: int, seed: int = 17) -> dict[int, list[int]]:
    """Demand per weekday (Monday 0): Mondays 20±2 yakult, other days 5±1."""
    rng = random.Random(seed)
    return {
        weekday: [rng.randint(18, 22) if weekday == 0 else rng.randint(4, 6) for _ in range(weeks)]
        for weekday in range(7)
    }


@pytest.mark.parametrize("seed", range(5))
def test_a_weekday_pattern_is_found(seed):
    history = synthetic_history(8, seed)

    monday = suggest_load(history=history[0])
    tuesday = suggest_load(history=history[1])

    assert 20 <= monday.suggested <= 22
    assert 5 <= tuesday.suggested <= 6
    assert 19 <= monday.usual <= 21 and 4 <= tuesday.usual <= 6
    # ... with regulars on top, known for sure
    assert suggest_load(history=history[0], regulars=3).suggested == monday.suggested + 3


def test_the_waste_of_loading_more():
    history = synthetic_history(8)[0]
    suggestion = suggest_load(history=history)
    wastes = [o.waste for o in suggestion.options]
    assert [o.extra for o in suggestion.options] == [0, 2, 5]
    assert [o.load for o in suggestion.options] == [suggestion.suggested + e for e in (0, 2, 5)]
    assert wastes[0] < wastes[1] < wastes[2]
    # Five more than a load already at or above every demand seen: exactly five more left over
    top = max(history)
    assert (
        expected_waste(load=top + 5, demand=history) == expected_waste(load=top, demand=history) + 5
    )


@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=8),
    st.integers(0, 80),
    st.integers(1, 10),
)
def test_expected_waste_grows_with_the_load(demand, load, more):
    assert expected_waste(load=load + more, demand=demand) >= expected_waste(
        load=load, demand=demand
    )
    assert 0 <= expected_waste(load=load, demand=demand) <= load


@given(st.lists(st.integers(0, 60), min_size=1, max_size=8), st.integers(0, 10), st.integers(0, 30))
def test_the_suggestion_covers_what_is_certain(history, regulars, ordered):
    suggestion = suggest_load(history=history, regulars=regulars, ordered=ordered)
    assert suggestion.suggested >= regulars + ordered
    assert suggestion.suggested >= regulars + quantile(history, 0.8)


def test_no_history_suggests_the_regulars():
    suggestion = suggest_load(history=[], regulars=4)
    assert suggestion.suggested == 4 and suggestion.options[0].waste == 0


# --- from the summaries ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_history_comes_from_the_same_weekdays_outside_the_round(vendor):
    yakult = factories.ProductFactory()
    day = timezone.localdate() + timedelta(days=1)
    weeks = [day - timedelta(days=7 * i) for i in range(1, 9)]
    # Given eight past same weekdays: 20 units walk-up each, plus regulars (not demand)
    for i, past in enumerate(weeks):
        if i == 2:
            continue  # ... one with no sale that day, though the cart sold that week
        SalesCubeFactory(
            vendor_id=vendor.pk,
            day=past,
            product_id=yakult.pk,
            units=20,
            channel=Channel.WALKUP,
            hour=9,
        )
        SalesCubeFactory(
            vendor_id=vendor.pk,
            day=past,
            product_id=yakult.pk,
            units=7,
            channel=Channel.REGULAR,
            hour=8,
        )
    worked = weeks[2] - timedelta(days=1) if weeks[2].weekday() else weeks[2] + timedelta(days=1)
    SalesCubeFactory(vendor_id=vendor.pk, day=worked, product_id=yakult.pk, units=1, hour=9)
    # ... and a ninth, older one, and a sale on another weekday: neither counts
    SalesCubeFactory(
        vendor_id=vendor.pk, day=day - timedelta(days=63), product_id=yakult.pk, units=99
    )

    history = demand_history(vendor_id=vendor.pk, day=day)

    assert sorted(history[yakult.pk]) == [0, *([20] * 7)]


@pytest.mark.django_db
def test_a_week_off_is_left_out(vendor):
    yakult = factories.ProductFactory()
    day = timezone.localdate() + timedelta(days=1)
    for i in (1, 2):
        SalesCubeFactory(
            vendor_id=vendor.pk, day=day - timedelta(days=7 * i), product_id=yakult.pk, units=10
        )
    # weeks 3..8: the cart sold nothing at all (on holiday): they say nothing of the demand
    assert demand_history(vendor_id=vendor.pk, day=day) == {yakult.pk: [10, 10]}


@pytest.mark.django_db
def test_the_plan_adds_tomorrows_regulars_and_says_how_many_more_to_load(login):
    vendor = working_vendor(weekdays=range(7))
    day = timezone.localdate() + timedelta(days=1)
    yakult = factories.StockFactory(vendor=vendor, quantity=6).product
    for i in range(1, 9):
        SalesCubeFactory(
            vendor_id=vendor.pk,
            day=day - timedelta(days=7 * i),
            product_id=yakult.pk,
            units=10,
            channel=Channel.CASH,
        )
    # A regular due tomorrow (every day of the week) with 2 yakult, another paused
    for paused in (False, True):
        sub = SubscriptionFactory(
            vendor=vendor,
            weekdays=0b1111111,
            starts_on=timezone.localdate(),
            **({"status": "paused", "paused_from": day} if paused else {}),
        )
        SubscriptionItemFactory(subscription=sub, product=yakult, quantity=2)

    plan = load_plan(vendor=vendor, day=day)

    (line,) = plan.lines
    assert line.suggestion.regulars == 2 and line.suggestion.suggested == 12
    assert line.on_cart == 6 and line.to_load == 6
    assert plan.weeks == 8
    # ... the page shows it
    html = login(vendor.user).get(reverse("insights:vendor")).content.decode()
    assert f'<tr data-product="{yakult.pk}">' in html and 'data-field="to-load"><strong>6<' in html
