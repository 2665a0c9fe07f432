"""The API a native app needs for money: the vendor's payouts (with why each waits), staff's
discrepancies (listed, resolved through reconciliation.discrepancy_resolve) and manual adjustments
(posted through ledger.adjustment_post, as the staff page does). A vendor sees only its own;
staff endpoints are for staff with the permission; bad input is a 4xx in the one error format."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from payments import ledger
from payments.models import Discrepancy, JournalTransaction, Payout
from payments.settlement import period_of, settlement_create
from tests.factories import CustomerProfileFactory, StaffFactory

from . import factories
from .test_earnings import a_vendor, captured

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient(headers={"accept-language": "en"})
    if user is not None:
        client.force_authenticate(user)
    return client


def finance_staff(*perms: str):
    """Staff who may read the books, with `perms` more (app_label.codename)."""
    user = StaffFactory(is_superuser=False)
    wanted = ["view_journaltransaction", *(p.split(".")[1] for p in perms)]
    user.user_permissions.add(*Permission.objects.filter(codename__in=wanted))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


# --- payouts -------------------------------------------------------------------------------------


def test_a_vendor_lists_its_own_payouts_with_why_they_wait(django_assert_max_num_queries):
    # Given a vendor with a settled sale (its payout waits for a payout account), and another's
    vendor, other = a_vendor(), a_vendor()
    for v in (vendor, other):
        captured(v, amount=10_000, commission=1_000)
        settlement_create(vendor_id=v.pk, period=period_of(timezone.now()))
    # When the vendor asks for its payouts
    with django_assert_max_num_queries(20):
        response = api(vendor.user).get("/api/payouts/")
    # Then it sees its own one, with the reason
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    payout = Payout.objects.get(vendor=vendor)
    assert (row["id"], row["amount"], row["status"]) == (payout.pk, 9_000, "pending")
    assert row["wait"]["code"] == "no_payout_account"
    assert "payout account" in row["wait"]["message"]
    # ... staff see any vendor's by naming it; the vendor can't see another's
    staff = finance_staff()
    assert api(staff).get(f"/api/payouts/?vendor={other.pk}").json()["count"] == 1
    assert api(vendor.user).get(f"/api/payouts/?vendor={other.pk}").status_code == 404
    assert api(vendor.user).get("/api/payouts/?vendor=abc").status_code == 400
    # ... a customer is refused, and nobody unauthenticated
    assert api(CustomerProfileFactory().user).get("/api/payouts/").status_code == 403
    assert api().get("/api/payouts/").status_code in (401, 403)


# --- discrepancies -------------------------------------------------------------------------------


def test_staff_list_and_resolve_discrepancies():
    found = factories.DiscrepancyFactory(object_ref="payment:12")
    factories.DiscrepancyFactory(status=Discrepancy.Status.RESOLVED, resolved_at=timezone.now())
    staff = finance_staff("payments.change_discrepancy")
    listed = api(staff).get("/api/staff/discrepancies/?status=open")
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert row["id"] == found.pk and row["summary"].startswith("Captured amount differs")
    assert api(staff).get("/api/staff/discrepancies/?status=nonsense").status_code == 400
    url = f"/api/staff/discrepancies/{found.pk}/resolve/"
    # A note is required
    empty = api(staff).post(url, {"note": ""}, format="json")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid"
    # Resolved once, through the service; a second time is a conflict
    done = api(staff).post(url, {"note": "ledger corrected by adjustment 7"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "resolved" and done.json()["resolved_by"] == staff.pk
    again = api(staff).post(url, {"note": "again"}, format="json")
    assert again.status_code == 409
    assert (
        api(staff).post("/api/staff/discrepancies/999999/resolve/", {"note": "x"}).status_code
        == 404
    )


def test_discrepancies_are_for_staff_only():
    found = factories.DiscrepancyFactory()
    vendor = a_vendor()
    assert api(vendor.user).get("/api/staff/discrepancies/").status_code == 403
    reader = finance_staff()  # may read the books, may not resolve
    assert api(reader).get("/api/staff/discrepancies/").status_code == 200
    url = f"/api/staff/discrepancies/{found.pk}/resolve/"
    assert api(reader).post(url, {"note": "x"}, format="json").status_code == 403
    assert Discrepancy.objects.get(pk=found.pk).status == Discrepancy.Status.OPEN


# --- adjustments ---------------------------------------------------------------------------------


def test_staff_post_an_adjustment_once_per_key():
    vendor = a_vendor()
    staff = finance_staff("payments.add_journaltransaction")
    key = uuid.uuid4().hex
    body = {
        "debit": ledger.ADJUSTMENTS,
        "credit": f"vendor_payable:{vendor.pk}",
        "amount": 1_500,
        "reason": "cooler broke, goodwill",
        "key": key,
    }
    made = api(staff).post("/api/staff/adjustments/", body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["vendor"] == vendor.pk and made.json()["created_by"] == staff.pk
    assert ledger.vendor_payable(vendor.pk) == 1_500
    # The same key again: the one posting, not a second
    again = api(staff).post("/api/staff/adjustments/", body, format="json")
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
    assert JournalTransaction.objects.filter(kind="adjustment").count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"debit": "no_such_account"},
        {"credit": "vendor_payable:999999"},
        {"amount": 0},
        {"amount": "lots"},
        {"reason": ""},
        {"key": "not-hex"},
        {"credit": ledger.ADJUSTMENTS},  # the same account twice
    ],
)
def test_a_bad_adjustment_is_refused_and_posts_nothing(change):
    vendor = a_vendor()
    staff = finance_staff("payments.add_journaltransaction")
    body = {
        "debit": ledger.ADJUSTMENTS,
        "credit": f"vendor_payable:{vendor.pk}",
        "amount": 700,
        "reason": "why",
        "key": uuid.uuid4().hex,
        **change,
    }
    response = api(staff).post("/api/staff/adjustments/", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]) >= {"code", "message"}
    assert not JournalTransaction.objects.exists()


def test_adjustments_need_the_permission():
    vendor = a_vendor()
    body = {
        "debit": ledger.ADJUSTMENTS,
        "credit": f"vendor_payable:{vendor.pk}",
        "amount": 700,
        "reason": "why",
        "key": uuid.uuid4().hex,
    }
    for user in (vendor.user, finance_staff()):
        assert api(user).post("/api/staff/adjustments/", body, format="json").status_code == 403
    assert not JournalTransaction.objects.exists()
