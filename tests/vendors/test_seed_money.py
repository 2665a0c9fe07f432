"""seed_demo gives a fresh demo money to show: a week of the demo vendor's completed orders
(several products; pickup, delivery, meet or at the cart) booked on their own past days through
the real services, a refunded line, commission plans, a payout account, settlements of past
periods with paid payouts, and another vendor whose payout waits for a payout account. The books
balance, the invariants hold, and a second run adds nothing."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from insights.models import SaleRecord, SalesCube
from o2o.invariants import check_invariants
from orders.models import Order
from payments import earnings, ledger, selectors
from payments.models import (
    CommissionPlan,
    JournalTransaction,
    Payout,
    PayoutAccount,
    Refund,
    Settlement,
)
from vendors.management.commands.seed_demo import VENDOR
from vendors.models import Stock, Vendor

pytestmark = pytest.mark.django_db(transaction=True)


def _money() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "journal": JournalTransaction.objects.count(),
        "settlements": Settlement.objects.count(),
        "payouts": Payout.objects.count(),
        "plans": CommissionPlan.objects.count(),
        "accounts": PayoutAccount.objects.count(),
        "refunds": Refund.objects.count(),
    }


def test_a_fresh_demo_has_a_week_of_money_and_a_second_seed_adds_none():
    # When the demo is seeded into an empty database
    call_command("seed_demo", "--quiet")
    vendor = Vendor.objects.get(user__email=VENDOR[0])
    today = timezone.localdate()

    # Then the demo vendor's orders of the past days are completed, in several ways, with
    # several products
    # (today's regular deliveries, made when the vendor still has hours today, are not history)
    # (the past weeks of cash sales at the cart, for the insight pages, are not money history)
    orders = Order.objects.filter(
        vendor=vendor, subscription_delivery__isnull=True, payment_method="card"
    )
    assert orders.count() >= 10
    assert set(orders.values_list("status", flat=True)) == {"completed"}
    ways = set(orders.values_list("fulfilment", flat=True))
    assert {"pickup", "delivery"} <= ways and ways & {"meet", "at_cart"}
    assert orders.values("lines__product").distinct().count() >= 4
    days = {timezone.localdate(o.completed_at) for o in orders}
    assert len(days) >= 5 and min(days) < today
    # ... their money was booked on those days (the ledger is append-only: not re-dated after)
    booked = {
        timezone.localdate(t)
        for t in JournalTransaction.objects.filter(
            vendor_id=vendor.pk, kind="commission"
        ).values_list("created_at", flat=True)
    }
    assert booked == days
    # ... and the insight pages have weeks of sales to summarise, for this cart and its peers,
    # every one of them in the record (the invariant check), and summarised
    cube = SalesCube.objects.filter(vendor_id=vendor.pk)
    assert cube.values("day").distinct().count() >= 40
    assert SalesCube.objects.values("vendor_id").distinct().count() >= 10
    assert not SaleRecord.objects.filter(batch__isnull=True, channel="cash").exists()
    assert "sale_unrecorded" not in check_invariants().problems
    # ... a line was refunded, past settlements were paid, and yesterday's money is still owed
    assert Refund.objects.filter(kind=Refund.Kind.LINE, status="succeeded").count() == 1
    settlements = Settlement.objects.filter(vendor=vendor)
    assert settlements.count() >= 3
    assert set(Payout.objects.filter(vendor=vendor).values_list("status", flat=True)) == {"paid"}
    assert ledger.vendor_payable(vendor.pk) > 0
    assert all(s.period_end <= timezone.now() for s in settlements)
    paid = sum(Payout.objects.filter(vendor=vendor).values_list("amount", flat=True))
    figures = earnings.vendor_figures(vendor_id=vendor.pk)
    assert figures.payouts == paid and figures.change == ledger.vendor_payable(vendor.pk)
    # ... the vendor has a payout account and its own commission plan, with a change scheduled
    assert PayoutAccount.objects.filter(vendor=vendor).exists()
    terms = selectors.vendor_commission_terms(vendor_id=vendor.pk)
    assert terms.current.scope == "vendor" and terms.next is not None
    # ... another vendor's payout waits, and staff can see why
    waiting = Payout.objects.exclude(vendor=vendor).select_related("settlement").get()
    assert waiting.status == "pending"
    assert selectors.payout_wait(payout=waiting).code == "no_payout_account"
    # ... the books balance and every invariant holds
    assert not ledger.unbalanced_transactions()
    report = check_invariants()
    assert report.ok, report.problems
    # ... and the carts carry what they carried before the week (restocked)
    assert Stock.objects.filter(vendor=vendor, quantity__gt=0).exists()

    # When it is seeded again
    before = _money()
    stock = list(Stock.objects.order_by("pk").values_list("pk", "quantity"))
    call_command("seed_demo", "--quiet")
    # Then nothing new is made
    assert _money() == before
    assert list(Stock.objects.order_by("pk").values_list("pk", "quantity")) == stock
