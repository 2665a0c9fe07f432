"""Shared pieces of the order tests: a vendor selling on shift with stock, a service area and an
open partner point nearby; a customer with an address inside the area; orders placed (and paid,
through the service a provider's answer goes to) by the real services."""

from dataclasses import dataclass
from datetime import timedelta

import h3
import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from orders.models import Order, Status
from orders.services import Receive, order_payment_settled
from tests.factories import (
    MAPO,
    AddressFactory,
    CustomerProfileFactory,
    ProductFactory,
    StockFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tests.orders import factories as orders_world
from tests.orders.factories import always_open_point
from vendors.models import PickupPoint, Product, Stock, Vendor
from vendors.services import vendor_service_area_set

FAR = (35.1796, 129.0756)  # Busan: outside any Seoul vendor's area


@dataclass
class Shop:
    vendor: Vendor
    yakult: Product  # ₩1,200, 10 on the cart
    latte: Product  # ₩2,500, 5 on the cart
    point: PickupPoint  # open around the clock, about 1 km from the vendor
    cell: str  # the vendor's public cell now

    def stock(self) -> dict[str, int]:
        rows = Stock.objects.filter(vendor=self.vendor).values_list("product__sku", "quantity")
        return dict(rows)


def open_shop(vendor: Vendor) -> Shop:
    position = VendorPositionFactory(vendor=vendor)
    home = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, settings.SERVICE_AREA_RES)
    vendor_service_area_set(vendor=vendor, cells=list(h3.grid_disk(home, 1)))
    yakult = StockFactory(
        vendor=vendor, product=ProductFactory(sku=f"yakult-{vendor.pk}", price=1200), quantity=10
    ).product
    latte = StockFactory(
        vendor=vendor, product=ProductFactory(sku=f"latte-{vendor.pk}", price=2500), quantity=5
    ).product
    point = always_open_point()
    return Shop(vendor=vendor, yakult=yakult, latte=latte, point=point, cell=position.public_cell)


@pytest.fixture
def shop(vendor) -> Shop:
    return open_shop(vendor)


@pytest.fixture
def other_shop(db) -> Shop:
    other = VendorFactory(home_lat=MAPO[0] + 0.001, home_lng=MAPO[1] + 0.001)
    CustomerProfileFactory(user=other.user)
    return open_shop(other)


@pytest.fixture
def buyer(db):
    """A customer with a default address inside the shop's area."""
    profile = CustomerProfileFactory()
    AddressFactory(customer=profile, is_default=True)
    return profile.user


@pytest.fixture
def stranger(db):
    """Another customer (with an address in the area too), no business in the buyer's orders."""
    profile = CustomerProfileFactory()
    AddressFactory(customer=profile, is_default=True)
    return profile.user


def place(shop: Shop, user, *, quantity: int = 2, fulfilment: str = "pickup", **receive) -> Order:
    """An order waiting for payment (stock reserved) of `quantity` yakult, through order_place."""
    where = {
        "pickup": {"pickup_point_id": shop.point.pk},
        "delivery": {"address_id": user.customer.addresses.values_list("pk", flat=True).first()},
        "meet": {"meet_cell": shop.cell},
    }[fulfilment]
    start = timezone.now()
    return orders_world.place(
        customer=user.customer,
        vendor=shop.vendor,
        items=[(shop.yakult, quantity)],
        receive=Receive(
            fulfilment=fulfilment,
            window_start=start,
            window_end=start + timedelta(hours=1),
            **{**where, **receive},
        ),
    )


def placed(shop: Shop, user, **kwargs) -> Order:
    """A paid order (PLACED): the provider's answer goes through order_payment_settled."""
    order = place(shop, user, **kwargs)
    order_payment_settled(order_id=order.pk, payment_status="authorised")
    order.refresh_from_db()
    assert order.status == Status.PLACED
    return order


@pytest.fixture
def client():
    return Client(headers={"accept-language": "en"})


def messages_of(response) -> list[str]:
    """The messages a response shows (followed) or queued (a redirect not followed)."""
    context = getattr(response, "context", None)
    if context is not None and "messages" in context:
        return [str(m) for m in context["messages"]]
    return [str(m) for m in get_messages(response.wsgi_request)]


def put_cart(client, vendor: Vendor, lines: dict[int, int]) -> None:
    """Write a basket straight into the session (as a tampered or stale session would hold it)."""
    session = client.session
    session["cart"] = {"vendor_id": vendor.pk, "lines": {str(k): v for k, v in lines.items()}}
    session.save()


def received(
    shop: Shop,
    user,
    *,
    items: list[tuple[Product, int]] | None = None,
    fulfilment: str = "pickup",
    note: str = "",
    **receive,
) -> Order:
    """An order the customer received (HANDED_OVER), through the real services: placed (stock
    reserved), paid, accepted and handed over with the customer's code."""
    from orders.services import order_accept, order_hand_over

    where = {
        "pickup": {"pickup_point_id": shop.point.pk},
        "delivery": {"address_id": user.customer.addresses.values_list("pk", flat=True).first()},
        "meet": {"meet_cell": shop.cell},
    }[fulfilment]
    start = timezone.now()
    order = orders_world.place(
        customer=user.customer,
        vendor=shop.vendor,
        items=items or [(shop.yakult, 2)],
        receive=Receive(
            fulfilment=fulfilment,
            window_start=start,
            window_end=start + timedelta(hours=1),
            **{**where, **receive},
        ),
        note=note,
    )
    order_payment_settled(order_id=order.pk, payment_status="authorised")
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    order.refresh_from_db()
    order_hand_over(order_id=order.pk, vendor=shop.vendor, code=order.handover_code)
    order.refresh_from_db()
    assert order.status in (Status.HANDED_OVER, Status.COMPLETED)
    return order
