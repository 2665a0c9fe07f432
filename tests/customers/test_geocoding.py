"""The geocoder adapter (O2O_GEOCODER): none by default, a configured class found by its dotted path,
its answers bounded and checked, its failures one clear 503; the endpoint the address form calls is
for logged-in customers, bounded and throttled; the form shows its search box only when configured."""

import pytest
from django.test import override_settings

from customers.geocoding import (
    MAX_QUERY_LENGTH,
    MAX_RESULTS,
    GeocoderUnavailable,
    NullGeocoder,
    Place,
    geocode,
    geocoder,
)
from tests.orders.conftest import put_cart

URL = "/api/geocode/"
HERE = "tests.customers.test_geocoding"


class FakeGeocoder:
    """A provider that knows a few places in Mapo, and what it was asked."""

    asked: list[str] = []

    def geocode(self, query: str) -> list[Place]:
        FakeGeocoder.asked.append(query)
        if "nothing" in query:
            return []
        return [
            Place(lat=37.5563, lng=126.9236, label=f"{query} · 서울 마포구 양화로 45"),
            Place(lat=91.0, lng=126.9, label="nowhere"),  # a provider's nonsense: dropped
            *(Place(lat=37.55 + i / 1000, lng=126.92, label=f"{query} {i}") for i in range(10)),
        ]


class MapoGeocoder:
    """One place, by the demo vendors' home in Mapo (the browser test's geocoder)."""

    def geocode(self, query: str) -> list[Place]:
        return [Place(lat=37.5560, lng=126.9060, label="서울 마포구 망원동 1")]


class BrokenGeocoder:
    def geocode(self, query: str) -> list[Place]:
        raise TimeoutError("the provider did not answer")


@pytest.fixture(autouse=True)
def fresh_fake():
    # The throttle counts per user, and every test has a new one: no cache to clear.
    FakeGeocoder.asked = []


def test_no_geocoder_by_default_and_the_null_one_finds_nothing(settings):
    assert settings.O2O_GEOCODER is None
    assert geocoder() is None
    assert geocode("양화로 45") == []
    assert NullGeocoder().geocode("양화로 45") == []


@override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder")
def test_the_configured_geocoder_answers_at_most_five_valid_places():
    places = geocode("  양화로   45 ")
    assert FakeGeocoder.asked == ["양화로 45"]  # trimmed, spaces folded
    assert len(places) == MAX_RESULTS
    assert places[0] == Place(lat=37.5563, lng=126.9236, label="양화로 45 · 서울 마포구 양화로 45")
    assert all(-90 <= p.lat <= 90 for p in places)
    assert "nowhere" not in [p.label for p in places]


@override_settings(O2O_GEOCODER=f"{HERE}.BrokenGeocoder")
def test_a_failing_geocoder_is_one_known_error():
    with pytest.raises(GeocoderUnavailable):
        geocode("양화로 45")


@override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder")
def test_the_endpoint_answers_a_logged_in_customer(api, customer):
    api.force_authenticate(customer)
    response = api.get(URL, {"q": "양화로 45"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == MAX_RESULTS
    assert results[0] == {
        "lat": 37.5563,
        "lng": 126.9236,
        "label": "양화로 45 · 서울 마포구 양화로 45",
    }


@override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder")
@pytest.mark.parametrize(
    "query", ["", " ", "x", "가" * (MAX_QUERY_LENGTH + 1)], ids=["empty", "blank", "one", "long"]
)
def test_a_query_empty_or_too_long_is_a_400_and_the_provider_is_not_asked(api, customer, query):
    api.force_authenticate(customer)
    response = api.get(URL, {"q": query})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert FakeGeocoder.asked == []


@override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder")
def test_nothing_found_is_an_empty_list(api, customer):
    api.force_authenticate(customer)
    assert api.get(URL, {"q": "nothing here"}).json() == {"results": []}


@override_settings(O2O_GEOCODER=f"{HERE}.BrokenGeocoder")
def test_a_failing_provider_is_a_503_that_points_to_the_pin(api, customer):
    api.force_authenticate(customer)
    response = api.get(URL, {"q": "양화로 45"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "pin" in response.json()["error"]["message"]


def test_without_a_geocoder_the_endpoint_says_so(api, customer):
    api.force_authenticate(customer)
    response = api.get(URL, {"q": "양화로 45"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_geocoder"


@override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder")
def test_anonymous_callers_are_refused(api, db):
    assert api.get(URL, {"q": "양화로 45"}).status_code == 401
    assert FakeGeocoder.asked == []


@override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder")
def test_the_endpoint_is_throttled_per_customer(api, customer):
    api.force_authenticate(customer)
    codes = [api.get(URL, {"q": f"양화로 {i}"}).status_code for i in range(31)]
    assert codes[:30] == [200] * 30
    assert codes[30] == 429
    assert len(FakeGeocoder.asked) == 30


@pytest.mark.parametrize("configured", [False, True])
def test_the_checkout_shows_the_search_box_only_with_a_geocoder(
    client, vendor, customer, configured
):
    from tests.factories import ProductFactory, StockFactory

    product = StockFactory(vendor=vendor, product=ProductFactory(), quantity=3).product
    client.force_login(customer)
    put_cart(client, vendor, {product.pk: 1})
    with override_settings(O2O_GEOCODER=f"{HERE}.FakeGeocoder" if configured else None):
        html = client.get("/orders/checkout/").content.decode()
    assert ("data-address-search" in html) is configured
    assert ('data-url="/api/geocode/"' in html) is configured
