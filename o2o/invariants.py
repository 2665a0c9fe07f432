"""The invariants the product promises, checked against the database (`manage.py check_invariants`,
the fault tests and bench/faults.py use the same function):

- every journal transaction balances, and has entries;
- every order and its payment agree (beyond the grace window: operations in flight are not stuck);
- stock is conserved: no quantity below zero, and what open orders hold was taken off a cart;
- no effect is pending past its deadline (those that gave up are listed for staff apart);
- every completed sale is in the record of sales, and every sale undone nets to nothing there
  (summaries left behind by a stopped beat are listed for staff).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone


@dataclass
class Report:
    problems: dict[str, list[str]] = field(default_factory=dict)
    # Not broken, but waiting for staff: effects that gave up (a refusal retrying can't change).
    attention: dict[str, list[str]] = field(default_factory=dict)

    def add(self, check: str, detail: str) -> None:
        self.problems.setdefault(check, []).append(detail)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return {check: len(items) for check, items in self.problems.items()}


def _ledger(report: Report) -> None:
    from payments import ledger
    from payments.models import JournalTransaction

    for txn in ledger.unbalanced_transactions():
        report.add("ledger_unbalanced", str(txn))
    empty = JournalTransaction.objects.filter(entries__isnull=True).values_list("pk", flat=True)
    for pk in empty[:100]:
        report.add("journal_without_entries", f"journal:{pk}")


def _orders_payments(report: Report, *, grace: timedelta | None, now: datetime) -> None:
    from orders.services import orders_payments_disagreeing

    for d in orders_payments_disagreeing(grace=grace, limit=1000, now=now):
        report.add(
            "order_payment_disagree",
            f"order:{d.order_id} {d.order_status} / payment:{d.payment_id} {d.payment_status}"
            f" ({d.problem})",
        )


def _stock(report: Report) -> None:
    from vendors.models import Stock

    for row in Stock.objects.filter(quantity__lt=0).values_list("vendor_id", "product_id"):
        report.add("stock_negative", f"vendor:{row[0]} product:{row[1]}")
    # The cart's quantity is the sum of its lots (vendors.models.StockLot).
    from django.db.models import F, IntegerField, OuterRef, Subquery, Sum
    from django.db.models.functions import Coalesce

    from vendors.models import StockLot

    lots = (
        StockLot.objects.filter(vendor_id=OuterRef("vendor_id"), product_id=OuterRef("product_id"))
        .order_by()
        .values("product_id")
        .annotate(n=Sum("quantity"))
        .values("n")
    )
    off = (
        Stock.objects.annotate(lots=Coalesce(Subquery(lots, output_field=IntegerField()), 0))
        .exclude(quantity=F("lots"))
        .values_list("vendor_id", "product_id", "quantity", "lots")[:200]
    )
    for vendor_id, product_id, quantity, in_lots in off:
        report.add(
            "stock_not_sum_of_lots",
            f"vendor:{vendor_id} product:{product_id} stock:{quantity} lots:{in_lots}",
        )


def _effects(report: Report, *, now: datetime) -> None:
    from .effects import effects_overdue
    from .models import Effect

    rows = effects_overdue(now=now).values_list("key", "status", "last_error")[:200]
    for key, status, error in rows:
        target = report.problems if status == Effect.Status.PENDING else report.attention
        target.setdefault(f"effect_{status}", []).append(f"{key}: {error[:120]}")


def _sales_record(report: Report, *, now: datetime) -> None:
    from insights import health

    for order_id in health.sales_unrecorded(now=now):
        report.add("sale_unrecorded", f"order:{order_id}")
    for order_id in health.sales_undone_not_netted(now=now):
        report.add("sale_undone_not_netted", f"order:{order_id}")
    behind = health.summaries_behind(now=now)
    if behind:
        report.attention["summaries_behind"] = [f"{behind} sales not summarised yet"]


def check_invariants(*, grace: timedelta | None = None, now: datetime | None = None) -> Report:
    now = now or timezone.now()
    report = Report()
    _ledger(report)
    _orders_payments(report, grace=grace, now=now)
    _stock(report)
    _effects(report, now=now)
    _sales_record(report, now=now)
    return report


def stock_held(vendor_id: int) -> dict[int, int]:
    """Units held by a vendor's open orders, per product (for stock-conservation checks in tests:
    loaded = on the cart + held + handed over)."""
    from orders.models import OrderLine, Status

    open_states = (
        Status.PENDING_PAYMENT,
        Status.PLACED,
        Status.ACCEPTED,
        Status.EN_ROUTE,
        Status.READY,
    )
    rows = (
        OrderLine.objects.filter(order__vendor_id=vendor_id, order__status__in=open_states)
        .values("product_id")
        .annotate(n=Sum("quantity"))
    )
    return {r["product_id"]: r["n"] for r in rows}
