"""POST and GET /api/vendors/apply/: applying to sell through the page's service (pending, with a
service area), once; how my application stands; bad input a 400 naming the field."""

import pytest
from rest_framework.test import APIClient

from tests.factories import MAPO, UserFactory, VendorFactory
from vendors.models import ServiceCell, Vendor

URL = "/api/vendors/apply/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def application(**over) -> dict:
    return {"name": "망원 야쿠르트", "home_lat": MAPO[0], "home_lng": MAPO[1], **over}


def test_login_is_required(api):
    assert error(api.get(URL), 401)["code"] == "not_authenticated"
    assert error(api.post(URL, application(), format="json"), 401)
    assert not Vendor.objects.exists()


def test_apply_then_see_it_pending_and_not_twice(api):
    user = UserFactory()
    api.force_authenticate(user)
    assert error(api.get(URL), 404)["message"] == "You have not applied to sell."
    sent = api.post(URL, application(phone=" 010-1111-2222 ", bio="Mornings"), format="json")
    assert sent.status_code == 201, sent.content
    vendor = Vendor.objects.get(user=user)
    assert sent.json()["slug"] == vendor.slug
    assert (vendor.name, vendor.phone, vendor.status) == (
        "망원 야쿠르트",
        "010-1111-2222",
        "pending",
    )
    assert ServiceCell.objects.filter(vendor=vendor).count() == 7  # the home cell and its ring
    assert hasattr(user, "customer")  # a vendor buys too
    mine = api.get(URL)
    assert mine.status_code == 200
    assert (mine.json()["status"], mine.json()["name"]) == ("pending", "망원 야쿠르트")
    # Once only: 409, nothing changed
    again = error(api.post(URL, application(name="Another cart"), format="json"), 409)
    assert again["code"] == "already_applied"
    assert list(Vendor.objects.values_list("name", flat=True)) == ["망원 야쿠르트"]


def test_the_status_follows_staffs_decision(api, vendor):
    Vendor.objects.filter(pk=vendor.pk).update(status="rejected", status_reason="No permit")
    api.force_authenticate(vendor.user)
    body = api.get(URL).json()
    assert (body["status"], body["status_reason"]) == ("rejected", "No permit")


def test_someone_elses_application_is_never_mine(api):
    VendorFactory(name="Theirs")
    api.force_authenticate(UserFactory())
    assert error(api.get(URL), 404)


@pytest.mark.parametrize(
    "data,field",
    [
        (application(name=""), "name"),
        (application(name="   "), "name"),
        (application(name="x" * 81), "name"),
        (application(home_lat=91), "home_lat"),
        (application(home_lng="west"), "home_lng"),
        ({"name": "Cart"}, "home_lat"),
    ],
)
def test_bad_applications_are_400_with_the_field(api, data, field):
    api.force_authenticate(UserFactory())
    refused = error(api.post(URL, data, format="json"), 400)
    assert refused["code"] == "invalid"
    assert field in refused["fields"], refused
    assert not Vendor.objects.exists()


def test_apply_is_not_taken_for_a_vendor_slug(api):
    """/api/vendors/apply/ comes before /api/vendors/<slug>/: it is the application."""
    assert error(api.get(URL), 401)
