"""seed_demo: one command gives a working demo, and running it again changes nothing."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum

from customers.models import Address, CustomerProfile
from orders.models import OrderLine
from subscriptions.models import Subscription
from tests.orders.factories import HOLDS_STOCK
from vendors.management.commands.seed_demo import DEMO_PASSWORD, PRODUCTS, VENDOR, VENDOR_SPOTS
from vendors.models import OpeningHours, PickupPoint, Product, ServiceCell, Stock, Vendor

User = get_user_model()
COUNTED = {
    "users": User,
    "customers": CustomerProfile,
    "addresses": Address,
    "vendors": Vendor,
    "products": Product,
    "stock rows": Stock,
    "service cells": ServiceCell,
    "pickup points": PickupPoint,
    "opening hours": OpeningHours,
    "subscriptions": Subscription,
}


def _counts() -> dict[str, int]:
    return {name: model.objects.count() for name, model in COUNTED.items()}


@pytest.mark.django_db
def test_seed_demo_makes_a_usable_demo():
    # When the demo is seeded into an empty database
    call_command("seed_demo", "--quiet")
    # Then there are vendors in every state an admin needs to see, products and pickup points
    counts = _counts()
    assert counts["vendors"] == len(VENDOR_SPOTS)
    assert counts["products"] == len(PRODUCTS)
    assert counts["pickup points"] == 5
    assert counts["opening hours"] == 5 * 7
    statuses = list(Vendor.objects.values_list("status", flat=True))
    assert statuses.count(Vendor.Status.APPROVED) == len(VENDOR_SPOTS) - 3
    assert statuses.count(Vendor.Status.PENDING) == 2
    assert statuses.count(Vendor.Status.SUSPENDED) == 1
    # And the demo logins work
    vendor_user = User.objects.get(email=VENDOR[0])
    assert vendor_user.check_password(DEMO_PASSWORD)
    assert vendor_user.vendor.can_sell
    # 12 loaded; the demo's regulars' deliveries for today hold some when the vendor still has
    # hours today (subscriptions/demo.py: it depends on the time of day the seed runs)
    held = (
        OrderLine.objects.filter(
            order__vendor=vendor_user.vendor,
            product__sku="yakult-light",
            order__status__in=HOLDS_STOCK,
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    stock = Stock.objects.get(vendor=vendor_user.vendor, product__sku="yakult-light")
    assert stock.quantity + held == 12
    assert User.objects.get(email="admin@o2o.test").is_superuser
    assert Address.objects.filter(customer__user__email="customer@o2o.test").count() == 1
    # And every vendor has stock and a service area
    assert not Vendor.objects.filter(stock__isnull=True).exists()
    assert not Vendor.objects.filter(service_cells__isnull=True).exists()


@pytest.mark.django_db
def test_seed_demo_twice_creates_nothing_new_and_keeps_edits():
    # Given a seeded demo in which a vendor sold some yakult and staff suspended a vendor
    call_command("seed_demo", "--quiet")
    first = _counts()
    stock = Stock.objects.get(vendor__user__email=VENDOR[0], product__sku="yakult-light")
    Stock.objects.filter(pk=stock.pk).update(quantity=3)
    other = Vendor.objects.filter(status=Vendor.Status.APPROVED).exclude(pk=stock.vendor_id).first()
    Vendor.objects.filter(pk=other.pk).update(status=Vendor.Status.SUSPENDED)
    # When the seed runs again
    call_command("seed_demo", "--quiet")
    # Then nothing new was created and the edits are still there
    assert _counts() == first
    stock.refresh_from_db()
    assert stock.quantity == 3
    other.refresh_from_db()
    assert other.status == Vendor.Status.SUSPENDED


@pytest.mark.django_db
def test_seed_demo_gives_the_demo_vendor_regulars_with_saved_cards():
    call_command("seed_demo", "--quiet")
    vendor = Vendor.objects.get(user__email=VENDOR[0])
    subs = list(Subscription.objects.filter(vendor=vendor).select_related("card"))
    # The demo customer and three neighbours, each paying with a card saved at the sandbox
    assert len(subs) == 4
    assert all(s.card is not None and s.card.status == "active" for s in subs)
    assert {s.not_at_home_policy for s in subs} == {"door", "tomorrow", "refund"}
    assert sum(s.wellbeing_check for s in subs) == 1
    assert {s.plan for s in subs} == {"anytime", "commit_3m"}
    # Once: a second seed adds none
    call_command("seed_demo", "--quiet")
    assert Subscription.objects.filter(vendor=vendor).count() == 4
