"""Favourite carts (issue #17, part 4): the services, the heart on a cart's page (a real form with
aria-pressed, JSON for the page's script), the favourites page with where each cart roughly is
(its public area only), the "tell me when it is near" switch, and who may change what."""

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import FavouriteVendor
from customers.services import favourite_add, favourite_notify_set, favourite_remove
from o2o.errors import NotAllowed
from tests.factories import (
    AddressFactory,
    CustomerProfileFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tests.orders.conftest import messages_of
from vendors.models import Vendor

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def cart(db):
    return VendorFactory()


# --- services -------------------------------------------------------------------------------------


def test_adding_twice_keeps_one_favourite_and_removing_says_whether_it_was_one(customer, cart):
    profile = customer.customer
    first = favourite_add(customer=profile, vendor_id=cart.pk)
    again = favourite_add(customer=profile, vendor_id=cart.pk)
    assert first.pk == again.pk and not first.notify_near
    assert FavouriteVendor.objects.filter(customer=profile).count() == 1
    assert favourite_remove(customer=profile, vendor_id=cart.pk) is True
    assert favourite_remove(customer=profile, vendor_id=cart.pk) is False


def test_only_carts_the_public_sees_can_be_favourites(customer):
    hidden = VendorFactory(status=Vendor.Status.PENDING)
    with pytest.raises(NotAllowed):
        favourite_add(customer=customer.customer, vendor_id=hidden.pk)
    with pytest.raises(NotAllowed):
        favourite_add(customer=customer.customer, vendor_id=10**9)


def test_the_near_switch_is_per_favourite_and_only_ones_own(customer, cart):
    mine = favourite_add(customer=customer.customer, vendor_id=cart.pk)
    other = CustomerProfileFactory()
    # Another customer can't turn on a favourite that is not theirs
    with pytest.raises(NotAllowed):
        favourite_notify_set(customer=other, vendor_id=cart.pk, notify_near=True)
    mine.refresh_from_db()
    assert mine.notify_near is False
    assert favourite_notify_set(customer=customer.customer, vendor_id=cart.pk, notify_near=True)
    mine.refresh_from_db()
    assert mine.notify_near is True


# --- the heart on a cart's page -------------------------------------------------------------------


def test_the_heart_is_a_form_with_aria_pressed_that_works_without_javascript(
    client, customer, cart
):
    client.force_login(customer)
    page = client.get(reverse("vendors:detail", args=[cart.slug])).content.decode()
    assert 'aria-pressed="false"' in page
    assert f'action="/favourites/{cart.slug}/"' in page and "csrfmiddlewaretoken" in page
    # When the form is sent (no JavaScript): back to the page, with a message and the heart on
    response = client.post(f"/favourites/{cart.slug}/", {"on": "1"}, follow=True)
    assert response.redirect_chain == [(f"/vendors/{cart.slug}/", 302)]
    assert messages_of(response) == [f"{cart.name} is in your favourites."]
    assert 'aria-pressed="true"' in response.content.decode()
    # The same form sent again (a double tap) leaves it on
    client.post(f"/favourites/{cart.slug}/", {"on": "1"})
    assert FavouriteVendor.objects.filter(customer=customer.customer, vendor=cart).count() == 1


def test_the_page_script_gets_json(client, customer, cart):
    client.force_login(customer)
    json = {"HTTP_ACCEPT": "application/json"}
    response = client.post(f"/favourites/{cart.slug}/", {"on": "1"}, **json)
    assert response.json() == {"on": True, "said": f"{cart.name} is in your favourites."}
    response = client.post(f"/favourites/{cart.slug}/", {"on": "0"}, **json)
    assert response.json()["on"] is False
    assert not FavouriteVendor.objects.exists()
    # Bad input is a 400 with a sentence, never a 500
    response = client.post(f"/favourites/{cart.slug}/", {"on": "maybe"}, **json)
    assert response.status_code == 400 and response.json()["error"]


def test_signed_out_visitors_are_asked_to_log_in(client, cart):
    page = client.get(reverse("vendors:detail", args=[cart.slug])).content.decode()
    assert "Log in to keep this cart as a favourite" in page and "aria-pressed" not in page
    for url in (f"/favourites/{cart.slug}/", f"/favourites/{cart.slug}/notify/", "/favourites/"):
        method = client.get if url == "/favourites/" else client.post
        response = method(url, {"on": "1"})
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not FavouriteVendor.objects.exists()


def test_a_vendor_is_a_customer_too_and_unknown_carts_are_404(client, vendor, cart):
    client.force_login(vendor.user)
    client.post(f"/favourites/{cart.slug}/", {"on": "1"})
    assert FavouriteVendor.objects.filter(customer=vendor.user.customer, vendor=cart).exists()
    assert client.post("/favourites/no-such-cart/", {"on": "1"}).status_code == 404
    hidden = VendorFactory(status=Vendor.Status.SUSPENDED)
    assert client.post(f"/favourites/{hidden.slug}/", {"on": "1"}).status_code == 404
    assert client.get(f"/favourites/{cart.slug}/").status_code == 405


# --- the favourites page --------------------------------------------------------------------------


def test_the_favourites_page_says_where_each_cart_roughly_is_never_its_spot(client, customer):
    on_road = VendorFactory(name="순자네 카트")
    position = VendorPositionFactory(
        vendor=on_road, lat=37.556123, lng=126.906789, presence="stationary"
    )
    resting = VendorFactory(name="쉬는 카트")
    for cart in (on_road, resting):
        favourite_add(customer=customer.customer, vendor_id=cart.pk)
    client.force_login(customer)
    response = client.get("/favourites/")
    html = response.content.decode()
    on_road_where = html.split(f'data-testid="where-{on_road.slug}"')[1].split("</p>")[0]
    assert "On shift" in on_road_where and "Standing still" in on_road_where
    resting_where = html.split(f'data-testid="where-{resting.slug}"')[1].split("</p>")[0]
    assert "Off shift" in resting_where
    # Never the exact position
    assert "37.556123" not in html and "126.906789" not in html
    assert position.public_cell  # the public area is what the map link shows
    assert f'href="/vendors/{on_road.slug}/"' in html


def test_the_switch_on_the_favourites_page(client, customer, cart):
    favourite_add(customer=customer.customer, vendor_id=cart.pk)
    client.force_login(customer)
    html = client.get("/favourites/").content.decode()
    assert 'role="switch" aria-checked="false"' in html
    # No saved address: the page says how to be told
    assert "save an address first" in html
    AddressFactory(customer=customer.customer)
    response = client.post(f"/favourites/{cart.slug}/notify/", {"on": "1"}, follow=True)
    assert response.redirect_chain == [("/favourites/", 302)]
    assert 'aria-checked="true"' in response.content.decode()
    assert "save an address first" not in response.content.decode()
    assert FavouriteVendor.objects.get(vendor=cart).notify_near is True
    # A cart that is not a favourite: a clear message, nothing changed
    other = VendorFactory()
    response = client.post(f"/favourites/{other.slug}/notify/", {"on": "1"}, follow=True)
    assert messages_of(response) == ["This cart is not among your favourites."]
    assert not FavouriteVendor.objects.filter(vendor=other).exists()


def test_the_favourites_page_reads_a_fixed_number_of_queries(
    client, customer, django_assert_max_num_queries
):
    for _ in range(2):
        favourite_add(customer=customer.customer, vendor_id=VendorPositionFactory().vendor_id)
    client.force_login(customer)
    client.get("/favourites/")
    with django_assert_max_num_queries(14) as few:
        client.get("/favourites/")
    for _ in range(5):
        favourite_add(customer=customer.customer, vendor_id=VendorPositionFactory().vendor_id)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get("/favourites/").context["rows"]) == 7
