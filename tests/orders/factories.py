"""factory_boy factories for the orders app, and the small world the order tests share: a vendor on
shift with stock on the cart, customers, a pickup point that is always open, and placing an order
through the service (the only way an order gets its stock reserved)."""

import uuid
from datetime import UTC, datetime, time, timedelta

import factory
from django.db.models import Sum
from django.utils import timezone
from factory.django import DjangoModelFactory

from customers.models import CustomerProfile
from orders.models import Fulfilment, Order, OrderEvent, OrderLine, Status
from orders.services import LineIn, Receive, order_payment_settled, order_place
from tests.factories import (
    CustomerProfileFactory,
    OpeningHoursFactory,
    PickupPointFactory,
    ProductFactory,
    StockFactory,
    VendorFactory,
    VendorPositionFactory,
)
from tracking.models import Presence
from vendors.models import PickupPoint, Product, Stock, Vendor

# Monday 2 June 2025, noon in Seoul: tests that pass `now=` get an unambiguous local weekday.
MONDAY_NOON = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
# States in which an order still holds its units (reserved, not yet handed over).
HOLDS_STOCK = (
    Status.PENDING_PAYMENT,
    Status.PLACED,
    Status.ACCEPTED,
    Status.EN_ROUTE,
    Status.READY,
)
# States in which the units left the cart for good.
DELIVERED = (Status.HANDED_OVER, Status.COMPLETED)


class OrderFactory(DjangoModelFactory):
    """An order written directly, in any state (no stock is reserved: for that, use `place`)."""

    class Meta:
        model = Order

    class Params:
        pickup = factory.Trait(
            fulfilment=Fulfilment.PICKUP,
            pickup_point=factory.SubFactory(PickupPointFactory),
        )
        delivery = factory.Trait(
            fulfilment=Fulfilment.DELIVERY,
            delivery_address="서울 마포구 망원로 50 3층",
            delivery_lat=37.5560,
            delivery_lng=126.9060,
            delivery_fee=1000,
        )

    customer = factory.SubFactory(CustomerProfileFactory)
    vendor = factory.SubFactory(VendorFactory)
    status = Status.PLACED
    fulfilment = Fulfilment.AT_CART
    subtotal = 2400
    delivery_fee = 0
    total = factory.LazyAttribute(lambda o: o.subtotal + o.delivery_fee)
    commission_bps = 1000
    handover_code = "4321"
    checkout_token = factory.LazyFunction(uuid.uuid4)


class OrderLineFactory(DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    name_ko = factory.LazyAttribute(lambda o: o.product.name_ko)
    name_en = factory.LazyAttribute(lambda o: o.product.name_en)
    unit_price = factory.LazyAttribute(lambda o: o.product.price)
    quantity = 2
    line_total = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)


class OrderEventFactory(DjangoModelFactory):
    class Meta:
        model = OrderEvent

    order = factory.SubFactory(OrderFactory)
    from_status = ""
    to_status = Status.PENDING_PAYMENT
    actor = factory.LazyAttribute(lambda o: o.order.customer.user)
    role = OrderEvent.Role.CUSTOMER


# --- the world ------------------------------------------------------------------------------


def vendor_on_shift(*, public: bool = True, **kwargs) -> Vendor:
    """An approved vendor on shift. `public`: with a ping recorded, so the map (and MEET) sees
    them; otherwise on shift but not yet located."""
    vendor = VendorFactory(**kwargs)
    if public:
        VendorPositionFactory(vendor=vendor)
    else:
        VendorPositionFactory(
            vendor=vendor,
            presence=Presence.OFFLINE,
            lat=None,
            lng=None,
            accuracy_m=None,
            recorded_at=None,
            last_ping_at=None,
            public_cell="",
            coarse_cell="",
        )
    return vendor


def stock_up(vendor: Vendor, *quantities: int, prices: tuple[int, ...] = ()) -> list[Product]:
    """One new product per quantity, on the vendor's cart in that quantity."""
    products = []
    for i, quantity in enumerate(quantities):
        price = prices[i] if i < len(prices) else 1200
        products.append(
            StockFactory(vendor=vendor, quantity=quantity, product__price=price).product
        )
    return products


def stock_of(vendor: Vendor, product: Product) -> int:
    return Stock.objects.get(vendor=vendor, product=product).quantity


def cart(vendor: Vendor) -> dict[int, int]:
    return dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))


def always_open_point(**kwargs) -> PickupPoint:
    """A pickup point near MAPO, open all day every day."""
    point = PickupPointFactory(**kwargs)
    for weekday in range(7):
        OpeningHoursFactory(point=point, weekday=weekday, opens=time(0, 0), closes=time(23, 59, 59))
    return point


def window(now: datetime | None = None, *, start_h: float = 1, hours: float = 1) -> dict:
    now = now or timezone.now()
    start = now + timedelta(hours=start_h)
    return {"window_start": start, "window_end": start + timedelta(hours=hours)}


def place(
    *,
    customer: CustomerProfile,
    vendor: Vendor,
    items: list[tuple[Product | int, int]],
    receive: Receive | None = None,
    token: uuid.UUID | None = None,
    now: datetime | None = None,
    note: str = "",
) -> Order:
    """order_place with (product, quantity) pairs, at the cart unless told otherwise."""
    return order_place(
        customer=customer,
        vendor_id=vendor.pk,
        lines=[LineIn(product_id=getattr(p, "pk", p), quantity=q) for p, q in items],
        receive=receive or Receive(fulfilment=Fulfilment.AT_CART),
        checkout_token=token or uuid.uuid4(),
        note=note,
        now=now,
    )


def place_paid(**kwargs) -> Order:
    """Placed and authorised: PLACED, waiting for the vendor."""
    order = place(**kwargs)
    settled = order_payment_settled(order_id=order.pk, payment_status="authorised")
    assert settled is not None and settled.status == Status.PLACED
    return settled


def units_in(vendor: Vendor, product: Product, statuses) -> int:
    return (
        OrderLine.objects.filter(
            order__vendor=vendor, order__status__in=statuses, product=product
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
