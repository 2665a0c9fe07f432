"""The money API: a vendor's earnings and statements (token or session), scoped to the vendor; the
finance exports for staff (the journal streamed as CSV in bounded batches, daily totals as JSON);
every figure equal to the ledger; errors in the one format."""

import csv
import io

import pytest
from asgiref.sync import async_to_sync
from django.db.models import Sum
from django.test import AsyncClient
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from payments import earnings, ledger, statements
from payments.models import LedgerEntry
from tests.factories import CustomerProfileFactory, StaffFactory

from .test_earnings import a_vendor, adjusted, captured, refunded
from .test_statements import settled

pytestmark = pytest.mark.django_db


def _as(user) -> APIClient:
    api = APIClient()
    if user is not None:
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api


@pytest.fixture
def money():
    vendor, other = a_vendor(), a_vendor()
    # The provider charged fees for two captures: the platform's cost, not the vendors'
    first = captured(vendor, amount=10_001, commission=1_000, provider_fee=250)
    second = captured(vendor, amount=4_800, commission=480)
    refunded(first, 3_333)
    adjusted(vendor, -500)
    captured(other, amount=3_000, commission=300, provider_fee=75)
    settlement = settled(vendor)
    return {
        "vendor": vendor,
        "other": other,
        "orders": [first.order_id, second.order_id],
        "settlement": settlement,
    }


def test_earnings_equal_the_ledger(money):
    vendor = money["vendor"]
    response = _as(vendor.user).get("/api/earnings/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["vendor"] == vendor.pk and body["currency"] == "KRW"
    today = body["today"]
    assert today["gross"] == 14_801
    assert today["commission"] == 1_000 - 333 + 480
    assert today["refunds"] == 3_333
    assert today["net"] == today["gross"] - today["commission"] - today["refunds"]
    assert today["adjustments"] == -500
    assert body["week"] == today
    assert body["balance"] == ledger.vendor_payable(vendor.pk) == today["net"] - 500
    # The settlement was released: its payout is the next one, of what is owed
    assert body["next_payout"]["amount"] == body["balance"]
    assert body["next_payout"]["status"] == "pending"
    # By order: both orders, each adding up, together the sales' net
    orders = body["orders"]
    assert orders["count"] == 2
    assert {r["order_id"] for r in orders["results"]} == set(money["orders"])
    assert sum(r["figures"]["net"] for r in orders["results"]) == today["net"]


def test_an_orders_movements_and_another_vendors_order_is_404(money):
    vendor, other = money["vendor"], money["other"]
    order_id = money["orders"][0]
    body = _as(vendor.user).get(f"/api/earnings/orders/{order_id}/").json()
    assert [m["kind"] for m in body["movements"]] == ["commission", "reversal"]
    assert body["total"]["net"] == 10_001 - 1_000 - (3_333 - 333)
    response = _as(other.user).get(f"/api/earnings/orders/{order_id}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # Staff see it, with its vendor
    assert _as(StaffFactory()).get(f"/api/earnings/orders/{order_id}/").json()["vendor"] == (
        vendor.pk
    )


def test_permission_matrix_of_the_vendor_endpoints(money):
    vendor, other = money["vendor"], money["other"]
    s = money["settlement"]
    customer = CustomerProfileFactory().user
    staff = StaffFactory()
    order = money["orders"][0]
    urls = {
        "earnings": "/api/earnings/",
        "order": f"/api/earnings/orders/{order}/",
        "statements": "/api/statements/",
        "statement": f"/api/statements/{s.pk}/",
        "csv": f"/api/statements/{s.pk}.csv",
        "pdf": f"/api/statements/{s.pk}/?format=pdf",
    }
    expected = {
        None: dict.fromkeys(urls, 401),
        customer: {
            "earnings": 403,
            "order": 403,
            "statements": 403,
            "statement": 403,
            "csv": 403,
            "pdf": 403,
        },
        other.user: {
            "earnings": 200,
            "order": 404,
            "statements": 200,
            "statement": 404,
            "csv": 404,
            "pdf": 404,
        },
        vendor.user: dict.fromkeys(urls, 200),
        staff: {
            "earnings": 400,  # staff name the vendor
            "order": 200,
            "statements": 400,
            "statement": 200,
            "csv": 200,
            "pdf": 200,
        },
    }
    for user, codes in expected.items():
        api = _as(user)
        for name, status in codes.items():
            response = api.get(urls[name])
            assert response.status_code == status, (user, name, response.status_code)
            if status >= 400:
                # The one error format, even for a CSV or PDF asked for
                assert response["Content-Type"] == "application/json"
                assert set(response.json()["error"]) >= {"code", "message"}
    # Staff name the vendor; another vendor naming it gets 404; a bad name is 400
    staff_api = _as(staff)
    assert staff_api.get(f"/api/earnings/?vendor={vendor.pk}").json()["balance"] == (
        ledger.vendor_payable(vendor.pk)
    )
    listed = staff_api.get(f"/api/statements/?vendor={vendor.pk}").json()["results"]
    assert [x["id"] for x in listed] == [s.pk]
    assert _as(other.user).get(f"/api/earnings/?vendor={vendor.pk}").status_code == 404
    assert _as(other.user).get(f"/api/statements/?vendor={vendor.pk}").status_code == 404
    bad = staff_api.get("/api/earnings/?vendor=abc")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    assert staff_api.get("/api/earnings/?vendor=99999999").status_code == 404
    # The other vendor's own lists hold nothing of the vendor's
    assert _as(other.user).get("/api/statements/").json()["results"] == []


def test_session_auth_works_like_the_pages(money, client):
    client.force_login(money["vendor"].user)
    assert client.get("/api/earnings/").status_code == 200


def test_the_statement_as_json_csv_and_pdf_equals_the_ledger(money):
    vendor, s = money["vendor"], money["settlement"]
    api = _as(vendor.user)
    body = api.get(f"/api/statements/{s.pk}/").json()
    lines = body["lines"]
    assert len(lines) == 4  # two sales, a refund, an adjustment
    assert body["totals"]["net"] == sum(x["net"] for x in lines) == s.net
    booked = (
        LedgerEntry.objects.filter(
            transaction_id__in=[x["journal_id"] for x in lines],
            account__code=f"vendor_payable:{vendor.pk}",
        )
        .values("side")
        .annotate(s=Sum("amount"))
    )
    sides = {r["side"]: r["s"] for r in booked}
    assert body["totals"]["net"] == sides.get("C", 0) - sides.get("D", 0)
    assert body["payout"]["amount"] == s.net and body["payout"]["status"] == "pending"
    # The list links to the downloads
    listed = api.get("/api/statements/").json()["results"][0]
    assert listed["csv"].endswith(f"/api/statements/{s.pk}.csv")
    assert listed["pdf"].endswith(f"/api/statements/{s.pk}.pdf")
    # CSV: by suffix and by ?format=, the same bytes, totals equal to the JSON's
    by_suffix = api.get(f"/api/statements/{s.pk}.csv")
    assert by_suffix["Content-Type"].startswith("text/csv")
    assert by_suffix.content == api.get(f"/api/statements/{s.pk}/?format=csv").content
    table = by_suffix.content.decode("utf-8-sig").split("\r\n\r\n")[0]
    total = list(csv.DictReader(io.StringIO(table)))[-1]
    assert int(total["net"]) == body["totals"]["net"]
    pdf = api.get(f"/api/statements/{s.pk}.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    # An unknown format is 404 in the one format
    response = api.get(f"/api/statements/{s.pk}/?format=xlsx")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- finance exports -----------------------------------------------------------------------------


def test_finance_exports_are_for_staff_only(money):
    urls = ("/api/finance/journal.csv", "/api/finance/daily/")
    for user, status in (
        (None, 401),
        (CustomerProfileFactory().user, 403),
        (money["vendor"].user, 403),
        (StaffFactory(), 200),
    ):
        for url in urls:
            assert _as(user).get(url).status_code == status, (user, url)


def test_the_journal_streams_every_entry_in_bounded_batches(money, django_assert_num_queries):
    staff = _as(StaffFactory())
    today = timezone.localdate().isoformat()
    response = staff.get(f"/api/finance/journal.csv?from={today}&to={today}")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    # Every entry of the ledger, once, balanced per transaction
    assert sorted(int(r["entry"]) for r in rows) == sorted(
        LedgerEntry.objects.values_list("pk", flat=True)
    )
    per_txn: dict[str, int] = {}
    for r in rows:
        per_txn[r["transaction"]] = per_txn.get(r["transaction"], 0) + (
            int(r["amount"]) if r["side"] == "D" else -int(r["amount"])
        )
    assert set(per_txn.values()) == {0}
    # Read a few entries at a time: one query per batch, and one more to find the end
    n = LedgerEntry.objects.count()
    start, end = earnings.day_start(timezone.localdate()), timezone.now() + timezone.timedelta(1)
    with django_assert_num_queries(-(-n // 3) + 1):
        chunks = list(statements.journal_csv(start=start, end=end, batch=3))
    assert len(chunks) == 1 + -(-n // 3)
    # Another currency: the header only
    usd = staff.get(f"/api/finance/journal.csv?from={today}&currency=USD")
    assert len(b"".join(usd.streaming_content).decode().strip().splitlines()) == 1
    # Outside the range: the header only
    empty = staff.get("/api/finance/journal.csv?from=2020-01-01&to=2020-01-02")
    assert b"".join(empty.streaming_content).decode().strip().startswith("entry,transaction")
    assert len(b"".join(empty.streaming_content).decode().strip().splitlines()) <= 1


def test_under_asgi_the_journal_streams_from_an_async_iterator(money):
    staff = StaffFactory()
    client = AsyncClient()
    async_to_sync(client.aforce_login)(staff)
    response = async_to_sync(client.get)("/api/finance/journal.csv")
    assert response.status_code == 200
    assert response.is_async
    body = async_to_sync(_read)(response)
    assert body.count("\n") == LedgerEntry.objects.count() + 1


async def _read(response) -> str:
    return "".join([part.decode() async for part in response.streaming_content])


def test_bad_ranges_are_400_in_the_one_format(money):
    staff = _as(StaffFactory())
    for query in (
        "from=2025-02-30",
        "from=yesterday",
        "from=2025-03-02&to=2025-03-01",
        "from=2020-01-01&to=2025-01-01",
        "from=9999-12-30&to=9999-12-31",  # the day after `to` is no date
        "to=0001-01-05",  # nor are the 30 days before it
        "currency=XXX",
    ):
        for url in ("/api/finance/journal.csv", "/api/finance/daily/"):
            response = staff.get(f"{url}?{query}")
            assert response.status_code == 400, (url, query)
            assert response.json()["error"]["code"] == "invalid"


def test_daily_totals_equal_the_ledger(money):
    today = timezone.localdate()
    body = (
        _as(StaffFactory())
        .get(f"/api/finance/daily/?from={(today - timezone.timedelta(2)).isoformat()}")
        .json()
    )
    assert [d["day"] for d in body["days"]][-1] == today.isoformat()
    assert len(body["days"]) == 3
    day = body["days"][-1]
    assert day["gmv"] == 10_001 + 4_800 + 3_000
    assert day["gmv"] == ledger.balance(ledger.PROVIDER_CLEARING) + 3_333 + 250 + 75
    assert day["commission"] == ledger.balance(ledger.COMMISSION_REVENUE) == 1_000 - 333 + 480 + 300
    assert day["delivery_fees"] == 0
    assert day["provider_fees"] == ledger.balance(ledger.PROVIDER_FEES) == 250 + 75
    assert day["net_revenue"] == day["commission"] - 325
    assert day["refunds"] == 3_333
    owed = sum(ledger.vendor_payable(v.pk) for v in (money["vendor"], money["other"]))
    assert day["payables"] == owed
    assert body["days"][0]["gmv"] == 0 and body["days"][0]["payables"] == 0
    assert body["totals"]["gmv"] == day["gmv"] and body["totals"]["payables"] == owed
    assert (body["totals"]["provider_fees"], body["totals"]["net_revenue"]) == (325, 1_447 - 325)


def test_the_schema_documents_the_money_endpoints():
    response = APIClient().get("/api/schema/", {"format": "json"})
    paths = response.json()["paths"]
    for path in (
        "/api/earnings/",
        "/api/earnings/orders/{order_id}/",
        "/api/statements/",
        "/api/statements/{settlement_id}/",
        "/api/finance/journal.csv",
        "/api/finance/daily/",
    ):
        assert path in paths, path
