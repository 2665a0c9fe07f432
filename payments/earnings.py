"""What a vendor earned, read from the ledger only (never from orders): the vendor's pages, the
earnings API and the staff's money dashboard share these selectors.

For a vendor, each order's money is what the ledger booked on it:
    gross        what the customer paid, captured (customer_funds debited by the commission posting)
    commission   the platform's part (commission and any delivery fee it keeps), less what it gave
                 back on refunds
    refunds      what went back to the customer
    price_advantage  a regular's commitment advantage the platform paid on top (subscription_advantage
                 debited by the split, credited back by the reversals)
    net          the vendor's payable account: credited by the split, debited by the reversals
so that gross − commission − refunds + price_advantage = net, to the won. The vendor's payable balance moves by the
net of sales, plus staff adjustments, less payouts (a failed payout comes back); the equality of
their sum from the beginning with `ledger.vendor_payable` is what the tests hold this module to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from . import ledger
from .models import (
    JournalKind,
    JournalTransaction,
    LedgerEntry,
    Payout,
    Settlement,
)
from .selectors import (
    CommissionTerms,
    PayoutWait,
    vendor_commission_terms,
    vendor_payout_wait,
)
from .settlement import period_of

D, C = LedgerEntry.DEBIT, LedgerEntry.CREDIT
# A cash sale's commission (settings.CASH_COMMISSION) is a sale's movement with nothing captured:
# gross 0, commission c, net −c; undone, the same given back.
CASH = (JournalKind.CASH_COMMISSION, JournalKind.CASH_COMMISSION_UNDO)
SALES = (JournalKind.COMMISSION, JournalKind.REVERSAL, *CASH)
PAYOUTS = (JournalKind.PAYOUT, JournalKind.PAYOUT_FAILED)


def kind_label(kind: str) -> str:
    """What a journal kind is called on a vendor's pages and statements."""
    return {
        JournalKind.COMMISSION: _("Sale"),
        JournalKind.REVERSAL: _("Refund"),
        JournalKind.ADJUSTMENT: _("Adjustment"),
        JournalKind.PAYOUT: _("Payout"),
        JournalKind.PAYOUT_FAILED: _("Returned payout"),
        JournalKind.CASH_COMMISSION: _("Commission on a cash sale"),
        JournalKind.CASH_COMMISSION_UNDO: _("Cash sale undone"),
    }.get(kind, kind)


def account_code(code: str, currency: str) -> str:
    """The code of a fixed account in `currency` (KRW accounts carry no suffix)."""
    return code if currency == "KRW" else f"{code}:{currency}"


def vendor_account_code(vendor_id: int, currency: str = "KRW") -> str:
    return account_code(f"vendor_payable:{vendor_id}", currency)


@dataclass(frozen=True, slots=True)
class Figures:
    """Money of one vendor over a period, or of one order, in minor units of `currency`."""

    currency: str = "KRW"
    gross: int = 0
    commission: int = 0
    refunds: int = 0
    net: int = 0  # the vendor's share of sales: gross − commission − refunds + price_advantage
    # Regulars' commitment price advantage the platform paid on top (less what refunds took back)
    price_advantage: int = 0
    adjustments: int = 0  # staff corrections to the vendor's payable (+ owed more, − less)
    payouts: int = 0  # sent to the vendor (less payouts that failed and came back)

    @property
    def change(self) -> int:
        """How much the vendor's payable balance moved."""
        return self.net + self.adjustments - self.payouts

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "gross": self.gross,
            "commission": self.commission,
            "refunds": self.refunds,
            "price_advantage": self.price_advantage,
            "net": self.net,
            "adjustments": self.adjustments,
            "payouts": self.payouts,
        }


@dataclass(frozen=True, slots=True)
class OrderFigures:
    order_id: int
    first_at: dt.datetime
    last_at: dt.datetime
    figures: Figures


@dataclass(frozen=True, slots=True)
class Movement:
    """One journal transaction of a vendor's order, as the vendor sees it."""

    id: int
    kind: str
    kind_label: str
    at: dt.datetime
    memo: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class Earnings:
    """The vendor's earnings page: today, this week, the balance owed and the next payout."""

    vendor_id: int
    currency: str
    now: dt.datetime
    today_start: dt.datetime
    week_start: dt.datetime
    today: Figures
    week: Figures
    balance: int
    next_payout: dict[str, Any] | None = field(default=None)
    payout_wait: PayoutWait | None = None  # why the next payout is not on its way yet
    commission: CommissionTerms | None = None  # the plan in force, and what changes next


def ledger_sums(currency: str, vendor_code: str) -> dict[str, Sum]:
    """The aggregates that turn ledger entries into figures (one SELECT, whatever the grouping)."""
    cf = account_code(ledger.CUSTOMER_FUNDS, currency)
    comm = account_code(ledger.COMMISSION_REVENUE, currency)
    fee = account_code(ledger.DELIVERY_FEE_REVENUE, currency)
    refunds = account_code(ledger.REFUNDS, currency)
    adv = account_code(ledger.SUBSCRIPTION_ADVANTAGE, currency)
    sale, reversal = (
        Q(transaction__kind__in=(JournalKind.COMMISSION, JournalKind.CASH_COMMISSION)),
        Q(transaction__kind__in=(JournalKind.REVERSAL, JournalKind.CASH_COMMISSION_UNDO)),
    )
    debit, credit = Q(side=D), Q(side=C)
    mine = Q(account__code=vendor_code)
    sales, payouts = Q(transaction__kind__in=SALES), Q(transaction__kind__in=PAYOUTS)
    return {
        "gross": Sum("amount", filter=sale & debit & Q(account__code=cf)),
        "comm_taken": Sum("amount", filter=sale & credit & Q(account__code=comm)),
        "fee_taken": Sum("amount", filter=sale & credit & Q(account__code=fee)),
        "comm_back": Sum("amount", filter=reversal & debit & Q(account__code=comm)),
        "fee_back": Sum("amount", filter=reversal & debit & Q(account__code=fee)),
        "refunds": Sum("amount", filter=reversal & credit & Q(account__code=refunds)),
        "adv_paid": Sum("amount", filter=sale & debit & Q(account__code=adv)),
        "adv_back": Sum("amount", filter=reversal & credit & Q(account__code=adv)),
        "sales_c": Sum("amount", filter=mine & sales & credit),
        "sales_d": Sum("amount", filter=mine & sales & debit),
        "payout_d": Sum("amount", filter=mine & payouts & debit),
        "payout_c": Sum("amount", filter=mine & payouts & credit),
        "other_c": Sum("amount", filter=mine & ~sales & ~payouts & credit),
        "other_d": Sum("amount", filter=mine & ~sales & ~payouts & debit),
    }


SUM_KEYS = (
    "gross",
    "comm_taken",
    "fee_taken",
    "comm_back",
    "fee_back",
    "refunds",
    "adv_paid",
    "adv_back",
    "sales_c",
    "sales_d",
    "payout_d",
    "payout_c",
    "other_c",
    "other_d",
)


def sums_of(row: dict[str, Any]) -> dict[str, int]:
    """The aggregates of `ledger_sums` with None (nothing matched) read as 0."""
    return {k: (row.get(k) or 0) for k in SUM_KEYS}


def _figures(row: dict[str, Any], currency: str) -> Figures:
    v = sums_of(row)
    return Figures(
        currency=currency,
        gross=v["gross"],
        commission=v["comm_taken"] + v["fee_taken"] - v["comm_back"] - v["fee_back"],
        refunds=v["refunds"],
        price_advantage=v["adv_paid"] - v["adv_back"],
        net=v["sales_c"] - v["sales_d"],
        adjustments=v["other_c"] - v["other_d"],
        payouts=v["payout_d"] - v["payout_c"],
    )


def _vendor_entries(
    vendor_id: int,
    currency: str,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """Every entry that concerns the vendor: all legs of its sales (to tell gross and commission)
    and any entry on its payable account (adjustments and payouts, whoever they name)."""
    entries = LedgerEntry.objects.filter(
        Q(transaction__vendor_id=vendor_id, transaction__kind__in=SALES)
        | Q(account__code=vendor_account_code(vendor_id, currency)),
        transaction__currency=currency,
    )
    if start is not None:
        entries = entries.filter(transaction__created_at__gte=start)
    if end is not None:
        entries = entries.filter(transaction__created_at__lt=end)
    return entries


def vendor_figures(
    *,
    vendor_id: int,
    currency: str = "KRW",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> Figures:
    """The vendor's money booked in [start, end) (all time when both are None)."""
    row = _vendor_entries(vendor_id, currency, start=start, end=end).aggregate(
        **ledger_sums(currency, vendor_account_code(vendor_id, currency))
    )
    return _figures(row, currency)


def vendor_orders(
    *,
    vendor_id: int,
    currency: str = "KRW",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> QuerySet:
    """One row per order with sales booked in [start, end), the latest activity first. Rows are
    dicts: turn one into OrderFigures with `order_row`. Slice it (paginate) before reading it."""
    return (
        _vendor_entries(vendor_id, currency, start=start, end=end)
        .filter(transaction__kind__in=SALES, transaction__order_id__isnull=False)
        .values("transaction__order_id")
        .annotate(
            first_at=Min("transaction__created_at"),
            last_at=Max("transaction__created_at"),
            **ledger_sums(currency, vendor_account_code(vendor_id, currency)),
        )
        .order_by("-last_at", "-transaction__order_id")
    )


def order_row(row: dict[str, Any], currency: str = "KRW") -> OrderFigures:
    return OrderFigures(
        order_id=row["transaction__order_id"],
        first_at=row["first_at"],
        last_at=row["last_at"],
        figures=_figures(row, currency),
    )


def order_movements(*, vendor_id: int, order_id: int) -> list[Movement]:
    """Each money movement of one of the vendor's orders, oldest first; [] when the vendor has
    none on it (another vendor's order, or none at all: the caller answers 404)."""
    txns = list(
        JournalTransaction.objects.filter(
            vendor_id=vendor_id, order_id=order_id, kind__in=SALES
        ).order_by("created_at", "pk")
    )
    if not txns:
        return []
    currency = txns[0].currency
    sums = transaction_sums(
        transaction_ids=[t.pk for t in txns], vendor_id=vendor_id, currency=currency
    )
    return [
        Movement(
            id=txn.pk,
            kind=txn.kind,
            kind_label=kind_label(txn.kind),
            at=txn.created_at,
            memo=txn.memo,
            figures=_figures(sums.get(txn.pk, {}), currency),
        )
        for txn in txns
    ]


def transaction_sums(
    *, transaction_ids: list[int], vendor_id: int, currency: str
) -> dict[int, dict[str, int]]:
    """Journal transaction id → its `ledger_sums` as the vendor sees them, in one query."""
    rows = (
        LedgerEntry.objects.filter(transaction_id__in=transaction_ids)
        .values("transaction_id")
        .annotate(**ledger_sums(currency, vendor_account_code(vendor_id, currency)))
        .order_by()
    )
    return {r["transaction_id"]: sums_of(r) for r in rows}


def order_total(movements: list[Movement]) -> Figures:
    """The sum of an order's movements."""
    if not movements:
        return Figures()
    currency = movements[0].figures.currency
    return Figures(
        currency=currency,
        gross=sum(m.figures.gross for m in movements),
        commission=sum(m.figures.commission for m in movements),
        refunds=sum(m.figures.refunds for m in movements),
        price_advantage=sum(m.figures.price_advantage for m in movements),
        net=sum(m.figures.net for m in movements),
    )


# --- periods -------------------------------------------------------------------------------------


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day`, in the platform's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def week_start_of(day: dt.date) -> dt.date:
    """The Monday of `day`'s week."""
    return day - dt.timedelta(days=day.weekday())


def vendor_earnings(
    *, vendor_id: int, currency: str = "KRW", now: dt.datetime | None = None
) -> Earnings:
    """Today's and this week's figures (local days, weeks from Monday), the payable balance and
    the next payout."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    today_start = day_start(today)
    week_start = day_start(week_start_of(today))
    return Earnings(
        vendor_id=vendor_id,
        currency=currency,
        now=now,
        today_start=today_start,
        week_start=week_start,
        today=vendor_figures(vendor_id=vendor_id, currency=currency, start=today_start),
        week=vendor_figures(vendor_id=vendor_id, currency=currency, start=week_start),
        balance=ledger.vendor_payable(vendor_id, currency=currency),
        next_payout=next_payout(vendor_id=vendor_id, currency=currency, now=now),
        payout_wait=vendor_payout_wait(vendor_id=vendor_id, now=now),
        commission=vendor_commission_terms(vendor_id=vendor_id, now=now),
    )


def next_payout(*, vendor_id: int, currency: str = "KRW", now: dt.datetime) -> dict | None:
    """The vendor's next payout: {"date", "amount", "currency", "status", "status_label"}, or None
    when nothing is owed. A payout already made and not yet paid comes first (its own amount and
    day). Otherwise what the ledger owes the vendor now, less what is held by an open dispute, paid
    after the current settlement period ends (status "expected")."""
    payout = (
        Payout.objects.filter(
            vendor_id=vendor_id,
            currency=currency,
            status__in=(Payout.Status.PENDING, Payout.Status.SENT),
        )
        .order_by("created_at", "pk")
        .first()
    )
    if payout is not None:
        return {
            "date": timezone.localdate(payout.sent_at or payout.created_at),
            "amount": payout.amount,
            "currency": currency,
            "status": payout.status,
            "status_label": str(payout.get_status_display()),
        }
    held = (
        Settlement.objects.filter(
            vendor_id=vendor_id, currency=currency, status=Settlement.Status.HELD
        ).aggregate(s=Sum("net"))["s"]
        or 0
    )
    owed = ledger.vendor_payable(vendor_id, currency=currency) - held
    if owed <= 0:
        return None
    return {
        "date": timezone.localdate(period_of(now).end),
        "amount": owed,
        "currency": currency,
        "status": "expected",
        "status_label": "",
    }


# --- statements ----------------------------------------------------------------------------------


def vendor_statements(*, vendor_id: int, currency: str | None = None) -> QuerySet[Settlement]:
    """The vendor's settlements, newest period first, with their payout (if any)."""
    rows = Settlement.objects.filter(vendor_id=vendor_id).select_related("payout")
    if currency is not None:
        rows = rows.filter(currency=currency)
    return rows.order_by("-period_start", "-pk")


def order_vendor_id(*, order_id: int) -> int | None:
    """The vendor the ledger booked an order's sales to (None: nothing booked)."""
    return (
        JournalTransaction.objects.filter(order_id=order_id, kind__in=SALES)
        .exclude(vendor_id=None)
        .values_list("vendor_id", flat=True)
        .first()
    )


# --- the platform's money per day (staff: the dashboard and the finance export) -----------------

# The platform's books (the money dashboard, finance exports) are for staff who may read the
# ledger in the admin: a support seat without that permission sees none of them.
FINANCE_PERMISSION = "payments.view_journaltransaction"


def reads_the_books(user) -> bool:
    """Active staff with FINANCE_PERMISSION: they may see any vendor's money and the platform's."""
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(FINANCE_PERMISSION)
    )


MAX_DAYS = 366
# The days a range may name: wide enough for any real books, narrow enough that a day either
# side of it (the day after `last`, 30 days before a default `first`) is still a date.
EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2999, 12, 31)


def day_range_error(first: dt.date, last: dt.date) -> str | None:
    """Why the range `first`..`last` (both included) can't be shown; None if it can."""
    if not (EARLIEST_DAY <= first <= LATEST_DAY and EARLIEST_DAY <= last <= LATEST_DAY):
        return _("Choose days between %(first)s and %(last)s.") % {
            "first": EARLIEST_DAY.isoformat(),
            "last": LATEST_DAY.isoformat(),
        }
    if first > last:
        return _("The range starts after it ends.")
    if (last - first).days + 1 > MAX_DAYS:
        return _("At most %(n)d days at a time.") % {"n": MAX_DAYS}
    return None


@dataclass(frozen=True, slots=True)
class Day:
    day: dt.date
    gmv: int  # captured
    commission: int  # the platform's commission, less what refunds gave back
    delivery_fees: int  # delivery fees the platform kept, less what refunds gave back
    provider_fees: int  # what the payment provider charged: the platform's cost
    refunds: int  # given back to customers
    payables: int  # owed to all vendors at the end of the day

    @property
    def net_revenue(self) -> int:
        """The platform's: commission and delivery fees kept, less the provider's fees."""
        return self.commission + self.delivery_fees - self.provider_fees

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "gmv": self.gmv,
            "commission": self.commission,
            "delivery_fees": self.delivery_fees,
            "provider_fees": self.provider_fees,
            "net_revenue": self.net_revenue,
            "refunds": self.refunds,
            "payables": self.payables,
        }


def daily_totals(*, first: dt.date, last: dt.date, currency: str = "KRW") -> list[Day]:
    """One Day per local calendar day from `first` to `last` (inclusive), from the ledger: two
    queries whatever the range (the payables before `first`, then the day-by-day movements)."""
    if last < first:
        raise ValueError("the range ends before it starts")
    start, end = day_start(first), day_start(last + dt.timedelta(days=1))
    clearing = account_code(ledger.PROVIDER_CLEARING, currency)
    comm = account_code(ledger.COMMISSION_REVENUE, currency)
    fee = account_code(ledger.DELIVERY_FEE_REVENUE, currency)
    refunds = account_code(ledger.REFUNDS, currency)
    provider_fees = account_code(ledger.PROVIDER_FEES, currency)
    payable = Q(account__vendor_id__isnull=False, account__currency=currency)
    entries = LedgerEntry.objects.filter(transaction__currency=currency)

    opening = entries.filter(payable, transaction__created_at__lt=start).aggregate(
        c=Sum("amount", filter=Q(side=C)), d=Sum("amount", filter=Q(side=D))
    )
    owed = (opening["c"] or 0) - (opening["d"] or 0)

    capture = Q(transaction__kind=JournalKind.CAPTURE)
    refund = Q(transaction__kind=JournalKind.REFUND)
    rows = (
        entries.filter(transaction__created_at__gte=start, transaction__created_at__lt=end)
        .annotate(day=TruncDate("transaction__created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(
            gmv=Sum("amount", filter=capture & Q(side=D, account__code=clearing)),
            comm_c=Sum("amount", filter=Q(side=C, account__code=comm)),
            comm_d=Sum("amount", filter=Q(side=D, account__code=comm)),
            fee_c=Sum("amount", filter=Q(side=C, account__code=fee)),
            fee_d=Sum("amount", filter=Q(side=D, account__code=fee)),
            pfee_d=Sum("amount", filter=Q(side=D, account__code=provider_fees)),
            pfee_c=Sum("amount", filter=Q(side=C, account__code=provider_fees)),
            refunds=Sum("amount", filter=refund & Q(side=D, account__code=refunds)),
            payable_c=Sum("amount", filter=payable & Q(side=C)),
            payable_d=Sum("amount", filter=payable & Q(side=D)),
        )
        .order_by("day")
    )
    by_day = {r["day"]: {k: (v or 0) for k, v in r.items() if k != "day"} for r in rows}
    out = []
    day = first
    while day <= last:
        r = by_day.get(day, {})
        owed += r.get("payable_c", 0) - r.get("payable_d", 0)
        out.append(
            Day(
                day=day,
                gmv=r.get("gmv", 0),
                commission=r.get("comm_c", 0) - r.get("comm_d", 0),
                delivery_fees=r.get("fee_c", 0) - r.get("fee_d", 0),
                provider_fees=r.get("pfee_d", 0) - r.get("pfee_c", 0),
                refunds=r.get("refunds", 0),
                payables=owed,
            )
        )
        day += dt.timedelta(days=1)
    return out


def range_totals(days: list[Day]) -> Day:
    """The sums of a range of days; `payables` as at its end, `day` its last day."""
    return Day(
        day=days[-1].day,
        gmv=sum(d.gmv for d in days),
        commission=sum(d.commission for d in days),
        delivery_fees=sum(d.delivery_fees for d in days),
        provider_fees=sum(d.provider_fees for d in days),
        refunds=sum(d.refunds for d in days),
        payables=days[-1].payables,
    )
