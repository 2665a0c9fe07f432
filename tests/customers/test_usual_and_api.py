"""What the customer usually buys on a weekday (a synthetic history recovers the pattern), where
it is shown, and the API of favourites, usual purchases and reorder: authentication everywhere,
each customer's own only."""

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone, translation

from customers.selectors import usual_for_today
from customers.services import favourite_add, favourite_notify_set
from orders.models import Order, Status
from tests.factories import (
    CustomerProfileFactory,
    ProductFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tests.orders.factories import OrderFactory, OrderLineFactory

pytestmark = pytest.mark.django_db

MONDAY = timezone.make_aware(datetime(2026, 11, 30, 9, 0))  # a Monday, 09:00 Korea time


def bought(customer, vendor, product, at, *, status=Status.COMPLETED, quantity=2):
    order = OrderFactory(customer=customer, vendor=vendor, status=status)
    OrderLineFactory(order=order, product=product, quantity=quantity)
    Order.objects.filter(pk=order.pk).update(created_at=at)
    return order


@pytest.fixture
def history(db):
    """Yakult on 3 of the last 6 Mondays; banana milk on one Monday only; latte on Tuesdays."""
    customer, vendor = CustomerProfileFactory(), VendorFactory(name="순자네 카트")
    yakult = ProductFactory(name_en="Yakult", name_ko="야쿠르트")
    banana = ProductFactory(name_en="Banana milk", name_ko="바나나우유")
    latte = ProductFactory(name_en="Latte", name_ko="라떼")
    week = timedelta(weeks=1)
    for weeks_ago in (1, 2, 5):
        bought(customer, vendor, yakult, MONDAY - weeks_ago * week, quantity=weeks_ago)
    bought(customer, vendor, banana, MONDAY - 3 * week)
    for weeks_ago in (1, 2, 3):
        bought(customer, vendor, latte, MONDAY - weeks_ago * week + timedelta(days=1))
    # Not counted: 7 weeks ago, cancelled, and someone else's
    bought(customer, vendor, banana, MONDAY - 7 * week)
    bought(customer, vendor, banana, MONDAY - 4 * week, status=Status.CANCELLED)
    bought(CustomerProfileFactory(), vendor, banana, MONDAY - 6 * week)
    return customer, vendor, yakult, banana


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def test_a_synthetic_history_recovers_the_monday_yakult(history):
    customer, vendor, yakult, _banana = history
    [usual] = usual_for_today(customer, MONDAY)
    assert usual.product_id == yakult.pk and usual.weeks == 3
    assert usual.quantity == 1  # the latest of those orders: a week ago
    assert usual.vendor_slug == vendor.slug
    assert usual.sentence == "You usually get Yakult on Mondays."
    # Not on a Tuesday (only latte: 3 Tuesdays)
    assert [u.product_name for u in usual_for_today(customer, MONDAY + timedelta(days=1))] == [
        "Latte"
    ]


def test_one_more_cancelled_or_other_weekday_purchase_does_not_make_a_habit(history):
    customer, _vendor, _yakult, banana = history
    assert banana.pk not in [u.product_id for u in usual_for_today(customer, MONDAY)]


def test_the_usual_card_on_the_favourites_and_map_pages(history, monkeypatch):
    customer, _vendor, _yakult, _banana = history
    import customers.favourite_views
    import tracking.views

    for module in (customers.favourite_views, tracking.views):
        monkeypatch.setattr(module.timezone, "now", lambda: MONDAY)
    client = Client(headers={"accept-language": "en"})
    client.force_login(customer.user)
    for url in ("/favourites/", "/map/"):
        html = client.get(url).content.decode()
        assert "You usually get Yakult on Mondays." in html, url
        assert 'data-testid="usual"' in html


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def api_for():
    from rest_framework.test import APIClient

    def _api(user=None):
        client = APIClient(headers={"accept-language": "en"})
        if user is not None:
            client.force_authenticate(user)
        return client

    return _api


def test_favourites_api_add_list_switch_remove(api_for, customer):
    cart = VendorFactory()
    position = VendorPositionFactory(vendor=cart, lat=37.556123, lng=126.906789)
    api = api_for(customer)
    added = api.post("/api/favourites/", {"vendor": cart.slug}, format="json")
    assert added.status_code == 201
    assert added.json()["vendor"]["slug"] == cart.slug and added.json()["on_shift"] is True
    assert added.json()["where"]["cell"] == position.public_cell
    listing = api.get("/api/favourites/").json()
    assert listing["count"] == 1
    assert "37.556123" not in str(listing) and "126.906789" not in str(listing)
    switched = api.patch(f"/api/favourites/{cart.slug}/", {"notify_near": True}, format="json")
    assert switched.status_code == 200 and switched.json()["notify_near"] is True
    assert api.delete(f"/api/favourites/{cart.slug}/").status_code == 204
    assert api.delete(f"/api/favourites/{cart.slug}/").status_code == 404


def test_favourites_api_refuses_bad_input_and_others(api_for, customer):
    cart = VendorFactory()
    other = CustomerProfileFactory()
    favourite_add(customer=other, vendor_id=cart.pk)
    # Signed out: 401 everywhere
    anonymous = api_for()
    for method, url in (
        ("get", "/api/favourites/"),
        ("post", "/api/favourites/"),
        ("patch", f"/api/favourites/{cart.slug}/"),
        ("delete", f"/api/favourites/{cart.slug}/"),
        ("get", "/api/me/usual/"),
    ):
        assert getattr(anonymous, method)(url).status_code == 401, url
    api = api_for(customer)
    # Another customer's favourite is not mine to see or change
    assert api.get(f"/api/favourites/{cart.slug}/").status_code == 404
    response = api.patch(f"/api/favourites/{cart.slug}/", {"notify_near": True}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such cart among your favourites."
    assert api.delete(f"/api/favourites/{cart.slug}/").status_code == 404
    assert other.favourites.get().notify_near is False
    # Bad input: 400 with the field; an unknown cart: 404
    bad = api.post("/api/favourites/", {"vendor": ""}, format="json")
    assert bad.status_code == 400 and "vendor" in bad.json()["error"]["fields"]
    assert api.post("/api/favourites/", {"vendor": "nope"}, format="json").status_code == 404
    favourite_add(customer=customer.customer, vendor_id=cart.pk)
    bad = api.patch(f"/api/favourites/{cart.slug}/", {"notify_near": "sometimes"}, format="json")
    assert bad.status_code == 400


def test_usual_api(api_for, history, monkeypatch):
    customer, _vendor, yakult, _banana = history
    import customers.favourite_api

    monkeypatch.setattr(customers.favourite_api.timezone, "now", lambda: MONDAY)
    body = api_for(customer.user).get("/api/me/usual/").json()
    assert [(u["product_id"], u["weeks"]) for u in body["results"]] == [(yakult.pk, 3)]
    assert body["results"][0]["message"] == "You usually get Yakult on Mondays."


def test_the_map_knows_which_favourites_to_tell_about(client, customer):
    cart = VendorFactory()
    VendorPositionFactory(vendor=cart, shift_started_at=timezone.now())
    quiet = VendorFactory()
    for vendor in (cart, quiet):
        favourite_add(customer=customer.customer, vendor_id=vendor.pk)
    favourite_notify_set(customer=customer.customer, vendor_id=cart.pk, notify_near=True)
    client.force_login(customer)
    config = client.get("/map/").context["map_config"]
    assert [f["id"] for f in config["favourites"]] == [cart.slug]
    assert config["favourites"][0]["shift"]
    assert config["nearM"] == 700
    # Signed out: none
    client.logout()
    assert client.get("/map/").context["map_config"]["favourites"] == []
