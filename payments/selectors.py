"""Reads of payments that pages and APIs share."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from vendors.models import Vendor

from . import ledger, payouts
from .models import (
    CommissionPlan,
    LedgerAccount,
    Payment,
    Payout,
    PayoutAccount,
    Refund,
    Settlement,
)
from .settlement import period_of


def payment_for_order(*, order_id: int) -> Payment | None:
    return Payment.objects.filter(order_id=order_id).first()


def payments_for_orders(*, order_ids: Iterable[int]) -> dict[int, Payment]:
    """order id → its payment, in one query (orders without one are left out)."""
    payments = Payment.objects.filter(order_id__in=list(order_ids))
    return {p.order_id: p for p in payments if p.order_id is not None}


def payment_refunds(*, payment_id: int) -> QuerySet[Refund]:
    return Refund.objects.filter(payment_id=payment_id).order_by("created_at", "pk")


# --- why a payout waits --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutWait:
    """Why money owed to a vendor is not (yet) on its way: a code for programs, a sentence for
    people, and the moment it should move on its own (None: someone must act)."""

    code: str
    message: str
    until: datetime | None = None
    short: str = ""  # a few words, for a column of a list

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "until": self.until}


def _wait(code: str, until: datetime | None = None) -> PayoutWait:
    shorts = {
        payouts.WAIT_DISPUTE: _("Dispute open"),
        payouts.WAIT_NO_ACCOUNT: _("No payout account"),
        payouts.WAIT_NOT_RELEASED: _("Settlement not released"),
        "building": _("Being built"),
        "carried_forward": _("Carried forward"),
        "queued": _("Ready to send"),
        "in_transit": _("At the bank"),
        "period_open": _("Held until %(until)s"),
    }
    messages = {
        payouts.WAIT_DISPUTE: _(
            "Held: a customer's dispute on one of its orders is open; it is paid once staff "
            "close it."
        ),
        payouts.WAIT_NO_ACCOUNT: _(
            "Waiting for a payout account: staff must add the vendor's bank account first."
        ),
        payouts.WAIT_NOT_RELEASED: _("Waiting for its settlement to be released."),
        "building": _("Its settlement is still being built."),
        "carried_forward": _(
            "More was owed back than earned: nothing is paid for this period, the balance is "
            "carried to the next settlement."
        ),
        "queued": _("Ready to send: it goes out with the next payout run."),
        "in_transit": _("Sent to the bank: waiting for the bank to confirm."),
        "period_open": _("Held until %(until)s, when the settlement period ends."),
    }
    message, short = messages[code], shorts[code]
    if until is not None:
        when = {"until": date_format(localtime(until), "SHORT_DATETIME_FORMAT")}
        message, short = message % when, short % when
    return PayoutWait(code=code, message=str(message), until=until, short=str(short))


def payout_wait(*, payout: Payout, dispute_open: bool | None = None) -> PayoutWait | None:
    """Why this payout is not paid yet (None: it is paid or failed). The same rule payout_send
    applies (payouts.payout_waits_for)."""
    if payout.status == Payout.Status.SENT:
        return _wait("in_transit")
    if payout.status != Payout.Status.PENDING:
        return None
    return _wait(payouts.payout_waits_for(payout, dispute_open=dispute_open) or "queued")


def settlement_wait(*, settlement: Settlement) -> PayoutWait | None:
    """Why a settlement's money is not on its way to the vendor (None: paid, or nothing due)."""
    status = settlement.status
    if status == Settlement.Status.BUILDING:
        return _wait("building")
    if status == Settlement.Status.HELD:
        return _wait(payouts.WAIT_DISPUTE)
    if status == Settlement.Status.CARRIED_FORWARD:
        return _wait("carried_forward")
    payout = Payout.objects.filter(settlement=settlement).select_related("settlement").first()
    if payout is None:
        return None
    return payout_wait(payout=payout)


def vendor_payout_wait(*, vendor_id: int, now: datetime | None = None) -> PayoutWait | None:
    """Why the vendor's next payout waits, for the earnings page and API: the oldest payout not
    yet paid, else what the ledger owes now, which waits for the end of the current period (and
    for a payout account when there is none). None when nothing is owed and nothing is on its
    way."""
    now = now or timezone.now()
    payout = (
        Payout.objects.filter(
            vendor_id=vendor_id, status__in=(Payout.Status.PENDING, Payout.Status.SENT)
        )
        .select_related("settlement")
        .order_by("created_at", "pk")
        .first()
    )
    if payout is not None:
        return payout_wait(payout=payout)
    held = Settlement.objects.filter(vendor_id=vendor_id, status=Settlement.Status.HELD).first()
    if held is not None:
        return _wait(payouts.WAIT_DISPUTE)
    if ledger.vendor_payable(vendor_id) <= 0:
        return None
    if not PayoutAccount.objects.filter(vendor_id=vendor_id).exists():
        return _wait(payouts.WAIT_NO_ACCOUNT)
    return _wait("period_open", until=period_of(now).end)


# --- the commission plan in force ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanView:
    """A commission rate as the vendor sees it."""

    bps: int
    scope: str  # "vendor", "platform" (a plan for every vendor) or "default" (the setting)
    category: str  # the category's name, "" for every category
    since: datetime | None
    until: datetime | None
    note: str

    @property
    def percent(self) -> str:
        return f"{self.bps / 100:g}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "bps": self.bps,
            "percent": self.percent,
            "scope": self.scope,
            "category": self.category,
            "since": self.since,
            "until": self.until,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class CommissionTerms:
    """The vendor's commission now (the rate without a category, and any category's own rate),
    the fee kept per delivery, and the next change already scheduled."""

    current: PlanView
    categories: list[PlanView]
    next: PlanView | None
    delivery_fee_to_platform: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.as_dict(),
            "categories": [c.as_dict() for c in self.categories],
            "next": self.next.as_dict() if self.next else None,
            "delivery_fee_to_platform": self.delivery_fee_to_platform,
        }


def _rank(plan: CommissionPlan) -> tuple[int, datetime, int]:
    # commission.commission_bps_for's specificity: vendor and category > vendor > category >
    # platform default; the later start wins among equals.
    return (
        (plan.vendor_id is not None) * 2 + (plan.category_id is not None),
        plan.valid_from,
        plan.pk,
    )


def _view(plan: CommissionPlan | None) -> PlanView:
    if plan is None:
        return PlanView(
            bps=settings.COMMISSION_DEFAULT_BPS,
            scope="default",
            category="",
            since=None,
            until=None,
            note="",
        )
    return PlanView(
        bps=plan.bps,
        scope="vendor" if plan.vendor_id is not None else "platform",
        category=str(plan.category) if plan.category_id else "",
        since=plan.valid_from,
        until=plan.valid_until,
        note=plan.note,
    )


def _best(
    plans: list[CommissionPlan], at: datetime, category_id: int | None
) -> CommissionPlan | None:
    live = [
        p
        for p in plans
        if p.valid_from <= at
        and (p.valid_until is None or p.valid_until > at)
        and p.category_id in (None, category_id)
    ]
    return max(live, key=_rank, default=None)


def vendor_commission_terms(*, vendor_id: int, now: datetime | None = None) -> CommissionTerms:
    """The plan in force for the vendor now, chosen as payments.commission chooses it at
    placement, and what changes next: the first moment after now when the rate without a
    category would differ (a plan starting or the one in force ending)."""
    now = now or timezone.now()
    plans = list(
        CommissionPlan.objects.filter(Q(vendor_id=vendor_id) | Q(vendor__isnull=True))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .select_related("category")
    )
    current_plan = _best(plans, now, None)
    current = _view(current_plan)
    categories = []
    for category_id in sorted({p.category_id for p in plans if p.category_id is not None}):
        plan = _best(plans, now, category_id)
        if plan is not None and plan.category_id is not None:
            categories.append(_view(plan))
    upcoming = None
    moments = sorted(
        {p.valid_from for p in plans if p.valid_from > now and p.category_id is None}
        | {p.valid_until for p in plans if p.valid_until is not None and p.category_id is None}
    )
    for moment in moments:
        plan = _best(plans, moment, None)
        if plan != current_plan:
            upcoming = _view(plan) if plan is not None else replace(_view(None), since=moment)
            break
    return CommissionTerms(
        current=current,
        categories=categories,
        next=upcoming,
        delivery_fee_to_platform=settings.DELIVERY_FEE_TO == "platform",
    )


# --- ledger accounts -----------------------------------------------------------------------------


FIXED_CODES = frozenset(
    {
        ledger.PROVIDER_CLEARING,
        ledger.CUSTOMER_FUNDS,
        ledger.COMMISSION_REVENUE,
        ledger.DELIVERY_FEE_REVENUE,
        ledger.REFUNDS,
        ledger.PAYOUTS_IN_TRANSIT,
        ledger.PROVIDER_FEES,
        ledger.ADJUSTMENTS,
        ledger.UNALLOCATED,
    }
)


def ledger_account_known(code: str) -> bool:
    """Whether an adjustment may name this account: one that exists, a fixed one (created on
    first use), or the payable account of a vendor that exists (vendor_payable:<id>)."""
    if LedgerAccount.objects.filter(code=code).exists() or code in FIXED_CODES:
        return True
    match = re.fullmatch(r"vendor_payable:(\d+)", code)
    if match is None:
        return False
    return Vendor.objects.filter(pk=int(match.group(1))).exists()
