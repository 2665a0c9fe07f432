"""Reconciliation: the ledger against itself, against the payments, and against the provider's own
records. Every difference becomes a Discrepancy for staff to look into; nothing is fixed here.

    (a) every journal transaction balances (and has two or more entries);
    (b) every payment: its captured amount equals its capture journal, its refunded amount its
        refund journals, its provider fee its provider_fee journal;
    (c) the provider's intents and payouts created in a window (listed from its API, page by page)
        against our payments and payouts, and ours of that window the provider did not list
        (asked for one by one before they are called missing); the fee the provider charged for
        each intent against the fee the ledger booked for its payment;
    (d) the clearing accounts (customer funds, refunds) net to zero.

Each check is a generator of Findings, reading in bounded batches; reconciliation_run records
them. A finding already open (same kind and object) is not recorded twice: its last_seen_at and
figures move instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from o2o.errors import NotAllowed

from . import ledger
from .errors import InvalidTransition, PaymentError, PaymentUnavailable
from .gateways import get_gateway
from .gateways.base import (
    GatewayRefused,
    GatewayUnavailable,
    PayoutState,
    ProviderIntent,
    ProviderPayout,
)
from .models import (
    Discrepancy,
    JournalKind,
    JournalTransaction,
    LedgerEntry,
    Payment,
    Payout,
)
from .services import AGREES
from .settlement import period_of

log = logging.getLogger(__name__)
K = Discrepancy.Kind
BATCH = 1000
D, C = LedgerEntry.DEBIT, LedgerEntry.CREDIT


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    object_ref: str
    expected: str
    actual: str
    detail: str = ""


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


# --- (a) every journal transaction balances ------------------------------------------------------


def journal_findings(*, batch: int = BATCH) -> Iterator[Finding]:
    after = 0
    while True:
        ids = list(
            JournalTransaction.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return
        rows = (
            JournalTransaction.objects.filter(pk__gte=ids[0], pk__lte=ids[-1])
            .annotate(
                d=Coalesce(Sum("entries__amount", filter=Q(entries__side=D)), 0),
                c=Coalesce(Sum("entries__amount", filter=Q(entries__side=C)), 0),
                n=Count("entries"),
            )
            .filter(~Q(d=F("c")) | Q(n__lt=2))
            .values_list("pk", "d", "c", "n")
        )
        for pk, d, c, n in rows:
            yield Finding(
                K.JOURNAL_UNBALANCED, f"journal:{pk}", f"debits {d}", f"credits {c}", f"{n} entries"
            )
        after = ids[-1]


# --- (b) the ledger against the payments ---------------------------------------------------------


def _posted(kind: str) -> Coalesce:
    """What the payment's journal transactions of `kind` took out of provider clearing (refund)
    or put into it (capture)."""
    side = D if kind == JournalKind.CAPTURE else C
    return Coalesce(
        Subquery(
            LedgerEntry.objects.filter(
                transaction__payment_id=OuterRef("pk"),
                transaction__kind=kind,
                side=side,
                account__code__startswith=ledger.PROVIDER_CLEARING,
            )
            .order_by()
            .values("transaction__payment_id")
            .annotate(s=Sum("amount"))
            .values("s")[:1]
        ),
        Value(0),
    )


def _fee_booked() -> Coalesce:
    """What the payment's provider_fee journals put into provider_fees (debits less credits)."""
    entries = LedgerEntry.objects.filter(
        transaction__payment_id=OuterRef("pk"),
        transaction__kind=JournalKind.PROVIDER_FEE,
        account__code__startswith=ledger.PROVIDER_FEES,
    )
    return Coalesce(
        Subquery(
            entries.order_by()
            .values("transaction__payment_id")
            .annotate(
                s=Coalesce(Sum("amount", filter=Q(side=D)), 0)
                - Coalesce(Sum("amount", filter=Q(side=C)), 0)
            )
            .values("s")[:1]
        ),
        Value(0),
    )


def fees_booked(payment_ids: Iterable[int]) -> dict[int, int]:
    """payment id → the provider fee the ledger booked for it (payments without one left out)."""
    rows = (
        LedgerEntry.objects.filter(
            transaction__payment_id__in=list(payment_ids),
            transaction__kind=JournalKind.PROVIDER_FEE,
            account__code__startswith=ledger.PROVIDER_FEES,
        )
        .order_by()
        .values("transaction__payment_id")
        .annotate(
            d=Coalesce(Sum("amount", filter=Q(side=D)), 0),
            c=Coalesce(Sum("amount", filter=Q(side=C)), 0),
        )
    )
    return {r["transaction__payment_id"]: r["d"] - r["c"] for r in rows}


def _fee_finding(payment_id: int, said: str, fee: int, booked: int, detail: str = "") -> Finding:
    return Finding(
        K.PROVIDER_FEE_MISMATCH,
        f"payment:{payment_id}",
        f"{said} {fee}",
        f"ledger {booked}",
        detail,
    )


def payment_findings(*, batch: int = BATCH) -> Iterator[Finding]:
    after = 0
    while True:
        rows = list(
            Payment.objects.filter(pk__gt=after)
            .order_by("pk")
            .annotate(
                captured=_posted(JournalKind.CAPTURE),
                refunded=_posted(JournalKind.REFUND),
                fee=_fee_booked(),
            )
            .values_list(
                "pk",
                "amount_captured",
                "captured",
                "amount_refunded",
                "refunded",
                "provider_fee",
                "fee",
            )[:batch]
        )
        if not rows:
            return
        for pk, amount_captured, captured, amount_refunded, refunded, provider_fee, fee in rows:
            if amount_captured != captured:
                yield Finding(
                    K.CAPTURE_MISMATCH,
                    f"payment:{pk}",
                    f"captured {amount_captured}",
                    f"ledger {captured}",
                )
            if amount_refunded != refunded:
                yield Finding(
                    K.REFUND_MISMATCH,
                    f"payment:{pk}",
                    f"refunded {amount_refunded}",
                    f"ledger {refunded}",
                )
            if provider_fee != fee:
                yield _fee_finding(pk, "payment's fee", provider_fee, fee)
        after = rows[-1][0]


# --- (d) the clearing accounts net to zero -------------------------------------------------------


def clearing_findings() -> Iterator[Finding]:
    for code, balance in sorted(ledger.totals().items()):
        if code.split(":")[0] in (ledger.CUSTOMER_FUNDS, ledger.REFUNDS) and balance != 0:
            yield Finding(K.CLEARING_NOT_ZERO, f"account:{code}", "0", str(balance))


def ledger_findings() -> Iterator[Finding]:
    """(a), (b) and (d): everything that needs no provider."""
    yield from journal_findings()
    yield from payment_findings()
    yield from clearing_findings()


# --- (c) the provider's records ------------------------------------------------------------------


def _intent_says(intent: ProviderIntent) -> str:
    return f"{intent.status} captured {intent.amount_captured} refunded {intent.amount_refunded}"


def _payment_says(p: Payment) -> str:
    return f"{p.status} captured {p.amount_captured} refunded {p.amount_refunded}"


def in_flight(payment: Payment, *, now: datetime | None = None) -> bool:
    """A capture, void or refund of this payment may be on its way (changed within the grace
    window, or an effect about it or its order still pending): a difference with the provider is
    not a finding yet; the next run (or the convergence sweep) sees it settled."""
    from o2o.models import Effect

    now = now or timezone.now()
    if payment.updated_at >= now - timedelta(seconds=settings.CONVERGE_GRACE_SECONDS):
        return True
    refunds = list(payment.refunds.values_list("pk", flat=True))
    keys = Q(key__startswith=f"payment:{payment.pk}:") | Q(
        key__startswith=f"order:{payment.order_id}:"
    )
    if refunds:
        keys |= Q(key__in=[f"refund:{pk}:send" for pk in refunds])
    return Effect.objects.filter(keys, status=Effect.Status.PENDING).exists()


def _intent_compare(payment: Payment, intent: ProviderIntent) -> Finding | None:
    agrees = payment.status in AGREES[intent.status] and (
        payment.amount_captured,
        payment.amount_refunded,
    ) == (intent.amount_captured, intent.amount_refunded)
    if agrees and payment.amount == intent.amount:
        return None
    if in_flight(payment):
        return None
    return Finding(
        K.INTENT_MISMATCH,
        f"payment:{payment.pk}",
        _intent_says(intent)[:100],
        _payment_says(payment)[:100],
        f"intent {intent.ref}",
    )


# Our payout states each provider state agrees with.
PAYOUT_AGREES = {
    PayoutState.PENDING: {Payout.Status.SENT},
    PayoutState.PAID: {Payout.Status.PAID},
    PayoutState.FAILED: {Payout.Status.FAILED},
}


def _payout_compare(payout: Payout, pp: ProviderPayout) -> Finding | None:
    if payout.status in PAYOUT_AGREES[pp.status] and payout.amount == pp.amount:
        return None
    return Finding(
        K.PAYOUT_MISMATCH,
        f"payout:{payout.pk}",
        f"{pp.status} {pp.amount}",
        f"{payout.status} {payout.amount}",
        f"provider payout {pp.ref}",
    )


def _fee_compare(payment: Payment, intent: ProviderIntent, booked: int) -> Finding | None:
    """The provider's fee for the intent against the ledger's for the payment: a difference
    (not booked, or another amount) is recorded, never booked here."""
    if intent.fee == booked:
        return None
    return _fee_finding(payment.pk, "provider fee", intent.fee, booked, f"intent {intent.ref}")


def _intent_findings(gateway, provider: str, start: datetime, end: datetime) -> Iterator[Finding]:
    seen: set[str] = set()
    for page in _batched(gateway.intents_list(created_from=start, created_to=end), 100):
        ours = {
            p.provider_ref: p
            for p in Payment.objects.filter(
                provider=provider, provider_ref__in=[i.ref for i in page]
            )
        }
        fees = fees_booked(p.pk for p in ours.values())
        for intent in page:
            seen.add(intent.ref)
            payment = ours.get(intent.ref)
            if payment is None:
                yield Finding(
                    K.INTENT_UNKNOWN,
                    f"intent:{intent.ref}",
                    "a payment",
                    _intent_says(intent)[:100],
                )
            else:
                if finding := _intent_compare(payment, intent):
                    yield finding
                if finding := _fee_compare(payment, intent, fees.get(payment.pk, 0)):
                    yield finding
    # Ours of the window the provider did not list: asked for one by one (a payment row is made a
    # moment before its intent, so one near the window's edge may be listed in the next window).
    mine = Payment.objects.filter(
        provider=provider, created_at__gte=start, created_at__lt=end
    ).exclude(provider_ref="")
    for payment in mine.order_by("pk").iterator(chunk_size=BATCH):
        if payment.provider_ref in seen:
            continue
        try:
            intent = gateway.get_intent(ref=payment.provider_ref)
        except GatewayRefused:
            yield Finding(
                K.INTENT_MISSING,
                f"payment:{payment.pk}",
                f"intent {payment.provider_ref}",
                "not found",
            )
            continue
        if finding := _intent_compare(payment, intent):
            yield finding
        if finding := _fee_compare(payment, intent, fees_booked([payment.pk]).get(payment.pk, 0)):
            yield finding


def _payout_findings(gateway, provider: str, start: datetime, end: datetime) -> Iterator[Finding]:
    seen: set[str] = set()
    for page in _batched(gateway.payouts_list(created_from=start, created_to=end), 100):
        refs = [pp.ref for pp in page]
        keys = [pp.reference for pp in page]
        ids = [k[7:] for k in keys if k.startswith("payout-")]
        ids = [int(i) for i in ids if i.isascii() and i.isdigit()]  # not "²": int() can't read it
        ours = Payout.objects.filter(provider=provider).filter(
            Q(provider_ref__in=refs) | Q(pk__in=ids)
        )
        by_ref = {p.provider_ref: p for p in ours if p.provider_ref}
        by_key = {p.idempotency_key: p for p in ours}
        for pp in page:
            seen.add(pp.ref)
            payout = by_ref.get(pp.ref) or by_key.get(pp.reference)
            if payout is None:
                yield Finding(
                    K.PAYOUT_UNKNOWN,
                    f"provider_payout:{pp.ref}",
                    "a payout",
                    f"{pp.status} {pp.amount}",
                )
            elif finding := _payout_compare(payout, pp):
                yield finding
    mine = Payout.objects.filter(
        provider=provider, created_at__gte=start, created_at__lt=end
    ).exclude(provider_ref="")
    for payout in mine.order_by("pk").iterator(chunk_size=BATCH):
        if payout.provider_ref in seen:
            continue
        try:
            pp = gateway.payout_get(ref=payout.provider_ref)
        except GatewayRefused:
            yield Finding(
                K.PAYOUT_MISSING,
                f"payout:{payout.pk}",
                f"provider payout {payout.provider_ref}",
                "not found",
            )
            continue
        if finding := _payout_compare(payout, pp):
            yield finding


def provider_findings(*, start: datetime, end: datetime) -> Iterator[Finding]:
    """(c) for every provider the platform used in [start, end). Raises GatewayUnavailable when
    the provider does not answer."""
    providers = set(
        Payment.objects.filter(created_at__gte=start, created_at__lt=end)
        .values_list("provider", flat=True)
        .distinct()
    ) | set(
        Payout.objects.filter(created_at__gte=start, created_at__lt=end)
        .values_list("provider", flat=True)
        .distinct()
    )
    providers.add(settings.PAYMENT_GATEWAY)
    for provider in sorted(providers):
        gateway = get_gateway(provider)
        yield from _intent_findings(gateway, provider, start, end)
        yield from _payout_findings(gateway, provider, start, end)


# --- recording -----------------------------------------------------------------------------------


def discrepancy_record(finding: Finding, *, now: datetime | None = None) -> bool:
    """Record a finding; True when it is new (not already open)."""
    now = now or timezone.now()
    figures = {"expected": finding.expected, "actual": finding.actual, "detail": finding.detail}
    open_one = Discrepancy.objects.filter(
        kind=finding.kind, object_ref=finding.object_ref, status=Discrepancy.Status.OPEN
    )
    if open_one.update(last_seen_at=now, **figures):
        return False
    try:
        with transaction.atomic():
            Discrepancy.objects.create(
                kind=finding.kind,
                object_ref=finding.object_ref,
                detected_at=now,
                last_seen_at=now,
                **figures,
            )
    except IntegrityError:  # a concurrent run recorded it first
        open_one.update(last_seen_at=now, **figures)
        return False
    log.warning(
        "discrepancy %s %s: expected %s, got %s",
        finding.kind,
        finding.object_ref,
        finding.expected,
        finding.actual,
    )
    return True


def last_ended_day(now: datetime | None = None) -> tuple[datetime, datetime]:
    today = period_of(now or timezone.now(), days=1)
    return today.start - timedelta(days=1), today.start


def reconciliation_run(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    provider: bool = True,
) -> dict[str, int]:
    """Run every check and record what differs; raises PaymentUnavailable when the provider does
    not answer (what was found so far is recorded). The provider's records are compared for objects
    created in [start, end) (default: the last ended local day); the ledger checks cover
    everything. Returns {"found": n, "new": m, <kind>: count}."""
    if start is None or end is None:
        start, end = last_ended_day()
    counts: Counter[str] = Counter()
    checks = [ledger_findings()]
    if provider:
        checks.append(provider_findings(start=start, end=end))
    now = timezone.now()
    try:
        for check in checks:
            for finding in check:
                counts["found"] += 1
                counts[finding.kind] += 1
                counts["new"] += discrepancy_record(finding, now=now)
    except GatewayUnavailable as exc:
        # What was found so far is recorded; the run is retried as a whole (nothing duplicates).
        raise PaymentUnavailable(
            _("The payment provider did not answer; the reconciliation will run again."),
            code="unavailable",
        ) from exc
    log.info("reconciliation of %s–%s: %s", start, end, dict(counts))
    return {"found": 0, "new": 0, **counts}


@transaction.atomic
def discrepancy_resolve(*, discrepancy_id: int, actor, note: str) -> Discrepancy:
    """OPEN → RESOLVED by staff, with a note saying what was done about it."""
    if actor is None or not getattr(actor, "is_staff", False):
        raise NotAllowed(_("Only staff can resolve a discrepancy."), code="forbidden")
    note = (note or "").strip()
    if not note:
        raise PaymentError({"note": _("Say what was done about it.")})
    moved = Discrepancy.objects.filter(pk=discrepancy_id, status=Discrepancy.Status.OPEN).update(
        status=Discrepancy.Status.RESOLVED,
        resolved_by=actor,
        resolution_note=note[:1000],
        resolved_at=timezone.now(),
    )
    if not moved:
        raise InvalidTransition(_("This discrepancy is already resolved."), code="resolved")
    return Discrepancy.objects.get(pk=discrepancy_id)
