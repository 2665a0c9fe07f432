"""The events other apps emit for partners: written in the change's transaction (gone with its
rollback), numbered per aggregate, and never carrying an exact position."""

import json
from datetime import timedelta

import h3
import pytest
from django.db import transaction
from django.utils import timezone

from o2o.effects import EVENT_KIND
from o2o.models import Effect
from orders.models import Order
from orders.services import Receive, order_accept, order_depart
from payments.models import Payout
from payments.payouts import payout_mark_paid
from tests.factories import MAPO, AddressFactory, CustomerProfileFactory
from tests.orders.factories import place_paid, stock_up, vendor_on_shift
from tests.partners.conftest import deliver, publish
from tests.partners.factories import EndpointFactory
from tests.payments.factories import PayoutFactory
from tracking.models import VendorPosition
from tracking.services import shift_end, shift_start
from vendors.services import vendor_service_area_set

pytestmark = pytest.mark.django_db

POSITION_WORDS = ("lat", "lng", "lon", "latitude", "longitude", "accuracy", "position", "address")


def keys_in(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def numbers_in(value) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    if isinstance(value, float):
        return [value]
    if isinstance(value, str):
        try:
            return [float(value)]
        except ValueError:
            return []
    return []


def assert_no_position(raw: bytes, *coordinates: float) -> None:
    """No key that names a position, and no number anywhere near one of the coordinates."""
    body = json.loads(raw)
    leaked = {k for k in keys_in(body) if any(word in k.lower() for word in POSITION_WORDS)}
    assert leaked == set(), raw
    near = [n for n in numbers_in(body) for c in coordinates if abs(n - c) < 0.1]
    assert near == [], raw


def events_of(aggregate: str, aggregate_id: int) -> list[dict]:
    rows = Effect.objects.filter(
        kind=EVENT_KIND, key__startswith=f"evt_{aggregate}_{aggregate_id}_"
    )
    return sorted((e.payload for e in rows), key=lambda p: p["sequence"])


# --- vendor shifts ------------------------------------------------------------------------------


def test_a_shift_tells_partners_the_public_cell_and_never_the_position(receiver):
    endpoint = EndpointFactory(
        url=receiver.url, event_types=["vendor.on_shift", "vendor.off_shift"]
    )
    vendor = vendor_on_shift()  # on the map, at an exact position near MAPO
    position = VendorPosition.objects.get(vendor=vendor)

    shift_end(vendor=vendor, actor=vendor.user)
    shift_start(vendor=vendor, actor=vendor.user)
    publish()
    deliver()

    off, on = receiver.requests
    assert (off.json["type"], on.json["type"]) == ("vendor.off_shift", "vendor.on_shift")
    assert [off.json["sequence"], on.json["sequence"]] == [1, 2]
    assert off.json["aggregate"] == {"type": "vendor", "id": vendor.pk}
    assert off.json["data"]["public_cell"] == position.public_cell
    assert h3.get_resolution(off.json["data"]["public_cell"]) == 9
    assert off.json["data"]["vendor_id"] == vendor.pk
    assert off.json["data"]["name"] == vendor.name
    # Back on shift but not located yet: no cell at all (not the one from the last shift).
    assert on.json["data"]["public_cell"] is None
    for got in (off, on):
        assert_no_position(got.body, position.lat, position.lng, MAPO[0], MAPO[1])
    assert endpoint.deliveries.filter(status="delivered").count() == 2


def test_no_shift_event_without_a_change_nor_after_a_rollback():
    vendor = vendor_on_shift()
    shift_start(vendor=vendor, actor=vendor.user)  # already on shift: nothing happened
    assert events_of("vendor", vendor.pk) == []

    with pytest.raises(RuntimeError), transaction.atomic():
        shift_end(vendor=vendor, actor=vendor.user)
        raise RuntimeError("the request failed after the shift ended")
    assert events_of("vendor", vendor.pk) == []

    shift_end(vendor=vendor, actor=vendor.user)
    shift_end(vendor=vendor, actor=vendor.user)  # already off: nothing more
    assert [e["type"] for e in events_of("vendor", vendor.pk)] == ["vendor.off_shift"]


# --- payouts ------------------------------------------------------------------------------------


def test_a_payout_paid_is_told_once():
    payout = PayoutFactory(status=Payout.Status.SENT, amount=9_000)

    assert payout_mark_paid(payout_id=payout.pk)
    assert not payout_mark_paid(payout_id=payout.pk)  # no move, no event

    [event] = events_of("payout", payout.pk)
    assert event["type"] == "payout.paid"
    assert event["id"] == f"evt_payout_{payout.pk}_1"
    assert event["data"] == {
        "payout_id": payout.pk,
        "vendor_id": payout.vendor_id,
        "amount": 9_000,
        "currency": "KRW",
    }


# --- orders (emitted by the state machine) --------------------------------------------------------


def test_order_events_carry_no_delivery_address_nor_position(receiver):
    """A door delivery has an exact address and point: partners never see them."""
    EndpointFactory(url=receiver.url, event_types=["order.placed", "order.accepted"])
    vendor = vendor_on_shift()
    home = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, 8)
    vendor_service_area_set(vendor=vendor, cells=list(h3.grid_disk(home, 1)))
    [product] = stock_up(vendor, 10)
    customer = CustomerProfileFactory()
    address = AddressFactory(customer=customer, is_default=True, lat=37.55612, lng=126.90633)
    start = timezone.now() + timedelta(minutes=30)
    order = place_paid(
        customer=customer,
        vendor=vendor,
        items=[(product, 2)],
        receive=Receive(
            fulfilment="delivery",
            address_id=address.pk,
            window_start=start,
            window_end=start + timedelta(hours=1),
        ),
    )
    order_accept(order_id=order.pk, vendor=vendor, eta_minutes=20)
    order_depart(order_id=order.pk, vendor=vendor)
    publish()
    deliver()

    order = Order.objects.get(pk=order.pk)
    types = [r.json["type"] for r in receiver.requests]
    assert types == ["order.placed", "order.accepted"]  # en_route: not subscribed
    sequences = [r.json["sequence"] for r in receiver.requests]
    assert sequences == sorted(sequences)
    for got in receiver.requests:
        assert got.json["aggregate"] == {"type": "order", "id": order.pk}
        assert_no_position(got.body, order.delivery_lat, order.delivery_lng)
        assert order.delivery_address not in got.body.decode()
        assert customer.user.email not in got.body.decode()


@pytest.mark.django_db(transaction=True)
def test_after_the_commit_the_event_reaches_the_partner_at_once(receiver):
    """No sweep, no test helper: the commit kicks the publish, whose commit kicks the delivery."""
    endpoint = EndpointFactory(url=receiver.url, event_types=["vendor.off_shift"])
    vendor = vendor_on_shift()

    shift_end(vendor=vendor, actor=vendor.user)

    [got] = receiver.requests
    assert got.json["type"] == "vendor.off_shift"
    assert endpoint.deliveries.get().status == "delivered"
    assert not Effect.objects.filter(status=Effect.Status.PENDING).exists()
