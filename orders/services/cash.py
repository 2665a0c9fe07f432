"""Cash sales at the cart (issue 16, item 2): the vendor taps what a walk-up buyer takes and
"cash received"; the sale is recorded as an order so that stock, history and the books stay true.

A cash sale is born COMPLETED, with its two events (∅ → HANDED_OVER, HANDED_OVER → COMPLETED): the
goods changed hands and the money was received in the same moment. COMPLETED, not HANDED_OVER,
because everything else reads HANDED_OVER as "handed over, money still to capture" (an ACTIVE
state: the capture effect, the convergence sweep, the customer's live page), while COMPLETED is the
final state of a sale that is paid (FINAL: history, receipts, "buy again", the nearby-orders
filter). No Payment and no card: the order says `payment_method = cash` (the database allows that
only at the cart and without a payment). No effects rows are written (nothing to capture or
e-mail: the buyer is the shared walk-up customer), only the live broadcasts.

Commission: none, unless settings.CASH_COMMISSION; then each line's commission is snapshotted as
order_place does and the vendor owes it through the ledger (cash_commission journal, netted by the
settlement). An undo within settings.CASH_UNDO_MINUTES cancels the order (COMPLETED → CANCELLED, a
transition of its own, guarded in SQL on the window), puts the units back in the lots they came
from and gives the commission back (cash_commission_undo journal).
"""

import logging
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.services import walkup_customer
from insights.services import sale_record_order, sale_record_void
from o2o.errors import Conflict, NotAllowed
from payments import ledger
from payments.commission import commission_bps_for, commission_of
from vendors.models import Product, Stock, Vendor
from vendors.services import stock_release, stock_reserve

from ..models import Fulfilment, Order, OrderEvent, OrderLine, PaymentMethod, Status
from .placement import lines_create
from .transitions import InvalidTransition, _broadcast_after_commit

log = logging.getLogger(__name__)
Role = OrderEvent.Role
UNDONE_REASON = "cash sale undone"


class NotOnCart(ValidationError):
    """A cash sale of a product this cart does not carry (or that is no longer on sale)."""

    def __init__(self, product_id: int, message: str) -> None:
        super().__init__(message, code="not_on_cart")
        self.product_id = product_id


def _check_items(items: dict[int, int]) -> dict[int, int]:
    if not items:
        raise ValidationError(_("Tap at least one product."), code="empty")
    if len(items) > settings.CASH_SALE_MAX_LINES:
        raise ValidationError(
            _("At most %(n)s different products in one sale.") % {"n": settings.CASH_SALE_MAX_LINES}
        )
    for product_id, quantity in items.items():
        if isinstance(product_id, bool) or not isinstance(product_id, int):
            raise ValidationError(_("A product in the sale is not on your cart."))
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationError(_("Quantities must be at least 1."))
        if quantity > settings.ORDER_MAX_QUANTITY:
            raise ValidationError(
                _("At most %(n)s of one product per order.") % {"n": settings.ORDER_MAX_QUANTITY}
            )
    return items


def _own_selling_vendor(vendor: Vendor) -> None:
    """Read from the database, not the instance: a vendor suspended a moment ago sells no more."""
    if not Vendor.objects.filter(pk=vendor.pk, status=Vendor.Status.APPROVED).exists():
        raise NotAllowed(_("Your vendor account can't sell now."))


def _replayed(order: Order, vendor: Vendor) -> Order:
    if order.vendor_id != vendor.pk or order.payment_method != PaymentMethod.CASH:
        raise NotAllowed(_("This sale belongs to someone else."))
    order.replayed = True  # type: ignore[attr-defined]
    return order


@transaction.atomic
def order_cash_sale(
    *, vendor: Vendor, items: dict[int, int], client_id: uuid.UUID, now: datetime | None = None
) -> Order:
    """Record a cash sale of `items` ({product id: quantity}) from the vendor's own cart, all or
    nothing: the order (COMPLETED, cash, the walk-up customer), its lines with prices and any
    commission snapshotted, its events, the units taken from the soonest-expiring lots. Idempotent
    on `client_id` (the order's checkout token): a double tap or a replay gives back the first
    sale, with `replayed` set. Refusals: NotOnCart, OutOfStock (sold out, too few, past its date),
    ValidationError (quantities), NotAllowed (not selling, another vendor's client_id)."""
    now = now or timezone.now()
    existing = Order.objects.filter(checkout_token=client_id).first()
    if existing is not None:
        return _replayed(existing, vendor)
    _own_selling_vendor(vendor)
    items = _check_items(items)
    on_cart = set(
        Stock.objects.filter(
            vendor=vendor, product_id__in=list(items), product__is_active=True
        ).values_list("product_id", flat=True)
    )
    for product_id in sorted(items):
        if product_id not in on_cart:
            product = Product.objects.filter(pk=product_id).first()
            name = product.name if product is not None else f"#{product_id}"
            raise NotOnCart(product_id, _("%(name)s is not on your cart.") % {"name": name})
    products = {p.pk: p for p in Product.objects.filter(pk__in=list(items))}
    price = {pid: products[pid].price for pid in items}
    if settings.CASH_COMMISSION:
        vendor_bps, category_bps = commission_bps_for(
            vendor_id=vendor.pk, category_ids={p.category_id for p in products.values()}, at=now
        )
        line_bps = {pid: category_bps[products[pid].category_id] for pid in items}
    else:
        vendor_bps, line_bps = 0, dict.fromkeys(items, 0)
    line_commission = {
        pid: commission_of(price[pid] * q, line_bps[pid]) for pid, q in items.items()
    }
    subtotal = sum(price[pid] * q for pid, q in items.items())
    buyer = walkup_customer()
    try:
        # The order row first, in a savepoint: its unique token makes a double tap racing this
        # one wait here and get the first sale back, even for the last unit on the cart.
        with transaction.atomic():
            order = Order.objects.create(
                customer=buyer,
                vendor=vendor,
                status=Status.COMPLETED,
                fulfilment=Fulfilment.AT_CART,
                payment_method=PaymentMethod.CASH,
                currency=settings.CURRENCY,
                subtotal=subtotal,
                delivery_fee=0,
                total=subtotal,
                commission_bps=vendor_bps,
                commission=sum(line_commission.values()),
                handover_code=f"{secrets.randbelow(10**4):04d}",
                checkout_token=client_id,
                placed_at=now,
                accepted_at=now,
                handed_over_at=now,
                completed_at=now,
            )
    except IntegrityError:
        existing = Order.objects.filter(checkout_token=client_id).first()
        if existing is None:
            raise Conflict(_("This sale is already being recorded.")) from None
        return _replayed(existing, vendor)
    lines_create(
        order=order,
        products=products,
        items=items,
        price=price,
        line_bps=line_bps,
        line_commission=line_commission,
    )
    # OutOfStock (sold out, too few, past its date) rolls the whole sale back.
    stock_reserve(vendor_id=vendor.pk, items=items, reference=order.pk)
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                from_status="",
                to_status=Status.HANDED_OVER,
                actor=vendor.user,
                role=Role.VENDOR,
                reason="sold at the cart",
            ),
            OrderEvent(
                order=order,
                from_status=Status.HANDED_OVER,
                to_status=Status.COMPLETED,
                actor=vendor.user,
                role=Role.VENDOR,
                reason="paid in cash",
            ),
        ]
    )
    ledger.cash_commission_post(
        order_id=order.pk,
        vendor_id=vendor.pk,
        amount=order.commission,
        currency=order.currency,
        actor=vendor.user,
    )
    sale_record_order(order_id=order.pk)
    _broadcast_after_commit(order_id=order.pk, to=Status.COMPLETED)
    log.info("cash sale %s by vendor %s: %s", order.pk, vendor.pk, order.total)
    order.replayed = False  # type: ignore[attr-defined]
    return order


def cash_undo_deadline(order: Order) -> datetime | None:
    """Until when a cash sale can be undone (None: not a cash sale still standing)."""
    if order.payment_method != PaymentMethod.CASH or order.status != Status.COMPLETED:
        return None
    if order.completed_at is None:
        return None
    return order.completed_at + timedelta(minutes=settings.CASH_UNDO_MINUTES)


@transaction.atomic
def order_cash_sale_undo(*, order_id: int, vendor: Vendor, now: datetime | None = None) -> Order:
    """Undo a cash sale of this vendor's within CASH_UNDO_MINUTES of it: COMPLETED → CANCELLED in
    one guarded UPDATE (the window is in the WHERE, so an undo and a second undo, or an undo at
    the last second, can't both win), the units back to their lots, the commission given back."""
    now = now or timezone.now()
    _own_selling_vendor(vendor)
    window = timedelta(minutes=settings.CASH_UNDO_MINUTES)
    mine = Order.objects.filter(pk=order_id, vendor=vendor, payment_method=PaymentMethod.CASH)
    changed = mine.filter(status=Status.COMPLETED, completed_at__gte=now - window).update(
        status=Status.CANCELLED, reason=UNDONE_REASON, updated_at=now
    )
    if not changed:
        order = mine.first()
        if order is None:
            raise NotAllowed(_("No such cash sale."))
        if order.status == Status.CANCELLED:
            raise InvalidTransition(_("This cash sale was already undone."), code="undone")
        raise InvalidTransition(
            _("This cash sale can no longer be undone: %(n)s minutes have passed.")
            % {"n": settings.CASH_UNDO_MINUTES},
            code="too_late",
        )
    OrderEvent.objects.create(
        order_id=order_id,
        from_status=Status.COMPLETED,
        to_status=Status.CANCELLED,
        actor=vendor.user,
        role=Role.VENDOR,
        reason=UNDONE_REASON,
    )
    stock_release(
        vendor_id=vendor.pk,
        items=dict(
            OrderLine.objects.filter(order_id=order_id).values_list("product_id", "quantity")
        ),
        reference=order_id,  # back to the lots the sale took them from
    )
    ledger.cash_commission_reverse(order_id=order_id, actor=vendor.user)
    sale_record_void(order_id=order_id)
    _broadcast_after_commit(order_id=order_id, to=Status.CANCELLED)
    log.info("cash sale %s undone by vendor %s", order_id, vendor.pk)
    return Order.objects.select_related("vendor", "customer__user").get(pk=order_id)
