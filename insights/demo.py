"""Past weeks of sales at the cart for the demo's carts, so that the insight pages have something
to show on a fresh `make demo`: cash sales (the channel that needs no payment provider) in the
cells of each cart's area, more at lunch and in the evening and on some weekdays, recorded as the
real ones are and summarised once."""

import random
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import h3
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Channel, SaleKind, SaleRecord
from .services import insight_cell

TOKENS = uuid.UUID("6d0c2c59-6a59-4f0c-9d3b-2f3f3f0e1717")
HOURLY = {7: 1, 8: 2, 9: 1, 10: 1, 11: 3, 12: 5, 13: 3, 14: 1, 15: 1, 16: 2, 17: 3, 18: 4, 19: 2}
WEEKDAY = [1.3, 0.9, 1.0, 1.1, 1.4, 0.6, 0.4]  # Monday and Friday busy, the weekend quiet


@transaction.atomic
def sales_history_seed(*, vendors: list, weeks: int = 4, scale: float = 1.0, seed: int = 17) -> int:
    """Past cash sales of each vendor over `weeks` weeks before today, once (by a fixed token per
    vendor); the number of orders made."""
    from customers.services import walkup_customer
    from orders.models import Fulfilment, Order, OrderLine, PaymentMethod, Status
    from vendors.models import Stock

    rng = random.Random(seed)
    zone = ZoneInfo(settings.TIME_ZONE)
    buyer = walkup_customer()
    today = timezone.localdate()
    made = 0
    for vendor in vendors:
        first = uuid.uuid5(TOKENS, str(vendor.pk))
        if Order.objects.filter(checkout_token=first).exists():
            continue
        carried = list(
            Stock.objects.filter(vendor=vendor).select_related("product").order_by("product_id")
        )
        if not carried:
            continue
        favourites = carried[: max(2, len(carried) // 2)]
        home = h3.latlng_to_cell(vendor.home_lat, vendor.home_lng, settings.INSIGHT_CELL_RES)
        cells = [home, *sorted(h3.grid_disk(home, 2))]
        orders, lines = [], []
        for days_ago in range(weeks * 7, 0, -1):
            day = today - timedelta(days=days_ago)
            for hour, weight in HOURLY.items():
                for _ in range(_poisson(rng, weight * WEEKDAY[day.weekday()] * scale)):
                    at = datetime.combine(day, time(hour, rng.randrange(60)), zone)
                    picks = rng.sample(favourites, k=min(len(favourites), rng.choice([1, 1, 2])))
                    items = [(s.product, rng.choice([1, 1, 2, 3])) for s in picks]
                    total = sum(p.price * q for p, q in items)
                    order = Order(
                        customer=buyer,
                        vendor=vendor,
                        status=Status.COMPLETED,
                        fulfilment=Fulfilment.AT_CART,
                        payment_method=PaymentMethod.CASH,
                        currency=settings.CURRENCY,
                        subtotal=total,
                        total=total,
                        commission_bps=0,
                        commission=0,
                        handover_code="0000",
                        checkout_token=first if not orders else uuid.uuid4(),
                        placed_at=at,
                        accepted_at=at,
                        handed_over_at=at,
                        completed_at=at,
                    )
                    order.demo_cell = rng.choice(cells[: 7 if rng.random() < 0.7 else None])
                    orders.append(order)
                    lines.append(items)
        Order.objects.bulk_create(orders, batch_size=500)
        made += len(orders)
        order_lines = [
            OrderLine(
                order=order,
                product=product,
                name_ko=product.name_ko,
                name_en=product.name_en,
                unit_price=product.price,
                quantity=quantity,
                line_total=product.price * quantity,
            )
            for order, items in zip(orders, lines, strict=True)
            for product, quantity in items
        ]
        OrderLine.objects.bulk_create(order_lines, batch_size=500)
        cells_of = {o.pk: o.demo_cell for o in orders}
        SaleRecord.objects.bulk_create(
            [_sale(line, cells_of[line.order.pk], zone) for line in order_lines], batch_size=500
        )
    return made


def _sale(line, cell: str, zone: ZoneInfo) -> SaleRecord:
    order = line.order
    local = order.handed_over_at.astimezone(zone)
    return SaleRecord(
        vendor_id=order.vendor_id,
        order_id=order.pk,
        line_id=line.pk,
        product_id=line.product_id,
        kind=SaleKind.SALE,
        channel=Channel.CASH,
        fulfilment=order.fulfilment,
        buyer=-order.pk,
        units=line.quantity,
        amount=line.line_total,
        currency=order.currency,
        occurred_at=order.handed_over_at,
        day=local.date(),
        weekday=local.weekday(),
        hour=local.hour,
        cell=insight_cell(cell),
    )


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth): small means only."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
