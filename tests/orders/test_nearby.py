"""The last few hundred metres of a meeting: the customer of an accepted meet order sees the vendor
at street level (snapped to a grid, never the exact fix) while the vendor is within
ORDER_NEARBY_RADIUS_M of the meeting point, and never after the handover. Nobody else gets it:
not another customer, not the vendor's other customers, not anonymous, not through another order,
not through the order page's HTML, the list API or the vendor's API. The order socket pushes it
live and says when it ends; the order API gives the same, by the same rule."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from o2o.geo import distance_m
from orders.models import Order
from orders.selectors import snap_to_grid, vendor_nearby_state
from orders.services import (
    order_accept,
    order_depart,
    order_hand_over,
    order_ready,
    order_staff_cancel,
)
from tests.factories import StaffFactory
from tests.orders.conftest import placed
from tests.tracking.ws import communicator, refusal, session_cookie
from tracking.models import Presence, VendorPosition

# The vendor's exact fix: inside the meeting area, with digits no snapped value will share.
EXACT = (37.556123, 126.906789)


def put_vendor(shop, lat: float, lng: float, **fields) -> None:
    VendorPosition.objects.filter(vendor=shop.vendor).update(
        lat=lat, lng=lng, last_ping_at=timezone.now(), **fields
    )


def offset(point: tuple[float, float], north_m: float) -> tuple[float, float]:
    return point[0] + north_m / 111_320.0, point[1]


def seen(order: Order, user) -> dict | None:
    return vendor_nearby_state(order_id=order.pk, user_id=getattr(user, "pk", None))[0]


def accepted_meet(shop, user) -> Order:
    order = placed(shop, user, fulfilment="meet")
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    return order


def assert_street_level(payload: dict) -> None:
    """Snapped: near the exact fix (within the grid's half diagonal), never the fix itself."""
    assert (payload["lat"], payload["lng"]) != EXACT
    assert "123" not in f"{payload['lat']:.6f}" and "789" not in f"{payload['lng']:.6f}"
    off = distance_m(payload["lat"], payload["lng"], *EXACT)
    assert off <= settings.ORDER_NEARBY_PRECISION_M * 0.75
    assert payload["precision_m"] == settings.ORDER_NEARBY_PRECISION_M
    assert payload["distance_m"] % 10 == 0


@pytest.mark.django_db
def test_only_the_owner_of_an_eligible_order_sees_the_vendor_and_only_within_the_radius(
    shop, buyer, stranger
):
    # Given a meet order paid but not accepted yet, and the vendor's exact fix near the meeting
    order = placed(shop, buyer, fulfilment="meet")
    put_vendor(shop, *EXACT)
    assert seen(order, buyer) is None
    # When the vendor accepts, the customer sees the vendor at street level
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    payload = seen(order, buyer)
    assert payload is not None
    assert_street_level(payload)
    # ... and nobody else does: another customer, the vendor, staff, anonymous
    for other in (stranger, shop.vendor.user, StaffFactory(), None):
        assert seen(order, other) is None
    # ... nor through another order of the same customer that is not a meeting
    pickup = placed(shop, buyer)
    order_accept(order_id=pickup.pk, vendor=shop.vendor, eta_minutes=10)
    assert seen(pickup, buyer) is None
    # When the vendor is farther than the radius from the meeting point, nothing
    far = offset(EXACT, settings.ORDER_NEARBY_RADIUS_M + 400)
    put_vendor(shop, *far)
    assert vendor_nearby_state(order_id=order.pk, user_id=buyer.pk) == (None, False)
    # ... back within it, on the way, then arrived: shown again
    put_vendor(shop, *EXACT)
    order_depart(order_id=order.pk, vendor=shop.vendor)
    assert_street_level(seen(order, buyer))
    # ... but not from an old fix, nor when the vendor is off shift
    VendorPosition.objects.filter(vendor=shop.vendor).update(
        last_ping_at=timezone.now() - timedelta(seconds=settings.ORDER_NEARBY_MAX_AGE_S + 5)
    )
    assert seen(order, buyer) is None
    put_vendor(shop, *EXACT, on_shift=False)
    assert seen(order, buyer) is None
    put_vendor(shop, *EXACT, on_shift=True, presence=Presence.MOVING)
    order_ready(order_id=order.pk, vendor=shop.vendor)
    assert_street_level(seen(order, buyer))
    # When it is handed over, it stops for good
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    assert vendor_nearby_state(order_id=order.pk, user_id=buyer.pk) == (None, True)


@pytest.mark.django_db
def test_a_cancelled_meet_order_shows_nothing_any_more(shop, buyer, staff):
    order = accepted_meet(shop, buyer)
    put_vendor(shop, *EXACT)
    assert seen(order, buyer) is not None
    order_staff_cancel(order_id=order.pk, actor=staff, reason="고객 요청")
    assert vendor_nearby_state(order_id=order.pk, user_id=buyer.pk) == (None, True)


@pytest.mark.parametrize("point", [(37.5, 127.0), (37.556123, 126.906789), (-33.9, 151.2)])
@pytest.mark.parametrize("metres", [10, 15, 20])
def test_snapping_moves_a_point_by_at_most_the_grids_half_diagonal(point, metres):
    snapped = snap_to_grid(*point, metres)
    assert distance_m(*snapped, *point) <= metres * 0.75
    # Every point of a grid square lands on the same corner: nothing finer leaks
    assert snap_to_grid(*snapped, metres) == snapped


@pytest.mark.django_db
def test_the_api_gives_the_same_rule_and_nothing_else_carries_the_fix(client, shop, buyer):
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    order = accepted_meet(shop, buyer)
    put_vendor(shop, *EXACT)
    api.force_authenticate(buyer)
    detail = api.get(f"/api/orders/{order.pk}/").json()
    assert detail["vendor_nearby"] == seen(order, buyer)
    assert_street_level(detail["vendor_nearby"])
    # Farther than the radius: null
    put_vendor(shop, *offset(EXACT, settings.ORDER_NEARBY_RADIUS_M + 400))
    assert api.get(f"/api/orders/{order.pk}/").json()["vendor_nearby"] is None
    put_vendor(shop, *EXACT)
    # The exact fix is in no answer or page the customer or the vendor gets
    exact = ("37.556123", "126.906789")
    answers = [
        api.get("/api/orders/").content,
        api.get(f"/api/orders/{order.pk}/").content,
    ]
    client.force_login(buyer)
    answers += [
        client.get(f"/orders/{order.pk}/").content,
        client.get(f"/orders/{order.pk}/status/").content,
    ]
    api.force_authenticate(shop.vendor.user)
    vendor_view = api.get("/api/vendor/orders/").json()["results"][0]
    assert "vendor_nearby" not in vendor_view
    for body in answers:
        assert not any(digits in body.decode() for digits in exact)
    # And after the handover: null
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    api.force_authenticate(buyer)
    assert api.get(f"/api/orders/{order.pk}/").json()["vendor_nearby"] is None


# --- live, over the order socket ----------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_order_socket_pushes_the_position_to_its_customer_only_and_stops_at_handover(
    shop, buyer, stranger, settings
):
    settings.ORDER_NEARBY_POLL_S = 0.2
    order = accepted_meet(shop, buyer)
    put_vendor(shop, *EXACT)
    staff = StaffFactory()
    cookie = {u: session_cookie(u) for u in (buyer, stranger, shop.vendor.user, staff)}
    path = f"/ws/orders/{order.pk}/"

    async def open_as(user):
        client = communicator(path, cookie[user])
        connected, code = await client.connect(timeout=5)
        return connected, code, client

    async def main():
        # Another customer is not even let in
        assert await refusal(communicator(path, cookie[stranger])) == 4404
        # The vendor and staff follow the order, but never get a position over it
        _ok, _c, vendor_page = await open_as(shop.vendor.user)
        _ok, _c, staff_page = await open_as(staff)
        # The customer gets it at once, at street level
        _ok, _c, page = await open_as(buyer)
        first = await page.receive_json_from(timeout=5)
        assert first["type"] == "nearby_position"
        assert_street_level(first)
        # When the vendor goes beyond the radius: the end, then nothing while far
        await database_sync_to_async(put_vendor)(
            shop, *offset(EXACT, settings.ORDER_NEARBY_RADIUS_M + 400)
        )
        assert await page.receive_json_from(timeout=5) == {"type": "nearby_position_end"}
        assert await page.receive_nothing(0.6)
        # ... and back: shown again
        await database_sync_to_async(put_vendor)(shop, *EXACT)
        again = await page.receive_json_from(timeout=5)
        assert again["type"] == "nearby_position"
        # When the vendor hands over: the change, and the end, and then nothing more
        await database_sync_to_async(order_hand_over)(
            order_id=order.pk, vendor=shop.vendor, code=order.handover_code
        )
        got = [await page.receive_json_from(timeout=5) for _ in range(2)]
        assert {m["type"] for m in got} == {"order.changed", "nearby_position_end"}
        assert await page.receive_nothing(0.6)
        for other in (vendor_page, staff_page):
            while not await other.receive_nothing(0.1):
                message = await other.receive_json_from(timeout=1)
                assert message["type"] == "order.changed", message
        for client in (page, vendor_page, staff_page):
            await client.disconnect(code=1000, timeout=0.5)

    async_to_sync(main)()
