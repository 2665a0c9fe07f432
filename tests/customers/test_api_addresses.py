"""The customer's addresses over the API: own only (someone else's is a 404 and stays as it was),
at most one default and, while any is left, exactly one; bad input a 400 naming the field, nothing
saved."""

import pytest
from rest_framework.test import APIClient

from customers.models import Address
from tests.factories import MAPO, AddressFactory, CustomerProfileFactory, UserFactory

LIST = "/api/me/addresses/"

pytestmark = pytest.mark.django_db


def one(address_id: int) -> str:
    return f"{LIST}{address_id}/"


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def me(api):
    profile = CustomerProfileFactory()
    api.force_authenticate(profile.user)
    return profile


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def defaults(customer) -> list[str]:
    return list(customer.addresses.filter(is_default=True).values_list("label", flat=True))


def test_login_is_required(api):
    assert error(api.get(LIST), 401)["code"] == "not_authenticated"
    assert error(api.post(LIST, {"line1": "x", "lat": 1, "lng": 1}, format="json"), 401)
    assert not Address.objects.exists()


def test_a_new_customer_lists_none_and_the_first_address_is_the_default(api):
    # A user with no customer profile yet (say, one who signed in with a token only)
    api.force_authenticate(UserFactory())
    assert api.get(LIST).json() == []
    created = api.post(
        LIST,
        {"label": "Home", "line1": " 서울 마포구 망원로 50 ", "lat": MAPO[0], "lng": MAPO[1]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["label"], body["line1"], body["is_default"]) == (
        "Home",
        "서울 마포구 망원로 50",
        True,
    )
    assert body["cell"]
    assert [a["id"] for a in api.get(LIST).json()] == [body["id"]]


def test_only_the_address_and_location_are_required(api, me):
    created = api.post(LIST, {"line1": "망원로 50", "lat": MAPO[0], "lng": MAPO[1]}, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["label"], created.json()["line2"]) == ("Home", "")


def test_a_new_default_takes_it_from_the_old_one(api, me):
    home = AddressFactory(customer=me, label="Home", is_default=True)
    office = api.post(
        LIST,
        {"label": "Office", "line1": "양화로 45", "lat": 37.55, "lng": 126.92, "is_default": True},
        format="json",
    ).json()
    assert defaults(me) == ["Office"]
    # The list shows the default first
    assert [a["id"] for a in api.get(LIST).json()] == [office["id"], home.pk]
    # PATCH back to home
    changed = api.patch(one(home.pk), {"is_default": True}, format="json")
    assert changed.status_code == 200 and changed.json()["is_default"] is True
    assert defaults(me) == ["Home"]


def test_the_default_cannot_be_unset_only_moved(api, me):
    home = AddressFactory(customer=me, label="Home", is_default=True)
    refused = error(api.patch(one(home.pk), {"is_default": False}, format="json"), 400)
    assert "is_default" in refused["fields"]
    assert defaults(me) == ["Home"]


def test_deleting_the_default_hands_it_to_the_newest_left(api, me):
    old = AddressFactory(customer=me, label="Old")
    newer = AddressFactory(customer=me, label="Newer")
    home = AddressFactory(customer=me, label="Home", is_default=True)
    assert api.delete(one(home.pk)).status_code == 204
    assert not Address.objects.filter(pk=home.pk).exists()
    assert defaults(me) == ["Newer"]
    assert api.delete(one(newer.pk)).status_code == 204
    assert defaults(me) == ["Old"]
    assert api.delete(one(old.pk)).status_code == 204
    assert api.get(LIST).json() == []


def test_patch_changes_only_what_is_sent(api, me):
    home = AddressFactory(customer=me, label="Home", line2="3층", is_default=True)
    cell = home.cell
    body = api.patch(one(home.pk), {"line2": "4층", "postal_code": "04000"}, format="json").json()
    assert (body["label"], body["line2"], body["postal_code"]) == ("Home", "4층", "04000")
    moved = api.patch(one(home.pk), {"lat": 37.5665, "lng": 126.9780}, format="json").json()
    assert (moved["lat"], moved["lng"]) == (37.5665, 126.9780)
    assert moved["cell"] != cell
    home.refresh_from_db()
    assert (home.line2, home.lat, home.cell) == ("4층", 37.5665, moved["cell"])


@pytest.mark.parametrize(
    "data,field",
    [
        ({"line1": "", "lat": 37.5, "lng": 126.9}, "line1"),
        ({"line1": "   ", "lat": 37.5, "lng": 126.9}, "line1"),
        ({"line1": "x", "lat": 91, "lng": 126.9}, "lat"),
        ({"line1": "x", "lat": 37.5, "lng": "east"}, "lng"),
        ({"line1": "x", "lat": 37.5}, "lng"),
        ({"line1": "x" * 201, "lat": 37.5, "lng": 126.9}, "line1"),
    ],
)
def test_bad_new_addresses_are_400_with_the_field_and_nothing_saved(api, me, data, field):
    refused = error(api.post(LIST, data, format="json"), 400)
    assert refused["code"] == "invalid"
    assert field in refused["fields"], refused
    assert refused["message"]
    assert not Address.objects.exists()


@pytest.mark.parametrize(
    "data,field",
    [
        ({"line1": " "}, "line1"),
        ({"lat": 37.5}, "lat"),
        ({"lat": 37.5, "lng": 181}, "lng"),
        ({"label": "x" * 41}, "label"),
    ],
)
def test_bad_changes_are_400_and_change_nothing(api, me, data, field):
    home = AddressFactory(customer=me, label="Home", is_default=True)
    refused = error(api.patch(one(home.pk), data, format="json"), 400)
    assert field in refused["fields"], refused
    saved = Address.objects.get(pk=home.pk)
    assert (saved.label, saved.line1, saved.lat, saved.lng) == (
        "Home",
        home.line1,
        home.lat,
        home.lng,
    )


def test_someone_elses_address_is_a_404_and_stays_as_it_was(api, me):
    theirs = AddressFactory(customer=CustomerProfileFactory(), label="Theirs", is_default=True)
    assert error(api.get(one(theirs.pk)), 404)["code"] == "not_found"
    assert error(api.patch(one(theirs.pk), {"label": "Mine now"}, format="json"), 404)
    assert error(api.patch(one(theirs.pk), {"is_default": True}, format="json"), 404)
    assert error(api.delete(one(theirs.pk)), 404)
    assert error(api.get(one(999_999)), 404)
    theirs.refresh_from_db()
    assert (theirs.label, theirs.is_default) == ("Theirs", True)
    assert theirs.pk not in [a["id"] for a in api.get(LIST).json()]


def test_the_list_costs_a_fixed_number_of_queries(api, me, django_assert_num_queries):
    for n in range(5):
        AddressFactory(customer=me, label=f"A{n}", is_default=n == 0)
    # The addresses only (the authenticated user comes with its profile here)
    with django_assert_num_queries(1):
        assert len(api.get(LIST).json()) == 5
