"""Settlement: what the platform owes each vendor per period, computed from the ledger only.

A settlement lists the vendor-payable journal transactions (capture splits, refund reversals,
adjustments, returned payouts, commission owed on cash sales and its undoing: every journal transaction with an entry on the vendor's payable
account except the payouts themselves) booked before the end of its period and not settled before.
Each is listed once: a SettlementLine per journal transaction, UNIQUE on the journal transaction.
The ledger stays append-only; "settled" is recorded beside it, never on it.

Periods are SETTLEMENT_PERIOD_DAYS long and start at local midnight (settings.TIME_ZONE), counted
from Monday 2024-01-01 so that weekly periods start on Mondays. A period's settlement also takes
what earlier periods left behind (a refund whose commit raced the previous run, a negative period
carried forward, a failed payout's returned money), so nothing is ever left out and nothing is
taken twice.

The run works in bounded batches: vendors (their payable accounts) by keyset pagination, journal
ids streamed SETTLEMENT_BATCH_SIZE at a time, lines bulk-inserted per batch, each batch its own
short database transaction under a lock on the settlement row. Killed at any point and run again,
it carries on where it stopped: the settlement exists (unique per vendor, currency and period),
its lines so far are kept, the rest are added, and only then are its totals written and its
payout made (BUILDING → RELEASED / HELD / NOTHING_DUE / CARRIED_FORWARD). Two runs at once make
one settlement: the unique constraint decides who creates it, the row lock serialises the batches,
and ON CONFLICT DO NOTHING on the line's journal transaction is the last guard.

Nothing here talks to the provider: payouts are made PENDING here and sent by payments.payouts.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from . import ledger
from .models import (
    Dispute,
    JournalKind,
    LedgerAccount,
    LedgerEntry,
    Payout,
    Settlement,
    SettlementLine,
)

log = logging.getLogger(__name__)
S = Settlement.Status
D, C = LedgerEntry.DEBIT, LedgerEntry.CREDIT
EPOCH = date(2024, 1, 1)  # a Monday: periods are counted from here
# The journal kinds a settlement lists. A payout is the settlement's own money going out.
SETTLED_KINDS = (
    JournalKind.COMMISSION,
    JournalKind.REVERSAL,
    JournalKind.ADJUSTMENT,
    JournalKind.PAYOUT_FAILED,
    # Commission the vendor owes on cash sales (settings.CASH_COMMISSION), and its undoing.
    JournalKind.CASH_COMMISSION,
    JournalKind.CASH_COMMISSION_UNDO,
)


# --- periods -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def period_of(moment: datetime, *, days: int | None = None) -> Period:
    """The settlement period `moment` falls in: [local midnight, local midnight + days)."""
    days = days or settings.SETTLEMENT_PERIOD_DAYS
    zone = _zone()
    day = moment.astimezone(zone).date()
    first = day - timedelta(days=(day - EPOCH).days % days)
    return Period(
        start=datetime.combine(first, time(0), tzinfo=zone),
        end=datetime.combine(first + timedelta(days=days), time(0), tzinfo=zone),
    )


def last_ended_period(now: datetime | None = None) -> Period:
    """The latest period that is over at `now` (the one a run settles)."""
    current = period_of(now or timezone.now())
    return period_of(current.start - timedelta(microseconds=1))


# --- building one settlement ---------------------------------------------------------------------


def _unsettled(account_id: int, before: datetime):
    """The vendor-payable journal transactions of an account booked before `before` and listed by
    no settlement yet, as that account's entries: read along the (account, transaction) index, in
    journal id order, so a batch costs the same however long the history."""
    return LedgerEntry.objects.filter(
        ~Exists(SettlementLine.objects.filter(journal_transaction_id=OuterRef("transaction_id"))),
        account_id=account_id,
        transaction__kind__in=SETTLED_KINDS,
        transaction__created_at__lt=before,
    )


def _code(code: str, currency: str) -> str:
    """A fixed account's code in a currency (ledger.account's naming), without creating it: an
    account made by a transaction still open must not make the settlement wait for it."""
    return code if currency == "KRW" else f"{code}:{currency}"


# The two queries a settlement runs per batch and per vendor, written once in plain SQL (the ORM's
# compiling of a dozen filtered sums cost more than the database's work). Portable: PostgreSQL
# and the embedded SQLite.
_SIGNED = "CASE WHEN e.side = 'C' THEN e.amount ELSE -e.amount END"
_PARTS_SQL = f"""
    SELECT e.transaction_id,
           SUM(CASE WHEN e.account_id = %s THEN {_SIGNED} ELSE 0 END),
           SUM(CASE WHEN a.code = %s THEN {_SIGNED} ELSE 0 END),
           SUM(CASE WHEN a.code = %s THEN {_SIGNED} ELSE 0 END),
           SUM(CASE WHEN a.code = %s AND e.side = 'D' THEN e.amount ELSE 0 END),
           SUM(CASE WHEN a.code = %s AND e.side = 'C' THEN e.amount ELSE 0 END),
           SUM(CASE WHEN a.code = %s THEN -{_SIGNED} ELSE 0 END)
      FROM {LedgerEntry._meta.db_table} e
      JOIN {LedgerAccount._meta.db_table} a ON a.id = e.account_id
     WHERE e.transaction_id IN ({{ids}})
     GROUP BY e.transaction_id
"""  # noqa: S608 - table names come from the models; every value is a parameter
_TOTALS_SQL = f"""
    SELECT COALESCE(SUM(CASE WHEN kind = 'commission' THEN gross ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN kind = 'reversal' THEN gross ELSE 0 END), 0),
           COALESCE(SUM(commission), 0),
           COALESCE(SUM(delivery_fee), 0),
           COALESCE(SUM(price_advantage), 0),
           COALESCE(SUM(CASE WHEN kind = 'adjustment'
                             THEN net + commission + delivery_fee ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN kind = 'payout_failed' THEN net ELSE 0 END), 0),
           COALESCE(SUM(net), 0),
           COUNT(*)
      FROM {SettlementLine._meta.db_table}
     WHERE settlement_id = %s
"""  # noqa: S608 - as above


def _lines(
    settlement_id: int, rows: list[tuple], *, payable_id: int, currency: str
) -> list[SettlementLine]:
    """The lines of a batch of journal transactions (id, kind, order, refund, time): their parts
    (effect on the payable, commission, delivery fee, captured, refunded) read from their entries
    in one grouped query."""
    ids = [row[0] for row in rows]
    codes = [
        _code(code, currency)
        for code in (
            ledger.COMMISSION_REVENUE,
            ledger.DELIVERY_FEE_REVENUE,
            ledger.CUSTOMER_FUNDS,
            ledger.REFUNDS,
            ledger.SUBSCRIPTION_ADVANTAGE,
        )
    ]
    with connection.cursor() as cur:
        cur.execute(_PARTS_SQL.format(ids=", ".join(["%s"] * len(ids))), [payable_id, *codes, *ids])
        # (PostgreSQL's SUM of bigint is numeric: back to int)
        parts = {r[0]: [int(x) for x in r[1:]] for r in cur.fetchall()}
    lines = []
    for txn_id, kind, order_id, refund_id, booked_at in rows:
        net, commission, delivery_fee, captured, refunded, advantage = parts[txn_id]
        gross = {JournalKind.COMMISSION: captured, JournalKind.REVERSAL: -refunded}
        # An adjustment that moves advantage money by hand is counted as an adjustment.
        split = kind in (JournalKind.COMMISSION, JournalKind.REVERSAL)
        lines.append(
            SettlementLine(
                settlement_id=settlement_id,
                journal_transaction_id=txn_id,
                kind=kind,
                order_id=order_id,
                refund_id=refund_id,
                gross=gross.get(kind, 0),
                commission=commission,
                delivery_fee=delivery_fee,
                price_advantage=advantage if split else 0,
                net=net,
                booked_at=booked_at,
            )
        )
    return lines


def _totals(settlement_id: int) -> dict[str, int]:
    """The settlement's parts from its lines. An adjustment may move money between the
    platform's revenue and the vendor: what the commission and fee columns took from it is
    counted back in `adjustments`, so the parts always add up to the net."""
    with connection.cursor() as cur:
        cur.execute(_TOTALS_SQL, [settlement_id])
        gross, refunded, commission, fees, advantage, adjusted, returned, net, count = (
            int(x) for x in cur.fetchone()
        )
    out = {
        "gross": gross,
        "refunds": -refunded,
        "commission": commission,
        "delivery_fees": fees,
        "price_advantage": advantage,
        "adjustments": adjusted,
        "returned": returned,
        "net": net,
    }
    # settlement_parts_add_up in the database says the same; fail here with the figures.
    assert out["net"] == (
        out["gross"]
        - out["refunds"]
        - out["commission"]
        - out["delivery_fees"]
        + out["price_advantage"]
        + out["adjustments"]
        + out["returned"]
    ), out
    out["line_count"] = count
    return out


def open_dispute_on(settlement_id: int) -> bool:
    """Whether a dispute is open on one of the settlement's orders (it is then held)."""
    return Dispute.objects.filter(
        status=Dispute.Status.OPEN,
        order_id__in=SettlementLine.objects.filter(
            settlement_id=settlement_id, order_id__isnull=False
        ).values("order_id"),
    ).exists()


def _payout_make(settlement: Settlement, *, first: bool = False) -> Payout:
    """The settlement's payout of its net, made once (`first`: the caller holds the settlement's
    lock and knows none exists yet, so no lookup is needed)."""
    fields = {
        "vendor_id": settlement.vendor_id,
        "amount": settlement.net,
        "currency": settlement.currency,
        "provider": settings.PAYMENT_GATEWAY,
    }
    if first:
        return Payout.objects.create(settlement=settlement, **fields)
    return Payout.objects.get_or_create(settlement=settlement, defaults=fields)[0]


def _finish(settlement_id: int) -> Settlement:
    """Write the totals of a settlement whose lines are all in, and decide what becomes of it."""
    with transaction.atomic():
        settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
        if settlement.status != S.BUILDING:
            return settlement
        totals = _totals(settlement_id)
        now = timezone.now()
        if totals["net"] < 0:
            # The vendor owes more than it earned: nothing is paid, and its journal transactions
            # go back to the pool so the next period's settlement nets them against its earnings.
            SettlementLine.objects.filter(settlement_id=settlement_id).delete()
            status, totals["line_count"] = S.CARRIED_FORWARD, 0
        elif totals["net"] == 0:
            status = S.NOTHING_DUE
        elif open_dispute_on(settlement_id):
            status = S.HELD
        else:
            status = S.RELEASED
        Settlement.objects.filter(pk=settlement_id, status=S.BUILDING).update(
            status=status,
            built_at=now,
            released_at=now if status == S.RELEASED else None,
            **totals,
        )
        settlement.refresh_from_db()
        if status == S.RELEASED:
            _payout_make(settlement, first=True)  # BUILDING a moment ago, under the lock
    return settlement


def settlement_create(
    *,
    vendor_id: int,
    period: Period,
    currency: str = "KRW",
    batch_size: int | None = None,
) -> Settlement | None:
    """Settle one vendor's period: the settlement of (vendor, currency, period), built or finished
    from where an earlier run stopped. None when there is nothing to settle and no settlement was
    started. Runs its own short transactions: call it outside a transaction."""
    batch_size = batch_size or settings.SETTLEMENT_BATCH_SIZE
    payable = LedgerAccount.objects.filter(vendor_id=vendor_id, currency=currency).first()
    if payable is None:
        return None  # nothing was ever owed to this vendor in this currency
    settlement = Settlement.objects.filter(
        vendor_id=vendor_id, currency=currency, period_start=period.start, kind="period"
    ).first()
    if settlement is None:
        if not _unsettled(payable.pk, period.end).exists():
            return None
        settlement, _created = Settlement.objects.get_or_create(
            vendor_id=vendor_id,
            currency=currency,
            period_start=period.start,
            kind=Settlement.Kind.PERIOD,
            defaults={"period_end": period.end},
        )
    if settlement.status != S.BUILDING:
        return settlement
    after = 0
    while True:
        with transaction.atomic():
            locked = Settlement.objects.select_for_update().get(pk=settlement.pk)
            if locked.status != S.BUILDING:
                return locked  # a concurrent run finished it
            rows = list(
                _unsettled(payable.pk, locked.period_end)
                .filter(transaction_id__gt=after)
                .order_by("transaction_id")
                .values_list(
                    "transaction_id",
                    "transaction__kind",
                    "transaction__order_id",
                    "transaction__refund_id",
                    "transaction__created_at",
                )[:batch_size]
            )
            if rows:
                SettlementLine.objects.bulk_create(
                    _lines(settlement.pk, rows, payable_id=payable.pk, currency=currency),
                    ignore_conflicts=True,
                )
        if len(rows) < batch_size:
            # None left that this statement could see: one committing later is left for the
            # next period's settlement.
            break
        after = rows[-1][0]
    return _finish(settlement.pk)


# --- the run -------------------------------------------------------------------------------------


def _payable_accounts(batch: int, vendor_id: int | None = None) -> Iterator[LedgerAccount]:
    """Every vendor payable account (or one vendor's), by keyset pagination (a batch of rows in
    memory at a time)."""
    accounts = LedgerAccount.objects.filter(vendor_id__isnull=False)
    if vendor_id is not None:
        accounts = accounts.filter(vendor_id=vendor_id)
    after = 0
    while True:
        page = list(
            accounts.filter(pk__gt=after).only("pk", "vendor_id", "currency").order_by("pk")[:batch]
        )
        if not page:
            return
        yield from page
        after = page[-1].pk


def settlements_release() -> int:
    """HELD settlements whose disputes are all closed are RELEASED (and get their payout)."""
    released = 0
    after = 0
    while True:
        held = list(
            Settlement.objects.filter(status=S.HELD, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.SETTLEMENT_VENDOR_BATCH]
        )
        if not held:
            return released
        for settlement_id in held:
            released += settlement_release(settlement_id=settlement_id)
        after = held[-1]


@transaction.atomic
def settlement_release(*, settlement_id: int) -> bool:
    """HELD → RELEASED once no dispute on its orders is open; True when it moved."""
    settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
    if settlement.status != S.HELD or open_dispute_on(settlement_id):
        return False
    Settlement.objects.filter(pk=settlement_id, status=S.HELD).update(
        status=S.RELEASED, released_at=timezone.now()
    )
    settlement.refresh_from_db()
    _payout_make(settlement)
    return True


@transaction.atomic
def settlement_hold(*, settlement_id: int) -> bool:
    """RELEASED → HELD when a dispute was opened on one of its orders before its payout went out;
    True when it moved."""
    if not open_dispute_on(settlement_id):
        return False
    moved = Settlement.objects.filter(
        pk=settlement_id, status=S.RELEASED, payout__status=Payout.Status.PENDING
    ).update(status=S.HELD, released_at=None)
    return bool(moved)


def settlements_settle(
    *, period: Period, vendor_id: int | None = None, batch_size: int | None = None
) -> Counter[str]:
    """Settle one period for every vendor (or the one named), then release the held settlements
    whose disputes are closed. What the beat's run and staff's "settle now" both do. Idempotent:
    a period settled already is left as it is. Counts by outcome."""
    counts: Counter[str] = Counter()
    for acct in _payable_accounts(settings.SETTLEMENT_VENDOR_BATCH, vendor_id):
        settlement = settlement_create(
            vendor_id=acct.vendor_id, period=period, currency=acct.currency, batch_size=batch_size
        )
        counts[settlement.status if settlement else "nothing_new"] += 1
    counts["released_from_hold"] = settlements_release()
    log.info("settlement of %s–%s: %s", period.start, period.end, dict(counts))
    return counts


def settlements_run(*, now: datetime | None = None, batch_size: int | None = None) -> dict:
    """Settle every vendor's last ended period (at `now`), then release the held settlements
    whose disputes are closed. Idempotent and restartable; returns counts by outcome."""
    period = last_ended_period(now)
    counts = settlements_settle(period=period, batch_size=batch_size)
    return {"period_start": period.start.isoformat(), **counts}
