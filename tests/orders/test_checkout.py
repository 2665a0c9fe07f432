"""Checkout refuses every broken rule of each way to receive with a form error (on the field it is
about where there is one), never a 500, and leaves nothing behind: no order, no address, the stock
as it was. Running out of stock sends the customer back to the basket with the message."""

import re

import h3
import pytest
from django.conf import settings
from django.utils import timezone

from customers.models import Address
from orders.models import Order
from tests.factories import AddressFactory, OpeningHoursFactory, PickupPointFactory
from tests.orders.conftest import FAR, messages_of, put_cart
from tracking.models import VendorPosition
from vendors.models import PickupPoint, Product, Stock, Vendor

CHECKOUT = "/orders/checkout/"


@pytest.fixture
def ready(client, shop, buyer):
    """The buyer logged in with 2 yakult and 1 latte in the basket."""
    client.force_login(buyer)
    put_cart(client, shop.vendor, {shop.yakult.pk: 2, shop.latte.pk: 1})
    return client


HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden(page) -> dict[str, str]:
    """The hidden fields of a rendered page, which a browser sends back with the form."""
    return dict(HIDDEN.findall(page.content.decode()))


def submit(client, **fields):
    """Open checkout (as a browser would, for its token and the amounts it shows) and send it
    with `fields`."""
    page = client.get(CHECKOUT)
    assert page.status_code == 200
    data = {**hidden(page), "window": "asap"}
    data.update({k: v for k, v in fields.items() if v is not None})
    return client.post(CHECKOUT, data)


def refused(response, shop, stock_before, field=None) -> list[str]:
    """The checkout page again, with the error (on `field`, or above the form), nothing saved."""
    assert response.status_code == 200, response
    form = response.context["form"]
    errors = form.errors.get(field or "__all__")
    assert errors, form.errors
    assert Order.objects.count() == 0
    assert shop.stock() == stock_before
    return list(errors)


@pytest.mark.django_db
def test_anonymous_checkout_asks_to_log_in(client, shop):
    put_cart(client, shop.vendor, {shop.yakult.pk: 1})
    response = client.get(CHECKOUT)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/orders/checkout/"


@pytest.mark.django_db
def test_the_page_offers_the_vendors_area_and_neighbours_points_and_addresses(ready, shop, buyer):
    # Given a far pickup point and an inactive one besides the shop's open point
    PickupPointFactory(lat=FAR[0], lng=FAR[1])
    PickupPointFactory(is_active=False)
    # And the vendor's exact position (private) somewhere in their public cell
    VendorPosition.objects.filter(vendor=shop.vendor).update(lat=37.5561234, lng=126.9064321)
    # When the buyer opens checkout twice
    first, second = ready.get(CHECKOUT), ready.get(CHECKOUT)
    form = first.context["form"]
    # Then the meeting areas are the vendor's public cell and its six neighbours, the vendor's first
    cells = [c for c, _label in form.fields["meet_cell"].widget.choices]
    assert cells[0] == shop.cell
    assert set(cells) == set(h3.grid_disk(shop.cell, 1))
    # And only the active point near the vendor is offered, and the buyer's address (and "new")
    assert [p for p, _label in form.fields["pickup_point"].widget.choices] == [shop.point.pk]
    address = buyer.customer.addresses.get()
    assert [a for a, _label in form.fields["address"].widget.choices] == [str(address.pk), "new"]
    # And each rendering carries its own checkout token, in a hidden field
    assert form.initial["checkout_token"] != second.context["form"].initial["checkout_token"]
    html = first.content.decode()
    assert f'name="checkout_token" value="{form.initial["checkout_token"]}"' in html
    assert 'type="hidden"' in html
    # And no exact vendor coordinate is on the page, only cell outlines
    assert "37.556123" not in html and "126.906432" not in html


@pytest.mark.django_db
def test_meeting_is_not_offered_when_the_vendor_is_off_the_map(ready, shop):
    VendorPosition.objects.filter(vendor=shop.vendor).update(public_cell="")
    page = ready.get(CHECKOUT)
    assert page.context["meet_cells"] == []
    assert page.context["form"].initial["fulfilment"] == "pickup"
    assert "you can't meet them" in page.content.decode()


# --- each way to receive, refused --------------------------------------------------------------


@pytest.mark.django_db
def test_delivery_outside_the_area_is_an_address_error(ready, shop, buyer):
    stock = shop.stock()
    far = AddressFactory(customer=buyer.customer, label="Busan", lat=FAR[0], lng=FAR[1])
    response = submit(ready, fulfilment="delivery", address=far.pk)
    assert refused(response, shop, stock, "address") == [
        "This address is outside the area this vendor delivers to."
    ]


@pytest.mark.django_db
def test_delivery_to_someone_elses_address_is_an_address_error(ready, shop, stranger):
    stock = shop.stock()
    theirs = AddressFactory(customer=stranger.customer)
    response = submit(ready, fulfilment="delivery", address=theirs.pk)
    assert refused(response, shop, stock, "address") == ["Choose one of your addresses."]


@pytest.mark.django_db
def test_a_new_address_outside_the_area_is_not_kept_either(ready, shop, buyer):
    # Given the buyer types a new address in Busan at checkout
    stock = shop.stock()
    response = submit(
        ready,
        fulfilment="delivery",
        address="new",
        new_label="Office",
        new_line1="부산 해운대구 1",
        new_lat=FAR[0],
        new_lng=FAR[1],
    )
    # Then the address is refused for the area (next to the map's pin), and not saved
    assert refused(response, shop, stock, "new_lat")
    assert list(
        Address.objects.filter(customer=buyer.customer).values_list("label", flat=True)
    ) == ["집"]


@pytest.mark.django_db
def test_a_new_address_needs_its_fields(ready, shop):
    stock = shop.stock()
    response = submit(ready, fulfilment="delivery", address="new", new_line1="", new_lat="")
    refused(response, shop, stock, "new_line1")
    assert response.context["form"].errors["new_lat"]
    assert response.context["form"].errors["new_lng"]


@pytest.mark.django_db
def test_a_new_address_with_an_impossible_latitude_is_a_field_error(ready, shop):
    stock = shop.stock()
    response = submit(
        ready, fulfilment="delivery", address="new", new_line1="x", new_lat=91, new_lng=126.9
    )
    refused(response, shop, stock, "new_lat")


@pytest.mark.django_db
def test_a_pickup_point_closed_at_that_time_is_a_point_error(ready, shop):
    # Given a point near the vendor open only on another weekday than today
    stock = shop.stock()
    other_day = (timezone.localtime().weekday() + 3) % 7
    closed = PickupPointFactory()
    OpeningHoursFactory(point=closed, weekday=other_day, opens="00:00", closes="23:59")
    response = submit(ready, fulfilment="pickup", pickup_point=closed.pk)
    assert refused(response, shop, stock, "pickup_point") == [
        "The pickup point is closed at that time. Choose another time."
    ]


@pytest.mark.django_db
def test_an_inactive_or_unknown_pickup_point_is_a_point_error(ready, shop):
    stock = shop.stock()
    PickupPoint.objects.filter(pk=shop.point.pk).update(is_active=False)
    for point in (shop.point.pk, 999999, None):
        response = submit(ready, fulfilment="pickup", pickup_point=point)
        assert refused(response, shop, stock, "pickup_point") == ["Choose an open pickup point."]


@pytest.mark.django_db
def test_a_pickup_point_far_from_the_vendor_is_a_point_error(ready, shop):
    stock = shop.stock()
    far = PickupPointFactory(lat=FAR[0], lng=FAR[1])
    response = submit(ready, fulfilment="pickup", pickup_point=far.pk)
    assert refused(response, shop, stock, "pickup_point") == [
        "This pickup point is too far from the vendor."
    ]


@pytest.mark.django_db
def test_a_meeting_area_too_far_from_the_vendor_is_a_meeting_error(ready, shop):
    stock = shop.stock()
    too_far = sorted(h3.grid_ring(shop.cell, settings.MEET_MAX_RINGS + 1))[0]
    response = submit(ready, fulfilment="meet", meet_cell=too_far)
    assert refused(response, shop, stock, "meet_cell") == [
        "Choose a meeting point nearer the vendor."
    ]


@pytest.mark.parametrize("cell", ["", "not-a-cell", "8830e1ca29fffff"])  # none, junk, wrong res
@pytest.mark.django_db
def test_a_missing_or_malformed_meeting_area_is_a_meeting_error(ready, shop, cell):
    stock = shop.stock()
    response = submit(ready, fulfilment="meet", meet_cell=cell)
    assert refused(response, shop, stock, "meet_cell") == ["Choose a meeting point on the map."]


@pytest.mark.django_db
def test_a_vendor_off_shift_takes_no_orders(ready, shop):
    stock = shop.stock()
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    response = submit(ready, fulfilment="pickup", pickup_point=shop.point.pk)
    assert refused(response, shop, stock) == [
        "This vendor is off shift now and has published no hours. Try again later."
    ]


@pytest.mark.django_db
def test_no_way_to_receive_and_a_bad_window_are_field_errors(ready, shop):
    stock = shop.stock()
    response = submit(ready, window="tomorrow-ish")
    refused(response, shop, stock, "fulfilment")
    assert response.context["form"].errors["window"] == ["Choose a time window."]


@pytest.mark.django_db
def test_a_window_in_the_past_is_refused(ready, shop):
    stock = shop.stock()
    response = submit(
        ready, fulfilment="pickup", pickup_point=shop.point.pk, window="2020-01-01T10:00"
    )
    assert refused(response, shop, stock) == [
        "Choose a time window between now and the day after tomorrow."
    ]


@pytest.mark.django_db
def test_a_window_at_the_end_of_the_calendar_is_a_window_error(ready, shop):
    # Given a window whose hour would end after 9999-12-31 (a hand-made post: no page offers it)
    stock = shop.stock()
    # When the buyer checks out with it
    response = submit(
        ready, fulfilment="pickup", pickup_point=shop.point.pk, window="9999-12-31T23:30"
    )
    # Then it is the window's error on the page (not a 500), and nothing is ordered
    assert refused(response, shop, stock, "window") == ["Choose a time window."]


@pytest.mark.parametrize("address", ["²", "①", "١"])  # digits to str.isdigit(), not to int()
@pytest.mark.django_db
def test_an_address_of_unicode_digits_is_an_address_error(ready, shop, address):
    # Given an address choice that is a digit only outside ASCII
    stock = shop.stock()
    # When the buyer checks out to it
    response = submit(ready, fulfilment="delivery", address=address)
    # Then it is the address's error (not a 500), and nothing is ordered
    assert refused(response, shop, stock, "address") == ["Choose one of your addresses."]


# --- the basket, refused -------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_empty_basket_goes_back_to_the_basket(client, shop, buyer):
    client.force_login(buyer)
    stock = shop.stock()
    for method in (client.get, client.post):
        response = method(CHECKOUT, follow=True)
        assert response.redirect_chain == [("/orders/cart/", 302)]
        assert messages_of(response) == ["Your basket is empty."]
    assert Order.objects.count() == 0
    assert shop.stock() == stock


@pytest.mark.django_db
def test_a_product_no_longer_on_sale_is_refused(ready, shop):
    stock = shop.stock()
    Product.objects.filter(pk=shop.latte.pk).update(is_active=False)
    response = submit(ready, fulfilment="pickup", pickup_point=shop.point.pk)
    assert refused(response, shop, stock) == ["A product in the cart is no longer on sale."]


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (0, "Quantities must be at least 1."),
        (-3, "Quantities must be at least 1."),
        (
            settings.ORDER_MAX_QUANTITY + 1,
            f"At most {settings.ORDER_MAX_QUANTITY} of one product per order.",
        ),
        (10**9, f"At most {settings.ORDER_MAX_QUANTITY} of one product per order."),
    ],
)
@pytest.mark.django_db
def test_a_tampered_quantity_is_refused(client, shop, buyer, quantity, message):
    # Given a session basket holding a quantity the basket page would never have let in
    client.force_login(buyer)
    Stock.objects.filter(product=shop.yakult).update(quantity=10**9 + 5)
    stock = shop.stock()
    put_cart(client, shop.vendor, {shop.yakult.pk: quantity})
    response = submit(client, fulfilment="pickup", pickup_point=shop.point.pk)
    assert refused(response, shop, stock) == [message]


@pytest.mark.django_db
def test_more_than_the_cart_has_now_goes_back_to_the_basket_with_the_message(ready, shop):
    # Given the vendor sold latte at the cart since it went in the basket (none left)
    Stock.objects.filter(product=shop.latte).update(quantity=0)
    stock = shop.stock()
    response = submit(ready, fulfilment="pickup", pickup_point=shop.point.pk)
    # Then the customer is back at the basket, told what ran out (named in the page's language,
    # English here), and nothing is reserved
    assert response.status_code == 302
    assert response["Location"] == "/orders/cart/"
    assert messages_of(response) == [f"{shop.latte.name_en} is sold out."]
    assert Order.objects.count() == 0
    assert shop.stock() == stock


# --- the prices the page showed ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_carries_the_amounts_it_shows(ready, shop):
    # When the buyer opens checkout with 2 yakult at ₩1,200 and 1 latte at ₩2,500
    page = ready.get(CHECKOUT)
    # Then the items total the page shows and the delivery fee go back with the form, hidden
    assert page.context["subtotal"] == 4900
    fields = hidden(page)
    assert (fields["expected_subtotal"], fields["expected_delivery_fee"]) == ("4900", "1000")


@pytest.mark.parametrize("new_price", [9000, 1000])  # raised, and lowered: both are news
@pytest.mark.django_db
def test_a_price_changed_after_the_page_was_drawn_is_not_charged_silently(ready, shop, new_price):
    # Given the buyer on the checkout page: 2 yakult at ₩1,200 and 1 latte at ₩2,500 = ₩4,900
    page = ready.get(CHECKOUT)
    assert page.context["subtotal"] == 4900
    stock = shop.stock()
    # When the vendor changes the yakult's price before the buyer presses "Go to payment"
    Product.objects.filter(pk=shop.yakult.pk).update(price=new_price)
    data = {**hidden(page), "window": "asap", "fulfilment": "pickup", "pickup_point": shop.point.pk}
    response = ready.post(CHECKOUT, data)
    # Then nothing is ordered nor reserved, and the page says so with the new total
    new_total = 2 * new_price + 2500
    assert refused(response, shop, stock) == [
        f"The prices changed since you opened this page: the total is now ₩{new_total:,}. "
        "Check your order and send it again."
    ]
    # And the page shows the new prices, and carries them for the next submit
    assert response.context["subtotal"] == new_total
    assert hidden(response)["expected_subtotal"] == str(new_total)
    assert f"₩{new_total:,}" in response.content.decode()
    # When the buyer sends the page they now see (same checkout)
    again = ready.post(CHECKOUT, {**data, **hidden(response)})
    # Then the order is placed at the total they saw
    assert again.status_code == 302
    assert list(Order.objects.values_list("subtotal", "total")) == [(new_total, new_total)]


@pytest.mark.django_db
def test_a_delivery_fee_changed_after_the_page_was_drawn_is_not_charged_silently(
    ready, shop, buyer
):
    # Given the buyer on the checkout page, the delivery fee ₩1,000 (₩4,900 of items)
    page = ready.get(CHECKOUT)
    stock = shop.stock()
    address = buyer.customer.addresses.get()
    # When the vendor raises the fee to ₩3,000 before the buyer sends the page, for delivery
    Vendor.objects.filter(pk=shop.vendor.pk).update(delivery_fee=3000)
    data = {**hidden(page), "window": "asap", "fulfilment": "delivery", "address": address.pk}
    response = ready.post(CHECKOUT, data)
    # Then nothing is ordered, and the new total (items and fee) is given
    assert refused(response, shop, stock) == [
        "The prices changed since you opened this page: the total is now ₩7,900. "
        "Check your order and send it again."
    ]
    assert hidden(response)["expected_delivery_fee"] == "3000"
    # When the buyer sends the page they now see
    again = ready.post(CHECKOUT, {**data, **hidden(response)})
    # Then the order is placed with the fee they saw
    assert again.status_code == 302
    assert list(Order.objects.values_list("subtotal", "delivery_fee", "total")) == [
        (4900, 3000, 7900)
    ]


@pytest.mark.django_db
def test_the_delivery_fee_counts_only_for_delivery(ready, shop):
    # Given the buyer on the checkout page; the vendor changes the delivery fee meanwhile
    page = ready.get(CHECKOUT)
    Vendor.objects.filter(pk=shop.vendor.pk).update(delivery_fee=3000)
    # When the buyer picks the order up at a point (no fee)
    data = {**hidden(page), "window": "asap", "fulfilment": "pickup", "pickup_point": shop.point.pk}
    response = ready.post(CHECKOUT, data)
    # Then it is placed at the items' total the page showed
    assert response.status_code == 302
    assert list(Order.objects.values_list("total", flat=True)) == [4900]


@pytest.mark.django_db
def test_a_placed_checkout_sent_again_after_a_price_change_is_still_that_order(ready, shop):
    # Given an order placed from the checkout page at ₩4,900
    page = ready.get(CHECKOUT)
    data = {**hidden(page), "window": "asap", "fulfilment": "pickup", "pickup_point": shop.point.pk}
    first = ready.post(CHECKOUT, data)
    assert first.status_code == 302
    order = Order.objects.get()
    stock = shop.stock()
    # When the price changes and the same form is sent again (a double tap, a reload)
    Product.objects.filter(pk=shop.yakult.pk).update(price=9000)
    again = ready.post(CHECKOUT, data)
    # Then it goes where the first did, for the same order: no error, no second order
    assert (again.status_code, again["Location"]) == (302, first["Location"])
    assert list(Order.objects.values_list("pk", "total")) == [(order.pk, 4900)]
    assert shop.stock() == stock


@pytest.mark.django_db
def test_a_page_drawn_before_the_check_existed_is_placed_at_current_prices(ready, shop):
    # Given a checkout page sent without the amounts (drawn before they were added to it)
    page = ready.get(CHECKOUT)
    Product.objects.filter(pk=shop.yakult.pk).update(price=9000)
    data = {
        "checkout_token": hidden(page)["checkout_token"],
        "window": "asap",
        "fulfilment": "pickup",
        "pickup_point": shop.point.pk,
    }
    # When it is sent, then it is placed as before: at the prices of now
    assert ready.post(CHECKOUT, data).status_code == 302
    assert list(Order.objects.values_list("total", flat=True)) == [20500]
