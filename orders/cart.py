"""The cart: what a visitor means to order, kept in the session (so it works before logging in and,
since Django keeps the session's data when someone logs in, survives the login).

One vendor per cart. Quantities are checked against what is on the vendor's cart now whenever
something is added or changed; the cart page re-checks them on every view, because stock moves
while the cart waits. The cart itself holds only ids and quantities: prices and names are read
fresh, and the order snapshots them at placement.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from vendors.models import Product, Stock, Vendor
from vendors.services import OutOfStock

from .services import LineIn

SESSION_KEY = "cart"


class OtherVendorInCart(Exception):
    """Adding this would mix two vendors: the visitor must agree to clear the cart first."""

    def __init__(self, current_vendor_id: int) -> None:
        super().__init__(current_vendor_id)
        self.current_vendor_id = current_vendor_id


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int
    available: int  # on the vendor's cart now (0 when sold out or no longer on sale)

    @property
    def line_total(self) -> int:
        return self.product.price * self.quantity

    @property
    def on_sale(self) -> bool:
        return self.product.is_active and self.available > 0

    @property
    def short(self) -> bool:
        """More in the cart than the vendor has now."""
        return self.quantity > self.available


def _too_many(left: int) -> str:
    return ngettext("Only %(n)s left on the cart.", "Only %(n)s left on the cart.", left) % {
        "n": left
    }


class Cart:
    def __init__(self, session: SessionBase) -> None:
        self.session = session
        raw = session.get(SESSION_KEY) or {}
        self.vendor_id: int | None = raw.get("vendor_id") if isinstance(raw, dict) else None
        lines = raw.get("lines", {}) if isinstance(raw, dict) else {}
        self._lines: dict[int, int] = {}
        self._vendor: Vendor | None = None  # read once per request, see vendor()
        # Checkout's choices to fill in (a reorder: how the last order was received); ids and text.
        prefill = raw.get("prefill") if isinstance(raw, dict) else None
        self.prefill: dict | None = prefill if isinstance(prefill, dict) else None
        for key, quantity in lines.items() if isinstance(lines, dict) else ():
            try:
                self._lines[int(key)] = int(quantity)
            except (TypeError, ValueError):
                continue  # a session from an older shape: drop what can't be read

    # --- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._lines)

    def __bool__(self) -> bool:
        return bool(self._lines)

    @property
    def quantities(self) -> dict[int, int]:
        return dict(self._lines)

    def count(self) -> int:
        return sum(self._lines.values())

    def vendor(self) -> Vendor | None:
        if self.vendor_id is None:
            return None
        if self._vendor is None or self._vendor.pk != self.vendor_id:
            self._vendor = Vendor.objects.filter(pk=self.vendor_id).first()
        return self._vendor

    def lines(self) -> list[CartLine]:
        """Each line with what is on the vendor's cart now; three queries, whatever the size.

        A vendor who can't sell now (suspended) has nothing available; a basket whose vendor is
        gone (deleted in the admin, or a stale or tampered session) is emptied.
        """
        if not self._lines:
            return []
        vendor = self.vendor()
        if vendor is None:
            self.clear()
            return []
        products = Product.objects.select_related("category").in_bulk(list(self._lines))
        available = _available(vendor.pk, self._lines) if vendor.can_sell else {}
        return [
            CartLine(
                product=products[pid],
                quantity=q,
                available=available.get(pid, 0) if products[pid].is_active else 0,
            )
            for pid, q in self._lines.items()
            if pid in products
        ]

    def as_line_ins(self) -> list[LineIn]:
        return [LineIn(product_id=pid, quantity=q) for pid, q in sorted(self._lines.items())]

    # --- changing -----------------------------------------------------------------------------

    def add(self, *, vendor: Vendor, product_id: int, quantity: int, replace: bool = False) -> int:
        """Add units of a product from a vendor's cart; the quantity now in the cart.

        Raises OtherVendorInCart when the cart holds another vendor's products (unless `replace`),
        and ValidationError when the vendor can't sell it or has fewer than asked for.
        """
        if self._lines and self.vendor_id != vendor.pk and not replace and self.vendor():
            raise OtherVendorInCart(self.vendor_id)
        if not vendor.can_sell:
            raise ValidationError(_("This vendor is not selling now."))
        current = self._lines.get(product_id, 0) if self.vendor_id == vendor.pk else 0
        wanted = _check_quantity(_check_quantity(quantity) + current)
        self._check_stock(vendor_id=vendor.pk, product_id=product_id, wanted=wanted)
        if self.vendor_id != vendor.pk:
            self._lines = {}
            self.vendor_id = vendor.pk
            self.prefill = None
        self._lines[product_id] = wanted
        self._save()
        return wanted

    def set(self, *, product_id: int, quantity: int) -> None:
        """Change a line's quantity (0 removes it)."""
        if product_id not in self._lines:
            raise ValidationError(_("That product is not in your basket."))
        if quantity == 0:
            self.remove(product_id=product_id)
            return
        wanted = _check_quantity(quantity)
        if wanted > self._lines[product_id]:
            # Lowering is always allowed (it only helps); raising needs a vendor selling now.
            vendor = self.vendor()
            if vendor is None or not vendor.can_sell:
                raise ValidationError(_("This vendor is not selling now."))
        self._check_stock(vendor_id=self.vendor_id, product_id=product_id, wanted=wanted)
        self._lines[product_id] = wanted
        self._save()

    def remove(self, *, product_id: int) -> None:
        self._lines.pop(product_id, None)
        self._save()

    def clear(self) -> None:
        self._lines = {}
        self.prefill = None
        self._save()

    def prefill_set(self, choices: dict) -> None:
        """Checkout's choices to fill in for this basket (kept until the basket is emptied or
        another vendor's product replaces it): JSON-safe values only."""
        self.prefill = dict(choices)
        self._save()

    def refill(self, *, vendor: Vendor, lines: Iterable[tuple[int, int]]) -> list[int]:
        """Fill the (empty or same-vendor) cart with what is still on the vendor's cart, up to the
        quantities given; the ids of the products that could not be added at all."""
        wanted = dict(lines)
        if self._lines and self.vendor_id != vendor.pk:
            if self.vendor() is not None:
                raise OtherVendorInCart(self.vendor_id)
            self._lines = {}  # that vendor is gone: nothing of theirs can be ordered
            self.prefill = None
        active = set(
            Product.objects.filter(pk__in=list(wanted), is_active=True).values_list("pk", flat=True)
        )
        available = _available(vendor.pk, wanted) if vendor.can_sell else {}
        missing = []
        self.vendor_id = vendor.pk
        for pid, q in wanted.items():
            can = min(q, available.get(pid, 0), settings.ORDER_MAX_QUANTITY) if pid in active else 0
            if can <= 0:
                missing.append(pid)
                continue
            self._lines[pid] = can
        if not self._lines:
            self.vendor_id = None
        self._save()
        return missing

    # --- inside -------------------------------------------------------------------------------

    def _check_stock(self, *, vendor_id: int | None, product_id: int, wanted: int) -> None:
        row = (
            Stock.objects.filter(vendor_id=vendor_id, product_id=product_id)
            .values_list("quantity", "product__is_active")
            .first()
        )
        if row is None or not row[1]:
            raise ValidationError(_("This product is not on the cart now."))
        if row[0] <= 0:  # sold out: a miss (insights.misses), still a ValidationError
            raise OutOfStock(
                product_id, _("This product is not on the cart now."), vendor_id=vendor_id or 0
            )
        if wanted > row[0]:
            raise ValidationError(_too_many(row[0]))

    def _save(self) -> None:
        if not self._lines:
            self.vendor_id = None
            self.prefill = None
        self.session[SESSION_KEY] = {
            "vendor_id": self.vendor_id,
            "lines": {str(pid): q for pid, q in self._lines.items()},
        }
        if self.prefill:
            self.session[SESSION_KEY]["prefill"] = self.prefill
        self.session.modified = True


def _check_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValidationError(_("Quantities must be at least 1."))
    if quantity > settings.ORDER_MAX_QUANTITY:
        raise ValidationError(
            _("At most %(n)s of one product per order.") % {"n": settings.ORDER_MAX_QUANTITY}
        )
    return quantity


def _available(vendor_id: int | None, product_ids: Iterable[int]) -> dict[int, int]:
    if vendor_id is None:
        return {}
    return dict(
        Stock.objects.filter(vendor_id=vendor_id, product_id__in=list(product_ids)).values_list(
            "product_id", "quantity"
        )
    )
