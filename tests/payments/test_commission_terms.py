"""The vendor sees the commission plan in force: the same choice payments.commission makes at
placement (most specific, then latest start), since when, and the next change scheduled; on the
earnings page and in the earnings API."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.commission import commission_bps_for
from payments.models import CommissionPlan
from payments.selectors import vendor_commission_terms
from tests.factories import CategoryFactory, VendorFactory

from .test_earnings import a_vendor

pytestmark = pytest.mark.django_db


def plan(vendor=None, *, bps: int, days_from: int = -10, days_until=None, category=None, note=""):
    now = timezone.now()
    return CommissionPlan.objects.create(
        vendor=vendor,
        category=category,
        bps=bps,
        valid_from=now + timedelta(days=days_from),
        valid_until=None if days_until is None else now + timedelta(days=days_until),
        note=note,
    )


def then(previous: CommissionPlan, *, bps: int) -> CommissionPlan:
    """The vendor's next plan, from the moment `previous` ends."""
    return CommissionPlan.objects.create(
        vendor=previous.vendor, bps=bps, valid_from=previous.valid_until
    )


def test_without_any_plan_the_standard_rate_applies(settings):
    settings.COMMISSION_DEFAULT_BPS = 1000
    terms = vendor_commission_terms(vendor_id=a_vendor().pk)
    assert (terms.current.bps, terms.current.scope, terms.current.since) == (1000, "default", None)
    assert terms.next is None and terms.categories == []


def test_the_vendors_own_plan_beats_the_platforms_and_the_next_change_is_shown():
    # Given the platform's 10 % for everyone, the vendor's own 8 % until next week, then 9 %
    vendor = a_vendor()
    plan(bps=1000, days_from=-30)
    own = plan(vendor, bps=800, days_from=-5, days_until=7)
    then(own, bps=900)
    plan(VendorFactory(), bps=500)  # someone else's
    terms = vendor_commission_terms(vendor_id=vendor.pk)
    # Then the vendor's 8 % is in force since its start, and 9 % comes next week
    assert (terms.current.bps, terms.current.scope) == (800, "vendor")
    assert terms.current.since == own.valid_from and terms.current.until == own.valid_until
    assert terms.current.percent == "8"
    assert (terms.next.bps, terms.next.since) == (900, own.valid_until)


def test_when_the_own_plan_ends_without_a_successor_the_platform_plan_is_next():
    vendor = a_vendor()
    plan(bps=1000, days_from=-30)
    own = plan(vendor, bps=750, days_from=-1, days_until=3)
    terms = vendor_commission_terms(vendor_id=vendor.pk)
    assert terms.current.percent == "7.5"
    assert (terms.next.bps, terms.next.scope) == (1000, "platform")
    assert own.valid_until > timezone.now()


def test_a_category_with_its_own_rate_is_listed():
    vendor = a_vendor()
    coffee = CategoryFactory(name_en="Coffee")
    plan(bps=1000, days_from=-30)
    plan(vendor, bps=1200, category=coffee)
    terms = vendor_commission_terms(vendor_id=vendor.pk)
    assert terms.current.bps == 1000
    assert [(c.category, c.bps) for c in terms.categories] == [(str(coffee), 1200)]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # the vendor's own (else the platform's)
            st.integers(0, 3000),  # bps
            st.integers(-20, 5),  # starts, days from now
            st.one_of(st.none(), st.integers(-5, 20)),  # lasts, days
        ),
        max_size=5,
    )
)
def test_the_rate_shown_is_the_rate_placement_snapshots(plans):
    # Given any plans of the vendor and the platform
    vendor = VendorFactory()
    CommissionPlan.objects.all().delete()
    for own, bps, start, length in plans:
        if length is not None and length <= 0:
            length = None
        plan(
            vendor if own else None,
            bps=bps,
            days_from=start,
            days_until=None if length is None else start + length,
        )
    now = timezone.now()
    # Then the page's rate is the one an order placed now would get
    bps, _by_category = commission_bps_for(vendor_id=vendor.pk, category_ids=[], at=now)
    assert vendor_commission_terms(vendor_id=vendor.pk, now=now).current.bps == bps


# --- the page and the API ------------------------------------------------------------------------


def test_the_earnings_page_and_api_show_the_plan_in_force():
    vendor = a_vendor()
    plan(bps=1000, days_from=-30)
    then(plan(vendor, bps=800, days_from=-5, days_until=7), bps=900)
    client = Client(headers={"accept-language": "en"})
    client.force_login(vendor.user)
    page = client.get("/payments/earnings/").content.decode()
    assert 'data-testid="commission"' in page
    assert "8% of each sale" in page and "Your own plan" in page
    assert "9% of each sale" in page  # what changes next
    body = client.get("/api/earnings/").json()
    assert body["commission"]["current"]["bps"] == 800
    assert body["commission"]["current"]["scope"] == "vendor"
    assert body["commission"]["next"]["bps"] == 900
    assert body["payout_wait"] is None  # nothing owed yet
