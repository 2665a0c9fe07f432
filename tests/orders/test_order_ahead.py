"""Ordering ahead from a cart that is off shift: checkout offers only what the rule allows
(vendors.selectors.Availability: delivery or pickup, for a window inside the published hours at
least ORDER_AHEAD_MIN_MINUTES ahead), and order_place refuses the rest with a clear message and
nothing saved, whatever the page sent."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import translation

from orders.forms import ASAP
from orders.models import Fulfilment, Order, Status
from orders.services import Receive
from tests.orders import factories as world
from tests.orders.conftest import put_cart
from tests.orders.test_checkout import CHECKOUT, hidden, refused, submit
from tracking.models import VendorPosition

SEOUL = ZoneInfo("Asia/Seoul")
# Monday 7 December 2026, 20:00 in Seoul: the vendor's hours are over for today
MONDAY_EVENING = datetime(2026, 12, 7, 20, 0, tzinfo=SEOUL)
TUESDAY_9 = datetime(2026, 12, 8, 9, 0, tzinfo=SEOUL)
HOURS = "mon-fri 07:00-19:00"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def off_shift(shop):
    VendorPosition.objects.filter(vendor=shop.vendor).update(on_shift=False)
    return shop


def place_at(shop, user, *, now, fulfilment="pickup", start=None, hours=1):
    where = {
        "pickup": {"pickup_point_id": shop.point.pk},
        "delivery": {"address_id": user.customer.addresses.values_list("pk", flat=True).first()},
        "meet": {"meet_cell": shop.cell},
        "at_cart": {},
    }[fulfilment]
    start = start or TUESDAY_9
    return world.place(
        customer=user.customer,
        vendor=shop.vendor,
        items=[(shop.yakult, 2)],
        now=now,
        receive=Receive(
            fulfilment=fulfilment,
            window_start=start,
            window_end=start + timedelta(hours=hours),
            **where,
        ),
    )


# --- order_place: the server refuses what the rule refuses --------------------------------------


@pytest.mark.django_db
@override_settings(VENDOR_HOURS=HOURS, ORDER_AHEAD_MIN_MINUTES=60)
@pytest.mark.parametrize("fulfilment", ["pickup", "delivery"])
def test_an_order_ahead_inside_the_hours_is_placed_and_reserves_todays_stock(
    off_shift, buyer, fulfilment
):
    order = place_at(off_shift, buyer, now=MONDAY_EVENING, fulfilment=fulfilment)
    assert order.status == Status.PENDING_PAYMENT
    assert order.window_start == TUESDAY_9
    # The stock on the cart now is what is reserved (kept as it was before ordering ahead)
    assert off_shift.stock()[off_shift.yakult.sku] == 8


@pytest.mark.django_db
@override_settings(VENDOR_HOURS=HOURS, ORDER_AHEAD_MIN_MINUTES=60)
@pytest.mark.parametrize(
    ("fulfilment", "start", "field", "message"),
    [
        ("meet", TUESDAY_9, "fulfilment", "This vendor is off shift now: order ahead"),
        ("at_cart", TUESDAY_9, "fulfilment", "This vendor is off shift now: order ahead"),
        # tonight, after the hours
        ("pickup", MONDAY_EVENING + timedelta(hours=1), "window", "within the vendor's hours"),
        # across the end of Tuesday's hours
        ("delivery", TUESDAY_9 + timedelta(hours=9, minutes=30), "window", "within the vendor's"),
    ],
)
def test_off_shift_refusals_are_clear_and_save_nothing(
    off_shift, buyer, fulfilment, start, field, message
):
    before = off_shift.stock()
    with pytest.raises(ValidationError) as caught:
        place_at(off_shift, buyer, now=MONDAY_EVENING, fulfilment=fulfilment, start=start)
    assert message in " ".join(caught.value.message_dict[field])
    assert Order.objects.count() == 0
    assert off_shift.stock() == before


@pytest.mark.django_db
@override_settings(VENDOR_HOURS=HOURS, ORDER_AHEAD_MIN_MINUTES=60)
def test_within_the_hours_off_shift_a_window_must_start_the_lead_ahead(off_shift, buyer):
    now = TUESDAY_9
    with pytest.raises(ValidationError) as caught:
        place_at(off_shift, buyer, now=now, start=now + timedelta(minutes=30))
    assert "at least 60 minutes from now" in caught.value.message_dict["window"][0]
    assert place_at(off_shift, buyer, now=now, start=now + timedelta(minutes=60)).pk


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="")
def test_off_shift_without_hours_takes_nothing(off_shift, buyer):
    with pytest.raises(ValidationError) as caught:
        place_at(off_shift, buyer, now=MONDAY_EVENING)
    assert caught.value.messages == [
        "This vendor is off shift now and has published no hours. Try again later."
    ]


@pytest.mark.django_db
@override_settings(VENDOR_HOURS=HOURS)
def test_on_shift_every_way_and_window_as_before(shop, buyer):
    # On shift at 20:00 (after the published hours): the vendor is there, and decides
    order = place_at(shop, buyer, now=MONDAY_EVENING, fulfilment="meet", start=MONDAY_EVENING)
    assert order.fulfilment == Fulfilment.MEET


# --- checkout: offers only what will be accepted ------------------------------------------------


@pytest.fixture
def ahead(client, off_shift, buyer):
    client.force_login(buyer)
    put_cart(client, off_shift.vendor, {off_shift.yakult.pk: 2})
    return client


def _windows(form):
    return [
        value
        for _group, options in form.fields["window"].widget.choices
        if isinstance(options, list)
        for value, _label in options
    ]


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="mon-sun 00:00-23:59", ORDER_AHEAD_MIN_MINUTES=60)
def test_checkout_off_shift_offers_delivery_and_pickup_later_only(ahead, off_shift):
    page = ahead.get(CHECKOUT)
    form = page.context["form"]
    html = page.content.decode()
    # Then it says so at the top, offers no meeting and no "as soon as possible"
    assert "This cart is off shift now." in html
    assert [c for c, _label in form.fields["fulfilment"].choices] == ["delivery", "pickup"]
    assert ASAP not in [c[0] for c in form.fields["window"].widget.choices]
    windows = _windows(form)
    assert windows  # tomorrow at least
    # And an order ahead for the first window offered goes to payment
    response = ahead.post(
        CHECKOUT,
        {
            **hidden(page),
            "fulfilment": "pickup",
            "pickup_point": off_shift.point.pk,
            "window": windows[0],
        },
    )
    assert response.status_code == 302, response.context and response.context["form"].errors
    order = Order.objects.get()
    assert order.fulfilment == Fulfilment.PICKUP
    assert order.window_start.astimezone(SEOUL).strftime("%Y-%m-%dT%H:%M") == windows[0]


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="mon-sun 00:00-23:59")
def test_checkout_off_shift_refuses_as_soon_as_possible_sent_anyway(ahead, off_shift):
    stock = off_shift.stock()
    response = submit(ahead, fulfilment="pickup", pickup_point=off_shift.point.pk, window=ASAP)
    assert "within the vendor's hours" in refused(response, off_shift, stock, "window")[0]


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="")
def test_basket_of_an_off_shift_cart_without_hours_says_so_and_has_no_checkout(ahead):
    html = ahead.get("/orders/cart/").content.decode()
    assert "This cart is off shift now." in html
    assert "It has published no hours." in html
    assert 'href="/orders/checkout/"' not in html


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="mon-sun 00:00-23:59")
def test_basket_of_an_off_shift_cart_with_hours_offers_checkout(ahead):
    html = ahead.get("/orders/cart/").content.decode()
    assert "You can order ahead" in html
    assert 'href="/orders/checkout/"' in html


# --- a vendor's own hours, and how long an order ahead waits for its vendor ---------------------


@pytest.mark.django_db
@override_settings(VENDOR_HOURS="")
def test_a_vendors_own_hours_make_the_cart_orderable_ahead(off_shift, buyer):
    # Given no platform default hours, the cart takes no order ahead ...
    from vendors.models import VendorHours
    from vendors.selectors import vendor_availability

    assert not vendor_availability(vendor_id=off_shift.vendor.pk, now=MONDAY_EVENING).takes_orders
    with pytest.raises(ValidationError):
        place_at(off_shift, buyer, now=MONDAY_EVENING)
    # ... until the vendor publishes Tuesday 07:00-19:00 as their own
    VendorHours.objects.create(
        vendor=off_shift.vendor,
        weekday=1,
        opens=datetime(2026, 1, 1, 7).time(),
        closes=datetime(2026, 1, 1, 19).time(),
    )
    availability = vendor_availability(vendor_id=off_shift.vendor.pk, now=MONDAY_EVENING)
    assert availability.next_hours == (
        datetime(2026, 12, 8, 7, 0, tzinfo=SEOUL),
        datetime(2026, 12, 8, 19, 0, tzinfo=SEOUL),
    )
    assert place_at(off_shift, buyer, now=MONDAY_EVENING).status == Status.PENDING_PAYMENT


@pytest.mark.django_db
@override_settings(VENDOR_HOURS=HOURS, ORDER_AHEAD_MIN_MINUTES=60, ORDER_ACCEPT_MINUTES=10)
def test_an_order_ahead_waits_for_the_vendors_next_hours_not_ten_minutes(
    off_shift, buyer, monkeypatch
):
    from orders.services import order_payment_settled

    # Given an order ahead placed on Monday evening for Tuesday 09:00
    order = place_at(off_shift, buyer, now=MONDAY_EVENING)
    # When its payment is authorised that evening
    monkeypatch.setattr("django.utils.timezone.now", lambda: MONDAY_EVENING)
    settled = order_payment_settled(order_id=order.pk, payment_status="authorised")
    # Then the vendor has until ten minutes into Tuesday's hours to accept it
    assert settled.status == Status.PLACED
    assert settled.expires_at == datetime(2026, 12, 8, 7, 10, tzinfo=SEOUL)


@pytest.mark.django_db
@override_settings(ORDER_ACCEPT_MINUTES=10)
def test_an_order_for_a_cart_on_shift_waits_ten_minutes(shop, buyer, monkeypatch):
    from orders.services import order_payment_settled

    order = place_at(shop, buyer, now=MONDAY_EVENING, fulfilment="at_cart")
    monkeypatch.setattr("django.utils.timezone.now", lambda: MONDAY_EVENING)
    settled = order_payment_settled(order_id=order.pk, payment_status="authorised")
    assert settled.expires_at == MONDAY_EVENING + timedelta(minutes=10)
