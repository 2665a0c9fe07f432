"""Staff pages in the admin: the money dashboard (per day GMV, commission, refunds, what is owed to
vendors; a bar chart; a date range), its totals equal to the ledger; and the manual adjustment form,
which posts once however often it is sent."""

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments import ledger
from payments.models import JournalTransaction
from tests.factories import CustomerProfileFactory, StaffFactory, UserFactory

from .test_earnings import a_vendor, adjusted, captured, refunded

pytestmark = pytest.mark.django_db
DASHBOARD = "/payments/staff/money/"
ADJUST = "/payments/staff/adjustments/new/"


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def _row(html: str, day: str) -> dict[str, str]:
    row = html.split(f'<tr data-day="{day}">', 1)[1].split("</tr>", 1)[0]
    return dict(re.findall(r'data-field="(\w+)">([^<]+)<', row))


# --- the dashboard -------------------------------------------------------------------------------


def test_only_staff_see_the_dashboard(client):
    vendor = a_vendor()
    customer = CustomerProfileFactory().user
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    for user in (customer, vendor.user):
        client.force_login(user)
        assert client.get(DASHBOARD).status_code == 403
    client.force_login(StaffFactory())
    assert client.get(DASHBOARD).status_code == 200


def test_the_dashboard_totals_equal_the_ledger(client):
    # Given two vendors' sales today (with the provider's fees), a partial refund, a delivery fee
    # the platform keeps and an adjustment owed to a vendor
    vendor, other = a_vendor(), a_vendor()
    first = captured(vendor, amount=10_001, commission=1_000, provider_fee=250)
    captured(other, amount=12_000, commission=1_000, platform_fee=2_000, provider_fee=300)
    refunded(first, 3_333)
    adjusted(vendor, 700)
    client.force_login(StaffFactory())
    today = timezone.localdate()
    html = client.get(DASHBOARD).content.decode()
    # Then today's row and the range's total are the ledger's figures
    day = _row(html, today.isoformat())
    owed = ledger.vendor_payable(vendor.pk) + ledger.vendor_payable(other.pk)
    assert day == {
        "gmv": "₩22,001",
        "commission": f"₩{ledger.balance(ledger.COMMISSION_REVENUE):,}",
        "delivery_fees": f"₩{ledger.balance(ledger.DELIVERY_FEE_REVENUE):,}",
        "provider_fees": f"₩{ledger.balance(ledger.PROVIDER_FEES):,}",
        "net_revenue": "₩3,117",
        "refunds": "₩3,333",
        "payables": f"₩{owed:,}",
    }
    assert day["commission"] == "₩1,667" and day["delivery_fees"] == "₩2,000"
    # The provider kept its fees on the refund: the platform's net is 1,667 + 2,000 − 550
    assert day["provider_fees"] == "₩550"
    assert _row(html, "total") == day
    # Thirty days by default, the earlier ones empty
    assert html.count('<tr data-day="') == 31
    assert _row(html, (today - timedelta(days=29)).isoformat())["gmv"] == "₩0"
    # The chart has a bar per figure per day, and today's GMV bar is the tallest
    assert html.count("<rect ") == 30 * 4
    assert 'data-value="22001"' in html
    assert 'height="160" data-value="22001"' in html


def test_a_range_of_days(client):
    vendor = a_vendor()
    captured(vendor, amount=5_000, commission=500)
    client.force_login(StaffFactory())
    today = timezone.localdate()
    html = client.get(
        DASHBOARD, {"start": (today - timedelta(days=2)).isoformat(), "end": today.isoformat()}
    ).content.decode()
    assert html.count('<tr data-day="') == 4  # three days and the total
    before = client.get(
        DASHBOARD,
        {
            "start": (today - timedelta(days=9)).isoformat(),
            "end": (today - timedelta(days=1)).isoformat(),
        },
    ).content.decode()
    # Nothing happened before today, and nothing was owed then
    assert _row(before, "total") == dict.fromkeys(
        (
            "gmv",
            "commission",
            "delivery_fees",
            "provider_fees",
            "net_revenue",
            "refunds",
            "payables",
        ),
        "₩0",
    )


@pytest.mark.parametrize(
    "query",
    [
        {"start": "2025-02-30"},
        {"start": "not a date"},
        {"start": "2025-03-02", "end": "2025-03-01"},
        {"start": "2020-01-01", "end": "2025-01-01"},
        {"start": "9999-12-30", "end": "9999-12-31"},  # the day after would not be a date
        {"end": "0001-01-05"},  # nor the 30 days before
        {"currency": "XXX"},
    ],
)
def test_a_bad_range_is_a_form_error_not_a_500(client, query):
    client.force_login(StaffFactory())
    response = client.get(DASHBOARD, query)
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert '<table class="money"' not in response.content.decode()


def test_the_admin_index_links_to_the_money_pages(client):
    client.force_login(StaffFactory())
    html = client.get("/admin/").content.decode()
    assert f'href="{DASHBOARD}"' in html
    assert f'href="{ADJUST}"' in html


# --- manual adjustments --------------------------------------------------------------------------


def _form(client) -> dict:
    html = client.get(ADJUST).content.decode()
    token = re.search(r'name="token" value="([0-9a-f]{32})"', html).group(1)
    return {"token": token, "currency": "KRW"}


def test_an_adjustment_posts_once_however_often_the_form_is_sent(client):
    vendor = a_vendor()
    staff = StaffFactory()
    client.force_login(staff)
    data = {
        **_form(client),
        "debit": "adjustments",
        "credit": f"vendor_payable:{vendor.pk}",
        "amount": "1500",
        "reason": "cooler broke on the route",
        "confirm": "on",
    }
    first = client.post(ADJUST, data)
    txn = JournalTransaction.objects.get(kind="adjustment")
    assert first.status_code == 302
    assert first["Location"] == f"/admin/payments/journaltransaction/{txn.pk}/change/"
    assert (txn.created_by, txn.memo, txn.vendor_id) == (
        staff,
        "cooler broke on the route",
        vendor.pk,
    )
    assert ledger.vendor_payable(vendor.pk) == 1_500
    # The same form sent again (a double click, a reload): nothing more, and it says so
    again = client.post(ADJUST, data, follow=True)
    assert JournalTransaction.objects.filter(kind="adjustment").count() == 1
    assert ledger.vendor_payable(vendor.pk) == 1_500
    assert "already made" in again.content.decode()
    assert again.redirect_chain[-1][0] == first["Location"]
    # A new form is a new adjustment
    client.post(ADJUST, {**data, **_form(client)})
    assert ledger.vendor_payable(vendor.pk) == 3_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_submits_at_once_post_once():
    vendor = a_vendor()
    staff = StaffFactory()
    first = Client()
    first.force_login(staff)
    data = {
        **_form(first),
        "debit": "adjustments",
        "credit": f"vendor_payable:{vendor.pk}",
        "amount": "900",
        "reason": "double click",
        "confirm": "on",
    }
    second = Client()
    second.force_login(staff)
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def send(c: Client) -> None:
        barrier.wait()
        try:
            codes.append(c.post(ADJUST, data).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [302, 302]
    assert JournalTransaction.objects.filter(kind="adjustment").count() == 1
    assert ledger.vendor_payable(vendor.pk) == 900


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"confirm": ""}, "confirm", "This field is required."),
        ({"amount": "0"}, "amount", "greater than or equal to 1"),
        ({"amount": "12.5"}, "amount", "Enter a whole number."),
        ({"amount": "-100"}, "amount", "greater than or equal to 1"),
        ({"reason": "   "}, "reason", "This field is required."),
        ({"debit": "no_such_account"}, "debit", "There is no ledger account no_such_account."),
        ({"credit": "vendor_payable:99999999"}, "credit", "There is no ledger account"),
        ({"credit": "adjustments"}, "credit", "Choose two different accounts."),
        ({"currency": "USD"}, None, "is not in USD"),
        ({"token": "../../etc"}, None, "This form is out of date"),
    ],
)
def test_bad_adjustments_are_form_errors_and_post_nothing(client, change, field, message):
    vendor = a_vendor()
    client.force_login(StaffFactory())
    data = {
        **_form(client),
        "debit": "adjustments",
        "credit": f"vendor_payable:{vendor.pk}",
        "amount": "1500",
        "reason": "a reason",
        "confirm": "on",
        **change,
    }
    response = client.post(ADJUST, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    if field:
        assert f'id="id_{field}_errors"' in html
    assert not JournalTransaction.objects.exists()


def test_only_staff_allowed_to_adjust_the_ledger_can(client):
    vendor = a_vendor()
    response = client.get(ADJUST)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(vendor.user)
    assert client.get(ADJUST).status_code == 403
    # Staff who may read the ledger see the dashboard but not the form
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_journaltransaction"))
    client.force_login(clerk)
    assert client.get(DASHBOARD).status_code == 200
    assert client.get(ADJUST).status_code == 403
    assert client.post(ADJUST, {}).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="add_journaltransaction"))
    clerk = type(clerk).objects.get(pk=clerk.pk)
    client.force_login(clerk)
    assert client.get(ADJUST).status_code == 200


def test_staff_without_the_ledger_permission_see_none_of_the_platforms_money(client):
    # Given a staff seat without permissions (support), and a vendor with money
    from rest_framework.test import APIClient

    seat = StaffFactory(is_superuser=False)
    vendor = a_vendor()
    captured(vendor, amount=10_000, commission=1_000)
    client.force_login(seat)
    api = APIClient()
    api.force_authenticate(seat)
    # Then the dashboard, the finance exports and any vendor's money are closed to it
    assert client.get(DASHBOARD).status_code == 403
    assert api.get("/api/finance/daily/").status_code == 403
    assert api.get("/api/finance/journal.csv").status_code == 403
    assert api.get(f"/api/earnings/?vendor={vendor.pk}").status_code == 403
    assert client.get(f"/payments/earnings/?vendor={vendor.pk}").status_code in (403, 404)
    # And with the permission to view the ledger, they are open
    seat.user_permissions.add(Permission.objects.get(codename="view_journaltransaction"))
    seat = type(seat).objects.get(pk=seat.pk)  # permissions are cached per user object
    client.force_login(seat)
    api.force_authenticate(seat)
    assert client.get(DASHBOARD).status_code == 200
    assert api.get("/api/finance/daily/").status_code == 200
    assert api.get(f"/api/earnings/?vendor={vendor.pk}").status_code == 200
