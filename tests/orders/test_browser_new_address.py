"""A new delivery address by a pin on a map, in Chromium on a phone, in Korean and in English:
checkout with delivery to a new address draws the vendor's area (its seven cells); going on without
a pin, or with the pin outside the area, is stopped with the reason next to the map and above the
button; "use my location" (an emulated fix inside the area) moves the pin in, and the order goes
to the payment page with the new address. Screenshots in test-artifacts/screenshots/."""

import re
import uuid

import h3
import pytest
from django.conf import settings
from playwright.sync_api import expect

from customers.models import Address
from orders.models import Fulfilment, Order
from tests import factories
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PHONE
from tests.browser.test_live_map import AsgiServer, log_in
from tests.orders.conftest import open_shop
from tests.orders.test_browser_live import live_server, person  # noqa: F401  (the ASGI server)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
browser = browser_fixtures.browser
new_page = browser_fixtures.new_page
shot = browser_fixtures.shot
assert_accessible = browser_fixtures.assert_accessible
axe = browser_fixtures.axe

GO_TO_PAYMENT = {"ko": "결제하러 가기", "en": "Go to payment"}


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_new_address_is_a_pin_in_the_vendors_area(
    live_server,  # noqa: F811
    new_page,
    shot,
    assert_accessible,
    axe,
    lang,
):
    # Given a vendor on shift delivering to seven cells around home, and a customer with no address
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    person(buyer)
    home = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, settings.SERVICE_AREA_RES)
    inside = h3.cell_to_latlng(h3.grid_disk(home, 1)[-1])
    base = live_server.url

    # When the customer, on a phone whose location is inside the area, logs in (in Korean) ...
    page = new_page(
        **PHONE,
        locale="ko-KR",
        geolocation={"latitude": inside[0], "longitude": inside[1], "accuracy": 20},
        permissions=["geolocation"],
    )
    log_in(page, base, buyer.email)
    page.goto(f"{base}/vendors/{vendor.slug}/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
    # ... puts two yakult in the basket and goes to checkout
    page.locator(f"#add-{shop.yakult.pk}").fill("2")
    page.locator(f"form:has(#add-{shop.yakult.pk}) button[type=submit]").click()
    page.goto(f"{base}/orders/checkout/")
    expect(page.locator("html")).to_have_attribute("lang", lang)

    # ... and chooses delivery: a new address (none saved yet), with the map of the area
    page.locator("input[name=fulfilment][value=delivery]").check()
    expect(page.locator("input[name=address][value=new]")).to_be_checked()
    address_map = page.locator("#address-map")
    expect(address_map).to_be_visible()
    expect(address_map.locator(".leaflet-overlay-pane path")).to_have_count(
        7
    )  # the vendor's area, cell by cell
    # The coordinates are the pin's: no latitude/longitude boxes to type into
    expect(page.locator("#id_new_lat")).to_be_hidden()
    expect(page.locator("#id_new_lng")).to_be_hidden()
    # What is required says so; only the detail line says optional
    fieldset = page.locator("[data-new-address]")
    for field in ("id_new_label", "id_new_line1"):
        label = fieldset.locator(f"label[for={field}]")
        expect(label.locator(".required-mark")).to_have_count(1)
        expect(label.locator(".optional")).to_have_count(0)
    expect(fieldset.locator("label[for=id_new_line2] .optional")).to_have_count(1)
    expect(fieldset.locator("#pin-label .required-mark")).to_have_count(1)
    page.locator("#id_new_label").fill("회사" if lang == "ko" else "Office")
    page.locator("#id_new_line1").fill("서울 마포구 월드컵로 1")
    page.locator("#id_new_line2").fill("3층")
    assert_accessible(page)
    assert axe(page) == []
    shot(page, f"new-address-01-map-{lang}")

    # Going on without a pin is stopped, and says why, by the map and above the button
    field = page.locator("[data-pin-field]")
    message = page.locator("[data-pin-message]")
    pay = page.get_by_role("button", name=GO_TO_PAYMENT[lang])
    pay.click()
    expect(message).to_have_text(field.get_attribute("data-missing"))
    expect(page.locator("[data-pin-blocked]")).to_have_text(field.get_attribute("data-blocked"))
    expect(page).to_have_url(f"{base}/orders/checkout/")

    # A tap at the map's far corner, outside the area: the message says so, the button still won't go
    box = address_map.bounding_box()
    address_map.click(position={"x": box["width"] - 10, "y": 10})
    expect(message).to_have_text(field.get_attribute("data-outside"))
    expect(address_map).to_have_class(re.compile(r"\boutside\b"))
    pay.click()
    expect(page.locator("[data-pin-blocked]")).to_be_visible()
    assert Order.objects.count() == 0
    shot(page, f"new-address-02-outside-{lang}")

    # "Use my location" moves the pin to the phone's place, inside the area
    page.locator("[data-use-location]").click()
    expect(message).to_have_text(field.get_attribute("data-inside"))
    expect(page.locator("[data-pin-blocked]")).to_have_count(0)
    assert abs(float(page.locator("#id_new_lat").input_value()) - inside[0]) < 1e-5
    assert_accessible(page)
    shot(page, f"new-address-03-inside-{lang}")

    # Then the order goes to the payment page, delivered to the new address
    pay.click()
    page.wait_for_url(f"{base}/sandbox/pay/**")
    order = Order.objects.get()
    assert order.fulfilment == Fulfilment.DELIVERY
    assert order.delivery_address == "서울 마포구 월드컵로 1 3층"
    address = Address.objects.get(customer=buyer.customer)
    assert abs(address.lat - inside[0]) < 1e-5 and address.is_default
    shot(page, f"new-address-04-payment-{lang}")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_without_javascript_the_coordinates_are_typed(
    live_server,  # noqa: F811
    new_page,
    shot,
    lang,
):
    # Given a vendor on shift and a customer whose phone runs no JavaScript
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    person(buyer)
    home = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, settings.SERVICE_AREA_RES)
    base = live_server.url
    page = new_page(**PHONE, locale="ko-KR", java_script_enabled=False)
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=username]").fill(buyer.email)
    page.locator("input[name=password]").fill(factories.PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.goto(f"{base}/vendors/{vendor.slug}/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    page.locator(f"form:has(#add-{shop.yakult.pk}) button[type=submit]").click()
    page.goto(f"{base}/orders/checkout/")
    expect(page.locator("html")).to_have_attribute("lang", lang)

    # When they choose delivery to a new address: no map, the latitude and longitude to type
    expect(page.locator("[data-pin-field]")).to_be_hidden()
    expect(page.locator("#id_new_lat")).to_be_visible()
    page.locator("input[name=fulfilment][value=delivery]").check()
    page.locator("#id_new_label").fill("집" if lang == "ko" else "Home")
    page.locator("#id_new_line1").fill("서울 마포구 1")
    # ... a place outside the area first: refused on the server, next to the coordinates
    page.locator("#id_new_lat").fill("35.1796")
    page.locator("#id_new_lng").fill("129.0756")
    page.get_by_role("button", name=GO_TO_PAYMENT[lang]).click()
    expect(page.locator("#id_new_lat_error")).to_be_visible()
    assert Order.objects.count() == 0
    shot(page, f"new-address-05-nojs-outside-{lang}")
    # ... then inside
    lat, lng = h3.cell_to_latlng(home)
    page.locator("#id_new_lat").fill(f"{lat:.6f}")
    page.locator("#id_new_lng").fill(f"{lng:.6f}")
    # Enter sends the form by its one submit button ("Go to payment"), as a phone's keyboard does;
    # a click was flaky here while the page still settled after the error (another element
    # "intercepted" the pointer in one CI run of two workers)
    page.locator("#id_new_lng").press("Enter")
    page.wait_for_url(f"{base}/sandbox/pay/**")
    assert Order.objects.get().fulfilment == Fulfilment.DELIVERY


@pytest.fixture
def geocoding_server(transactional_db, monkeypatch):
    """The ASGI server with a geocoder configured (a real class of the test suite's)."""
    monkeypatch.setenv("O2O_GEOCODER", "tests.customers.test_geocoding.MapoGeocoder")
    server = AsgiServer()
    monkeypatch.setenv("SANDBOX_BASE_URL", server.url)
    monkeypatch.setenv("PLATFORM_BASE_URL", server.url)
    monkeypatch.setenv("CACHE_PREFIX", f"o2o-address-browser-{uuid.uuid4().hex[:12]}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_with_a_geocoder_a_search_puts_the_pin(geocoding_server, browser, shot, lang):
    # Given a geocoder is configured, a vendor on shift and a customer at checkout
    vendor = factories.VendorFactory(name="망원 야쿠르트 카트")
    factories.CustomerProfileFactory(user=vendor.user)
    shop = open_shop(vendor)
    buyer = factories.CustomerProfileFactory().user
    person(buyer)
    base = geocoding_server.url
    context = browser.new_context(**PHONE, locale="ko-KR")
    context.route(lambda url: not url.startswith(base), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, base, buyer.email)
    page.goto(f"{base}/vendors/{vendor.slug}/")
    if lang == "en":
        page.get_by_role("group", name="언어").get_by_role("button", name="English").click()
    page.locator(f"form:has(#add-{shop.yakult.pk}) button[type=submit]").click()
    page.goto(f"{base}/orders/checkout/")
    page.locator("input[name=fulfilment][value=delivery]").check()

    # When they search for the place and choose the answer
    search = page.locator("[data-address-search]")
    expect(search).to_be_visible()
    search.locator("input").fill("망원동 1")
    search.locator("[data-search-go]").click()
    answer = search.get_by_role("button", name="서울 마포구 망원동 1")
    expect(answer).to_be_visible()
    shot(page, f"new-address-06-search-{lang}")
    answer.click()

    # Then the pin is there, inside the area, and the address line is filled in
    field = page.locator("[data-pin-field]")
    expect(page.locator("[data-pin-message]")).to_have_text(field.get_attribute("data-inside"))
    expect(page.locator("#id_new_line1")).to_have_value("서울 마포구 망원동 1")
    assert page.locator("#id_new_lat").input_value() == "37.556000"
    shot(page, f"new-address-07-search-pinned-{lang}")
    assert errors == []
    context.close()
