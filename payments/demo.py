"""The demo's money history (seed_demo calls `money_history_seed`): past days of completed orders
of the demo vendor, one refunded line, commission plans, a payout account, settlements of past
periods and their payouts paid, so every money page shows something on the first day.

Everything goes through the real services, as on a real day: the customer places and pays each
order (the sandbox's card page service), the vendor accepts and hands it over, the effects capture
the money and complete the order, staff refund a line, the settlement run settles each past
period and its payout is sent and paid. The sandbox is reached in process (its HTTP API over a
WSGI transport) because no server runs while the demo is seeded.

The past is made by running each step with the clock set to its moment: the services stamp their
rows with `timezone.now()`, and the ledger is append-only (its rows can't be re-dated after), so
the clock is the one honest way to book a journal transaction on an earlier day. Only the rows
whose model default captured the real clock (a settlement's and a payout's `created_at`) are
re-dated afterwards; they are not ledger rows.

Idempotent: once the demo vendor has a settlement, nothing is done again."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from unittest import mock

import httpx
from django.conf import settings
from django.core import mail
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from django.utils import timezone

from .models import CommissionPlan, Payout, PayoutAccount, Settlement

log = logging.getLogger(__name__)

# Checkout tokens of the demo's orders: the same slot gives the same token.
TOKENS = uuid.UUID("6f2b7c1e-3c9a-4d0e-9a51-0d2c7f3b5e11")
DEMO_CARD = "4242424242424242"
DEMO_BANK = ("국민은행", "123401-04-567890")
# (days ago, local hour, fulfilment, [(sku, quantity)]): a week of a cart's round.
Slot = tuple[int, int, str, list[tuple[str, int]]]
ORDERS: list[Slot] = [
    (6, 8, "pickup", [("yakult-light", 4)]),
    (6, 11, "delivery", [("yakult-light", 2), ("coldbrew-latte", 1)]),
    (5, 9, "at_cart", [("greek-yogurt", 2), ("veg-juice", 1)]),
    (5, 15, "delivery", [("chicken-salad", 1), ("coldbrew-black", 2)]),
    (4, 7, "pickup", [("yakult-light", 2), ("egg-sandwich", 1)]),
    (4, 13, "meet", [("stomach-care", 3)]),
    (3, 10, "delivery", [("protein-drink", 2), ("yakult-light", 4)]),
    (3, 16, "pickup", [("decaf-latte", 2)]),
    (2, 8, "at_cart", [("yakult-light", 2), ("black-bean-soymilk", 1)]),
    (2, 12, "delivery", [("grain-salad", 1), ("coldbrew-latte", 2)]),
    (1, 9, "pickup", [("yakult-light", 4), ("drink-yogurt-berry", 1)]),
    (1, 14, "meet", [("coldbrew-black", 1), ("greek-yogurt", 1)]),
]
TODAY_ORDER: Slot = (0, 0, "at_cart", [("yakult-light", 2), ("coldbrew-latte", 1)])
# Another vendor sold once and has no payout account yet: its payout waits (staff see why).
OTHER_ORDER: Slot = (2, 10, "at_cart", [("yakult-light", 3)])
REFUNDED = 6  # the index in ORDERS of the order whose first line staff refund
SETTLED_DAYS = (6, 5, 4, 3, 2)  # yesterday is left for the nightly run (or staff's "settle now")


@contextlib.contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Every `timezone.now()` answers `moment` (the services stamp their rows with it)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


@contextlib.contextmanager
def sandbox_in_process() -> Iterator[None]:
    """The sandbox gateway calls the sandbox's API in this process (no server runs while seeding),
    on this thread's database connection: like django.test.Client, requests leave it open."""
    from . import gateways
    from .gateways.sandbox import SandboxGateway

    gateway = SandboxGateway(
        base_url="http://localhost",
        secret_key=settings.SANDBOX_SECRET_KEY,
        webhook_secret=settings.SANDBOX_WEBHOOK_SECRET,
        retries=0,
        transport=httpx.WSGITransport(app=WSGIHandler()),
    )
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with (
            mock.patch.object(gateways, "_sandbox", return_value=gateway),
            override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "localhost"]),
        ):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def run_effects_now() -> None:
    """What the relay would run now (at the clock's time): captures, completions, refunds."""
    from o2o.effects import effects_run

    while sum(effects_run(limit=100).values()):
        pass


@dataclass
class _World:
    vendor: Any
    customer: Any  # CustomerProfile
    staff: Any
    point: Any
    address_id: int


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _order(world: _World, spec: Slot, token: uuid.UUID, start: datetime) -> int:
    """One order, from placement to completion; its id."""
    from orders import services as orders
    from orders.services import LineIn, Receive
    from vendors.models import Product

    from . import services as payments
    from .models import Payment
    from .sandbox import services as sandbox

    _days, _hour, fulfilment, wanted = spec
    carried = list(
        Product.objects.filter(stock__vendor=world.vendor, is_active=True).order_by("pk")
    )
    by_sku = {p.sku: p for p in carried}
    # A product this cart doesn't carry is swapped for one it does (the seed's carts differ).
    items = [
        (by_sku.get(sku) or carried[(start.day + i) % len(carried)], q)
        for i, (sku, q) in enumerate(wanted)
    ]
    if fulfilment == "meet" and not _meet_cell(world.vendor):
        fulfilment = "at_cart"  # the cart is not on the map: the customer walks up to it
    where: dict[str, Any] = {
        "pickup": {"pickup_point_id": world.point.pk},
        "delivery": {"address_id": world.address_id},
        "meet": {"meet_cell": _meet_cell(world.vendor)},
        "at_cart": {},
    }[fulfilment]
    timed = fulfilment != "at_cart"  # at the cart: now, no window
    with clock_at(start):
        order = orders.order_place(
            customer=world.customer,
            vendor_id=world.vendor.pk,
            lines=[LineIn(product_id=p.pk, quantity=q) for p, q in items],
            receive=Receive(
                fulfilment=fulfilment,
                window_start=start + timedelta(minutes=15) if timed else None,
                window_end=start + timedelta(minutes=75) if timed else None,
                **where,
            ),
            checkout_token=token,
            now=start,
        )
        orders.order_payment_start(order_id=order.pk, return_url="http://localhost/")
        payment = Payment.objects.get(order_id=order.pk)
        sandbox.card_submit(intent_id=payment.provider_ref, number=DEMO_CARD)
        payments.payment_sync(payment_id=payment.pk)
        run_effects_now()
    with clock_at(start + timedelta(minutes=2)):
        orders.order_accept(order_id=order.pk, vendor=world.vendor, eta_minutes=20)
        run_effects_now()
    with clock_at(start + timedelta(minutes=20)):
        if fulfilment == "delivery":
            orders.order_depart(order_id=order.pk, vendor=world.vendor)
        elif fulfilment == "pickup":
            orders.order_ready(order_id=order.pk, vendor=world.vendor)
        run_effects_now()
    with clock_at(start + timedelta(minutes=35)):
        order.refresh_from_db()
        orders.order_hand_over(order_id=order.pk, vendor=world.vendor, code=order.handover_code)
        run_effects_now()
    return order.pk


def _meet_cell(vendor) -> str:
    from tracking.models import VendorPosition

    pos = VendorPosition.objects.filter(vendor=vendor).first()
    return pos.public_cell if pos is not None and pos.public_cell else ""


def _go_on_shift(world: _World, moment: datetime) -> None:
    """The vendor starts the day's shift and its phone reports where the cart is (a meet order
    needs the cart on the map)."""
    from tracking.services import ping_record, shift_start

    with clock_at(moment):
        shift_start(vendor=world.vendor, actor=world.vendor.user)
        for minutes in (0, 1, 2):
            at = moment + timedelta(minutes=minutes)
            with clock_at(at):
                ping_record(
                    vendor_id=world.vendor.pk,
                    lat=world.vendor.home_lat,
                    lng=world.vendor.home_lng,
                    accuracy_m=8,
                    recorded_at=at,
                    now=at,
                )


def _end_shift(world: _World, moment: datetime) -> None:
    from tracking.services import shift_end

    with clock_at(moment):
        shift_end(vendor=world.vendor, actor=world.vendor.user)


def _plans(vendor, today: date) -> None:
    """The platform's plan for every vendor (10 %) and the demo vendor's own, lower rate (8 %)
    since last month, with a change already scheduled (9 % from the first of next month)."""
    start = _at(today.replace(day=1) - timedelta(days=40), 0)
    CommissionPlan.objects.get_or_create(
        vendor=None,
        category=None,
        note="demo: platform plan",
        defaults={"bps": 1000, "valid_from": start},
    )
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    own, _created = CommissionPlan.objects.get_or_create(
        vendor=vendor,
        category=None,
        note="demo: launch discount",
        defaults={"bps": 800, "valid_from": start, "valid_until": _at(next_month, 0)},
    )
    CommissionPlan.objects.get_or_create(
        vendor=vendor,
        category=None,
        note="demo: standard vendor plan",
        defaults={"bps": 900, "valid_from": own.valid_until or _at(next_month, 0)},
    )


def _settle_and_pay(world: _World, day: date, *, send: bool = True) -> None:
    """The nightly run after `day`: settle its period, send the payouts, and the bank pays."""
    from . import payouts
    from .sandbox import services as sandbox
    from .settlement import period_of, settlements_settle

    period = period_of(_at(day, 12))
    with clock_at(period.end + timedelta(hours=1)):
        settlements_settle(period=period, vendor_id=world.vendor.pk)
        settlement = Settlement.objects.filter(
            vendor=world.vendor, period_start=period.start
        ).first()
        if settlement is None:
            return
        Settlement.objects.filter(pk=settlement.pk).update(created_at=period.end)
        payout = Payout.objects.filter(settlement=settlement).first()
        if payout is None:
            return
        Payout.objects.filter(pk=payout.pk).update(created_at=period.end)
        if not send:
            return
        payout = payouts.payout_send(payout_id=payout.pk)
    if payout.status == Payout.Status.SENT:  # a bank that answers later: it pays next morning
        with clock_at(period.end + timedelta(hours=9)):
            sandbox.payout_finish(payout_id=payout.provider_ref, paid=True)
            payouts.payout_sync(payout_id=payout.pk)


def _other_vendor_sale(world: _World, today: date) -> int:
    """One sale of another vendor, settled; its payout waits for a payout account."""
    from vendors.models import Stock
    from vendors.services import StockChange, stock_set

    days_ago, hour, _way, _items = OTHER_ORDER
    day = today - timedelta(days=days_ago)
    stock = dict(Stock.objects.filter(vendor=world.vendor).values_list("product_id", "quantity"))
    changes = [StockChange(product_id=pid, quantity=qty + 10) for pid, qty in stock.items()]
    stock_set(vendor=world.vendor, actor=world.vendor.user, changes=changes)
    _go_on_shift(world, _at(day, hour) - timedelta(minutes=10))
    _order(world, OTHER_ORDER, uuid.uuid5(TOKENS, f"other:{world.vendor.pk}"), _at(day, hour))
    _end_shift(world, _at(day, hour + 2))
    _settle_and_pay(world, day, send=False)
    changes = [StockChange(product_id=pid, quantity=qty) for pid, qty in stock.items()]
    stock_set(vendor=world.vendor, actor=world.vendor.user, changes=changes)
    return 1


def money_history_seed(*, vendor, customer, staff, point, other=None) -> int:
    """A week of the demo vendor's money, and one sale of `other` (a vendor without a payout
    account), once; the number of orders made (0 when they exist)."""
    from orders.models import Order
    from orders.services import order_line_refund
    from tracking.models import VendorPosition
    from vendors.models import Stock
    from vendors.services import StockChange, stock_set

    today = timezone.localdate()
    _plans(vendor, today)
    PayoutAccount.objects.get_or_create(
        vendor=vendor,
        defaults={"bank": DEMO_BANK[0], "account_number": DEMO_BANK[1], "holder": vendor.user.name},
    )
    if (
        Settlement.objects.filter(vendor=vendor).exists()
        or Order.objects.filter(checkout_token=uuid.uuid5(TOKENS, "0")).exists()
    ):
        return 0
    address = customer.addresses.order_by("pk").first()
    world = _World(
        vendor=vendor, customer=customer, staff=staff, point=point, address_id=address.pk
    )
    stock = dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))
    pos = VendorPosition.objects.filter(vendor=vendor).first()
    was_on_shift = bool(pos and pos.on_shift)
    made = 0
    with (
        sandbox_in_process(),
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
    ):
        mail.outbox = []
        # The cart carries enough for the week's round (restocked to today's counts after).
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(product_id=pid, quantity=qty + 40) for pid, qty in stock.items()],
        )
        days: dict[int, list[int]] = {}
        for slot, (days_ago, *_rest) in enumerate(ORDERS):
            days.setdefault(days_ago, []).append(slot)
        for days_ago in sorted(days, reverse=True):
            day = today - timedelta(days=days_ago)
            first_hour = min(ORDERS[s][1] for s in days[days_ago])
            _go_on_shift(world, _at(day, first_hour) - timedelta(minutes=10))
            for slot in days[days_ago]:
                order_id = _order(
                    world, ORDERS[slot], uuid.uuid5(TOKENS, str(slot)), _at(day, ORDERS[slot][1])
                )
                made += 1
                if slot == REFUNDED:
                    line = Order.objects.get(pk=order_id).lines.order_by("pk")[0]
                    with clock_at(_at(day, ORDERS[slot][1] + 3)):
                        order_line_refund(
                            order_id=order_id,
                            line_id=line.pk,
                            actor=staff,
                            reason="고객 요청: 유통기한 임박",
                        )
                        run_effects_now()
            _end_shift(world, _at(day, 19))
        # And one sale an hour ago, so that today's and this week's figures show something.
        start = timezone.now() - timedelta(hours=1)
        _go_on_shift(world, start - timedelta(minutes=10))
        _order(world, TODAY_ORDER, uuid.uuid5(TOKENS, "today"), start)
        made += 1
        _end_shift(world, start + timedelta(minutes=45))
        for days_ago in SETTLED_DAYS:
            _settle_and_pay(world, today - timedelta(days=days_ago))
        if other is not None and not PayoutAccount.objects.filter(vendor=other).exists():
            made += _other_vendor_sale(replace(world, vendor=other), today)
        stock_set(
            vendor=vendor,
            actor=vendor.user,
            changes=[StockChange(product_id=pid, quantity=qty) for pid, qty in stock.items()],
        )
        if was_on_shift:
            from tracking.services import shift_start

            shift_start(vendor=vendor, actor=vendor.user)
    log.info("demo money history: %d orders", made)
    return made
