"""The double-entry ledger: the one place money movements are written.

Every movement is a JournalTransaction of two or more LedgerEntry rows, amounts positive, debits
equal to credits, written by `post` inside the database transaction of the state change it records
(a capture, a refund, a payout …) and made once by its key. The database refuses UPDATE and DELETE
of either table and, on PostgreSQL, a transaction whose entries do not balance at commit.

Accounts (created on first use):
    provider_clearing        asset      what the payment provider holds for us
    customer_funds           liability  customer money captured, before it is split
    vendor_payable:<id>      liability  what the platform owes a vendor
    commission_revenue       revenue    the platform's commission
    delivery_fee_revenue     revenue    delivery fees the platform keeps (settings.DELIVERY_FEE_TO)
    refunds                  liability  money on its way back to customers
    payouts_in_transit       liability  payouts sent, not yet confirmed paid
    provider_fees            expense    what the provider charges
    adjustments              expense    manual corrections by staff (with a reason)
    unallocated              liability  captured money of a payment without a vendor
    subscription_advantage   expense    regulars' commitment price advantage, paid by the platform
    cancellation_fee_revenue revenue    fees for ending a commitment early, kept by the platform

Postings:
    capture      Dr provider_clearing            Cr customer_funds
    commission   Dr customer_funds, subscription_advantage
                                                 Cr vendor_payable, commission_revenue, delivery_fee…
    refund       Dr refunds                      Cr provider_clearing
    reversal     Dr vendor_payable, commission…  Cr refunds, subscription_advantage
                                                 (commission and advantage given back pro rata)
    cancellation_fee Dr customer_funds           Cr cancellation_fee_revenue (a fee payment's split)
    payout       Dr vendor_payable               Cr payouts_in_transit
    payout_paid  Dr payouts_in_transit           Cr provider_clearing
    payout_failed Dr payouts_in_transit          Cr vendor_payable  (back to the payable balance)
    provider_fee Dr provider_fees                Cr provider_clearing
    cash_commission      Dr vendor_payable       Cr commission_revenue  (a cash sale at the cart,
                                                 only when settings.CASH_COMMISSION)
    cash_commission_undo Dr commission_revenue   Cr vendor_payable      (that sale undone)

The provider's fee for a capture (its own figure, reported with the capture) is booked with the
capture, once per payment (key provider_fee:<payment id>). The platform bears it: no vendor's
payable balance moves, and a refund gives none of it back (the provider keeps it, as card
acquirers do), so a payment refunded in full leaves provider_clearing short by its fee.

Regulars' commitments (subscriptions): a delivery's order is charged at the plan's price; the
platform pays the vendor the difference to the list price (Payment.price_advantage) in the
commission journal, so the vendor earns exactly what a one-off sale at list price earns less the
commission on what the customer paid, and the platform's cost of commitments is one account. The
fee for ending a commitment early is a payment of its own (purpose cancellation_fee, no order) and
is the platform's revenue: the platform funded the advantage the fee makes up for. A refund of the
fee (staff) gives it back from that account.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from o2o.errors import DomainError
from o2o.money import MINOR_UNITS

from .models import (
    AccountKind,
    JournalKind,
    JournalTransaction,
    LedgerAccount,
    LedgerEntry,
    Payment,
    Refund,
)

log = logging.getLogger(__name__)

LedgerKind = Literal["capture", "refund"]
D, C = LedgerEntry.DEBIT, LedgerEntry.CREDIT

PROVIDER_CLEARING = "provider_clearing"
CUSTOMER_FUNDS = "customer_funds"
COMMISSION_REVENUE = "commission_revenue"
DELIVERY_FEE_REVENUE = "delivery_fee_revenue"
REFUNDS = "refunds"
PAYOUTS_IN_TRANSIT = "payouts_in_transit"
PROVIDER_FEES = "provider_fees"
ADJUSTMENTS = "adjustments"
UNALLOCATED = "unallocated"
SUBSCRIPTION_ADVANTAGE = "subscription_advantage"
CANCELLATION_FEE_REVENUE = "cancellation_fee_revenue"

_FIXED: dict[str, tuple[str, str]] = {
    PROVIDER_CLEARING: (gettext_noop("Provider clearing"), AccountKind.ASSET),
    CUSTOMER_FUNDS: (gettext_noop("Customer funds in transit"), AccountKind.LIABILITY),
    COMMISSION_REVENUE: (gettext_noop("Platform commission revenue"), AccountKind.REVENUE),
    DELIVERY_FEE_REVENUE: (gettext_noop("Platform delivery fee revenue"), AccountKind.REVENUE),
    REFUNDS: (gettext_noop("Refunds to customers"), AccountKind.LIABILITY),
    PAYOUTS_IN_TRANSIT: (gettext_noop("Payouts in transit"), AccountKind.LIABILITY),
    PROVIDER_FEES: (gettext_noop("Provider fees"), AccountKind.EXPENSE),
    ADJUSTMENTS: (gettext_noop("Manual adjustments"), AccountKind.EXPENSE),
    UNALLOCATED: (gettext_noop("Unallocated captured funds"), AccountKind.LIABILITY),
    SUBSCRIPTION_ADVANTAGE: (
        gettext_noop("Regulars' commitment price advantage"),
        AccountKind.EXPENSE,
    ),
    CANCELLATION_FEE_REVENUE: (gettext_noop("Commitment cancellation fees"), AccountKind.REVENUE),
}


class LedgerError(DomainError):
    """A posting that would break the ledger's rules (unbalanced, non-positive, mixed currency)."""


@dataclass(frozen=True, slots=True)
class Line:
    account: LedgerAccount
    side: str  # D or C
    amount: int


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, for non-negative integers only."""
    if denominator <= 0 or numerator < 0:
        raise ValueError("round_half_up takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def pro_rata(value: int, part: int, whole: int) -> int:
    """value × part / whole, rounded half-up (the share of `value` that `part` of `whole` carries)."""
    if whole <= 0:
        return 0
    return round_half_up(value * part, whole)


# --- accounts ------------------------------------------------------------------------------------


def account(code: str, *, currency: str = "KRW") -> LedgerAccount:
    """A fixed account by its code, created on first use."""
    if code not in _FIXED:
        raise ValueError(f"unknown ledger account {code!r}")
    name, kind = _FIXED[code]
    acct, _created = LedgerAccount.objects.get_or_create(
        code=code if currency == "KRW" else f"{code}:{currency}",
        defaults={"name": name, "kind": kind, "currency": currency},
    )
    return acct


def account_label(acct: LedgerAccount) -> str:
    """An account's name in the reader's language (the stored name stays as it was booked)."""
    if acct.vendor_id is not None:
        return _("Payable to vendor %(vendor)s") % {"vendor": acct.vendor_id}
    return _(acct.name)


def vendor_payable_account(vendor_id: int, *, currency: str = "KRW") -> LedgerAccount:
    code = f"vendor_payable:{vendor_id}" + ("" if currency == "KRW" else f":{currency}")
    acct, _created = LedgerAccount.objects.get_or_create(
        code=code,
        defaults={
            "name": f"Payable to vendor {vendor_id}",
            "kind": AccountKind.LIABILITY,
            "currency": currency,
            "vendor_id": vendor_id,
        },
    )
    return acct


# --- posting -------------------------------------------------------------------------------------


def post(
    *,
    key: str,
    kind: str,
    currency: str,
    lines: Iterable[Line],
    memo: str = "",
    payment_id: int | None = None,
    refund_id: int | None = None,
    order_id: int | None = None,
    vendor_id: int | None = None,
    created_by=None,
    at=None,
) -> JournalTransaction | None:
    """Write one balanced journal transaction, once per key. Returns None when a transaction with
    this key was already written (the movement happened). Lines of amount 0 are left out. Must run
    inside the caller's database transaction (the state change it records)."""
    if not transaction.get_connection().in_atomic_block:
        raise LedgerError("ledger postings run inside the transaction of the change they record")
    if kind not in JournalKind.values:
        raise LedgerError(f"unknown journal kind {kind!r}")
    if currency not in MINOR_UNITS:
        raise LedgerError(f"unknown currency {currency!r}")
    kept: list[Line] = []
    for line in lines:
        if isinstance(line.amount, bool) or not isinstance(line.amount, int) or line.amount < 0:
            raise LedgerError(f"ledger amounts are non-negative integers, not {line.amount!r}")
        if line.side not in (D, C):
            raise LedgerError(f"a ledger line is a debit or a credit, not {line.side!r}")
        if line.account.currency != currency:
            raise LedgerError(f"account {line.account.code} is not in {currency}")
        if line.amount:
            kept.append(line)
    debits = sum(x.amount for x in kept if x.side == D)
    credits = sum(x.amount for x in kept if x.side == C)
    if debits != credits:
        raise LedgerError(f"journal {key} does not balance: debits {debits}, credits {credits}")
    if len(kept) < 2:
        if debits == 0:
            return None  # nothing moves
        raise LedgerError(f"journal {key} needs two or more entries")
    try:
        with transaction.atomic():
            txn = JournalTransaction.objects.create(
                key=key[:100],
                kind=kind,
                currency=currency,
                memo=memo[:200],
                payment_id=payment_id,
                refund_id=refund_id,
                order_id=order_id,
                vendor_id=vendor_id,
                created_by=created_by,
                created_at=at or timezone.now(),
            )
    except IntegrityError:
        if JournalTransaction.objects.filter(key=key[:100]).exists():
            return None
        raise
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=txn, account=x.account, side=x.side, amount=x.amount)
            for x in kept
        ]
    )
    return txn


# --- the payment movements (called by payments.services) -----------------------------------------


def _split_accounts(payment: Payment) -> LedgerAccount:
    if payment.vendor_id is None:
        return account(UNALLOCATED, currency=payment.currency)
    return vendor_payable_account(payment.vendor_id, currency=payment.currency)


def _advantage_line(currency: str, side: str, amount: int) -> list[Line]:
    """The price advantage's line, only when there is one (most payments have none: no account
    lookup for them)."""
    return (
        [Line(account(SUBSCRIPTION_ADVANTAGE, currency=currency), side, amount)] if amount else []
    )


def _capture(payment: Payment, amount: int) -> None:
    cur = payment.currency
    # A part capture keeps the platform's share in proportion.
    commission = pro_rata(payment.commission, amount, payment.amount)
    fee = pro_rata(payment.platform_fee, amount, payment.amount)
    advantage = pro_rata(payment.price_advantage, amount, payment.amount)
    common = {
        "payment_id": payment.pk,
        "order_id": payment.order_id,
        "vendor_id": payment.vendor_id,
    }
    post(
        key=f"capture:{payment.pk}",
        kind=JournalKind.CAPTURE,
        currency=cur,
        memo=f"order {payment.order_id} captured",
        lines=[
            Line(account(PROVIDER_CLEARING, currency=cur), D, amount),
            Line(account(CUSTOMER_FUNDS, currency=cur), C, amount),
        ],
        **common,
    )
    if payment.purpose == Payment.Purpose.CANCELLATION_FEE:
        post(
            key=f"cancellation_fee:{payment.pk}",
            kind=JournalKind.CANCELLATION_FEE,
            currency=cur,
            memo=f"subscription {payment.subscription_id}: cancellation fee",
            lines=[
                Line(account(CUSTOMER_FUNDS, currency=cur), D, amount),
                Line(account(CANCELLATION_FEE_REVENUE, currency=cur), C, amount),
            ],
            **common,
        )
        return
    post(
        key=f"commission:{payment.pk}",
        kind=JournalKind.COMMISSION,
        currency=cur,
        memo=f"order {payment.order_id}: vendor share and commission",
        lines=[
            Line(account(CUSTOMER_FUNDS, currency=cur), D, amount),
            *_advantage_line(cur, D, advantage),
            Line(_split_accounts(payment), C, amount - commission - fee + advantage),
            Line(account(COMMISSION_REVENUE, currency=cur), C, commission),
            Line(account(DELIVERY_FEE_REVENUE, currency=cur), C, fee),
        ],
        **common,
    )


def _posted(payment_id: int, code: str, kinds: tuple[str, ...], side: str) -> int:
    return (
        LedgerEntry.objects.filter(
            transaction__payment_id=payment_id,
            transaction__kind__in=kinds,
            account__code=code,
            side=side,
        ).aggregate(s=Sum("amount"))["s"]
        or 0
    )


def _refund(payment: Payment, refund: Refund) -> None:
    cur = payment.currency
    amount = refund.amount
    comm_code = account(COMMISSION_REVENUE, currency=cur).code
    fee_code = account(DELIVERY_FEE_REVENUE, currency=cur).code
    comm_taken = _posted(payment.pk, comm_code, (JournalKind.COMMISSION,), C)
    fee_taken = _posted(payment.pk, fee_code, (JournalKind.COMMISSION,), C)
    comm_back = _posted(payment.pk, comm_code, (JournalKind.REVERSAL,), D)
    fee_back = _posted(payment.pk, fee_code, (JournalKind.REVERSAL,), D)
    comm_left, fee_left = comm_taken - comm_back, fee_taken - fee_back
    adv_left = 0
    if payment.price_advantage:
        adv_code = account(SUBSCRIPTION_ADVANTAGE, currency=cur).code
        adv_left = _posted(payment.pk, adv_code, (JournalKind.COMMISSION,), D) - _posted(
            payment.pk, adv_code, (JournalKind.REVERSAL,), C
        )
    refunded_after = payment.amount_refunded  # this refund included
    captured_left = payment.amount_captured - (refunded_after - amount)  # before this refund
    # The platform takes back the price advantage it paid in proportion to what is refunded of
    # what is still captured (all of what is left on a full refund): the vendor never keeps an
    # advantage on goods the customer got their money back for.
    full = refunded_after >= payment.amount_captured
    advantage = adv_left if full else pro_rata(adv_left, amount, captured_left)
    if full:
        commission, fee = comm_left, fee_left  # all of it back: the parts end at zero exactly
    elif refund.commission_hint is not None:
        # A line (refunded by staff, or not supplied): exactly its commission, and none of the
        # delivery fee, which the customer does not get back with a line.
        commission, fee = min(refund.commission_hint, comm_left), 0
    else:
        # An amount: the platform gives back its parts in proportion to what is still captured,
        # so a refund after a line refund does not give that line's commission back again.
        commission = pro_rata(comm_left, amount, captured_left)
        fee = pro_rata(fee_left, amount, captured_left)
    # The vendor's part is what is left; never below zero.
    fee = min(fee, amount)
    commission = min(commission, amount - fee)
    common = {
        "payment_id": payment.pk,
        "refund_id": refund.pk,
        "order_id": payment.order_id,
        "vendor_id": payment.vendor_id,
    }
    post(
        key=f"refund:{refund.pk}",
        kind=JournalKind.REFUND,
        currency=cur,
        memo=f"order {payment.order_id} refund: {refund.reason}",
        lines=[
            Line(account(REFUNDS, currency=cur), D, amount),
            Line(account(PROVIDER_CLEARING, currency=cur), C, amount),
        ],
        **common,
    )
    if payment.purpose == Payment.Purpose.CANCELLATION_FEE:
        post(
            key=f"reversal:{refund.pk}",
            kind=JournalKind.REVERSAL,
            currency=cur,
            memo=f"subscription {payment.subscription_id}: cancellation fee given back",
            lines=[
                Line(account(CANCELLATION_FEE_REVENUE, currency=cur), D, amount),
                Line(account(REFUNDS, currency=cur), C, amount),
            ],
            **common,
        )
        return
    post(
        key=f"reversal:{refund.pk}",
        kind=JournalKind.REVERSAL,
        currency=cur,
        memo=f"order {payment.order_id} refund: shares given back",
        lines=[
            Line(_split_accounts(payment), D, amount - commission - fee + advantage),
            Line(account(COMMISSION_REVENUE, currency=cur), D, commission),
            Line(account(DELIVERY_FEE_REVENUE, currency=cur), D, fee),
            Line(account(REFUNDS, currency=cur), C, amount),
            *_advantage_line(cur, C, advantage),
        ],
        **common,
    )


def ledger_record(
    *,
    payment_id: int,
    kind: LedgerKind,
    amount: int,
    currency: str,
    refund_id: int | None = None,
) -> None:
    """Record one money movement of a payment (amount in minor units, positive): its capture, or
    one of its refunds that succeeded. Called by payments.services exactly once per movement,
    inside the transaction of the change; a second call for the same movement writes nothing."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.currency != currency:
        raise LedgerError("the movement's currency is not the payment's")
    if kind == "capture":
        _capture(payment, amount)
    elif kind == "refund":
        if refund_id is None:
            raise LedgerError("a refund movement names its refund")
        refund = Refund.objects.get(pk=refund_id, payment=payment)
        if refund.amount != amount:
            raise LedgerError("the refund's amount is not the movement's")
        _refund(payment, refund)
    else:
        raise LedgerError(f"unknown movement {kind!r}")


def provider_fee_record(*, payment_id: int, amount: int, key: str) -> JournalTransaction | None:
    """What the provider charged for a payment (from its records), once per key (payments.services
    uses the payment's id: one fee per capture). Inside the transaction of the capture."""
    payment = Payment.objects.get(pk=payment_id)
    cur = payment.currency
    return post(
        key=f"provider_fee:{key}",
        kind=JournalKind.PROVIDER_FEE,
        currency=cur,
        memo=f"provider fee for order {payment.order_id}",
        lines=[
            Line(account(PROVIDER_FEES, currency=cur), D, amount),
            Line(account(PROVIDER_CLEARING, currency=cur), C, amount),
        ],
        payment_id=payment.pk,
        order_id=payment.order_id,
    )


# --- adjustments by staff ------------------------------------------------------------------------


def _account_by_code(code: str) -> LedgerAccount:
    acct = LedgerAccount.objects.filter(code=code).first()
    if acct is None:
        if code in _FIXED:
            return account(code)
        vendor_id = code.split(":")[1] if code.startswith("vendor_payable:") else ""
        if vendor_id.isascii() and vendor_id.isdigit():  # not "²", a digit int() can't read
            return vendor_payable_account(int(vendor_id))
        raise LedgerError({"account": _("There is no ledger account %(code)s.") % {"code": code}})
    return acct


@transaction.atomic
def adjustment_post(
    *,
    actor,
    debit: str,
    credit: str,
    amount: int,
    reason: str,
    currency: str = "KRW",
    key: str | None = None,
) -> JournalTransaction:
    """A manual correction by staff: `amount` from one account to another, with a reason. The
    ledger keeps who did it and why; nothing is edited, a mistake is corrected by another entry."""
    if actor is None or not getattr(actor, "is_staff", False):
        raise LedgerError(_("Only staff can adjust the ledger."), code="forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError({"reason": _("Say why the ledger is adjusted.")})
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerError({"amount": _("Enter a whole amount above zero, in minor units.")})
    if debit == credit:
        raise LedgerError({"credit": _("Choose two different accounts.")})
    debit_acct, credit_acct = _account_by_code(debit), _account_by_code(credit)
    vendor_id = debit_acct.vendor_id or credit_acct.vendor_id
    txn = post(
        key=f"adjustment:{key or uuid.uuid4().hex}",
        kind=JournalKind.ADJUSTMENT,
        currency=currency,
        memo=reason,
        lines=[Line(debit_acct, D, amount), Line(credit_acct, C, amount)],
        vendor_id=vendor_id,
        created_by=actor,
    )
    if txn is None:
        raise LedgerError(_("This adjustment was already made."), code="duplicate")
    log.info("ledger adjustment %s by %s: %s", txn.pk, actor.pk, reason)
    return txn


# --- cash sales at the cart (called by orders.services.cash) ------------------------------------


def cash_commission_post(
    *, order_id: int, vendor_id: int, amount: int, currency: str, actor=None
) -> JournalTransaction | None:
    """The commission on a cash sale, owed by the vendor: the money never passed through the
    platform, so it comes off what the platform owes the vendor and the settlement nets it. Once
    per order; None when there is nothing to owe."""
    if amount <= 0:
        return None
    return post(
        key=f"cash_commission:{order_id}",
        kind=JournalKind.CASH_COMMISSION,
        currency=currency,
        memo=f"order {order_id}: commission on a cash sale",
        lines=[
            Line(vendor_payable_account(vendor_id, currency=currency), D, amount),
            Line(account(COMMISSION_REVENUE, currency=currency), C, amount),
        ],
        order_id=order_id,
        vendor_id=vendor_id,
        created_by=actor,
    )


def cash_commission_reverse(*, order_id: int, actor=None) -> JournalTransaction | None:
    """A cash sale undone: its commission, if one was booked, goes back to the vendor. Once."""
    booked = JournalTransaction.objects.filter(key=f"cash_commission:{order_id}").first()
    if booked is None or booked.vendor_id is None:
        return None
    amount = (
        LedgerEntry.objects.filter(transaction=booked, side=C).aggregate(n=Sum("amount"))["n"] or 0
    )
    return post(
        key=f"cash_commission_undo:{order_id}",
        kind=JournalKind.CASH_COMMISSION_UNDO,
        currency=booked.currency,
        memo=f"order {order_id}: cash sale undone",
        lines=[
            Line(account(COMMISSION_REVENUE, currency=booked.currency), D, amount),
            Line(vendor_payable_account(booked.vendor_id, currency=booked.currency), C, amount),
        ],
        order_id=order_id,
        vendor_id=booked.vendor_id,
        created_by=actor,
    )


# --- reading -------------------------------------------------------------------------------------


def balance(account_or_code: LedgerAccount | str, *, until=None) -> int:
    """The account's balance on its normal side (positive: what it holds or owes)."""
    acct = (
        account_or_code
        if isinstance(account_or_code, LedgerAccount)
        else LedgerAccount.objects.filter(code=account_or_code).first()
    )
    if acct is None:
        return 0
    entries = LedgerEntry.objects.filter(account=acct)
    if until is not None:
        entries = entries.filter(transaction__created_at__lt=until)
    sums = entries.aggregate(d=Sum("amount", filter=Q(side=D)), c=Sum("amount", filter=Q(side=C)))
    d, c = sums["d"] or 0, sums["c"] or 0
    return d - c if acct.debit_normal else c - d


def vendor_payable(vendor_id: int, *, currency: str = "KRW", until=None) -> int:
    code = f"vendor_payable:{vendor_id}" + ("" if currency == "KRW" else f":{currency}")
    return balance(code, until=until)


def unbalanced_transactions() -> list[int]:
    """Ids of journal transactions whose debits differ from their credits (should be none)."""
    rows = (
        LedgerEntry.objects.values("transaction_id")
        .annotate(d=Sum("amount", filter=Q(side=D)), c=Sum("amount", filter=Q(side=C)))
        .order_by()
    )
    return [r["transaction_id"] for r in rows if (r["d"] or 0) != (r["c"] or 0)]


def totals() -> dict[str, int]:
    """Every account's balance on its normal side, by code."""
    rows = (
        LedgerEntry.objects.values("account__code", "account__kind")
        .annotate(d=Sum("amount", filter=Q(side=D)), c=Sum("amount", filter=Q(side=C)))
        .order_by()
    )
    out = {}
    for r in rows:
        d, c = r["d"] or 0, r["c"] or 0
        debit_normal = r["account__kind"] in (AccountKind.ASSET, AccountKind.EXPENSE)
        out[r["account__code"]] = d - c if debit_normal else c - d
    return out
