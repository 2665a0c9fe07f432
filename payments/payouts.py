"""Payouts: the money of a settlement sent to the vendor's bank account through the provider.

    PENDING ──payout_mark_sent──> SENT ──payout_mark_paid───> PAID
                                       └─payout_mark_failed─> FAILED

Each move is one guarded UPDATE (the allowed source status in its WHERE) and its ledger posting, in
one database transaction: SENT posts `payout` (Dr vendor_payable, Cr payouts_in_transit), PAID
`payout_paid` (Dr payouts_in_transit, Cr provider_clearing), FAILED `payout_failed` (Dr
payouts_in_transit, Cr vendor_payable: the money is owed to the vendor again). Those three are the
ledger-level services; payout_send and payout_sync talk to the provider (over HTTP, so never
inside a database transaction) and then call them.

Sending is safe to repeat: the provider gets the idempotency key `payout-<id>` and the same body
every time (the destination is copied onto the payout before the first call), so a send killed
after the provider paid and before the SENT was written is answered, when retried, with the same
provider payout, and pays once.

A FAILED payout is final. Its money, back in the vendor's payable balance, is paid by the next
period's settlement (which lists the `payout_failed` journal transaction like any other), or at
once when staff retry it (payout_retry): a RETRY settlement that lists exactly that journal
transaction, with a new payout of its own. Whichever comes first takes it; the unique line per
journal transaction makes sure only one does.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from o2o.effects import event_emit
from o2o.errors import NotAllowed

from . import ledger
from .errors import InvalidTransition, PaymentError, PaymentUnavailable
from .gateways import get_gateway
from .gateways.base import (
    GatewayRefused,
    GatewayUnavailable,
    PayoutDestination,
    PayoutState,
    ProviderPayout,
)
from .ledger import Line
from .models import (
    JournalKind,
    JournalTransaction,
    Payout,
    PayoutAccount,
    Settlement,
    SettlementLine,
)
from .settlement import open_dispute_on, settlement_hold

log = logging.getLogger(__name__)
P = Payout.Status
D, C = "D", "C"


# --- the transitions (ledger-level; each one database transaction) -------------------------------


def _payable(payout: Payout):
    return ledger.vendor_payable_account(payout.vendor_id, currency=payout.currency)


def _post(payout: Payout, *, kind: str, debit, credit, memo: str) -> None:
    ledger.post(
        key=f"{kind}:{payout.pk}",
        kind=kind,
        currency=payout.currency,
        memo=memo,
        lines=[Line(debit, D, payout.amount), Line(credit, C, payout.amount)],
        vendor_id=payout.vendor_id,
    )


@transaction.atomic
def payout_mark_sent(*, payout_id: int, provider_ref: str) -> bool:
    """PENDING → SENT: the provider accepted the payout. True when this call made the move."""
    moved = Payout.objects.filter(pk=payout_id, status=P.PENDING).update(
        status=P.SENT, provider_ref=provider_ref[:64], sent_at=timezone.now()
    )
    if moved:
        payout = Payout.objects.get(pk=payout_id)
        _post(
            payout,
            kind=JournalKind.PAYOUT,
            debit=_payable(payout),
            credit=ledger.account(ledger.PAYOUTS_IN_TRANSIT, currency=payout.currency),
            memo=f"payout {payout.pk} of settlement {payout.settlement_id} sent",
        )
    return bool(moved)


@transaction.atomic
def payout_mark_paid(*, payout_id: int) -> bool:
    """SENT → PAID: the bank credited the vendor. True when this call made the move."""
    moved = Payout.objects.filter(pk=payout_id, status=P.SENT).update(
        status=P.PAID, paid_at=timezone.now()
    )
    if moved:
        payout = Payout.objects.get(pk=payout_id)
        cur = payout.currency
        _post(
            payout,
            kind=JournalKind.PAYOUT_PAID,
            debit=ledger.account(ledger.PAYOUTS_IN_TRANSIT, currency=cur),
            credit=ledger.account(ledger.PROVIDER_CLEARING, currency=cur),
            memo=f"payout {payout.pk} paid",
        )
        event_emit(
            type="payout.paid",
            aggregate="payout",
            aggregate_id=payout.pk,
            data={
                "payout_id": payout.pk,
                "vendor_id": payout.vendor_id,
                "amount": payout.amount,
                "currency": payout.currency,
            },
        )
    return bool(moved)


@transaction.atomic
def payout_mark_failed(*, payout_id: int, failure_code: str, failure_message: str) -> bool:
    """SENT → FAILED: the bank refused or returned it; the money is owed to the vendor again.
    True when this call made the move."""
    moved = Payout.objects.filter(pk=payout_id, status=P.SENT).update(
        status=P.FAILED,
        failed_at=timezone.now(),
        failure_code=failure_code[:40],
        failure_message=failure_message[:200],
    )
    if moved:
        payout = Payout.objects.get(pk=payout_id)
        _post(
            payout,
            kind=JournalKind.PAYOUT_FAILED,
            debit=ledger.account(ledger.PAYOUTS_IN_TRANSIT, currency=payout.currency),
            credit=_payable(payout),
            memo=f"payout {payout.pk} failed: {failure_code}",
        )
    return bool(moved)


def _apply(payout_id: int, pp: ProviderPayout) -> Payout:
    """Walk the payout to where the provider's payout is (one transaction)."""
    with transaction.atomic():
        payout_mark_sent(payout_id=payout_id, provider_ref=pp.ref)
        if pp.status == PayoutState.PAID:
            payout_mark_paid(payout_id=payout_id)
        elif pp.status == PayoutState.FAILED:
            payout_mark_failed(
                payout_id=payout_id,
                failure_code=pp.failure_code or "failed",
                failure_message=pp.failure_message,
            )
    payout = Payout.objects.get(pk=payout_id)
    if payout.provider_ref != pp.ref or payout.amount != pp.amount:
        # The reconciliation reports it; the payout never moves backwards.
        log.error("payout %s disagrees with the provider's %s", payout.pk, pp.ref)
    return payout


# --- talking to the provider ---------------------------------------------------------------------


def _unavailable() -> PaymentUnavailable:
    return PaymentUnavailable(
        _("The payment provider did not answer in time. Nothing was changed; try again shortly."),
        code="unavailable",
    )


# Why a payout waits: the codes payout_send's own checks stand for (payout_waits_for), shown to
# staff and to the vendor by payments.selectors.
WAIT_DISPUTE = "dispute_open"
WAIT_NOT_RELEASED = "not_released"
WAIT_NO_ACCOUNT = "no_payout_account"


def _has_account(payout: Payout) -> bool:
    """Whether the payout knows where to go: its own copy, or the vendor's payout account."""
    return (
        bool(payout.account_number)
        or PayoutAccount.objects.filter(vendor_id=payout.vendor_id).exists()
    )


def payout_waits_for(payout: Payout, *, dispute_open: bool | None = None) -> str | None:
    """Why a PENDING payout would not be sent now, checked in payout_send's order (a dispute
    open on its settlement, a settlement not released, no payout account); None when it would go
    (or is not pending). `dispute_open` may be given when the caller knows it already."""
    if payout.status != P.PENDING:
        return None
    if dispute_open is None:
        dispute_open = open_dispute_on(payout.settlement_id)
    if dispute_open:
        return WAIT_DISPUTE
    if payout.settlement.status != Settlement.Status.RELEASED:
        return WAIT_NOT_RELEASED
    if not _has_account(payout):
        return WAIT_NO_ACCOUNT
    return None


def _destination(payout: Payout) -> PayoutDestination:
    """The account the payout goes to: copied onto the payout before it is first sent, so that a
    second sending asks the provider for exactly the same thing."""
    if not payout.account_number:
        account = PayoutAccount.objects.filter(vendor_id=payout.vendor_id).first()
        if account is None:  # payout_waits_for says WAIT_NO_ACCOUNT
            raise PaymentError(
                _("Vendor %(vendor)s has no payout account; add one, then send again.")
                % {"vendor": payout.vendor_id},
                code="no_payout_account",
            )
        Payout.objects.filter(pk=payout.pk, status=P.PENDING, account_number="").update(
            bank=account.bank, account_number=account.account_number, holder=account.holder
        )
        payout.refresh_from_db()
    return PayoutDestination(
        bank=payout.bank, account_number=payout.account_number, holder=payout.holder
    )


def payout_send(*, payout_id: int) -> Payout:
    """Send a PENDING payout to the provider and book what it answers (SENT, and PAID or FAILED
    when the answer is already final). A payout already sent is returned as it is; one whose
    settlement got a dispute meanwhile is held instead (the settlement goes back to HELD). Raises
    PaymentUnavailable when the provider did not answer (send again: it pays once), PaymentError
    when the vendor has no payout account. Call it outside a database transaction."""
    payout = Payout.objects.select_related("settlement").get(pk=payout_id)
    if payout.status != P.PENDING:
        return payout
    if settlement_hold(settlement_id=payout.settlement_id):
        log.info("payout %s held: a dispute is open on its settlement", payout.pk)
        return payout
    if payout.settlement.status != Settlement.Status.RELEASED:
        return payout
    destination = _destination(payout)
    try:
        pp = get_gateway(payout.provider).payout_create(
            amount=payout.amount,
            currency=payout.currency,
            destination=destination,
            reference=payout.idempotency_key,
            idempotency_key=payout.idempotency_key,
        )
    except GatewayUnavailable as exc:
        raise _unavailable() from exc
    except GatewayRefused as exc:
        # Refused outright (an account the provider can't pay to): booked as sent and failed at
        # once, so the money returns to the payable balance through the ledger like any failure.
        log.warning("payout %s refused by %s: %s", payout.pk, payout.provider, exc.message)
        pp = ProviderPayout(
            ref="",
            status=PayoutState.FAILED,
            amount=payout.amount,
            currency=payout.currency,
            failure_code=exc.code,
            failure_message=exc.message,
        )
    return _apply(payout.pk, pp)


def payout_sync(*, payout_id: int) -> Payout:
    """Fetch a SENT payout's state from the provider and book it (PAID or FAILED). Raises
    PaymentUnavailable when the provider did not answer."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.status != P.SENT or not payout.provider_ref:
        return payout
    try:
        pp = get_gateway(payout.provider).payout_get(ref=payout.provider_ref)
    except GatewayUnavailable as exc:
        raise _unavailable() from exc
    except GatewayRefused as exc:
        raise PaymentError(exc.message, code=exc.code) from exc
    return _apply(payout.pk, pp)


def payouts_due() -> list[int]:
    """Ids of the PENDING payouts of released settlements (what a run sends), oldest first."""
    return list(
        Payout.objects.filter(status=P.PENDING, settlement__status=Settlement.Status.RELEASED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def payouts_in_transit() -> list[int]:
    return list(Payout.objects.filter(status=P.SENT).order_by("pk").values_list("pk", flat=True))


# --- staff ---------------------------------------------------------------------------------------


@transaction.atomic
def payout_retry(*, payout_id: int, actor) -> Payout:
    """Pay a FAILED payout's money again now, by staff (after the vendor's account was fixed): a
    RETRY settlement listing the failure's journal transaction (the money it returned to the
    payable balance) and a new PENDING payout of it. Refused when the payout did not fail, was
    retried already, or the next period's settlement has already taken its money."""
    if actor is None or not getattr(actor, "is_staff", False):
        raise NotAllowed(_("Only staff can retry a payout."), code="forbidden")
    payout = Payout.objects.select_for_update().select_related("settlement").get(pk=payout_id)
    if payout.status != P.FAILED:
        raise InvalidTransition(_("Only a failed payout can be retried."), code="not_failed")
    if Settlement.objects.filter(retry_of=payout).exists():
        raise InvalidTransition(_("This payout was retried already."), code="retried")
    returned = JournalTransaction.objects.get(key=f"{JournalKind.PAYOUT_FAILED}:{payout.pk}")
    taken = SettlementLine.objects.filter(journal_transaction=returned).first()
    if taken is not None:
        raise InvalidTransition(
            _("Its money is already paid again by settlement %(s)s.") % {"s": taken.settlement_id},
            code="already_settled",
        )
    now = timezone.now()
    original = payout.settlement
    settlement = Settlement.objects.create(
        vendor_id=payout.vendor_id,
        currency=payout.currency,
        kind=Settlement.Kind.RETRY,
        retry_of=payout,
        period_start=original.period_start,
        period_end=original.period_end,
        status=Settlement.Status.RELEASED,
        returned=payout.amount,
        net=payout.amount,
        line_count=1,
        note=f"retry of payout {payout.pk} by {actor.pk}"[:200],
        built_at=now,
        released_at=now,
    )
    try:
        with transaction.atomic():
            SettlementLine.objects.create(
                settlement=settlement,
                journal_transaction=returned,
                kind=JournalKind.PAYOUT_FAILED,
                net=payout.amount,
                booked_at=returned.created_at,
            )
    except IntegrityError as exc:  # a settlement run took it at this very moment
        raise InvalidTransition(
            _("Its money is already being paid again by a settlement."), code="already_settled"
        ) from exc
    log.info("payout %s retried by %s as settlement %s", payout.pk, actor.pk, settlement.pk)
    return Payout.objects.create(
        settlement=settlement,
        vendor_id=payout.vendor_id,
        amount=payout.amount,
        currency=payout.currency,
        provider=settings.PAYMENT_GATEWAY,
    )
