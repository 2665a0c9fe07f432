"""The order state machine under random sequences of everything people and the system do.

A small world (one vendor with two products on the cart, two customers, a pickup point) is driven
by hypothesis: place, pay (ok or declined), accept, reject, cancel (by either customer), depart,
ready, hand over (right or wrong code), complete, and the expiry sweep with the clock moved on.
Each step is checked against the graph (EDGES): an action moves an order exactly when it is in a
source state and the actor is the right one, and changes nothing otherwise. After every step:
stock is conserved, never negative, every logged change is an edge of the graph, and an order that
reached a final state never moves again.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from orders.models import FINAL, Fulfilment, Order, OrderEvent, OrderLine, Status
from orders.services import (
    EDGES,
    SHORT_STATES,
    InvalidTransition,
    Receive,
    order_accept,
    order_cancel,
    order_complete,
    order_depart,
    order_expire_now,
    order_hand_over,
    order_line_short,
    order_payment_settled,
    order_ready,
    order_reject,
    order_staff_cancel,
    order_vendor_cancel,
    orders_expire,
)
from tests.factories import CustomerProfileFactory, StaffFactory
from tests.orders.factories import (
    DELIVERED,
    HOLDS_STOCK,
    always_open_point,
    cart,
    place,
    stock_up,
    units_in,
    vendor_on_shift,
    window,
)
from vendors.services import OutOfStock


def short_in(vendor, product, statuses) -> int:
    rows = OrderLine.objects.filter(
        order__vendor=vendor, order__status__in=statuses, product=product
    )
    return rows.aggregate(n=Sum("short_quantity"))["n"] or 0


INITIAL = (6, 4)
GRAPH = {(source, to) for sources, to in EDGES.values() for source in sources}
GRAPH.add(("", Status.PENDING_PAYMENT))


class OrderWorld(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in its own savepoint, rolled back in teardown: a fresh world.
        self._savepoint = transaction.savepoint()
        self.vendor = vendor_on_shift(public=False)
        self.products = stock_up(self.vendor, *INITIAL)
        self.customers = [CustomerProfileFactory(), CustomerProfileFactory()]
        self.staff = StaffFactory()
        self.point = always_open_point()
        self.clock = timezone.now()
        self.finals: dict[int, str] = {}
        self.placed = 0

    def teardown(self) -> None:
        transaction.savepoint_rollback(self._savepoint)

    # --- helpers --------------------------------------------------------------------------

    def _status(self, order_id: int) -> str:
        return Order.objects.values_list("status", flat=True).get(pk=order_id)

    def _step(self, order_id: int, action: str, call, *, allowed_actor: bool = True) -> None:
        """Take `action` and check it against the graph: it moves the order along the edge
        exactly when the order is in a source state and the actor may; otherwise nothing."""
        sources, to = EDGES[action]
        before = self._status(order_id)
        events = OrderEvent.objects.filter(order_id=order_id).count()
        try:
            result = call()
        except InvalidTransition:
            result = None
        after = self._status(order_id)
        if before in sources and allowed_actor:
            assert result is not None and result.status == after == to, (action, before, after)
            assert OrderEvent.objects.filter(order_id=order_id).count() == events + 1
        else:
            assert result is None and after == before, (action, before, after)
            assert OrderEvent.objects.filter(order_id=order_id).count() == events

    # --- rules ----------------------------------------------------------------------------

    @initialize(target=orders, pickup=st.booleans(), depth=st.integers(0, 6))
    def first_order(self, pickup, depth):
        """Every world starts with an order taken `depth` steps along the way to COMPLETED, so
        that each state is often where the random steps begin."""
        order_id = self.place_order(who=0, first=1, second=1, pickup=pickup)
        self.advance(order_id, [0] * depth)
        return order_id

    # A few orders per world, so that the steps go deep into each rather than wide.
    @precondition(lambda self: self.placed < 4)
    @rule(
        target=orders,
        who=st.integers(0, 1),
        first=st.integers(0, 4),
        second=st.integers(0, 4),
        pickup=st.booleans(),
    )
    def place_order(self, who, first, second, pickup):
        items = [(p, q) for p, q in zip(self.products, (first, second), strict=True) if q]
        if not items:
            return multiple()
        self.placed += 1
        receive = (
            Receive(fulfilment=Fulfilment.PICKUP, pickup_point_id=self.point.pk, **window())
            if pickup
            else None
        )
        stock_before = cart(self.vendor)
        try:
            order = place(
                customer=self.customers[who], vendor=self.vendor, items=items, receive=receive
            )
        except OutOfStock:
            # Refused only when some line really wanted more than the cart had; nothing taken.
            assert any(stock_before[p.pk] < q for p, q in items)
            assert cart(self.vendor) == stock_before
            return multiple()
        assert order.status == Status.PENDING_PAYMENT
        return order.pk

    def _do(self, action: str, order_id: int, *, who: int | None = None) -> None:
        """One action on an order, by its vendor, or by customer `who` (default: its own)."""
        order = Order.objects.get(pk=order_id)
        vendor = self.vendor
        customer = order.customer if who is None else self.customers[who]
        calls = {
            "authorise": lambda: order_payment_settled(
                order_id=order_id, payment_status="authorised"
            ),
            "fail": lambda: order_payment_settled(order_id=order_id, payment_status="failed"),
            "accept": lambda: order_accept(order_id=order_id, vendor=vendor, eta_minutes=15),
            "reject": lambda: order_reject(order_id=order_id, vendor=vendor, reason="품절"),
            "cancel": lambda: order_cancel(order_id=order_id, customer=customer),
            "depart": lambda: order_depart(order_id=order_id, vendor=vendor),
            "ready": lambda: order_ready(order_id=order_id, vendor=vendor),
            "hand_over": lambda: order_hand_over(
                order_id=order_id, vendor=vendor, code=order.handover_code
            ),
            "complete": lambda: order_complete(order_id=order_id),
            "staff_cancel": lambda: order_staff_cancel(
                order_id=order_id, actor=self.staff, reason="고객센터"
            ),
            "staff_expire": lambda: order_expire_now(order_id=order_id, actor=self.staff),
            "vendor_cancel": lambda: order_vendor_cancel(
                order_id=order_id, vendor=vendor, reason="카트 고장"
            ),
        }
        self._step(order_id, action, calls[action], allowed_actor=customer.pk == order.customer_id)

    @rule(order_id=orders, ok=st.booleans())
    def pay(self, order_id, ok):
        self._do("authorise" if ok else "fail", order_id)

    @rule(order_id=orders)
    def accept(self, order_id):
        self._do("accept", order_id)

    @rule(order_id=orders)
    def reject(self, order_id):
        self._do("reject", order_id)

    @rule(order_id=orders, who=st.integers(0, 1))
    def cancel(self, order_id, who):
        self._do("cancel", order_id, who=who)

    @rule(order_id=orders)
    def depart(self, order_id):
        self._do("depart", order_id)

    @rule(order_id=orders)
    def ready(self, order_id):
        self._do("ready", order_id)

    @rule(order_id=orders, right=st.booleans())
    def hand_over(self, order_id, right):
        if right:
            self._do("hand_over", order_id)
            return
        code = Order.objects.values_list("handover_code", flat=True).get(pk=order_id)
        wrong = f"{(int(code) + 1) % 10_000:04d}"
        before = self._status(order_id)
        with pytest.raises(ValidationError) as refused:
            order_hand_over(order_id=order_id, vendor=self.vendor, code=wrong)
        assert not isinstance(refused.value, InvalidTransition)
        assert self._status(order_id) == before
        # The lockout after five wrong codes has its own test; this model is about the graph.
        token = Order.objects.values_list("checkout_token", flat=True).get(pk=order_id)
        cache.delete(f"orders:handover-tries:{token}")

    @rule(order_id=orders, which=st.integers(0, 1), quantity=st.integers(1, 3))
    def short(self, order_id, which, quantity):
        """The vendor can't supply units of a line: allowed before the handover, within the
        line, while something is left to hand over; the order's status never moves."""
        order = Order.objects.get(pk=order_id)
        line = order.lines.order_by("pk")[which % order.lines.count()]
        before, short_before = order.status, line.short_quantity
        left = sum(item.quantity - item.short_quantity for item in order.lines.all())
        ok = (
            order.status in SHORT_STATES
            and quantity <= line.quantity - line.short_quantity
            and left - quantity > 0
        )
        try:
            order_line_short(
                order_id=order_id,
                line_id=line.pk,
                vendor=self.vendor,
                quantity=quantity,
                reason="x",
            )
        except ValidationError:  # InvalidTransition included
            assert not ok, (order.status, quantity, line.quantity, short_before, left)
        else:
            assert ok, (order.status, quantity, line.quantity, short_before, left)
        line.refresh_from_db()
        assert line.short_quantity == short_before + (quantity if ok else 0)
        assert self._status(order_id) == before

    @rule(order_id=orders)
    def complete(self, order_id):
        self._do("complete", order_id)

    @rule(order_id=orders, picks=st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=1, max_size=6))
    def advance(self, order_id, picks):
        """A walk of up to six actions the order's state allows, each pick choosing among them
        (mostly 0: onwards, as EDGES lists the way onwards first). The rules above, picked blindly, are
        mostly refused; this is what takes orders deep into the graph."""
        for pick in picks:
            status = self._status(order_id)
            allowed = [
                action
                for action, (sources, _to) in EDGES.items()
                if status in sources and action not in ("expire", "uncollected")  # the sweep's
            ]
            if not allowed:
                return
            self._do(allowed[pick % len(allowed)], order_id)

    @rule(minutes=st.sampled_from([1, 11, 16, 25 * 60]))
    def expire(self, minutes):
        # Given the clock moved on
        self.clock += timedelta(minutes=minutes)
        rows = list(
            Order.objects.filter(vendor=self.vendor).values_list(
                "pk", "status", "fulfilment", "expires_at"
            )
        )
        # When the sweep runs
        done = orders_expire(now=self.clock)
        # Then exactly the orders whose deadline passed ended, each by its own rule
        rule_for = {
            Status.PLACED: ("expired", Status.EXPIRED),
            Status.PENDING_PAYMENT: ("unpaid", Status.FAILED),
            Status.READY: ("uncollected", Status.CANCELLED),
        }
        expected = {"expired": 0, "unpaid": 0, "uncollected": 0}
        for pk, status, fulfilment, expires_at in rows:
            due = expires_at is not None and expires_at < self.clock and status in rule_for
            if due and (status != Status.READY or fulfilment == Fulfilment.PICKUP):
                label, to = rule_for[status]
                expected[label] += 1
                assert self._status(pk) == to
            else:
                assert self._status(pk) == status
        assert done == expected

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def stock_is_conserved_and_never_negative(self):
        on_cart = cart(self.vendor)
        for product, initial in zip(self.products, INITIAL, strict=True):
            held = units_in(self.vendor, product, HOLDS_STOCK)
            gone = units_in(self.vendor, product, DELIVERED)
            # Units the vendor could not supply never go back on the cart, whatever the ending.
            ended = [s for s in Status.values if s not in HOLDS_STOCK + DELIVERED]
            lost = short_in(self.vendor, product, ended)
            assert on_cart[product.pk] >= 0
            assert on_cart[product.pk] + held + gone + lost == initial, (on_cart, held, gone, lost)

    @invariant()
    def every_logged_change_is_an_edge_and_chains_to_the_status(self):
        last: dict[int, str] = {}
        for oid, source, to in OrderEvent.objects.filter(order__vendor=self.vendor).values_list(
            "order_id", "from_status", "to_status"
        ):
            assert (source, to) in GRAPH, (source, to)
            assert last.get(oid, "") == source
            last[oid] = to
        statuses = dict(Order.objects.filter(vendor=self.vendor).values_list("pk", "status"))
        assert last == statuses

    @invariant()
    def final_states_never_change(self):
        statuses = dict(Order.objects.filter(vendor=self.vendor).values_list("pk", "status"))
        for oid, final in self.finals.items():
            assert statuses[oid] == final, (oid, final, statuses[oid])
        self.finals.update({oid: s for oid, s in statuses.items() if s in FINAL})


@pytest.mark.django_db
def test_random_journeys_keep_the_order_rules():
    run_state_machine_as_test(
        OrderWorld,
        settings=hypothesis_settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
