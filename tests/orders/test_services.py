"""Order services: placement (stock reserved all or nothing, prices and commission snapshotted,
idempotent on the checkout token, every refusal leaving nothing behind), every edge of the state
graph from every state, who may move an order, stock going back exactly when an order ends without
a handover, and the expiry sweep."""

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import time, timedelta

import h3
import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone, translation

from customers.models import CustomerProfile
from o2o.accounts.models import User
from o2o.errors import NotAllowed
from orders.models import Fulfilment, Order, OrderEvent, OrderLine, Status
from orders.services import (
    EDGES,
    HANDOVER_MAX_TRIES,
    RELEASES_STOCK,
    InvalidTransition,
    LineIn,
    Receive,
    order_accept,
    order_cancel,
    order_complete,
    order_depart,
    order_expire_now,
    order_hand_over,
    order_payment_settled,
    order_place,
    order_ready,
    order_reject,
    order_staff_cancel,
    order_vendor_cancel,
    orders_expire,
)
from orders.services.transitions import _transition
from tests.factories import (
    AddressFactory,
    CustomerProfileFactory,
    OpeningHoursFactory,
    PickupPointFactory,
    StaffFactory,
    StockFactory,
    VendorFactory,
)
from tests.orders.factories import (
    MONDAY_NOON,
    OrderFactory,
    OrderLineFactory,
    always_open_point,
    cart,
    place,
    place_paid,
    stock_of,
    stock_up,
    vendor_on_shift,
    window,
)
from tracking.models import VendorPosition
from vendors.models import Product, Stock, Vendor
from vendors.services import OutOfStock, vendor_service_area_set

pytestmark = pytest.mark.django_db

Role = OrderEvent.Role


@dataclass
class World:
    vendor: Vendor
    milk: Product  # 1200 each, 10 on the cart
    bread: Product  # 3000 each, 10 on the cart
    customer: CustomerProfile
    other: CustomerProfile
    staff: User


@pytest.fixture
def w() -> World:
    vendor = vendor_on_shift(delivery_fee=2500)
    home = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, settings.SERVICE_AREA_RES)
    vendor_service_area_set(vendor=vendor, cells=list(h3.grid_disk(home, 1)))
    milk, bread = stock_up(vendor, 10, 10, prices=(1200, 3000))
    return World(
        vendor, milk, bread, CustomerProfileFactory(), CustomerProfileFactory(), StaffFactory()
    )


def _saved() -> tuple:
    """Everything a placement or a transition could have written."""
    return (
        list(Order.objects.order_by("pk").values_list("pk", "status")),
        OrderLine.objects.count(),
        OrderEvent.objects.count(),
        dict(Stock.objects.values_list("pk", "quantity")),
    )


def assert_refused(exc_type: type[Exception], call) -> Exception:
    """`call` raises exactly `exc_type` and leaves the database as it was."""
    before = _saved()
    with pytest.raises(exc_type) as info:
        call()
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    assert _saved() == before
    return info.value


# --- Placing ----------------------------------------------------------------------------------


def _receive(kind: str, w: World) -> tuple[Receive, dict]:
    """A valid way to receive of each kind, at MONDAY_NOON, and the fields it puts on the order."""
    win = window(MONDAY_NOON, start_h=1)  # 13:00-14:00 in Seoul
    if kind == Fulfilment.AT_CART:
        return Receive(fulfilment=kind), {}
    if kind == Fulfilment.PICKUP:
        point = PickupPointFactory()  # about 1 km from the vendor's home
        OpeningHoursFactory(point=point, weekday=0, opens=time(9), closes=time(21))
        return Receive(fulfilment=kind, pickup_point_id=point.pk, **win), {
            "pickup_point_id": point.pk,
            **win,
        }
    if kind == Fulfilment.DELIVERY:
        address = AddressFactory(customer=w.customer, line1="서울 마포구 망원로 50", line2="3층")
        return Receive(fulfilment=kind, address_id=address.pk, **win), {
            "delivery_address": "서울 마포구 망원로 50 3층",
            "delivery_lat": address.lat,
            "delivery_lng": address.lng,
            "delivery_fee": 2500,
            **win,
        }
    # MEET: a cell on the farthest ring still allowed around the vendor's public cell.
    public = VendorPosition.objects.get(vendor=w.vendor).public_cell
    cell = sorted(h3.grid_ring(public, settings.MEET_MAX_RINGS))[0]
    return Receive(fulfilment=kind, meet_cell=cell, **win), {"meet_cell": cell, **win}


@pytest.mark.parametrize("kind", list(Fulfilment))
def test_placing_reserves_stock_and_snapshots_prices_and_commission(w, kind):
    # Given a vendor on shift with 10 milk (1200) and 10 bread (3000), and a valid way to receive
    receive, fields = _receive(kind, w)
    # When a customer orders 2 milk and 1 bread
    with override_settings(COMMISSION_DEFAULT_BPS=1234):
        order = place(
            customer=w.customer,
            vendor=w.vendor,
            items=[(w.bread, 1), (w.milk, 2)],
            receive=receive,
            now=MONDAY_NOON,
            note="  문 앞에 두세요  ",
        )
    # Then the units are off the cart
    assert (stock_of(w.vendor, w.milk), stock_of(w.vendor, w.bread)) == (8, 9)
    # And the order waits for payment with lines that snapshot name and price, in product order
    order.refresh_from_db()
    assert order.status == Status.PENDING_PAYMENT
    assert order.fulfilment == kind
    lines = list(
        order.lines.values_list(
            "product_id", "name_ko", "name_en", "unit_price", "quantity", "line_total"
        )
    )
    assert lines == [
        (w.milk.pk, w.milk.name_ko, w.milk.name_en, 1200, 2, 2400),
        (w.bread.pk, w.bread.name_ko, w.bread.name_en, 3000, 1, 3000),
    ]
    # And the totals add up, with the delivery fee only on deliveries
    fee = fields.get("delivery_fee", 0)
    assert order.subtotal == 5400
    assert (order.delivery_fee, order.total) == (fee, 5400 + fee)
    assert order.currency == "KRW"
    assert order.commission_bps == 1234
    assert order.note == "문 앞에 두세요"
    assert re.fullmatch(r"\d{4}", order.handover_code)
    assert order.expires_at == MONDAY_NOON + timedelta(minutes=settings.ORDER_PAYMENT_MINUTES)
    assert order.payment_id is None
    for name, value in fields.items():
        assert getattr(order, name) == value, name
    # And one event says the customer placed it
    assert list(order.events.values_list("from_status", "to_status", "role", "actor")) == [
        ("", Status.PENDING_PAYMENT, Role.CUSTOMER, w.customer.user_id)
    ]


def test_lines_keep_the_name_and_price_of_the_moment_of_ordering(w):
    # Given an order of 3 milk
    order = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 3)])
    # When the catalogue changes the product
    Product.objects.filter(pk=w.milk.pk).update(price=9990, name_ko="새 우유", name_en="New milk")
    # Then the order still says what was bought, at what price
    line = order.lines.get()
    assert (line.name_ko, line.name_en, line.unit_price, line.line_total) == (
        w.milk.name_ko,
        w.milk.name_en,
        1200,
        3600,
    )
    order.refresh_from_db()
    assert order.total == 3600


def test_the_same_product_on_two_lines_is_one_line(w):
    order = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 2), (w.milk, 3)])
    assert list(order.lines.values_list("product_id", "quantity")) == [(w.milk.pk, 5)]
    assert stock_of(w.vendor, w.milk) == 5


def test_the_same_checkout_twice_gives_the_same_order_and_reserves_once(w):
    # Given a checkout that was placed
    token = uuid.uuid4()
    first = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 3)], token=token)
    # When the same checkout is submitted again (a double click, a retried request)
    again = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 3)], token=token)
    # Then it is the same order, and the stock was taken once
    assert again.pk == first.pk
    assert stock_of(w.vendor, w.milk) == 7
    assert (Order.objects.count(), OrderLine.objects.count(), OrderEvent.objects.count()) == (
        1,
        1,
        1,
    )


def test_someone_elses_checkout_token_is_refused(w):
    token = uuid.uuid4()
    place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)], token=token)
    assert_refused(
        NotAllowed,
        lambda: place(customer=w.other, vendor=w.vendor, items=[(w.milk, 1)], token=token),
    )


def test_out_of_stock_on_a_later_line_gives_back_the_earlier_lines(w):
    # Given milk is reserved before bread (product order), and only 10 bread are on the cart
    assert w.milk.pk < w.bread.pk
    # When an order wants 3 milk and 11 bread
    exc = assert_refused(
        OutOfStock,
        lambda: place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 3), (w.bread, 11)]),
    )
    # Then it names the bread, and the 3 milk taken first are back (assert_refused checks stock)
    assert exc.product_id == w.bread.pk
    assert "10" in exc.messages[0]
    assert stock_of(w.vendor, w.milk) == 10


def test_a_sold_out_product_says_so(w):
    Stock.objects.filter(vendor=w.vendor, product=w.bread).update(quantity=0)
    exc = assert_refused(
        OutOfStock,
        lambda: place(customer=w.customer, vendor=w.vendor, items=[(w.bread, 1)]),
    )
    assert exc.product_id == w.bread.pk


def _args(w: World, **over) -> dict:
    """order_place's arguments for 1 milk at the cart, with some replaced."""
    args = {
        "customer": w.customer,
        "vendor_id": w.vendor.pk,
        "lines": [LineIn(product_id=w.milk.pk, quantity=1)],
        "receive": Receive(fulfilment=Fulfilment.AT_CART),
        "checkout_token": uuid.uuid4(),
        "now": MONDAY_NOON,
    }
    args.update(over)
    return args


def _lines(*pairs) -> dict:
    return {"lines": [LineIn(product_id=p, quantity=q) for p, q in pairs]}


def _vendor_status(status):
    def setup(w):
        Vendor.objects.filter(pk=w.vendor.pk).update(status=status)
        return {}

    return setup


def _off_shift(w):
    VendorPosition.objects.filter(vendor=w.vendor).update(on_shift=False)
    return {}


def _never_on_shift(w):
    VendorPosition.objects.filter(vendor=w.vendor).delete()
    return {}


def _own_cart(w):
    return {"customer": CustomerProfileFactory(user=w.vendor.user)}


def _inactive_product(w):
    Product.objects.filter(pk=w.milk.pk).update(is_active=False)
    return {}


def _another_vendors_product(w):
    theirs = StockFactory(vendor=VendorFactory(), quantity=10).product
    return _lines((theirs.pk, 1))


def _merged_over_the_limit(w):
    Stock.objects.filter(vendor=w.vendor, product=w.milk).update(quantity=1000)
    half = settings.ORDER_MAX_QUANTITY // 2 + 1
    return _lines((w.milk.pk, half), (w.milk.pk, half))


def _delivery(w, address=None, **win):
    if address is None:
        address = AddressFactory(customer=w.customer)
    win = win or window(MONDAY_NOON)
    return {"receive": Receive(fulfilment=Fulfilment.DELIVERY, address_id=address.pk, **win)}


def _pickup(w, point=None, **win):
    if point is None:
        point = PickupPointFactory()
        OpeningHoursFactory(point=point, weekday=0, opens=time(9), closes=time(21))
    win = win or window(MONDAY_NOON)
    return {"receive": Receive(fulfilment=Fulfilment.PICKUP, pickup_point_id=point.pk, **win)}


def _meet(w, cell=None, **win):
    if cell is None:
        cell = VendorPosition.objects.get(vendor=w.vendor).public_cell
    win = win or window(MONDAY_NOON)
    return {"receive": Receive(fulfilment=Fulfilment.MEET, meet_cell=cell, **win)}


def _at(hours: float, length: float = 0.5) -> dict:
    """A window starting `hours` after MONDAY_NOON (12:00 in Seoul)."""
    return window(MONDAY_NOON, start_h=hours, hours=length)


def _ring(w, k: int) -> str:
    public = VendorPosition.objects.get(vendor=w.vendor).public_cell
    return sorted(h3.grid_ring(public, k))[0]


REFUSALS = [
    # the lines
    pytest.param(lambda w: {"lines": []}, None, id="no-lines"),
    pytest.param(lambda w: _lines((w.milk.pk, 0)), None, id="quantity-0"),
    pytest.param(lambda w: _lines((w.milk.pk, -1)), None, id="quantity-negative"),
    pytest.param(lambda w: _lines((w.milk.pk, 10**12)), None, id="quantity-huge"),
    pytest.param(
        lambda w: _lines((w.milk.pk, settings.ORDER_MAX_QUANTITY + 1)), None, id="quantity-over-max"
    ),
    pytest.param(lambda w: _lines((w.milk.pk, True)), None, id="quantity-bool"),
    pytest.param(lambda w: _lines((w.milk.pk, 1.5)), None, id="quantity-float"),
    pytest.param(lambda w: _lines((w.milk.pk, "2")), None, id="quantity-text"),
    pytest.param(lambda w: _lines((w.milk.pk, 1), (w.bread.pk, 0)), None, id="one-line-zero"),
    pytest.param(_merged_over_the_limit, None, id="same-product-twice-over-max"),
    pytest.param(lambda w: _lines((10**9, 1)), None, id="unknown-product"),
    pytest.param(_inactive_product, None, id="inactive-product"),
    pytest.param(_another_vendors_product, OutOfStock, id="not-on-this-cart"),
    pytest.param(lambda w: _lines((w.milk.pk, 11)), OutOfStock, id="more-than-in-stock"),
    # the vendor
    pytest.param(lambda w: {"vendor_id": 10**9}, None, id="unknown-vendor"),
    pytest.param(_vendor_status(Vendor.Status.PENDING), None, id="vendor-pending"),
    pytest.param(_vendor_status(Vendor.Status.SUSPENDED), None, id="vendor-suspended"),
    pytest.param(_vendor_status(Vendor.Status.REJECTED), None, id="vendor-rejected"),
    pytest.param(_off_shift, None, id="vendor-off-shift"),
    pytest.param(_never_on_shift, None, id="vendor-never-on-shift"),
    pytest.param(_own_cart, None, id="own-cart"),
    # how to receive
    pytest.param(
        lambda w: {"receive": Receive(fulfilment="drone")}, "fulfilment", id="unknown-fulfilment"
    ),
    pytest.param(
        lambda w: _delivery(w, AddressFactory(customer=w.other)), "address", id="others-address"
    ),
    pytest.param(
        lambda w: {"receive": Receive(fulfilment=Fulfilment.DELIVERY, address_id=None, **_at(1))},
        "address",
        id="no-address",
    ),
    pytest.param(
        lambda w: _delivery(w, AddressFactory(customer=w.customer, lat=35.1796, lng=129.0756)),
        "address",
        id="address-outside-area",
    ),
    pytest.param(
        lambda w: _delivery(w, window_start=None, window_end=None), None, id="delivery-no-window"
    ),
    pytest.param(
        lambda w: _delivery(
            w, window_start=_at(2)["window_start"], window_end=_at(1)["window_end"]
        ),
        None,
        id="delivery-window-inverted",
    ),
    pytest.param(lambda w: _delivery(w, **_at(-3)), None, id="delivery-window-past"),
    pytest.param(lambda w: _delivery(w, **_at(72)), None, id="delivery-window-too-far-ahead"),
    pytest.param(
        lambda w: _pickup(w, PickupPointFactory(is_active=False)),
        "pickup_point",
        id="point-inactive",
    ),
    pytest.param(
        lambda w: {
            "receive": Receive(fulfilment=Fulfilment.PICKUP, pickup_point_id=10**9, **_at(1))
        },
        "pickup_point",
        id="point-unknown",
    ),
    pytest.param(
        lambda w: _pickup(w, always_open_point(lat=37.70, lng=126.90)),
        "pickup_point",
        id="point-too-far",
    ),
    pytest.param(lambda w: _pickup(w, **_at(10)), "pickup_point", id="point-closed-at-night"),
    pytest.param(lambda w: _pickup(w, **_at(8.5, 1)), "pickup_point", id="point-closes-mid-window"),
    pytest.param(lambda w: _pickup(w, **_at(25)), "pickup_point", id="point-closed-that-weekday"),
    pytest.param(
        lambda w: _pickup(w, window_start=None, window_end=None), None, id="pickup-no-window"
    ),
    pytest.param(
        lambda w: _pickup(w, window_start=_at(2)["window_start"], window_end=_at(1)["window_end"]),
        None,
        id="pickup-window-inverted",
    ),
    pytest.param(lambda w: _meet(w, "nonsense"), "meet_cell", id="meet-cell-garbage"),
    pytest.param(lambda w: _meet(w, ""), "meet_cell", id="meet-cell-empty"),
    pytest.param(lambda w: _meet(w, 617700169958293503), "meet_cell", id="meet-cell-int"),
    pytest.param(
        lambda w: _meet(w, h3.latlng_to_cell(37.556, 126.906, settings.SERVICE_AREA_RES)),
        "meet_cell",
        id="meet-cell-wrong-resolution",
    ),
    pytest.param(
        lambda w: _meet(w, _ring(w, settings.MEET_MAX_RINGS + 1)), "meet_cell", id="meet-too-far"
    ),
    pytest.param(
        lambda w: _meet(w, h3.latlng_to_cell(40.7128, -74.006, settings.PUBLIC_CELL_RES)),
        "meet_cell",
        id="meet-other-continent",
    ),
    pytest.param(lambda w: _meet(w, window_start=None, window_end=None), None, id="meet-no-window"),
    pytest.param(
        lambda w: _meet(w, window_start=_at(2)["window_start"], window_end=_at(1)["window_end"]),
        None,
        id="meet-window-inverted",
    ),
]


@pytest.mark.parametrize(("setup", "expect"), REFUSALS)
def test_a_refused_placement_saves_nothing_and_keeps_the_stock(w, setup, expect):
    # Given a world changed by `setup`, and the arguments it asks for
    args = _args(w, **setup(w))
    # When the customer places, then it is refused and nothing is saved (stock included)
    exc_type = OutOfStock if expect is OutOfStock else ValidationError
    exc = assert_refused(exc_type, lambda: order_place(**args))
    # And a refusal about how to receive names the field to fix
    if isinstance(expect, str):
        assert expect in exc.message_dict


@pytest.mark.parametrize(
    "spell",
    [str.upper, lambda c: "".join(chr(ord(x) + 0xFEE0) if x.isdigit() else x for x in c)],
    ids=["upper-case", "full-width-digits"],
)
def test_a_meeting_cell_is_stored_in_its_one_spelling(w, spell):
    # Given the vendor's public cell, written another way h3 still reads
    cell = VendorPosition.objects.get(vendor=w.vendor).public_cell
    # When the customer places a meet order there
    order = order_place(**_args(w, **_meet(w, spell(cell))))
    # Then the order keeps h3's own spelling, the one every other part of the system compares
    assert order.meet_cell == cell


def test_meet_needs_the_vendor_on_the_map(w):
    # Given a vendor on shift who has not sent a ping yet (no public position)
    vendor = vendor_on_shift(public=False)
    (product,) = stock_up(vendor, 5)
    cell = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, settings.PUBLIC_CELL_RES)
    # Then meeting is refused, but ordering at the cart works
    assert_refused(
        ValidationError,
        lambda: place(
            customer=w.customer,
            vendor=vendor,
            items=[(product, 1)],
            receive=Receive(fulfilment=Fulfilment.MEET, meet_cell=cell, **_at(1)),
            now=MONDAY_NOON,
        ),
    )
    assert place(customer=w.customer, vendor=vendor, items=[(product, 1)]).pk


# --- The graph: every edge from every state ---------------------------------------------------

ROLE = {
    "authorise": Role.SYSTEM,
    "fail": Role.SYSTEM,
    "expire": Role.SYSTEM,
    "complete": Role.SYSTEM,
    "uncollected": Role.SYSTEM,
    "cancel": Role.CUSTOMER,
    "accept": Role.VENDOR,
    "reject": Role.VENDOR,
    "depart": Role.VENDOR,
    "ready": Role.VENDOR,
    "hand_over": Role.VENDOR,
    "vendor_cancel": Role.VENDOR,
    "staff_cancel": Role.STAFF,
    "staff_expire": Role.STAFF,
}
# System actions report a refusal as None (late or repeated news is normal), not an exception.
QUIET = {"authorise", "fail", "complete"}


RIGHT = object()  # the order's own handover code


def _a_staff() -> User:
    return User.objects.filter(is_staff=True, is_active=True).order_by("pk").first()


def act(action: str, order: Order, *, vendor=None, customer=None, code=RIGHT, staff=None):
    """Take one edge of the graph the way the product does."""
    vendor = vendor or order.vendor
    customer = customer or order.customer
    oid = order.pk
    match action:
        case "staff_cancel":
            return order_staff_cancel(order_id=oid, actor=staff or _a_staff(), reason="고객 요청")
        case "staff_expire":
            return order_expire_now(order_id=oid, actor=staff or _a_staff())
        case "authorise" | "fail":
            status = "authorised" if action == "authorise" else "failed"
            return order_payment_settled(order_id=oid, payment_status=status)
        case "accept":
            return order_accept(order_id=oid, vendor=vendor, eta_minutes=20)
        case "reject":
            return order_reject(order_id=oid, vendor=vendor, reason="재료가 떨어졌어요")
        case "vendor_cancel":
            return order_vendor_cancel(order_id=oid, vendor=vendor, reason="카트가 고장 났어요")
        case "cancel":
            return order_cancel(order_id=oid, customer=customer)
        case "depart":
            return order_depart(order_id=oid, vendor=vendor)
        case "ready":
            return order_ready(order_id=oid, vendor=vendor)
        case "hand_over":
            code = order.handover_code if code is RIGHT else code
            return order_hand_over(order_id=oid, vendor=vendor, code=code)
        case "complete":
            return order_complete(order_id=oid)
        case "expire" | "uncollected":
            # The one edge orders_expire takes for this order (it also sweeps other states).
            return _transition(
                order_id=oid,
                action=action,
                role=Role.SYSTEM,
                scope={"expires_at__lt": timezone.now()},
                expires_at=None,
            )
    raise AssertionError(action)


def order_in(w: World, status: str, *, pickup: bool = False, expired: bool = True) -> Order:
    """An order in `status` holding 2 milk and 1 bread (written directly: the cart still has
    its 10 and 10, so stock going back shows as 12 and 11)."""
    order = OrderFactory(
        vendor=w.vendor,
        customer=w.customer,
        status=status,
        pickup=pickup,
        subtotal=5400,
        expires_at=timezone.now() + timedelta(minutes=-1 if expired else 5),
    )
    OrderLineFactory(order=order, product=w.milk, quantity=2)
    OrderLineFactory(order=order, product=w.bread, quantity=1)
    return order


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(EDGES))
def test_each_edge_moves_from_its_sources_and_is_refused_from_every_other_state(w, action, status):
    sources, to = EDGES[action]
    # Past its deadline (so expire/uncollected may act), except for accept, which a deadline stops.
    order = order_in(w, status, pickup=action == "uncollected", expired=action != "accept")
    before = _saved()
    if status in sources:
        # When the action is taken from one of its source states, it moves along the edge
        moved = act(action, order)
        order.refresh_from_db()
        assert moved.status == order.status == to
        # And one event records from, to, role and actor
        event = order.events.get()
        actor = {
            Role.VENDOR: w.vendor.user_id,
            Role.CUSTOMER: w.customer.user_id,
            Role.SYSTEM: None,
            Role.STAFF: w.staff.pk,
        }[ROLE[action]]
        assert (event.from_status, event.to_status, event.role, event.actor_id) == (
            status,
            to,
            ROLE[action],
            actor,
        )
        # And the stock goes back exactly when the order ends without a handover
        released = {w.milk.pk: 12, w.bread.pk: 11} if to in RELEASES_STOCK else {}
        assert cart(w.vendor) == {w.milk.pk: 10, w.bread.pk: 10} | released
    else:
        # From any other state it is refused and nothing changes
        if action in QUIET:
            assert act(action, order) is None
        else:
            with pytest.raises(InvalidTransition):
                act(action, order)
        assert _saved() == before


@pytest.mark.parametrize("action", ["accept", "reject", "depart", "ready", "hand_over"])
def test_another_vendor_cannot_move_the_order(w, action):
    # Given an order in a state the action may start from
    order = order_in(w, EDGES[action][0][0])
    intruder = vendor_on_shift()
    # When another vendor (even with the right code) tries, it is refused and nothing changes
    assert_refused(InvalidTransition, lambda: act(action, order, vendor=intruder))


@pytest.mark.parametrize("status", [Status.PENDING_PAYMENT, Status.PLACED])
def test_another_customer_cannot_cancel(w, status):
    order = order_in(w, status)
    assert_refused(InvalidTransition, lambda: act("cancel", order, customer=w.other))


@pytest.mark.parametrize("code", ["0000", "", None, "43210", "432", "4321x", "４３２１", "코드"])
@pytest.mark.parametrize("status", [Status.ACCEPTED, Status.EN_ROUTE, Status.READY])
def test_a_wrong_handover_code_is_refused_and_changes_nothing(w, status, code):
    # Given an order the vendor could hand over, whose code is 4321
    order = order_in(w, status)
    # When the vendor types a wrong code, it is a validation error on the code, not a conflict
    exc = assert_refused(ValidationError, lambda: act("hand_over", order, code=code))
    assert list(exc.message_dict) == ["code"]


def test_the_right_code_is_accepted_with_spaces_around_it(w):
    order = order_in(w, Status.READY)
    assert act("hand_over", order, code=" 4321 ").status == Status.HANDED_OVER


@pytest.mark.parametrize("eta", [0, -5, 24 * 60 + 1, True, 1.5, "20", None])
def test_accepting_needs_a_sensible_eta(w, eta):
    order = order_in(w, Status.PLACED)
    assert_refused(
        ValidationError, lambda: order_accept(order_id=order.pk, vendor=w.vendor, eta_minutes=eta)
    )


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_rejecting_needs_a_reason(w, reason):
    order = order_in(w, Status.PLACED)
    assert_refused(
        ValidationError, lambda: order_reject(order_id=order.pk, vendor=w.vendor, reason=reason)
    )


def test_an_order_past_its_deadline_can_no_longer_be_accepted(w):
    # given a placed order whose acceptance deadline passed (the sweep has not run yet)
    order = order_in(w, Status.PLACED, expired=True)
    # when the vendor tries to accept it, then it is refused and stays placed
    with pytest.raises(InvalidTransition):
        order_accept(order_id=order.pk, vendor=w.vendor, eta_minutes=10)
    order.refresh_from_db()
    assert order.status == Status.PLACED


def test_accepting_sets_the_eta_and_stops_the_clock(w):
    order = order_in(w, Status.PLACED, expired=False)
    started = timezone.now()
    accepted = order_accept(order_id=order.pk, vendor=w.vendor, eta_minutes=25)
    assert accepted.expires_at is None
    assert started <= accepted.accepted_at <= timezone.now()
    assert accepted.eta == accepted.accepted_at + timedelta(minutes=25)


# --- Real flows: stock and the event log ------------------------------------------------------


def _pickup_order(w: World) -> Order:
    point = always_open_point()
    receive = Receive(fulfilment=Fulfilment.PICKUP, pickup_point_id=point.pk, **window())
    return place(
        customer=w.customer, vendor=w.vendor, items=[(w.milk, 2), (w.bread, 1)], receive=receive
    )


ENDINGS = {
    # name: (steps after placing 2 milk + 1 bread, final status)
    "payment-failed": (["fail"], Status.FAILED),
    "rejected": (["authorise", "reject"], Status.REJECTED),
    "cancelled-unpaid": (["cancel"], Status.CANCELLED),
    "cancelled-placed": (["authorise", "cancel"], Status.CANCELLED),
    "expired": (["authorise", "sweep"], Status.EXPIRED),
    "uncollected": (["authorise", "accept", "ready", "sweep"], Status.CANCELLED),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_order_ending_without_a_handover_puts_its_stock_back_once(w, ending):
    # Given a real order holding 2 milk and 1 bread
    steps, final = ENDINGS[ending]
    order = _pickup_order(w) if ending == "uncollected" else None
    order = order or place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 2), (w.bread, 1)])
    assert cart(w.vendor) == {w.milk.pk: 8, w.bread.pk: 9}
    # When it ends without a handover
    for step in steps:
        if step == "sweep":
            orders_expire(now=timezone.now() + timedelta(days=2))
        else:
            act(step, order)
    # Then the units are back on the cart, once, whatever else is tried afterwards
    order.refresh_from_db()
    assert order.status == final
    assert cart(w.vendor) == {w.milk.pk: 10, w.bread.pk: 10}
    for action in EDGES:
        with contextlib.suppress(InvalidTransition):
            act(action, order)
    orders_expire(now=timezone.now() + timedelta(days=3))
    order.refresh_from_db()
    assert order.status == final
    assert cart(w.vendor) == {w.milk.pk: 10, w.bread.pk: 10}


def test_a_completed_order_keeps_its_units_and_every_step_is_logged(w):
    # Given a real order of 2 milk and 1 bread, paid
    order = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 2), (w.bread, 1)])
    # When it goes the whole way
    for action in ["authorise", "accept", "depart", "ready", "hand_over", "complete"]:
        act(action, order)
    # Then the units stay off the cart (they were sold)
    order.refresh_from_db()
    assert order.status == Status.COMPLETED
    assert order.handed_over_at is not None and order.completed_at is not None
    assert cart(w.vendor) == {w.milk.pk: 8, w.bread.pk: 9}
    # And the log has every step, with who did it
    V, C, S = Role.VENDOR, Role.CUSTOMER, Role.SYSTEM
    vendor_user, customer_user = w.vendor.user_id, w.customer.user_id
    assert list(order.events.values_list("from_status", "to_status", "role", "actor")) == [
        ("", Status.PENDING_PAYMENT, C, customer_user),
        (Status.PENDING_PAYMENT, Status.PLACED, S, None),
        (Status.PLACED, Status.ACCEPTED, V, vendor_user),
        (Status.ACCEPTED, Status.EN_ROUTE, V, vendor_user),
        (Status.EN_ROUTE, Status.READY, V, vendor_user),
        (Status.READY, Status.HANDED_OVER, V, vendor_user),
        (Status.HANDED_OVER, Status.COMPLETED, S, None),
    ]


def test_repeated_payment_news_changes_nothing(w):
    order = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    assert order_payment_settled(order_id=order.pk, payment_status="authorised").status == (
        Status.PLACED
    )
    before = _saved()
    assert order_payment_settled(order_id=order.pk, payment_status="authorised") is None
    assert order_payment_settled(order_id=order.pk, payment_status="failed") is None
    assert order_payment_settled(order_id=order.pk, payment_status="pending") is None
    assert _saved() == before


def test_what_must_follow_a_change_is_written_with_it_and_runs_only_after_commit(
    w, django_capture_on_commit_callbacks
):
    from o2o.models import Effect

    # Given a paid order
    order = place_paid(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    mail.outbox.clear()
    before = set(Effect.objects.values_list("pk", flat=True))
    # When the vendor rejects it, inside the transaction
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order_reject(order_id=order.pk, vendor=w.vendor, reason="재료 소진")
        # Then the money's return, the e-mail and the partner event are rows of this change
        written = dict(Effect.objects.exclude(pk__in=before).values_list("key", "kind"))
        assert written[f"order:{order.pk}:money_return"] == "order.money_return"
        assert any(k.startswith(f"order:{order.pk}:email:") for k in written)
        assert any(kind == "event.publish" for kind in written.values())
        # And nothing was sent before the commit
        assert mail.outbox == []
    # When the transaction commits (the hooks run)
    for callback in callbacks:
        callback()
    # Then the customer got an e-mail and every effect of the change is done
    assert [m.to for m in mail.outbox] == [[w.customer.user.email]]
    left = Effect.objects.filter(key__in=written).exclude(status="done")
    assert list(left.values_list("key", "status", "last_error")) == []


# --- The expiry sweep -------------------------------------------------------------------------


def test_orders_expire_ends_what_waited_too_long_and_leaves_the_rest(w):
    # Given, all placed now: an unpaid order, a paid one nobody accepted, a pickup left at the
    # point, and one the vendor just accepted
    start = timezone.now()
    unpaid = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    unaccepted = place_paid(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    uncollected = _pickup_order(w)
    for action in ["authorise", "accept", "ready"]:
        act(action, uncollected)
    accepted = place_paid(customer=w.other, vendor=w.vendor, items=[(w.bread, 2)])
    act("accept", accepted)
    # When the sweep runs a day and an hour later
    later = start + timedelta(hours=settings.PICKUP_HOLD_HOURS + 1)
    assert orders_expire(now=later) == {"expired": 1, "unpaid": 1, "uncollected": 1}
    # Then each ended the way its rule says, by the system, with a reason
    expected = {
        unpaid.pk: (Status.FAILED, "not paid in time"),
        unaccepted.pk: (Status.EXPIRED, "nobody accepted in time"),
        uncollected.pk: (Status.CANCELLED, "not collected in time"),
    }
    for oid, (status, reason) in expected.items():
        order = Order.objects.get(pk=oid)
        # (the deadline missed stays on the order: its page says which one)
        assert (order.status, order.reason) == (status, reason)
        assert order.expires_at is not None and order.expires_at < later
        last = order.events.last()
        assert (last.to_status, last.role, last.actor, last.reason) == (
            status,
            Role.SYSTEM,
            None,
            reason,
        )
    # And the just-accepted order is untouched, still holding its bread
    accepted.refresh_from_db()
    assert accepted.status == Status.ACCEPTED
    assert cart(w.vendor) == {w.milk.pk: 10, w.bread.pk: 8}
    # And running it twice changes nothing more
    before = _saved()
    assert orders_expire(now=later) == {"expired": 0, "unpaid": 0, "uncollected": 0}
    assert _saved() == before


def test_orders_expire_waits_for_each_deadline(w):
    # Given an unpaid order (15 minutes to pay) and a paid one (10 minutes to be accepted)
    start = timezone.now()
    unpaid = place(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    unaccepted = place_paid(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    # Then a minute later nothing has expired
    assert orders_expire(now=start + timedelta(minutes=1)) == {
        "expired": 0,
        "unpaid": 0,
        "uncollected": 0,
    }
    # And after 11 minutes only the unaccepted one has
    eleven = start + timedelta(minutes=settings.ORDER_ACCEPT_MINUTES + 1)
    assert orders_expire(now=eleven)["expired"] == 1
    assert Order.objects.get(pk=unpaid.pk).status == Status.PENDING_PAYMENT
    assert Order.objects.get(pk=unaccepted.pk).status == Status.EXPIRED


def test_a_ready_order_at_the_cart_is_not_swept_as_uncollected(w):
    order = place_paid(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    act("accept", order)
    act("ready", order)
    assert orders_expire(now=timezone.now() + timedelta(days=30))["uncollected"] == 0
    assert Order.objects.get(pk=order.pk).status == Status.READY


def test_orders_expire_works_in_bounded_batches(w):
    for _ in range(3):
        place_paid(customer=w.customer, vendor=w.vendor, items=[(w.milk, 1)])
    later = timezone.now() + timedelta(hours=1)
    assert [orders_expire(now=later, batch_size=2)["expired"] for _ in range(3)] == [2, 1, 0]
    assert stock_of(w.vendor, w.milk) == 10


def test_five_wrong_handover_codes_lock_the_order_for_a_while(w):
    # given an order on its way
    order = order_in(w, Status.EN_ROUTE, expired=False)
    wrong = "0000" if order.handover_code != "0000" else "1111"
    # when a vendor tries five wrong codes
    for _i in range(5):
        with pytest.raises(ValidationError):
            order_hand_over(order_id=order.pk, vendor=w.vendor, code=wrong)
    # then even the right code is refused for now, and the order has not moved
    with pytest.raises(ValidationError) as refused:
        order_hand_over(order_id=order.pk, vendor=w.vendor, code=order.handover_code)
    assert "code" in refused.value.message_dict
    order.refresh_from_db()
    assert order.status == Status.EN_ROUTE


HANDOVER_CACHES = [
    pytest.param("redis", marks=pytest.mark.redis),  # the real stack
    pytest.param("django.core.cache.backends.locmem.LocMemCache", id="locmem"),  # the demo
]


@pytest.fixture(params=HANDOVER_CACHES)
def tries_cache(request, settings):
    """The cache the handover tries are counted in: Redis, or the embedded demo's LocMemCache."""
    if request.param != "redis":
        settings.CACHES = {"default": {"BACKEND": request.param}}
    return request.param


def _tries(order: Order):
    return cache.get(f"orders:handover-tries:{order.checkout_token}")


@pytest.mark.parametrize("wrong_before", range(HANDOVER_MAX_TRIES))
def test_the_right_code_works_on_any_allowed_try_and_clears_the_count(w, tries_cache, wrong_before):
    # Given an order on its way, and the vendor's typos so far
    order = order_in(w, Status.EN_ROUTE, expired=False)
    for _ in range(wrong_before):
        with pytest.raises(ValidationError):
            order_hand_over(order_id=order.pk, vendor=w.vendor, code="0000")
    assert _tries(order) == (wrong_before or None)
    # When the right code is typed on try 1..HANDOVER_MAX_TRIES
    moved = order_hand_over(order_id=order.pk, vendor=w.vendor, code=order.handover_code)
    # Then the order is handed over, and no count of tries is left behind
    assert moved.status == Status.HANDED_OVER
    assert _tries(order) is None


def test_tries_past_the_limit_are_refused_without_looking_at_the_code(w, tries_cache):
    # Given an order on its way, and HANDOVER_MAX_TRIES wrong codes typed
    order = order_in(w, Status.EN_ROUTE, expired=False)
    with translation.override("en"):
        for _ in range(HANDOVER_MAX_TRIES):
            with pytest.raises(ValidationError) as wrong:
                order_hand_over(order_id=order.pk, vendor=w.vendor, code="0000")
            assert wrong.value.message_dict == {
                "code": ["That code is not right. Ask the customer to show it."]
            }
        # When more are tried, the right one too
        for code in ("0000", order.handover_code):
            with pytest.raises(ValidationError) as locked:
                order_hand_over(order_id=order.pk, vendor=w.vendor, code=code)
            # Then each is refused as too many, the order stays where it was
            assert locked.value.message_dict == {
                "code": ["Too many wrong codes. Wait 15 minutes or ask support to help."]
            }
    assert Order.objects.get(pk=order.pk).status == Status.EN_ROUTE
    # And when the window is over (the count gone), the right code works again
    cache.delete(f"orders:handover-tries:{order.checkout_token}")
    moved = order_hand_over(order_id=order.pk, vendor=w.vendor, code=order.handover_code)
    assert moved.status == Status.HANDED_OVER
