"""Cash sales at the cart, the page (issue 16, item 2): tiles of what is on the cart, tapped to
add, and one big "Cash received" button (the second tap). Works as a plain form without script
(static/js/cash.js only counts taps). Thin: the writes are orders.services.order_cash_sale and
order_cash_sale_undo; the API twins are orders.api.VendorCashSalesApi and VendorCashSaleUndoApi."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from o2o.errors import Conflict, NotAllowed
from vendors.models import Vendor
from vendors.selectors import vendor_cash_tiles

from . import selectors
from .forms import CashSaleForm
from .models import Order
from .services import (
    cash_undo_deadline,
    order_cash_sale,
    order_cash_sale_undo,
)
from .views import _inbox_vendor


def _status(exc: ValidationError) -> int:
    """As the API answers (orders.api): not yours 404, sold out or changed meanwhile 409 (an
    OutOfStock or InvalidTransition is a Conflict), bad input (not on the cart) 400."""
    if isinstance(exc, NotAllowed):
        return 404
    return 409 if isinstance(exc, Conflict) else 400


def _page(
    request: HttpRequest,
    vendor: Vendor,
    *,
    quantities: dict[int, int] | None = None,
    client_id: uuid.UUID | None = None,
    error: str | None = None,
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    sales = list(selectors.cash_sales_today(vendor=vendor, now=now)[:50])
    for sale in sales:
        deadline = cash_undo_deadline(sale)
        sale.undo_until = deadline if deadline is not None and deadline > now else None  # type: ignore[attr-defined]
    just = None
    sale_id = request.GET.get("sale", "")
    if sale_id.isdigit():
        just = next((s for s in sales if s.pk == int(sale_id)), None)
    tiles = list(vendor_cash_tiles(vendor=vendor))
    quantities = quantities or {}
    for tile in tiles:
        tile.chosen = quantities.get(tile.product_id, 0)  # type: ignore[attr-defined]
    context = {
        "vendor": vendor,
        "tiles": tiles,
        "client_id": client_id or uuid.uuid4(),
        "error": error,
        "sales": sales,
        "just": just,
        "total_today": sum(s.total for s in sales if s.status == Order.Status.COMPLETED),
        "cash_i18n": {
            # {total}: the amount, e.g. ₩3,700
            "received": _("Cash received {total}"),
            "sending": _("Recording…"),
        },
    }
    return render(request, "orders/vendor_cash.html", context, status=status)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def vendor_cash(request: HttpRequest) -> HttpResponse:
    vendor = _inbox_vendor(request)
    if vendor is None:
        return redirect("vendors:apply")
    if request.method == "GET":
        return _page(request, vendor)
    form = CashSaleForm(request.POST)
    if not form.is_valid():
        errors = [str(e) for field in form.errors.values() for e in field]
        return _page(request, vendor, error=errors[0], status=400)
    data = form.cleaned_data
    try:
        order = order_cash_sale(vendor=vendor, items=data["items"], client_id=data["client_id"])
    except ValidationError as exc:
        # Nothing was recorded: the same quantities and the same client id, to correct and send.
        return _page(
            request,
            vendor,
            quantities=data["items"],
            client_id=data["client_id"],
            error=exc.messages[0],
            status=_status(exc),
        )
    return redirect(reverse("orders:vendor-cash") + f"?sale={order.pk}")


@login_required
@require_POST
def vendor_cash_undo(request: HttpRequest, order_id: int) -> HttpResponse:
    vendor = _inbox_vendor(request)
    if vendor is None:
        return redirect("vendors:apply")
    try:
        order = order_cash_sale_undo(order_id=order_id, vendor=vendor)
    except ValidationError as exc:
        return _page(request, vendor, error=exc.messages[0], status=_status(exc))
    messages.success(
        request, _("Sale #%(n)s undone: the items are back in your stock.") % {"n": order.pk}
    )
    return redirect("orders:vendor-cash")
