"""Writing the record: a completed sale, money or units coming back, a miss.

Each is called inside the transaction of the change it records (the order's completion, the
refund's success, the undo), so a sale is recorded if and only if it happened; the unique
constraints make a second call a no-op.
"""

import hashlib
import hmac
from datetime import datetime
from zoneinfo import ZoneInfo

import h3
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from .models import Channel, MissKind, MissRecord, SaleKind, SaleRecord


def _local(moment: datetime) -> tuple[datetime, int, int]:
    """(local moment, weekday Monday=0, hour) in TIME_ZONE."""
    local = moment.astimezone(ZoneInfo(settings.TIME_ZONE))
    return local, local.weekday(), local.hour


def insight_cell(cell: str) -> str:
    """A cell at the resolution the record keeps (INSIGHT_CELL_RES, never finer than the public
    one): a finer cell is taken up to its parent; an invalid one is dropped."""
    if not cell:
        return ""
    try:
        res = h3.get_resolution(cell)
    except (TypeError, ValueError, h3.H3BaseException):
        return ""
    target = settings.INSIGHT_CELL_RES
    return h3.cell_to_parent(cell, target) if res > target else cell


def _sale_cell(order) -> str:
    """Where the goods changed hands, as a public cell: the meeting area, the delivery address's
    cell, the pickup point's cell, or the cart's public cell at that moment (at the cart)."""
    from o2o.geo import cell_of
    from orders.models import Fulfilment
    from tracking.models import VendorPosition

    cell = ""
    if order.fulfilment == Fulfilment.MEET:
        cell = order.meet_cell
    elif order.fulfilment == Fulfilment.DELIVERY and order.delivery_lat is not None:
        cell = cell_of(order.delivery_lat, order.delivery_lng)
    elif order.fulfilment == Fulfilment.PICKUP and order.pickup_point_id:
        cell = order.pickup_point.cell
    if not cell:
        cell = (
            VendorPosition.objects.filter(vendor_id=order.vendor_id)
            .values_list("public_cell", flat=True)
            .first()
            or ""
        )
    return insight_cell(cell)


def _channel(order) -> str:
    from orders.models import PaymentMethod

    if order.payment_method == PaymentMethod.CASH:
        return Channel.CASH
    if order.walkup:
        return Channel.WALKUP
    if hasattr(order, "subscription_delivery"):
        return Channel.REGULAR
    return Channel.ONLINE


def _buyer(order) -> int:
    """The customer, or (a buyer without an account) minus the order: never one key for many."""
    from customers.services import WALKUP_EMAIL

    if order.customer.user.email == WALKUP_EMAIL:
        return -order.pk
    return order.customer_id


def sale_record_order(*, order_id: int) -> int:
    """The order's lines as sold (the units handed over, their amount), once: call it in the
    transaction that completes the order. Returns the rows written (0 when already recorded)."""
    from orders.models import Order

    order = (
        Order.objects.select_related("customer__user", "pickup_point", "subscription_delivery")
        .filter(pk=order_id)
        .first()
    )
    if order is None or SaleRecord.objects.filter(order_id=order_id, kind=SaleKind.SALE).exists():
        return 0
    moment = order.handed_over_at or order.completed_at or timezone.now()
    local, weekday, hour = _local(moment)
    common = {
        "vendor_id": order.vendor_id,
        "order_id": order.pk,
        "kind": SaleKind.SALE,
        "channel": _channel(order),
        "fulfilment": order.fulfilment,
        "buyer": _buyer(order),
        "currency": order.currency,
        "occurred_at": moment,
        "day": local.date(),
        "weekday": weekday,
        "hour": hour,
        "cell": _sale_cell(order),
    }
    rows = [
        SaleRecord(
            line_id=line.pk,
            product_id=line.product_id,
            units=line.quantity - line.short_quantity,
            amount=line.line_total - line.short_amount,
            **common,
        )
        for line in order.lines.all()
        if line.quantity > line.short_quantity
    ]
    try:
        with transaction.atomic():
            SaleRecord.objects.bulk_create(rows)
    except IntegrityError:  # recorded by a concurrent call
        return 0
    return len(rows)


def _reverse(sale: SaleRecord, *, kind: str, source_id: int, units: int, amount: int) -> bool:
    fields = {
        f: getattr(sale, f)
        for f in (
            "vendor_id", "order_id", "line_id", "product_id", "channel", "fulfilment", "buyer",
            "currency", "occurred_at", "day", "weekday", "hour", "cell",
        )
    }  # fmt: skip
    try:
        with transaction.atomic():
            SaleRecord.objects.create(
                kind=kind, source_id=source_id, units=-units, amount=-amount, **fields
            )
    except IntegrityError:
        return False
    return True


def _split(amount: int, weights: list[int]) -> list[int]:
    """`amount` in parts proportional to `weights` that add up to it exactly (largest first)."""
    total = sum(weights)
    if total <= 0:
        return [0] * len(weights)
    parts = [amount * w // total for w in weights]
    rest = amount - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: -weights[i])[:rest]:
        parts[i] += 1
    return parts


def sale_record_refund(*, refund_id: int) -> int:
    """A refund that succeeded, against the sale it belongs to, in the sale's own time and cell
    (a correction to that bucket): a refunded line gives back its units and amount; a whole order
    returned gives back every line's; any other refund gives back only money, spread over the
    lines by their amount. Units not supplied were never recorded as sold, so their refund is not
    recorded either. Returns the rows written."""
    from payments.models import Refund

    refund = Refund.objects.select_related("payment", "order_line").get(pk=refund_id)
    order_id = refund.payment.order_id
    if refund.kind == Refund.Kind.SHORT or order_id is None:
        return 0
    sales = list(SaleRecord.objects.filter(order_id=order_id, kind=SaleKind.SALE).order_by("id"))
    if not sales:
        return 0  # not completed yet (nothing was recorded as sold)
    if refund.order_line_id:
        sales = [s for s in sales if s.line_id == refund.order_line_id]
        units = [s.units for s in sales]
    elif refund.kind == Refund.Kind.ORDER:
        units = [s.units for s in sales]
    else:
        units = [0] * len(sales)
    # Never more than what is left of each line (earlier refunds included).
    left = dict(
        SaleRecord.objects.filter(order_id=order_id)
        .values("line_id")
        .annotate(u=Sum("units"), a=Sum("amount"))
        .values_list("line_id", "a")
    )
    amounts = _split(refund.amount, [max(left.get(s.line_id, 0), 0) for s in sales])
    written = 0
    for sale, n, amount in zip(sales, units, amounts, strict=True):
        amount = min(amount, max(left.get(sale.line_id, 0), 0))
        if n or amount:
            written += _reverse(
                sale, kind=SaleKind.REFUND, source_id=refund_id, units=n, amount=amount
            )
    return written


def sale_record_void(*, order_id: int) -> int:
    """A sale undone (a cash sale within its undo window): every line back, once."""
    written = 0
    for sale in SaleRecord.objects.filter(order_id=order_id, kind=SaleKind.SALE).order_by("id"):
        written += _reverse(
            sale, kind=SaleKind.VOID, source_id=order_id, units=sale.units, amount=sale.amount
        )
    return written


def asker_key(*, session_key: str | None, user_id: int | None, ip: str | None) -> str:
    """A one-way key for who asked (the account, else the session, else the address)."""
    who = f"u{user_id}" if user_id else f"s{session_key}" if session_key else f"i{ip}"
    return hmac.new(settings.SECRET_KEY.encode(), who.encode(), hashlib.sha256).hexdigest()[:32]


def miss_record(
    *,
    kind: str,
    product_id: int,
    cell: str,
    asker: str,
    vendor_id: int = 0,
    now: datetime | None = None,
) -> bool:
    """A miss: a product searched for with no cart near that had it (`cell`: the public cell of
    where they looked), or a product a customer tried to buy that was sold out (`vendor_id`:
    the cart). Once per asker, product, cart, cell and hour. Returns whether it was new."""
    if kind not in MissKind.values:
        raise ValueError(kind)
    cell = insight_cell(cell)
    if not cell:
        return False
    moment = now or timezone.now()
    local, weekday, hour = _local(moment)
    _, created = MissRecord.objects.get_or_create(
        kind=kind,
        product_id=product_id,
        vendor_id=vendor_id,
        cell=cell,
        day=local.date(),
        hour=hour,
        asker=asker,
        defaults={"occurred_at": moment, "weekday": weekday},
    )
    return created
