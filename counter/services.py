"""A walk-up sale at the cart (issue 16, item 1): the order of a buyer standing at the cart,
placed through orders.services.order_place (fulfilment AT_CART: commission, lots, ledger as for
any order) and paid on the buyer's phone; once the payment is authorised the order is accepted and
handed over at once (orders.services.payment), and the vendor's counter screen shows it live.

Rules held here:
- only while the vendor is on shift (order_place refuses an at-cart order otherwise; checked
  again here for a clear message), and only with a pass from the cart's QR or a basket code;
- a guest pays as the shared walk-up customer (customers.services.walkup_customer), with an
  optional e-mail for the receipt; a signed-in buyer as themselves;
- the stock is held COUNTER_PAY_MINUTES: a buyer who never pays lets it go then (the orders'
  expiry sweep, as for any unpaid order);
- the checkout token makes a double tap one order; a basket's token is the basket's, so a basket
  is paid once (a second buyer is told it was paid, also when both tap at once). Guests share one
  customer, so a guest's "own" order is one their phone placed (`mine`, kept in its session).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from customers.services import walkup_customer
from o2o.errors import Conflict, DomainError
from orders.models import Fulfilment, Order
from orders.services import LineIn, Receive, order_place
from vendors.models import Vendor
from vendors.selectors import vendor_availability

MAX_LINES = 20
MAX_QUANTITY = 20


def counter_vendor(*, vendor_id: int) -> Vendor:
    """The vendor whose counter a code opens: selling and on shift now, or a clear refusal."""
    vendor = Vendor.objects.filter(pk=vendor_id).first()
    if vendor is None or not vendor.can_sell:
        raise DomainError(_("This cart is not selling on the platform."), code="not_selling")
    if not vendor_availability(vendor_id=vendor.pk).on_shift:
        raise DomainError(
            _("This cart is off shift now: it sells again when the vendor is back on shift."),
            code="off_shift",
        )
    return vendor


def _items(items: dict[int, int]) -> list[LineIn]:
    if not items:
        raise DomainError(_("Choose at least one product."), code="items")
    if len(items) > MAX_LINES:
        raise DomainError(_("At most %(n)d products at once.") % {"n": MAX_LINES}, code="items")
    for qty in items.values():
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QUANTITY:
            raise DomainError(
                _("Quantities are between 1 and %(max)d.") % {"max": MAX_QUANTITY},
                code="quantity",
            )
    return [LineIn(product_id=pid, quantity=qty) for pid, qty in sorted(items.items())]


@transaction.atomic
def walkup_order_place(
    *,
    vendor_id: int,
    items: dict[int, int],
    checkout_token: uuid.UUID,
    customer: CustomerProfile | None = None,
    receipt_email: str = "",
    mine: Collection[int] = (),
    shared: bool = False,
) -> Order:
    """Place a walk-up buyer's order at the cart, waiting for its payment (COUNTER_PAY_MINUTES).
    `customer` None: a guest (the walk-up customer; `receipt_email`, optional, gets the receipt).
    The same checkout token again returns the same order (a double tap: the counter page's token
    is made for that page, so only its phone has it), or, for a `shared` token (a basket's, which
    any phone that scans it has), a refusal when another buyer's order holds it."""
    vendor = counter_vendor(vendor_id=vendor_id)
    receipt_email = (receipt_email or "").strip()
    if receipt_email:
        try:
            validate_email(receipt_email)
        except ValidationError as exc:
            raise DomainError(_("Enter a valid e-mail address."), code="receipt_email") from exc
    buyer = customer or walkup_customer()
    taken = Conflict(_("This basket was already paid for."), code="taken")
    existing = Order.objects.filter(checkout_token=checkout_token).first()
    if existing is not None and (
        existing.customer_id != buyer.pk
        or not existing.walkup
        # a basket's token is shared by whoever scans it, and guests share one customer: a
        # guest's own basket order is one this phone placed (`mine`)
        or (shared and customer is None and existing.pk not in mine)
    ):
        raise taken
    order = order_place(
        customer=buyer,
        vendor_id=vendor.pk,
        lines=_items(items),
        receive=Receive(fulfilment=Fulfilment.AT_CART),
        checkout_token=checkout_token,
    )
    if existing is None:
        if shared and order.walkup:
            # Another phone's order with this token committed while ours waited on it (a basket
            # two buyers paid at once): order_place gave us theirs; it is not ours to pay.
            raise taken
        deadline = timezone.now() + timedelta(minutes=settings.COUNTER_PAY_MINUTES)
        Order.objects.filter(pk=order.pk, expires_at__gt=deadline).update(expires_at=deadline)
        Order.objects.filter(pk=order.pk).update(walkup=True, receipt_email=receipt_email)
        order.refresh_from_db()
    return order
