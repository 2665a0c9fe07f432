"""One-tap reorder: a received order, again. A read: what the vendor's cart can give now for the
order's products and quantities (fewer when fewer units are sellable, products gone dropped, at
today's prices), the way to receive it chosen last time, and every difference in words. The page
puts it in the basket (orders.cart) and opens checkout with those choices filled in; the API
answers it for the app's own basket. Placing the order goes through checkout as any order does.

It refuses (`refusal`, a sentence) when the vendor can't take an order now (not approved, or off
shift with no published hours) or nothing of the order is on the cart."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import CustomerProfile
from o2o.errors import Conflict
from o2o.money import format_money
from vendors.models import PickupPoint, Product, Vendor
from vendors.selectors import vendor_availability, vendor_stock_left

from . import selectors
from .models import Fulfilment, Order, Status
from .services.placement import ways_allowed

REORDERABLE = (Status.HANDED_OVER, Status.COMPLETED)


@dataclass(frozen=True)
class ReorderLine:
    product_id: int
    name: str
    quantity: int
    unit_price: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class ReorderChange:
    """One difference from the order as it was. `kind`: fewer (not that many left), sold_out
    (none left, or no longer sold), price (costs another amount now), way (last time's way to
    receive is not offered now), address, pickup_point (last time's is no longer available)."""

    kind: str
    message: str
    product_id: int | None = None


@dataclass(frozen=True)
class ReorderChoices:
    """How the customer received the order, as checkout's fields take it."""

    fulfilment: str
    address_id: int | None
    pickup_point_id: int | None
    note: str


@dataclass(frozen=True)
class ReorderPlan:
    order_id: int
    vendor: Vendor
    lines: list[ReorderLine]
    changes: list[ReorderChange]
    choices: ReorderChoices
    refusal: str  # "" when the basket can be filled
    currency: str

    @property
    def subtotal(self) -> int:
        return sum(line.line_total for line in self.lines)

    def summary(self) -> str:
        """ "Only 2 of 3 Yakult left; Banana milk is sold out." """
        return "; ".join(change.message for change in self.changes)


def reorder_plan(
    *, customer: CustomerProfile | None, order_id: int, now: datetime | None = None
) -> ReorderPlan:
    """The customer's own received order, as it can be ordered now. Order.DoesNotExist for
    someone else's order (or none); Conflict for an order not received (yet, or ever)."""
    order = selectors.order_of_customer(customer=customer, order_id=order_id)
    if order.status not in REORDERABLE:
        raise Conflict(_("Only an order you have received can be ordered again."))
    now = now or timezone.now()
    vendor = order.vendor
    availability = vendor_availability(vendor_id=vendor.pk, now=now)
    refusal = ""
    if not vendor.can_sell:
        refusal = _("%(name)s is not selling now, so this order can't be repeated.")
    elif not availability.takes_orders:
        refusal = _(
            "%(name)s is off shift and takes no orders ahead now. Try again when the cart is "
            "on shift."
        )
    lines: list[ReorderLine] = []
    changes: list[ReorderChange] = []
    if not refusal:
        lines, changes = _lines(order)
        if not lines:
            refusal = _("Nothing from this order is on %(name)s's cart now.")
    choices = _choices(order)
    if not refusal:
        changes += _choice_changes(order, choices, ways_allowed(availability))
    return ReorderPlan(
        order_id=order.pk,
        vendor=vendor,
        lines=lines,
        changes=changes,
        choices=choices,
        refusal=refusal % {"name": vendor.name} if refusal else "",
        currency=order.currency,
    )


def _lines(order: Order) -> tuple[list[ReorderLine], list[ReorderChange]]:
    old = list(order.lines.all())
    products = Product.objects.in_bulk([line.product_id for line in old])
    left = vendor_stock_left(vendor_id=order.vendor_id)  # units sellable now, products on sale
    lines, changes = [], []
    for line in old:
        product = products.get(line.product_id)
        name = product.name if product else line.name
        can = min(line.quantity, left.get(line.product_id, 0), settings.ORDER_MAX_QUANTITY)
        if product is None or not product.is_active or can <= 0:
            changes.append(
                ReorderChange(
                    kind="sold_out",
                    product_id=line.product_id,
                    message=_("%(name)s is sold out") % {"name": name},
                )
            )
            continue
        if can < line.quantity:
            changes.append(
                ReorderChange(
                    kind="fewer",
                    product_id=product.pk,
                    message=_("Only %(left)s of %(wanted)s %(name)s left")
                    % {"left": can, "wanted": line.quantity, "name": name},
                )
            )
        if product.price != line.unit_price:
            changes.append(
                ReorderChange(
                    kind="price",
                    product_id=product.pk,
                    message=_("%(name)s costs %(price)s now (was %(was)s)")
                    % {
                        "name": name,
                        "price": format_money(product.price, order.currency),
                        "was": format_money(line.unit_price, order.currency),
                    },
                )
            )
        lines.append(
            ReorderLine(product_id=product.pk, name=name, quantity=can, unit_price=product.price)
        )
    return lines, changes


def _choices(order: Order) -> ReorderChoices:
    fulfilment = order.fulfilment
    if fulfilment not in (Fulfilment.MEET, Fulfilment.DELIVERY, Fulfilment.PICKUP):
        fulfilment = Fulfilment.MEET  # bought at the cart: meeting the cart is the nearest way
    address_id = None
    if (
        fulfilment == Fulfilment.DELIVERY
        and order.delivery_lat is not None
        and order.delivery_lng is not None
    ):
        # The order keeps a copy of the address; the saved one it came from is found by its spot.
        address_id = (
            order.customer.addresses.filter(lat=order.delivery_lat, lng=order.delivery_lng)
            .values_list("pk", flat=True)
            .first()
        )
    return ReorderChoices(
        fulfilment=fulfilment,
        address_id=address_id,
        pickup_point_id=order.pickup_point_id if fulfilment == Fulfilment.PICKUP else None,
        note=order.note,
    )


def _choice_changes(
    order: Order, choices: ReorderChoices, allowed: tuple[str, ...]
) -> list[ReorderChange]:
    changes = []
    if choices.fulfilment not in allowed:
        changes.append(
            ReorderChange(
                kind="way",
                message=_(
                    "the cart is off shift, so you can't meet it now: choose delivery or pickup"
                ),
            )
        )
    elif choices.fulfilment == Fulfilment.DELIVERY and choices.address_id is None:
        changes.append(
            ReorderChange(
                kind="address",
                message=_("the address you used is no longer saved: choose where to deliver"),
            )
        )
    elif (
        choices.fulfilment == Fulfilment.PICKUP
        and not PickupPoint.objects.filter(pk=choices.pickup_point_id or 0, is_active=True).exists()
    ):
        changes.append(
            ReorderChange(
                kind="pickup_point",
                message=_("the pickup point you used is closed for good: choose another"),
            )
        )
    return changes


def reorder_prefill(
    prefill: dict | None,
    *,
    ways: tuple[str, ...] | None,
    meet: bool,
    address_ids: set[int],
    point_ids: set[int],
) -> dict:
    """The basket's remembered choices (a reorder) that checkout still offers, as initial values;
    one it no longer offers (a way off shift, an address deleted, a point closed) is left to the
    usual default, which orders.reorder has said in its message."""
    if not prefill:
        return {}
    out: dict = {}
    fulfilment = prefill.get("fulfilment")
    offered = (ways is None or fulfilment in ways) and (fulfilment != Fulfilment.MEET or meet)
    if fulfilment in (Fulfilment.MEET, Fulfilment.DELIVERY, Fulfilment.PICKUP) and offered:
        out["fulfilment"] = fulfilment
    if prefill.get("address") in address_ids:
        out["address"] = str(prefill["address"])
    if prefill.get("pickup_point") in point_ids:
        out["pickup_point"] = prefill["pickup_point"]
    if isinstance(prefill.get("note"), str):
        out["note"] = prefill["note"][:200]
    return out
