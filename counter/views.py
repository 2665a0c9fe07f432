"""The cart's counter pages (issue 16, item 1). Thin: the writes are counter.services and the
orders' own payment services.

Vendor (signed in, on shift): /counter/ shows the cart's rotating QR, builds a basket to show as a
QR, and lists today's sales at the cart live (the inbox's websocket tells it to refresh).
Buyer (anyone): /c/s/<code>/ is what the cart's QR holds: it gives this phone a pass to the cart's
counter, /c/<vendor>/, which lists what is on the cart now (never where the cart is) and pays on
the phone; /c/b/<code>/ is a basket the vendor made; /c/o/<code>/ is the buyer's order, by a
signed link their phone keeps (a guest has no account to find it by).
"""

from __future__ import annotations

import time
import uuid

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from insights.misses import sold_out_record
from orders.models import Fulfilment, Order, Status
from orders.services import order_payment_refresh, order_payment_start
from orders.services.transitions import InvalidTransition
from payments.errors import PaymentUnavailable
from vendors.models import Product, Vendor
from vendors.selectors import vendor_availability, vendor_stock_left
from vendors.services import OutOfStock

from .services import counter_vendor, walkup_order_place
from .tokens import (
    CounterCodeInvalid,
    basket_token_make,
    basket_token_read,
    cart_token_make,
    cart_token_read,
)

PASSES = "o2o.counter.passes"  # session: {vendor id: pass good until (epoch s)}
MINE = "o2o.counter.orders"  # session: the ids of the walk-up orders this phone placed
ORDER_SALT = "counter.order"


# --- helpers -------------------------------------------------------------------------------------


def qr_svg(url: str, label: str) -> SafeString:
    svg = segno.make(url, error="m").svg_inline(
        scale=1, border=4, omitsize=True, dark="#000", light="#fff", svgclass="qr-svg"
    )
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return mark_safe(svg)  # noqa: S308 - segno's own markup and an escaped label


def order_link(order: Order) -> str:
    return reverse("counter:order", args=[signing.dumps(order.pk, salt=ORDER_SALT)])


def _products(vendor: Vendor) -> list[dict]:
    """What is on the cart now and can be sold (sellable units of unexpired lots), by name."""
    left = {pid: n for pid, n in vendor_stock_left(vendor_id=vendor.pk).items() if n > 0}
    products = Product.objects.filter(pk__in=list(left), is_active=True).order_by("name_ko")
    return [{"product": p, "left": left[p.pk]} for p in products]


def _quantities(request: HttpRequest) -> dict[int, int]:
    """{product id: quantity} from a form's q_<product id> fields (blank and 0 left out)."""
    items: dict[int, int] = {}
    for key, value in request.POST.items():
        if not key.startswith("q_") or not value.strip():
            continue
        try:
            pid, qty = int(key[2:]), int(value)
        except ValueError as exc:
            raise ValidationError(_("Quantities are whole numbers.")) from exc
        if qty < 0:
            raise ValidationError(_("Quantities are whole numbers."))
        if qty:
            items[pid] = qty
        if len(items) > 20:
            raise ValidationError(_("At most %(n)d products at once.") % {"n": 20})
    return items


def _token(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return uuid.uuid4()


def _has_pass(request: HttpRequest, vendor_id: int) -> bool:
    passes = request.session.get(PASSES, {})
    return float(passes.get(str(vendor_id), 0)) > time.time()


def _mine(request: HttpRequest) -> list[int]:
    return [int(x) for x in request.session.get(MINE, [])][-20:]


def _pay(request: HttpRequest, order: Order) -> HttpResponse:
    """Send the buyer to the provider's card page; back to their order link after."""
    mine = _mine(request)
    if order.pk not in mine:
        request.session[MINE] = [*mine, order.pk][-20:]
    link = order_link(order)
    try:
        url = order_payment_start(
            order_id=order.pk, return_url=request.build_absolute_uri(link + "?back=1")
        )
    except (InvalidTransition, PaymentUnavailable, ValidationError) as exc:
        messages.error(request, exc.messages[0] if hasattr(exc, "messages") else str(exc))
        return redirect(link)
    return redirect(url)


def _vendor_or_none(request: HttpRequest) -> Vendor | None:
    return getattr(request.user, "vendor", None) if request.user.is_authenticated else None


# --- the vendor's counter ------------------------------------------------------------------------


def _cart_qr(request: HttpRequest, vendor: Vendor) -> dict:
    url = request.build_absolute_uri(
        reverse("counter:scan", args=[cart_token_make(vendor_id=vendor.pk)])
    )
    label = _("QR code of your cart: a passer-by scans it to buy from the cart")
    return {"url": url, "svg": qr_svg(url, label), "rotate": settings.COUNTER_QR_ROTATE_SECONDS}


def _sales(vendor: Vendor) -> list[Order]:
    """Today's sales at the cart, newest first (paid ones and those waiting for the buyer)."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return list(
        Order.objects.filter(vendor=vendor, fulfilment=Fulfilment.AT_CART, created_at__gte=start)
        .exclude(status__in=(Status.FAILED, Status.EXPIRED))
        .prefetch_related("lines")
        .order_by("-created_at")[:30]
    )


@login_required
@never_cache
@require_GET
def vendor_counter(request: HttpRequest) -> HttpResponse:
    vendor = _vendor_or_none(request)
    if vendor is None:
        messages.info(request, _("Only vendors sell at a cart. Apply to sell first."))
        return redirect("vendors:apply")
    on_shift = vendor.can_sell and vendor_availability(vendor_id=vendor.pk).on_shift
    context = {
        "vendor": vendor,
        "on_shift": on_shift,
        "qr": _cart_qr(request, vendor) if on_shift else None,
        "products": _products(vendor) if on_shift else [],
        "sales": _sales(vendor),
    }
    return render(request, "counter/vendor.html", context)


@login_required
@never_cache
@require_GET
def vendor_qr(request: HttpRequest) -> HttpResponse:
    """A fresh cart QR for the counter page's script (every COUNTER_QR_ROTATE_SECONDS)."""
    vendor = _vendor_or_none(request)
    if vendor is None:
        raise Http404
    if not (vendor.can_sell and vendor_availability(vendor_id=vendor.pk).on_shift):
        return JsonResponse({"error": _("Go on shift to sell at the cart.")}, status=409)
    qr = _cart_qr(request, vendor)
    return JsonResponse({"url": qr["url"], "svg": str(qr["svg"]), "rotate": qr["rotate"]})


@login_required
@never_cache
@require_GET
def vendor_sales(request: HttpRequest) -> HttpResponse:
    vendor = _vendor_or_none(request)
    if vendor is None:
        raise Http404
    return render(request, "counter/_sales.html", {"sales": _sales(vendor)})


@login_required
@require_POST
def vendor_basket(request: HttpRequest) -> HttpResponse:
    """The vendor tapped the products: a QR of that exact basket for the buyer to pay."""
    vendor = _vendor_or_none(request)
    if vendor is None:
        raise Http404
    try:
        counter_vendor(vendor_id=vendor.pk)
        items = _quantities(request)
        if not items:
            raise ValidationError(_("Choose at least one product."))
        left = vendor_stock_left(vendor_id=vendor.pk)
        short = [pid for pid, qty in items.items() if left.get(pid, 0) < qty]
        if short:
            names = Product.objects.filter(pk__in=short).order_by("name_ko")
            raise ValidationError(
                _("Not enough on the cart: %(names)s.")
                % {"names": ", ".join(p.name for p in names)}
            )
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("counter:vendor")
    code = basket_token_make(vendor_id=vendor.pk, items=items)
    url = request.build_absolute_uri(reverse("counter:basket", args=[code]))
    products = {p.pk: p for p in Product.objects.filter(pk__in=list(items))}
    lines = [(products[pid], qty, products[pid].price * qty) for pid, qty in sorted(items.items())]
    return render(
        request,
        "counter/vendor_basket.html",
        {
            "vendor": vendor,
            "url": url,
            "svg": qr_svg(url, _("QR code of this basket: the buyer scans it to pay")),
            "lines": lines,
            "total": sum(x[2] for x in lines),
            "minutes": settings.COUNTER_BASKET_MINUTES,
            "sales": _sales(vendor),
        },
    )


# --- the buyer's side ----------------------------------------------------------------------------


@never_cache
@require_GET
def scan(request: HttpRequest, code: str) -> HttpResponse:
    """What the cart's QR holds: a pass to this cart's counter for COUNTER_PASS_MINUTES."""
    try:
        vendor = counter_vendor(vendor_id=cart_token_read(code))
    except ValidationError as exc:
        status = 400 if isinstance(exc, CounterCodeInvalid) else 409
        return render(request, "counter/problem.html", {"problem": exc.messages[0]}, status=status)
    passes = dict(request.session.get(PASSES, {}))
    now = time.time()
    passes = {k: v for k, v in passes.items() if float(v) > now}
    passes[str(vendor.pk)] = now + settings.COUNTER_PASS_MINUTES * 60
    request.session[PASSES] = passes
    return redirect("counter:cart", vendor_id=vendor.pk)


@never_cache
@require_http_methods(["GET", "POST"])
def cart(request: HttpRequest, vendor_id: int) -> HttpResponse:
    """The cart's counter: what is on it now, picked and paid on the phone."""
    if not _has_pass(request, vendor_id):
        problem = _("Scan the QR code on the vendor's phone to buy from this cart.")
        return render(request, "counter/problem.html", {"problem": problem}, status=403)
    try:
        vendor = counter_vendor(vendor_id=vendor_id)
    except ValidationError as exc:
        return render(request, "counter/problem.html", {"problem": exc.messages[0]}, status=409)
    if request.method == "POST":
        try:
            order = walkup_order_place(
                vendor_id=vendor.pk,
                items=_quantities(request),
                checkout_token=_token(request.POST.get("checkout_token", "")),
                customer=getattr(request.user, "customer", None)
                if request.user.is_authenticated
                else None,
                receipt_email=request.POST.get("receipt_email", ""),
                mine=_mine(request),
            )
        except ValidationError as exc:
            if isinstance(exc, OutOfStock):  # the sale rolled back; the miss stays
                sold_out_record(request=request, exc=exc)
            for message in exc.messages:
                messages.error(request, message)
            return redirect("counter:cart", vendor_id=vendor.pk)
        return _pay(request, order)
    context = {
        "vendor": vendor,
        "products": _products(vendor),
        "checkout_token": uuid.uuid4(),
        "guest": not request.user.is_authenticated,
        "minutes": settings.COUNTER_PAY_MINUTES,
    }
    return render(request, "counter/cart.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def basket(request: HttpRequest, code: str) -> HttpResponse:
    """A basket the vendor made on the phone: exactly that, paid by whoever scans it first."""
    try:
        made = basket_token_read(code)
        vendor = counter_vendor(vendor_id=made.vendor_id)
    except ValidationError as exc:
        status = 400 if isinstance(exc, CounterCodeInvalid) else 409
        return render(request, "counter/problem.html", {"problem": exc.messages[0]}, status=status)
    taken = Order.objects.filter(checkout_token=made.checkout_token).first()
    if request.method == "POST":
        try:
            order = walkup_order_place(
                vendor_id=vendor.pk,
                items=made.items,
                checkout_token=made.checkout_token,
                customer=getattr(request.user, "customer", None)
                if request.user.is_authenticated
                else None,
                receipt_email=request.POST.get("receipt_email", ""),
                mine=_mine(request),
                shared=True,
            )
        except ValidationError as exc:
            if isinstance(exc, OutOfStock):  # the sale rolled back; the miss stays
                sold_out_record(request=request, exc=exc)
            for message in exc.messages:
                messages.error(request, message)
            return redirect("counter:basket", code=code)
        return _pay(request, order)
    products = {p.pk: p for p in Product.objects.filter(pk__in=list(made.items))}
    lines = [
        (products[pid], qty, products[pid].price * qty)
        for pid, qty in sorted(made.items.items())
        if pid in products
    ]
    context = {
        "vendor": vendor,
        "lines": lines,
        "total": sum(x[2] for x in lines),
        "taken": taken is not None and taken.status != Status.PENDING_PAYMENT,
        "guest": not request.user.is_authenticated,
        "minutes": settings.COUNTER_PAY_MINUTES,
    }
    return render(request, "counter/basket.html", context)


@never_cache
@require_GET
def order(request: HttpRequest, code: str) -> HttpResponse:
    """The buyer's order at the cart, by its signed link: paid and handed over, waiting, or not."""
    try:
        order_id = signing.loads(code, salt=ORDER_SALT)
        found = Order.objects.select_related("vendor").get(pk=int(order_id), walkup=True)
    except (signing.BadSignature, Order.DoesNotExist, TypeError, ValueError) as exc:
        raise Http404(_("No such order.")) from exc
    if found.status == Status.PENDING_PAYMENT or request.GET.get("back"):
        try:
            found = order_payment_refresh(order_id=found.pk)
        except PaymentUnavailable:
            messages.info(
                request, _("We are still checking your payment. Check again in a moment.")
            )
    lines = list(found.lines.all())
    return render(request, "counter/order.html", {"order": found, "lines": lines})
