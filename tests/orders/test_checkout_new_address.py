"""A new delivery address at checkout: a pin that must lie in the vendor's area (the map draws the
area; the server applies the same rule through customers.services.address_create), a label, the
address line; what is required says so, what is optional says "(optional)". Every refusal is a
form error next to the field it is about, with nothing saved."""

import math

import h3
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation

from customers.models import Address
from customers.selectors import in_vendor_area, vendor_area_shapes
from customers.services import address_create
from orders.models import Order
from tests.orders.conftest import FAR, put_cart
from tests.orders.test_checkout import CHECKOUT, refused, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(client, shop, buyer):
    """The buyer logged in with 2 yakult in the basket."""
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 2})
    return client


def _inside(shop) -> tuple[float, float]:
    """The centre of one of the vendor's area cells."""
    cell = sorted(vendor_area_shapes(vendor_id=shop.vendor.pk), key=lambda c: c["cell"])[0]
    return h3.cell_to_latlng(cell["cell"])


def _just_outside(shop) -> tuple[float, float]:
    """The centre of a cell bordering the area: near, but not in it."""
    area = {c["cell"] for c in vendor_area_shapes(vendor_id=shop.vendor.pk)}
    ring = {n for c in area for n in h3.grid_disk(c, 1)} - area
    return h3.cell_to_latlng(sorted(ring)[0])


# --- the service --------------------------------------------------------------------------------


def test_the_area_is_the_vendors_cells_drawn_as_hexagons(shop):
    shapes = vendor_area_shapes(vendor_id=shop.vendor.pk)
    home = h3.latlng_to_cell(shop.vendor.home_lat, shop.vendor.home_lng, settings.SERVICE_AREA_RES)
    assert {s["cell"] for s in shapes} == set(h3.grid_disk(home, 1))
    assert all(len(s["boundary"]) == 6 for s in shapes)
    assert in_vendor_area(vendor_id=shop.vendor.pk, lat=_inside(shop)[0], lng=_inside(shop)[1])
    assert not in_vendor_area(vendor_id=shop.vendor.pk, lat=FAR[0], lng=FAR[1])


def test_an_address_for_a_vendor_inside_its_area_is_kept(shop, buyer):
    lat, lng = _inside(shop)
    address = address_create(
        customer=buyer.customer,
        label="회사",
        line1="서울 마포구 1",
        lat=lat,
        lng=lng,
        area_vendor_id=shop.vendor.pk,
    )
    assert address.pk and address.label == "회사"


@pytest.mark.parametrize("where", ["far", "next door"])
def test_an_address_for_a_vendor_outside_its_area_is_refused_on_the_location(shop, buyer, where):
    lat, lng = FAR if where == "far" else _just_outside(shop)
    before = Address.objects.count()
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        address_create(
            customer=buyer.customer,
            label="회사",
            line1="x",
            lat=lat,
            lng=lng,
            area_vendor_id=shop.vendor.pk,
        )
    assert caught.value.message_dict == {
        "lat": ["This place is outside the area this vendor delivers to."]
    }
    assert Address.objects.count() == before


def test_without_a_vendor_the_area_is_not_asked(shop, buyer):
    # An address book entry (not for one vendor's checkout) may be anywhere
    address = address_create(
        customer=buyer.customer, label="본가", line1="부산", lat=FAR[0], lng=FAR[1]
    )
    assert address.pk


@pytest.mark.parametrize(
    "lat, lng", [(91.0, 126.9), (37.5, 181.0), (math.nan, 126.9), (37.5, math.inf)]
)
def test_absurd_coordinates_are_refused_before_anything_is_written(shop, buyer, lat, lng):
    before = Address.objects.count()
    with pytest.raises(ValidationError):
        address_create(
            customer=buyer.customer,
            label="x",
            line1="x",
            lat=lat,
            lng=lng,
            area_vendor_id=shop.vendor.pk,
        )
    assert Address.objects.count() == before


# --- the checkout form and page -----------------------------------------------------------------


def test_a_pin_inside_the_area_places_the_order_with_the_new_address(ready, shop, buyer):
    lat, lng = _inside(shop)
    response = submit(
        ready,
        fulfilment="delivery",
        address="new",
        new_label="회사",
        new_line1="서울 마포구 월드컵로 1",
        new_line2="3층",
        new_lat=f"{lat:.6f}",
        new_lng=f"{lng:.6f}",
    )
    assert response.status_code == 302, response.context["form"].errors
    order = Order.objects.get()
    assert order.delivery_address == "서울 마포구 월드컵로 1 3층"
    assert Address.objects.filter(customer=buyer.customer, label="회사").exists()


def test_a_pin_next_to_the_area_is_a_pin_error_and_nothing_is_kept(ready, shop, buyer):
    stock = shop.stock()
    lat, lng = _just_outside(shop)
    response = submit(
        ready,
        fulfilment="delivery",
        address="new",
        new_label="회사",
        new_line1="x",
        new_lat=lat,
        new_lng=lng,
    )
    assert refused(response, shop, stock, "new_lat") == [
        "This place is outside the area this vendor delivers to."
    ]
    assert not Address.objects.filter(label="회사").exists()
    # ... shown next to the map, and the pin where it was put, to move it
    page = response.content.decode()
    assert "data-pin-errors" in page
    assert f'value="{lat}"' in page


def test_a_missing_pin_and_label_are_field_errors(ready, shop):
    stock = shop.stock()
    response = submit(ready, fulfilment="delivery", address="new", new_line1="서울 1")
    refused(response, shop, stock, "new_lat")
    errors = response.context["form"].errors
    assert errors["new_lat"] == ["Place the pin on the map where the order should go."]
    assert errors["new_label"] == ["Give the address a label, such as Home."]
    assert "new_line1" not in errors


@pytest.mark.parametrize(
    "lat, lng",
    [("91", "126.9"), ("37.5", "-999"), ("nan", "126.9"), ("1e400", "126.9"), ("abc", "x")],
)
def test_absurd_coordinates_are_field_errors_never_a_500(ready, shop, lat, lng):
    stock = shop.stock()
    response = submit(
        ready,
        fulfilment="delivery",
        address="new",
        new_label="x",
        new_line1="x",
        new_lat=lat,
        new_lng=lng,
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "new_lat" in errors or "new_lng" in errors
    assert Order.objects.count() == 0
    assert shop.stock() == stock


def test_the_new_address_fields_are_only_asked_for_a_new_address(ready, shop, buyer):
    # A saved address needs no label, line or pin
    address = buyer.customer.addresses.get()
    response = submit(ready, fulfilment="delivery", address=address.pk)
    assert response.status_code == 302, response.context["form"].errors


def test_the_page_draws_the_area_and_marks_what_is_required(ready, shop):
    page = ready.get(CHECKOUT)
    html = page.content.decode()
    # The vendor's area, as hexagons, for the map
    assert '<script id="address-area" type="application/json">' in html
    for shape in vendor_area_shapes(vendor_id=shop.vendor.pk):
        assert shape["cell"] in html
    # Label, address and pin are required: a marker, no "(optional)"; the detail line is optional
    for name in ("new_label", "new_line1", "new_lat", "new_lng"):
        label = _label_of(html, f"id_{name}")
        assert "required-mark" in label and "(optional)" not in label, label
    assert "(optional)" in _label_of(html, "id_new_line2")
    assert "(optional)" in _label_of(html, "id_note")
    # No geocoder configured: no search box (the pin always works)
    assert "data-address-search" not in html


def _label_of(html: str, field_id: str) -> str:
    start = html.index(f'<label for="{field_id}">')
    return html[start : html.index("</label>", start)]
