"""The vendor's earnings, read from the ledger: today, this week, by order, the payable balance; every
figure equal to what the ledger booked, to the won, after captures, partial refunds and staff
adjustments; and only the vendor (or staff) sees them.

The money is booked the way payments.services books it: a payment row moved to captured (or a
refund row to succeeded) and `ledger.ledger_record` in the same database transaction."""

import datetime as dt
import re

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import earnings, ledger
from payments.models import JournalTransaction, Payment, Refund
from tests.factories import CustomerProfileFactory, StaffFactory, VendorFactory

from . import factories

pytestmark = pytest.mark.django_db


# --- the money world (shared with the statement and dashboard tests) -----------------------------


def captured(
    vendor,
    *,
    amount: int,
    commission: int,
    platform_fee: int = 0,
    order_id=None,
    provider_fee: int = 0,
):
    """A payment of `amount` for one of the vendor's orders, captured and booked in the ledger
    (with the provider's fee, as payments.services books it)."""
    kwargs = {"order_id": order_id} if order_id is not None else {}
    payment = factories.PaymentFactory(
        amount=amount,
        commission=commission,
        platform_fee=platform_fee,
        vendor_id=vendor.pk,
        status=Payment.Status.AUTHORISED,
        **kwargs,
    )
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=Payment.Status.CAPTURED,
            amount_captured=amount,
            provider_fee=provider_fee,
            captured_at=timezone.now(),
        )
        ledger.ledger_record(payment_id=payment.pk, kind="capture", amount=amount, currency="KRW")
        if provider_fee:
            ledger.provider_fee_record(
                payment_id=payment.pk, amount=provider_fee, key=str(payment.pk)
            )
    payment.refresh_from_db()
    return payment


def refunded(payment: Payment, amount: int, *, commission: int | None = None) -> Refund:
    """A refund of `amount` that succeeded, booked in the ledger (commission back pro rata)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason="a yakult was missing",
            status=Refund.Status.SUCCEEDED,
            commission_hint=commission,
            succeeded_at=timezone.now(),
        )
        left = payment.amount_captured - payment.amount_refunded - amount
        Payment.objects.filter(pk=payment.pk).update(
            amount_refunded=payment.amount_refunded + amount,
            status=Payment.Status.REFUNDED if left == 0 else Payment.Status.PARTIALLY_REFUNDED,
        )
        ledger.ledger_record(
            payment_id=payment.pk, kind="refund", amount=amount, currency="KRW", refund_id=refund.pk
        )
    return refund


def adjusted(vendor, amount: int, *, staff=None, key=None) -> JournalTransaction:
    """Staff owe the vendor `amount` more (negative: less), with a reason."""
    payable, expense = f"vendor_payable:{vendor.pk}", ledger.ADJUSTMENTS
    debit, credit = (expense, payable) if amount > 0 else (payable, expense)
    return ledger.adjustment_post(
        actor=staff or StaffFactory(),
        debit=debit,
        credit=credit,
        amount=abs(amount),
        reason="cooler broke, goodwill",
        key=key,
    )


def a_vendor():
    vendor = VendorFactory()
    CustomerProfileFactory(user=vendor.user)  # vendors shop too
    return vendor


def _ledger_sum(vendor_id: int, code: str, kind: str, side: str) -> int:
    """The ledger's own sum of `side` entries on `code` in the vendor's `kind` transactions."""
    from django.db.models import Sum

    from payments.models import LedgerEntry

    return (
        LedgerEntry.objects.filter(
            transaction__vendor_id=vendor_id, transaction__kind=kind, account__code=code, side=side
        ).aggregate(s=Sum("amount"))["s"]
        or 0
    )


# --- the selectors equal the ledger --------------------------------------------------------------


def test_today_and_this_week_equal_the_ledger_after_captures_refunds_and_adjustments():
    # Given a vendor with two captured orders (one with a delivery fee the platform keeps), a
    # partial refund, a full refund, and a staff adjustment; and another vendor's sale
    vendor, other = a_vendor(), a_vendor()
    first = captured(vendor, amount=10_001, commission=1_000)
    captured(vendor, amount=12_000, commission=1_000, platform_fee=2_000)
    third = captured(vendor, amount=4_800, commission=480)
    refunded(first, 3_333)  # commission back: 333
    refunded(third, 4_800)  # all of it
    adjusted(vendor, 700)
    captured(other, amount=50_000, commission=5_000)

    # When the vendor's earnings are read
    e = earnings.vendor_earnings(vendor_id=vendor.pk)

    # Then every figure is what the ledger booked, to the won
    gross = _ledger_sum(vendor.pk, "customer_funds", "commission", "D")
    assert gross == 10_001 + 12_000 + 4_800
    taken = _ledger_sum(vendor.pk, "commission_revenue", "commission", "C") + _ledger_sum(
        vendor.pk, "delivery_fee_revenue", "commission", "C"
    )
    back = _ledger_sum(vendor.pk, "commission_revenue", "reversal", "D") + _ledger_sum(
        vendor.pk, "delivery_fee_revenue", "reversal", "D"
    )
    for figures in (e.today, e.week):
        assert figures.gross == gross
        assert figures.commission == taken - back == (1_000 - 333) + (1_000 + 2_000) + 0
        assert figures.refunds == _ledger_sum(vendor.pk, "refunds", "reversal", "C") == 8_133
        assert (
            figures.net
            == figures.gross - figures.commission - figures.refunds + figures.price_advantage
        )
        assert figures.adjustments == 700
        assert figures.payouts == 0
    # ... and the payable balance moved by exactly that
    assert e.balance == ledger.vendor_payable(vendor.pk) == e.today.change
    assert e.balance == (9_001 - 3_000) + 9_000 + 0 + 700
    # Nothing of the other vendor's leaks in
    assert earnings.vendor_figures(vendor_id=other.pk).gross == 50_000


def test_yesterday_is_not_today_and_last_week_is_not_this_week():
    vendor = a_vendor()
    captured(vendor, amount=10_000, commission=1_000)
    now = timezone.now()
    # Read a day later: not today's any more, but still this week unless the week turned over
    tomorrow = earnings.vendor_earnings(vendor_id=vendor.pk, now=now + dt.timedelta(days=1))
    assert tomorrow.today.gross == 0
    same_week = timezone.localdate(now).weekday() < 6
    assert tomorrow.week.gross == (10_000 if same_week else 0)
    # Read eight days later: in neither, and still owed
    later = earnings.vendor_earnings(vendor_id=vendor.pk, now=now + dt.timedelta(days=8))
    assert (later.today.gross, later.week.gross) == (0, 0)
    assert later.balance == 9_000
    # The week starts on Monday, at midnight in Seoul
    assert timezone.localtime(later.week_start).weekday() == 0
    assert timezone.localtime(later.week_start).time() == dt.time(0, 0)


def test_by_order_figures_add_up_to_the_period_and_the_balance():
    vendor = a_vendor()
    payments = [
        captured(vendor, amount=1_000 * (i + 3), commission=100 * (i + 3)) for i in range(5)
    ]
    refunded(payments[1], 1_000)
    refunded(payments[3], 6_000)
    rows = [earnings.order_row(r) for r in earnings.vendor_orders(vendor_id=vendor.pk)]
    assert {r.order_id for r in rows} == {p.order_id for p in payments}
    # Each order: gross − commission − refunds = net, and the order of the last activity first
    by_order = {r.order_id: r.figures for r in rows}
    assert by_order[payments[3].order_id].refunds == 6_000
    assert by_order[payments[3].order_id].net == 0  # refunded in full: nothing owed for it
    assert by_order[payments[1].order_id].net == 4_000 - 400 - (1_000 - 100)
    for f in by_order.values():
        assert f.gross - f.commission - f.refunds + f.price_advantage == f.net
    assert rows[0].order_id in (payments[3].order_id, payments[4].order_id)
    # The orders add up to the vendor's total and to the ledger's balance
    total = earnings.vendor_figures(vendor_id=vendor.pk)
    assert sum(f.gross for f in by_order.values()) == total.gross
    assert sum(f.net for f in by_order.values()) == total.net == ledger.vendor_payable(vendor.pk)


def test_an_orders_movements_are_its_capture_and_refunds():
    vendor, other = a_vendor(), a_vendor()
    payment = captured(vendor, amount=10_000, commission=1_300)
    refunded(payment, 2_000, commission=400)  # a line of ₩2,000 at 20 %
    moves = earnings.order_movements(vendor_id=vendor.pk, order_id=payment.order_id)
    assert [m.kind for m in moves] == ["commission", "reversal"]
    assert (moves[0].figures.gross, moves[0].figures.commission, moves[0].figures.net) == (
        10_000,
        1_300,
        8_700,
    )
    assert (moves[1].figures.refunds, moves[1].figures.commission, moves[1].figures.net) == (
        2_000,
        -400,
        -1_600,
    )
    total = earnings.order_total(moves)
    assert (total.gross, total.commission, total.refunds, total.net) == (10_000, 900, 2_000, 7_100)
    assert total.net == ledger.vendor_payable(vendor.pk)
    # Another vendor has no movements on it
    assert earnings.order_movements(vendor_id=other.pk, order_id=payment.order_id) == []


def test_next_payout_is_what_the_ledger_owes_at_the_next_settlement():
    vendor = a_vendor()
    assert earnings.next_payout(vendor_id=vendor.pk, now=timezone.now()) is None
    captured(vendor, amount=10_000, commission=1_000)
    now = timezone.now()
    upcoming = earnings.next_payout(vendor_id=vendor.pk, now=now)
    assert upcoming["amount"] == 9_000 == ledger.vendor_payable(vendor.pk)
    assert upcoming["status"] == "expected"
    assert upcoming["date"] > timezone.localdate(now)


# --- the pages -----------------------------------------------------------------------------------


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def _money_on_page(html: str, testid: str) -> dict[str, str]:
    section = html.split(f'data-testid="{testid}"', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r'data-field="(\w+)">([^<]+)<', section))


def test_the_vendor_sees_today_this_week_by_order_and_the_balance(client):
    vendor = a_vendor()
    payment = captured(vendor, amount=10_001, commission=1_000)
    refunded(payment, 3_333)
    captured(vendor, amount=4_800, commission=480)
    client.force_login(vendor.user)
    response = client.get("/payments/earnings/")
    assert response.status_code == 200
    html = response.content.decode()
    today = _money_on_page(html, "today")
    assert today == {
        "gross": "₩14,801",
        "commission": "−₩1,147",
        "refunds": "−₩3,333",
        "net": "₩10,321",
    }
    assert ledger.vendor_payable(vendor.pk) == 10_321
    assert '<p class="balance-amount" data-testid="balance">₩10,321</p>' in html
    assert f"Order #{payment.order_id}" in html
    assert f'href="/payments/earnings/orders/{payment.order_id}/"' in html
    # The vendor's menu links to it, marked as the page it is on
    assert 'href="/payments/earnings/" aria-current="page"' in html


def test_the_order_page_lists_its_movements(client):
    vendor = a_vendor()
    payment = captured(vendor, amount=10_000, commission=1_000)
    refunded(payment, 5_000)
    client.force_login(vendor.user)
    response = client.get(f"/payments/earnings/orders/{payment.order_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert _money_on_page(html, "order-total") == {
        "gross": "₩10,000",
        "commission": "−₩500",
        "refunds": "−₩5,000",
        "net": "₩4,500",
    }
    assert html.count('data-kind="') == 2


# Who may see what: anonymous → the login page; a customer → 403 for "my earnings" and 404 for a
# vendor's order or earnings; another vendor → 404; the vendor and staff → 200.


def test_permission_matrix_of_the_earnings_pages(client):
    vendor, other = a_vendor(), a_vendor()
    payment = captured(vendor, amount=10_000, commission=1_000)
    captured(other, amount=3_000, commission=300)
    customer = CustomerProfileFactory().user
    staff = StaffFactory()
    mine = "/payments/earnings/"
    order = f"/payments/earnings/orders/{payment.order_id}/"
    of_vendor = f"/payments/earnings/vendor/{vendor.pk}/"
    expected = {
        None: {mine: 302, order: 302, of_vendor: 302},
        customer: {mine: 403, order: 403, of_vendor: 404},
        other.user: {mine: 200, order: 404, of_vendor: 404},
        vendor.user: {mine: 200, order: 200, of_vendor: 200},
        staff: {order: 200, of_vendor: 200},
    }
    for user, pages in expected.items():
        client.logout()
        if user is not None:
            client.force_login(user)
        for url, status in pages.items():
            response = client.get(url)
            assert response.status_code == status, (user, url, response.status_code)
            if status == 302:
                assert response["Location"].startswith("/accounts/login/")
            if status == 200 and url != mine:
                assert "₩9,000" in response.content.decode()
    # Another vendor's page of its own shows its own money only
    client.force_login(other.user)
    assert "₩9,000" not in client.get(mine).content.decode()
    # Staff see the vendor's name on a vendor's page; unknown vendors and orders are 404
    client.force_login(staff)
    assert vendor.name in client.get(of_vendor).content.decode()
    assert client.get("/payments/earnings/vendor/999999/").status_code == 404
    assert client.get("/payments/earnings/orders/999999/").status_code == 404


def test_pages_answer_get_only(client):
    vendor = a_vendor()
    client.force_login(vendor.user)
    assert client.post("/payments/earnings/").status_code == 405


def test_the_page_is_korean_by_default():
    vendor = a_vendor()
    captured(vendor, amount=10_000, commission=1_000)
    korean = Client()
    korean.force_login(vendor.user)
    html = korean.get("/payments/earnings/").content.decode()
    assert '<html lang="ko">' in html
    assert "₩9,000" in html


def test_the_page_and_the_api_read_a_fixed_number_of_queries_however_many_orders(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    vendor = a_vendor()
    client.force_login(vendor.user)
    api = APIClient()
    api.force_authenticate(vendor.user)

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert client.get("/payments/earnings/").status_code == 200
        with CaptureQueriesContext(connection) as endpoint:
            assert api.get("/api/earnings/").status_code == 200
        return len(page), len(endpoint)

    captured(vendor, amount=1_000, commission=100)
    few = counts()
    for i in range(12):
        refunded(captured(vendor, amount=2_000 + i, commission=200), 500)
    assert counts() == few


# --- any sequence of money movements ------------------------------------------------------------

_step = st.one_of(
    st.tuples(st.just("capture"), st.integers(1, 300_000), st.integers(0, 10_000)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),
    st.tuples(st.just("adjust"), st.integers(-5_000, 5_000).filter(bool), st.just(0)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=8))
def test_after_any_movements_the_earnings_add_up_to_the_ledger(steps):
    with transaction.atomic():
        vendor = a_vendor()
        staff = StaffFactory()
        payments: list[Payment] = []
        for op, a, b in steps:
            if op == "capture":
                payments.append(captured(vendor, amount=a, commission=a * b // 10_000))
            elif op == "refund" and payments:
                payment = Payment.objects.get(pk=payments[a % len(payments)].pk)
                left = payment.amount_captured - payment.amount_refunded
                if left:
                    refunded(payment, max(1, left * b // 100))
            elif op == "adjust" and (a > 0 or ledger.vendor_payable(vendor.pk) >= -a):
                adjusted(vendor, a, staff=staff)
        total = earnings.vendor_figures(vendor_id=vendor.pk)
        e = earnings.vendor_earnings(vendor_id=vendor.pk)
        # The balance is what the ledger says, and what the figures add up to
        assert e.balance == ledger.vendor_payable(vendor.pk) == total.change
        assert e.today == e.week == total
        assert total.gross - total.commission - total.refunds + total.price_advantage == total.net
        # Order by order: each adds up, and together they are the vendor's sales
        rows = [earnings.order_row(r).figures for r in earnings.vendor_orders(vendor_id=vendor.pk)]
        for f in rows:
            assert f.gross - f.commission - f.refunds + f.price_advantage == f.net
            assert 0 <= f.net <= f.gross
        assert sum(f.net for f in rows) == total.net
        assert sum(f.gross for f in rows) == total.gross == sum(p.amount for p in payments)
        transaction.set_rollback(True)


def test_a_new_vendor_sees_zeros_and_empty_states(client):
    vendor = a_vendor()
    client.force_login(vendor.user)
    html = client.get("/payments/earnings/").content.decode()
    assert '<p class="balance-amount" data-testid="balance">₩0</p>' in html
    assert "No payout is due yet." in html
    assert "No sales booked yet." in html
    assert "No settlement yet." in html
    assert _money_on_page(html, "today") == dict.fromkeys(
        ("gross", "commission", "refunds", "net"), "₩0"
    )
    # A page number past the end shows the last page, not an error
    assert client.get("/payments/earnings/?page=99").status_code == 200
