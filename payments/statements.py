"""A vendor's statement for one settlement: every order, refund, adjustment and returned payout the
settlement lists, each with the amounts the ledger booked on it, their totals and the payout; as
data for the page and the API, as CSV and as PDF.

The amounts come from the ledger entries of the settlement's journal transactions (SettlementLine
names them), not from the settlement's own copy, so a statement is a second, independent reading of
the ledger; `Statement.agrees` says whether both readings agree (they always should).

Signs follow SettlementLine: `gross` is captured (+) or refunded (−); `commission` and
`delivery_fee` are the platform's part, charged (+) or given back on a refund (−); `net` is the
effect on what the platform owes the vendor: net = gross − commission − delivery_fee +
price_advantage (a regular's commitment advantage, paid by the platform), and for an adjustment or
a returned payout its amount alone.

PDF: reportlab with its built-in CID font for Hangul (HYGothic-Medium: no font file shipped or
downloaded; PDF readers bring their own Korean font) and Helvetica for Latin text and figures.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from django.db.models import BigIntegerField, Case, F, Q, Sum, Value, When
from django.http import HttpResponse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from o2o.money import format_money

from . import ledger
from .earnings import account_code, kind_label, vendor_account_code
from .models import JournalKind, LedgerEntry, Payment, Payout, Settlement, SettlementLine

D, C = LedgerEntry.DEBIT, LedgerEntry.CREDIT


@dataclass(frozen=True, slots=True)
class StatementLine:
    journal_id: int
    kind: str
    kind_label: str
    booked_at: dt.datetime
    order_id: int | None
    refund_id: int | None
    gross: int
    commission: int
    delivery_fee: int
    net: int
    price_advantage: int = 0  # paid by the platform on a regular's commitment price (+), or back


@dataclass(frozen=True, slots=True)
class Totals:
    sales: int = 0  # captured
    refunds: int = 0  # given back (positive)
    commission: int = 0  # net of what refunds gave back
    delivery_fees: int = 0
    adjustments: int = 0
    returned: int = 0  # failed payouts back in the balance
    net: int = 0
    price_advantage: int = 0  # regulars' commitment advantage paid by the platform, after refunds

    @property
    def gross(self) -> int:
        """Sales less refunds: the total of the lines' gross column."""
        return self.sales - self.refunds

    def as_dict(self) -> dict[str, int]:
        return {
            "sales": self.sales,
            "refunds": self.refunds,
            "commission": self.commission,
            "delivery_fees": self.delivery_fees,
            "price_advantage": self.price_advantage,
            "adjustments": self.adjustments,
            "returned": self.returned,
            "net": self.net,
        }


@dataclass(frozen=True, slots=True)
class Statement:
    settlement: Settlement
    vendor_name: str
    currency: str
    lines: list[StatementLine]
    totals: Totals
    payout: Payout | None
    language: str  # the vendor's (Vendor.language): its CSV and PDF are in it
    # Regulars who ended a commitment early in the period: the fees charged to them (the
    # platform's revenue, as it paid the commitments' price advantage; not in the net). For the
    # vendor's information: (subscription id, amount, when charged).
    commitment_fees: tuple[tuple[int, int, dt.datetime], ...] = ()

    @property
    def agrees(self) -> bool:
        """Do the ledger's figures equal the settlement's own? (They always should. A settlement
        carried forward lists nothing: its movements went on to the next one.)"""
        s, t = self.settlement, self.totals
        if s.status == Settlement.Status.CARRIED_FORWARD:
            return not self.lines
        return (
            t.sales,
            t.refunds,
            t.commission,
            t.delivery_fees,
            t.price_advantage,
            t.adjustments,
            t.returned,
            t.net,
        ) == (
            s.gross,
            s.refunds,
            s.commission,
            s.delivery_fees,
            s.price_advantage,
            s.adjustments,
            s.returned,
            s.net,
        )

    @property
    def filename(self) -> str:
        s = self.settlement
        day = timezone.localtime(s.period_start).date().isoformat()
        return f"statement-{s.pk}-{day}"


def _ledger_parts(settlement: Settlement, journal_ids: list[int]) -> dict[int, dict[str, int]]:
    """Journal transaction id → what its entries moved, as the vendor's statement shows it: the
    vendor's payable, the platform's commission and delivery fee (credits positive), what was
    captured and what was refunded. One grouped query."""
    cur = settlement.currency
    codes = {
        "net": vendor_account_code(settlement.vendor_id, cur),
        "commission": account_code(ledger.COMMISSION_REVENUE, cur),
        "delivery_fee": account_code(ledger.DELIVERY_FEE_REVENUE, cur),
    }

    def signed(code: str) -> Sum:
        return Sum(
            Case(
                When(account__code=code, side=C, then=F("amount")),
                When(account__code=code, side=D, then=-F("amount")),
                default=Value(0),
                output_field=BigIntegerField(),
            )
        )

    rows = (
        LedgerEntry.objects.filter(transaction_id__in=journal_ids)
        .values("transaction_id")
        .annotate(
            **{name: signed(code) for name, code in codes.items()},
            price_advantage=-signed(account_code(ledger.SUBSCRIPTION_ADVANTAGE, cur)),
            captured=Sum(
                "amount",
                filter=Q(side=D, account__code=account_code(ledger.CUSTOMER_FUNDS, cur)),
            ),
            refunded=Sum(
                "amount", filter=Q(side=C, account__code=account_code(ledger.REFUNDS, cur))
            ),
        )
        .order_by()
    )
    keys = ("net", "commission", "delivery_fee", "captured", "refunded", "price_advantage")
    return {r["transaction_id"]: {k: r[k] or 0 for k in keys} for r in rows}


def _line(line: SettlementLine, parts: dict[str, int]) -> StatementLine:
    gross = {
        JournalKind.COMMISSION: parts.get("captured", 0),
        JournalKind.REVERSAL: -parts.get("refunded", 0),
    }.get(line.kind, 0)
    return StatementLine(
        journal_id=line.journal_transaction_id,
        kind=line.kind,
        kind_label=kind_label(line.kind),
        booked_at=line.booked_at,
        order_id=line.order_id,
        refund_id=line.refund_id,
        gross=gross,
        commission=parts.get("commission", 0),
        delivery_fee=parts.get("delivery_fee", 0),
        net=parts.get("net", 0),
        # An adjustment moving advantage money by hand counts as an adjustment (SettlementLine).
        price_advantage=(
            parts.get("price_advantage", 0)
            if line.kind in (JournalKind.COMMISSION, JournalKind.REVERSAL)
            else 0
        ),
    )


def _totals(lines: list[StatementLine]) -> Totals:
    # An adjustment may move money between the platform's revenue and the vendor (commission given
    # back by hand): it is shown in the commission column, and the adjustments total is what the
    # vendor gained by it beyond that, so that the parts add up as the settlement's do.
    return Totals(
        sales=sum(x.gross for x in lines if x.kind == JournalKind.COMMISSION),
        refunds=-sum(x.gross for x in lines if x.kind == JournalKind.REVERSAL),
        commission=sum(x.commission for x in lines),
        delivery_fees=sum(x.delivery_fee for x in lines),
        price_advantage=sum(x.price_advantage for x in lines),
        adjustments=sum(
            x.net + x.commission + x.delivery_fee for x in lines if x.kind == JournalKind.ADJUSTMENT
        ),
        returned=sum(x.net for x in lines if x.kind == JournalKind.PAYOUT_FAILED),
        net=sum(x.net for x in lines),
    )


def statement_build(*, settlement: Settlement) -> Statement:
    """The statement of a settlement, read from the ledger (three queries)."""
    rows = list(settlement.lines.order_by("booked_at", "journal_transaction_id"))
    parts = _ledger_parts(settlement, [r.journal_transaction_id for r in rows])
    lines = [_line(r, parts.get(r.journal_transaction_id, {})) for r in rows]
    payout = Payout.objects.filter(settlement=settlement).first()
    fees = Payment.objects.filter(
        purpose=Payment.Purpose.CANCELLATION_FEE,
        vendor_id=settlement.vendor_id,
        currency=settlement.currency,
        captured_at__gte=settlement.period_start,
        captured_at__lt=settlement.period_end,
    ).order_by("captured_at")
    return Statement(
        commitment_fees=tuple(
            (p.subscription_id or 0, p.amount_captured - p.amount_refunded, p.captured_at)
            for p in fees
            if p.captured_at is not None
        ),
        settlement=settlement,
        vendor_name=settlement.vendor.name,
        currency=settlement.currency,
        lines=lines,
        totals=_totals(lines),
        payout=payout,
        language=settlement.vendor.language,
    )


def payout_dict(payout: Payout | None) -> dict[str, Any] | None:
    if payout is None:
        return None
    return {
        "id": payout.pk,
        "amount": payout.amount,
        "currency": payout.currency,
        "status": payout.status,
        "status_label": str(payout.get_status_display()),
        "created_at": payout.created_at,
        "sent_at": payout.sent_at,
        "paid_at": payout.paid_at,
        "failed_at": payout.failed_at,
        "account": masked_account(payout.account_number),
        "bank": payout.bank,
    }


def masked_account(number: str) -> str:
    """Only the last four digits of a bank account, as on any statement."""
    digits = number.strip()
    return f"••••{digits[-4:]}" if digits else ""


# --- CSV -----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "booked_at",
    "type",
    "order",
    "refund",
    "gross",
    "commission",
    "delivery_fee",
    "price_advantage",
    "net",
    "currency",
    "journal",
)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: text starting like a formula (a vendor's name,
    a memo) gets a leading apostrophe. Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _iso(value: dt.datetime | None) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""


class _Echo:
    """A file-like object whose write returns the line (for streaming csv.writer output)."""

    def write(self, value: str) -> str:
        return value


def statement_csv_rows(statement: Statement) -> Iterator[str]:
    """The statement as CSV lines: a header, one row per line, a total row, then a blank line and
    the summary (settlement, period, totals, payout) as name,value rows. Amounts are integers in
    minor units (with the currency beside them), for spreadsheets and bookkeeping software."""
    w = csv.writer(_Echo())
    s, t, cur = statement.settlement, statement.totals, statement.currency
    yield "\ufeff"  # a BOM, so spreadsheet programs read the Korean labels as UTF-8
    yield w.writerow(CSV_COLUMNS)
    for x in statement.lines:
        yield w.writerow(
            [
                _iso(x.booked_at),
                _cell(kind_label(x.kind)),
                x.order_id or "",
                x.refund_id or "",
                x.gross,
                x.commission,
                x.delivery_fee,
                x.price_advantage,
                x.net,
                cur,
                x.journal_id,
            ]
        )
    yield w.writerow(
        [
            "",
            "total",
            "",
            "",
            t.gross,
            t.commission,
            t.delivery_fees,
            t.price_advantage,
            t.net,
            cur,
            "",
        ]
    )
    yield w.writerow([])
    summary: list[tuple[str, Any]] = [
        ("settlement", s.pk),
        ("vendor", statement.vendor_name),
        ("period_start", _iso(s.period_start)),
        ("period_end", _iso(s.period_end)),
        ("status", s.status),
        ("currency", cur),
        *t.as_dict().items(),
    ]
    p = statement.payout
    if p is not None:
        summary += [
            ("payout", p.pk),
            ("payout_amount", p.amount),
            ("payout_status", p.status),
            ("payout_sent_at", _iso(p.sent_at)),
            ("payout_paid_at", _iso(p.paid_at)),
            ("payout_account", masked_account(p.account_number)),
        ]
    for name, value in summary:
        yield w.writerow([name, _cell(value)])


def statement_csv(statement: Statement) -> bytes:
    return "".join(statement_csv_rows(statement)).encode("utf-8")


# --- PDF -----------------------------------------------------------------------------------------

HANGUL_FONT = "HYGothic-Medium"
LATIN_FONT = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
# Characters the CID font has under another code point (₩ is in KS X 1001 only as full-width ￦).
_CID_SUBSTITUTES = str.maketrans({"\u20a9": "\uffe6", "\u2212": "-"})


def _fonts_registered() -> None:
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415 - only the PDF needs reportlab
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # noqa: PLC0415

    if HANGUL_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(HANGUL_FONT))


def _markup(text: str) -> str:
    """Paragraph markup of `text`: runs outside Latin-1 in the Hangul CID font, the rest in the
    paragraph's Latin font (the CID font's Latin letters are badly spaced in most readers)."""
    out: list[str] = []
    run: list[str] = []
    wide = False
    for ch in str(text):
        is_wide = ord(ch) > 0xFF and ch not in "\u2212\u2013\u2014\u2022"
        if run and is_wide != wide:
            out.append(_run("".join(run), wide))
            run = []
        run.append(ch)
        wide = is_wide
    if run:
        out.append(_run("".join(run), wide))
    return "".join(out)


def _run(text: str, wide: bool) -> str:
    if wide:
        return f'<font name="{HANGUL_FONT}">{escape(text.translate(_CID_SUBSTITUTES))}</font>'
    return escape(text.replace("\u2022", "*"))


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def statement_pdf(statement: Statement) -> bytes:
    """The statement as an A4 PDF (tables split across pages, the header row repeated)."""
    from reportlab.lib import colors  # noqa: PLC0415 - only the PDF needs reportlab
    from reportlab.lib.pagesizes import A4  # noqa: PLC0415
    from reportlab.lib.styles import ParagraphStyle  # noqa: PLC0415
    from reportlab.lib.units import mm  # noqa: PLC0415
    from reportlab.platypus import (  # noqa: PLC0415
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _fonts_registered()
    s, t, cur = statement.settlement, statement.totals, statement.currency
    body = ParagraphStyle("body", fontName=LATIN_FONT, fontSize=9, leading=12)
    right = ParagraphStyle("right", parent=body, alignment=2)
    bold = ParagraphStyle("bold", parent=body, fontName=LATIN_BOLD)
    bold_right = ParagraphStyle("bold_right", parent=bold, alignment=2)
    title = ParagraphStyle("title", parent=body, fontName=LATIN_BOLD, fontSize=16, leading=20)
    h2 = ParagraphStyle("h2", parent=bold, fontSize=11, leading=15, spaceBefore=8, spaceAfter=4)

    def p(text: Any, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(_markup(str(text)), style)

    def when(value: dt.datetime | None) -> str:
        return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else ""

    story: list[Any] = [
        p(_("Settlement statement"), title),
        Spacer(1, 3 * mm),
        p(_("%(vendor)s · Statement #%(n)s") % {"vendor": statement.vendor_name, "n": s.pk}),
        p(
            _("Period: %(start)s – %(end)s")
            % {"start": when(s.period_start), "end": when(s.period_end)}
        ),
        p(_("Status: %(status)s") % {"status": s.get_status_display()}),
        p(pgettext("statement", "Summary"), h2),
    ]
    summary = [
        (_("Sales"), t.sales),
        (_("Refunds"), -t.refunds),
        (_("Commission"), -t.commission),
        (_("Delivery fees kept by the platform"), -t.delivery_fees),
        (_("Regulars' commitment price advantage, paid by the platform"), t.price_advantage),
        (_("Adjustments"), t.adjustments),
        (_("Returned payouts"), t.returned),
    ]
    rows = [[p(label), p(_money(amount, cur), right)] for label, amount in summary]
    rows.append([p(_("Net owed to you"), bold), p(_money(t.net, cur), bold_right)])
    table = Table(rows, colWidths=[110 * mm, 50 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    story.append(table)

    story.append(p(_("Payout"), h2))
    payout = statement.payout
    if payout is None:
        story.append(p(_("No payout for this settlement.")))
    else:
        story.append(
            p(
                f"{_money(payout.amount, payout.currency)} · {payout.get_status_display()}"
                + (
                    f" · {payout.bank} {masked_account(payout.account_number)}"
                    if payout.bank
                    else ""
                )
            )
        )
        for label, at in (
            (_("Sent"), payout.sent_at),
            (_("Paid"), payout.paid_at),
            (_("Failed"), payout.failed_at),
        ):
            if at:
                story.append(p(f"{label}: {when(at)}"))

    story.append(p(_("Lines"), h2))
    head = [
        p(_("Date"), bold),
        p(pgettext("statement", "Type"), bold),
        p(_("Order"), bold),
        p(_("Gross"), bold_right),
        p(_("Commission"), bold_right),
        p(_("Delivery fee"), bold_right),
        p(_("Net"), bold_right),
    ]
    data = [head]
    for x in statement.lines:
        data.append(
            [
                p(when(x.booked_at)),
                p(kind_label(x.kind)),
                p(f"#{x.order_id}" if x.order_id else ""),
                p(_money(x.gross, cur), right),
                p(_money(x.commission, cur), right),
                p(_money(x.delivery_fee, cur), right),
                p(_money(x.net, cur), right),
            ]
        )
    data.append(
        [
            p(_("Total"), bold),
            p(""),
            p(""),
            p(_money(t.gross, cur), bold_right),
            p(_money(t.commission, cur), bold_right),
            p(_money(t.delivery_fees, cur), bold_right),
            p(_money(t.net, cur), bold_right),
        ]
    )
    widths = [mm * w for w in (30, 24, 18, 26, 26, 24, 26)]
    lines = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    lines.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f3f5f6")]),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(lines)
    story.append(Spacer(1, 4 * mm))
    story.append(
        p(
            _("Amounts in %(currency)s, from the platform's ledger. Printed %(now)s.")
            % {"currency": cur, "now": when(timezone.now())},
            ParagraphStyle("foot", parent=body, fontSize=7, textColor=colors.HexColor("#5b6570")),
        )
    )

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=_("Statement #%(n)s") % {"n": s.pk},
        author="O2O",
    )
    doc.build(story)
    return buf.getvalue()


# --- downloads ---------------------------------------------------------------------------------

DOWNLOADS = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


def statement_render(statement: Statement, fmt: str) -> bytes:
    """The statement as CSV or PDF in the vendor's language, whoever asks and from wherever (a
    page in another language, staff, an e-mail or a task outside any request)."""
    with translation.override(statement.language):
        return statement_csv(statement) if fmt == "csv" else statement_pdf(statement)


def statement_response(statement: Statement, fmt: str) -> HttpResponse:
    """The statement as a CSV or PDF attachment (for the page and the API alike)."""
    body = statement_render(statement, fmt)
    response = HttpResponse(body, content_type=DOWNLOADS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{statement.filename}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- the finance export: the journal as CSV, streamed ---------------------------------------------

JOURNAL_COLUMNS = (
    "entry",
    "transaction",
    "booked_at",
    "kind",
    "key",
    "account",
    "side",
    "amount",
    "currency",
    "order",
    "vendor",
    "payment",
    "refund",
    "by",
    "memo",
)
JOURNAL_BATCH = 2000


def _journal_batch(
    start: dt.datetime, end: dt.datetime, currency: str | None, after: int, size: int
) -> list[tuple]:
    entries = LedgerEntry.objects.filter(
        transaction__created_at__gte=start, transaction__created_at__lt=end, pk__gt=after
    )
    if currency:
        entries = entries.filter(transaction__currency=currency)
    return list(
        entries.order_by("pk").values_list(
            "pk",
            "transaction_id",
            "transaction__created_at",
            "transaction__kind",
            "transaction__key",
            "account__code",
            "side",
            "amount",
            "transaction__currency",
            "transaction__order_id",
            "transaction__vendor_id",
            "transaction__payment_id",
            "transaction__refund_id",
            "transaction__created_by_id",
            "transaction__memo",
        )[:size]
    )


def _journal_chunk(rows: list[tuple]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    for row in rows:
        values = list(row)
        values[2] = _iso(values[2])
        w.writerow(["" if v is None else _cell(v) for v in values])
    return out.getvalue()


def _journal_header() -> str:
    out = io.StringIO()
    csv.writer(out).writerow(JOURNAL_COLUMNS)
    return out.getvalue()


def journal_csv(
    *,
    start: dt.datetime,
    end: dt.datetime,
    currency: str | None = None,
    batch: int = JOURNAL_BATCH,
) -> Iterator[str]:
    """Every ledger entry of the journal transactions booked in [start, end) (in `currency`, or
    all), one CSV row each, in the order they were written: read `batch` entries at a time (keyset on the entry id), so the
    memory it takes does not grow with the journal."""
    yield _journal_header()
    after = 0
    while True:
        rows = _journal_batch(start, end, currency, after, batch)
        if not rows:
            return
        yield _journal_chunk(rows)
        after = rows[-1][0]


async def journal_csv_async(
    *,
    start: dt.datetime,
    end: dt.datetime,
    currency: str | None = None,
    batch: int = JOURNAL_BATCH,
) -> AsyncIterator[str]:
    """journal_csv for an ASGI server, which would otherwise read a synchronous iterator whole
    before sending it: each batch is read in the database thread, one at a time."""
    from asgiref.sync import sync_to_async  # noqa: PLC0415

    yield _journal_header()
    after = 0
    read = sync_to_async(_journal_batch)
    while True:
        rows = await read(start, end, currency, after, batch)
        if not rows:
            return
        yield _journal_chunk(rows)
        after = rows[-1][0]
