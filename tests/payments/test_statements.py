"""Statements per settlement: each order, refund and adjustment of the settlement with the amounts the
ledger booked on it, the totals and the payout; as a page, a CSV whose totals equal the ledger, and
a PDF that opens and shows the same amounts. Only the vendor (and staff) can read one.

Settlements are made by the real settlement service (payments.settlement.settlement_create) over
money booked by the ledger's services; payouts move by the payout services."""

import csv
import io
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from payments import earnings, ledger, statements
from payments.models import Payout, Settlement
from payments.payouts import payout_mark_paid, payout_mark_sent
from payments.settlement import period_of, settlement_create
from tests.factories import CustomerProfileFactory, StaffFactory

from .test_earnings import a_vendor, adjusted, captured, refunded

pytestmark = pytest.mark.django_db
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def settled(vendor) -> Settlement:
    """The vendor's settlement of the current period (everything booked so far)."""
    settlement = settlement_create(vendor_id=vendor.pk, period=period_of(timezone.now()))
    assert settlement is not None
    return settlement


@pytest.fixture
def world():
    """A vendor with two sales, a partial refund, a sale refunded in full, an adjustment and a
    delivery fee the platform keeps; settled, its payout sent."""
    vendor = a_vendor()
    first = captured(vendor, amount=10_001, commission=1_000)
    second = captured(vendor, amount=12_000, commission=1_000, platform_fee=2_000)
    third = captured(vendor, amount=4_800, commission=480)
    refunded(first, 3_333)
    refunded(third, 4_800)
    adjusted(vendor, 700)
    owed = ledger.vendor_payable(vendor.pk)
    settlement = settled(vendor)
    payout = Payout.objects.get(settlement=settlement)
    payout_mark_sent(payout_id=payout.pk, provider_ref="po_test_1")
    settlement.refresh_from_db()
    return {
        "vendor": vendor,
        "settlement": settlement,
        "owed": owed,
        "orders": [first.order_id, second.order_id, third.order_id],
    }


def _csv(body: bytes) -> tuple[list[dict], dict, dict]:
    text = body.decode("utf-8-sig")
    table, _blank, summary = text.partition("\r\n\r\n")
    rows = list(csv.DictReader(io.StringIO(table)))
    total = rows.pop()
    return rows, total, dict(csv.reader(io.StringIO(summary)))


def test_the_statement_lists_every_movement_and_its_totals_equal_the_ledger(world):
    s = world["settlement"]
    st = statements.statement_build(settlement=s)
    # Every movement once: three sales, two refunds, one adjustment
    assert sorted(x.kind for x in st.lines) == [
        "adjustment",
        "commission",
        "commission",
        "commission",
        "reversal",
        "reversal",
    ]
    assert {x.order_id for x in st.lines if x.order_id} == set(world["orders"])
    t = st.totals
    assert (t.sales, t.refunds) == (10_001 + 12_000 + 4_800, 3_333 + 4_800)
    assert (t.commission, t.delivery_fees, t.adjustments) == (1_000 - 333 + 1_000, 2_000, 700)
    # The net is what the ledger owed the vendor when it was settled, and the payout pays it
    assert t.net == world["owed"] == s.net == st.payout.amount
    assert t.net == t.sales - t.refunds - t.commission - t.delivery_fees + t.adjustments
    assert st.agrees
    # Once the payout was sent, the ledger owes the vendor nothing more
    assert ledger.vendor_payable(world["vendor"].pk) == 0


def test_the_csv_totals_equal_the_ledger(world, client):
    s, vendor = world["settlement"], world["vendor"]
    client.force_login(vendor.user)
    response = client.get(f"/payments/statements/{s.pk}.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="statement-')
    rows, total, summary = _csv(response.content)
    assert len(rows) == 6
    # Each line adds up, and the total row is the sum of the lines
    for row in rows:
        if row["type"] in ("Sale", "Refund"):
            net = int(row["gross"]) - int(row["commission"]) - int(row["delivery_fee"])
            assert int(row["net"]) == net
    for column in ("gross", "commission", "delivery_fee", "net"):
        assert int(total[column]) == sum(int(r[column]) for r in rows)
    # ... and equals the ledger: what was owed, the sales less refunds, the payout
    assert int(total["net"]) == world["owed"]
    assert int(total["gross"]) == 10_001 + 12_000 + 4_800 - 3_333 - 4_800
    assert int(summary["net"]) == world["owed"] == int(summary["payout_amount"])
    assert summary["payout_status"] == "sent"
    assert summary["settlement"] == str(s.pk)
    assert summary["vendor"] == vendor.name
    # ?format=csv is the same download
    assert client.get(f"/payments/statements/{s.pk}/?format=csv").content == response.content


def test_the_pdf_opens_and_shows_the_amounts(world, client):
    s, vendor = world["settlement"], world["vendor"]
    client.force_login(vendor.user)
    response = client.get(f"/payments/statements/{s.pk}.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    body = response.content
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(body))
    text = "\n".join(page.extract_text() for page in reader.pages)
    # The vendor's Korean name and the figures, as the ledger has them
    assert vendor.name in text
    for amount in (world["owed"], 10_001 + 12_000 + 4_800 - 3_333 - 4_800, 1_667, 2_000, 700):
        assert f"{amount:,}" in text, amount
    for order_id in world["orders"]:
        assert f"#{order_id}" in text


def test_a_korean_pdf_uses_the_built_in_hangul_font(world):
    from django.utils import translation

    st = statements.statement_build(settlement=world["settlement"])
    with translation.override("ko"):
        body = statements.statement_pdf(st)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "statement-ko.pdf").write_bytes(body)  # to look at: pdftoppm -png
    reader = PdfReader(io.BytesIO(body))
    fonts = {
        str(font["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any("HYGothic-Medium" in f for f in fonts), fonts
    assert any("Helvetica" in f for f in fonts), fonts
    text = reader.pages[0].extract_text()
    assert world["vendor"].name in text


def test_a_long_statement_runs_over_pages_with_every_line():
    vendor = a_vendor()
    payments = [captured(vendor, amount=1_000 + i, commission=100) for i in range(70)]
    settlement = settled(vendor)
    st = statements.statement_build(settlement=settlement)
    assert len(st.lines) == 70 and st.agrees
    reader = PdfReader(io.BytesIO(statements.statement_pdf(st)))
    assert len(reader.pages) >= 2
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert all(f"#{p.order_id}" in text for p in payments)


def test_the_statement_page_shows_totals_payout_and_downloads(world, client):
    s, vendor = world["settlement"], world["vendor"]
    client.force_login(vendor.user)
    html = client.get(f"/payments/statements/{s.pk}/").content.decode()
    assert f'href="/payments/statements/{s.pk}.csv"' in html
    assert f'href="/payments/statements/{s.pk}.pdf"' in html
    owed = f"₩{world['owed']:,}"
    assert f'data-field="net">{owed}<' in html
    assert "Sent to the bank" in html
    # Listed on the statements page and on the earnings page
    assert f'data-settlement="{s.pk}"' in client.get("/payments/statements/").content.decode()
    assert f'data-settlement="{s.pk}"' in client.get("/payments/earnings/").content.decode()


def test_next_payout_is_the_payout_on_its_way(world):
    nxt = earnings.next_payout(vendor_id=world["vendor"].pk, now=timezone.now())
    assert (nxt["amount"], nxt["status"]) == (world["owed"], "sent")
    payout_mark_paid(payout_id=world["settlement"].payout.pk)
    # Paid, and nothing booked since: no payout is due
    assert earnings.next_payout(vendor_id=world["vendor"].pk, now=timezone.now()) is None


def test_permission_matrix_of_statements(world, client):
    s, vendor = world["settlement"], world["vendor"]
    other = a_vendor()
    customer = CustomerProfileFactory().user
    staff = StaffFactory()
    page, csv_url, pdf_url = (
        f"/payments/statements/{s.pk}/",
        f"/payments/statements/{s.pk}.csv",
        f"/payments/statements/{s.pk}.pdf",
    )
    expected = {
        None: 302,
        customer: 404,
        other.user: 404,
        vendor.user: 200,
        staff: 200,
    }
    for user, status in expected.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        for url in (page, csv_url, pdf_url):
            response = client.get(url)
            assert response.status_code == status, (user, url)
    # The list: a customer is not a vendor (403), staff name the vendor
    client.force_login(customer)
    assert client.get("/payments/statements/").status_code == 403
    client.force_login(staff)
    listing = client.get(f"/payments/statements/?vendor={vendor.pk}")
    assert f'data-settlement="{s.pk}"' in listing.content.decode()
    client.force_login(other.user)
    assert client.get(f"/payments/statements/?vendor={vendor.pk}").status_code == 404
    assert f'data-settlement="{s.pk}"' not in client.get("/payments/statements/").content.decode()


def test_bad_formats_and_ids_are_404_not_500(world, client):
    client.force_login(world["vendor"].user)
    s = world["settlement"]
    for url in (
        f"/payments/statements/{s.pk}.xlsx",
        f"/payments/statements/{s.pk}/?format=docx",
        "/payments/statements/99999999/",
        "/payments/statements/?vendor=abc",
        "/payments/statements/?vendor=-1",
    ):
        assert client.get(url).status_code == 404, url
    assert client.get("/payments/statements/?page=zzz").status_code == 200


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def test_csv_cells_that_look_like_formulas_are_defused(client):
    vendor = a_vendor()
    vendor.name = '=HYPERLINK("http://evil.test")'
    vendor.save(update_fields=["name"])
    captured(vendor, amount=5_000, commission=500)
    s = settled(vendor)
    client.force_login(vendor.user)
    _rows, _total, summary = _csv(client.get(f"/payments/statements/{s.pk}.csv").content)
    assert summary["vendor"] == '\'=HYPERLINK("http://evil.test")'
    assert int(summary["net"]) == 4_500
