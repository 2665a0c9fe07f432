"""Order pages: the cart, checkout and the way back from the card page, the customer's live order
page and history, receipts, and the vendor's live inbox. Thin: each write is one service call
(the cart lives in the session, see orders.cart); every refusal comes back as a message or a form
error, and someone else's order is a 404."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.models import CustomerProfile
from customers.services import address_create, customer_profile_get_or_create
from insights.misses import sold_out_record
from o2o.forms import add_service_error
from o2o.geo import cell_boundary, is_valid_cell

# The one name of payments' used here: the error orders.services lets through when the provider
# is slow (order_payment_start / order_payment_refresh). Nothing of payments is called directly.
from payments.errors import PaymentUnavailable
from vendors.models import Vendor
from vendors.selectors import vendor_availability
from vendors.services import OutOfStock

from . import selectors
from .cart import Cart, OtherVendorInCart
from .forms import (
    ASAP,
    AcceptForm,
    CancelForm,
    CartAddForm,
    CartRemoveForm,
    CartUpdateForm,
    CheckoutForm,
    HandOverForm,
    LineShortForm,
    NoFieldsForm,
    ProblemForm,
    RejectForm,
)
from .models import Fulfilment, Order, OrderEvent, Status
from .qr import handover_qr
from .reorder import REORDERABLE, reorder_prefill
from .services import (
    EDGES,
    InvalidTransition,
    Receive,
    order_accept,
    order_cancel,
    order_depart,
    order_hand_over,
    order_line_short,
    order_payment_refresh,
    order_payment_start,
    order_place,
    order_problem_report,
    order_ready,
    order_reject,
    order_vendor_cancel,
)
from .services.placement import ways_allowed

PAGE_SIZE = 20


def _customer(request: HttpRequest) -> CustomerProfile | None:
    user = request.user
    return getattr(user, "customer", None) if hasattr(user, "customer") else None


def _vendor(request: HttpRequest) -> Vendor | None:
    user = request.user
    return getattr(user, "vendor", None) if hasattr(user, "vendor") else None


def _own_order(request: HttpRequest, order_id: int) -> Order:
    try:
        return selectors.order_of_customer(customer=_customer(request), order_id=order_id)
    except Order.DoesNotExist as exc:
        raise Http404(_("No such order.")) from exc


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- cart ---------------------------------------------------------------------------------------


@require_GET
def cart_page(request: HttpRequest) -> HttpResponse:
    cart = Cart(request.session)
    lines = cart.lines()
    return render(
        request,
        "orders/cart.html",
        {
            "vendor": cart.vendor(),
            "lines": lines,
            "subtotal": sum(line.line_total for line in lines),
            "problems": any(line.short for line in lines),
        },
    )


def _replace_confirm(
    request: HttpRequest, *, cart: Cart, new_vendor: Vendor, action: str, fields: dict
) -> HttpResponse:
    """Adding would mix two vendors' carts: ask before clearing."""
    return render(
        request,
        "orders/cart_replace.html",
        {
            "current_vendor": cart.vendor(),
            "new_vendor": new_vendor,
            "action": action,
            "fields": fields,
        },
        status=409,
    )


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    form = CartAddForm(request.POST)
    vendor = Vendor.objects.filter(pk=_int(request.POST.get("vendor")) or 0).first()
    if vendor is None:
        raise Http404(_("No such vendor."))
    back = reverse("vendors:detail", args=[vendor.slug])
    if not form.is_valid():
        messages.error(request, _("Choose a quantity of at least 1."))
        return redirect(back)
    data = form.cleaned_data
    cart = Cart(request.session)
    try:
        cart.add(
            vendor=vendor,
            product_id=data["product"],
            quantity=data["quantity"],
            replace=data["replace"],
        )
    except OtherVendorInCart:
        return _replace_confirm(
            request,
            cart=cart,
            new_vendor=vendor,
            action=reverse("orders:cart-add"),
            fields={"vendor": vendor.pk, "product": data["product"], "quantity": data["quantity"]},
        )
    except ValidationError as exc:
        if isinstance(exc, OutOfStock):
            sold_out_record(request=request, exc=exc)
        messages.error(request, exc.messages[0])
        return redirect(back)
    messages.success(request, _("Added to your basket."))
    return redirect(back)


@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    form = CartUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a quantity of 0 or more."))
        return redirect("orders:cart")
    try:
        Cart(request.session).set(
            product_id=form.cleaned_data["product"], quantity=form.cleaned_data["quantity"]
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Your basket is updated."))
    return redirect("orders:cart")


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    form = CartRemoveForm(request.POST)
    if form.is_valid():
        Cart(request.session).remove(product_id=form.cleaned_data["product"])
        messages.success(request, _("Removed from your basket."))
    return redirect("orders:cart")


# --- checkout -----------------------------------------------------------------------------------


def _to_payment(request: HttpRequest, order: Order) -> HttpResponse:
    """Start (or resume) the payment and send the browser to the provider's card page."""
    return_url = request.build_absolute_uri(reverse("orders:paid", args=[order.pk]))
    try:
        url = order_payment_start(order_id=order.pk, return_url=return_url)
    except InvalidTransition:
        return redirect("orders:detail", order_id=order.pk)
    except PaymentUnavailable:
        messages.warning(
            request,
            _("The payment service did not answer. Your order is kept; try paying again shortly."),
        )
        return redirect("orders:detail", order_id=order.pk)
    except ValidationError as exc:  # the provider refused to start it
        messages.error(request, exc.messages[0])
        return redirect("orders:detail", order_id=order.pk)
    return redirect(url)


def _address_error(form: CheckoutForm, exc: ValidationError) -> None:
    """address_create's errors, on the inline new-address fields."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            name = f"new_{field}"
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error("new_lat", exc.messages)


def _place(*, form: CheckoutForm, customer: CustomerProfile, cart: Cart) -> Order | None:
    """The new address (if any) and the order, together or not at all."""
    data = form.cleaned_data
    with transaction.atomic():
        address_id = _int(data.get("address"))
        if form.wants_new_address:
            try:
                address_id = address_create(
                    customer=customer,
                    label=data["new_label"],
                    line1=data["new_line1"],
                    line2=data["new_line2"],
                    lat=data["new_lat"],
                    lng=data["new_lng"],
                    area_vendor_id=cart.vendor_id,
                ).pk
            except ValidationError as exc:
                _address_error(form, exc)
                return None
        fulfilment = data["fulfilment"]
        receive = Receive(
            fulfilment=fulfilment,
            address_id=address_id if fulfilment == Fulfilment.DELIVERY else None,
            pickup_point_id=data.get("pickup_point") if fulfilment == Fulfilment.PICKUP else None,
            meet_cell=(data.get("meet_cell") or "") if fulfilment == Fulfilment.MEET else "",
            window_start=data["window_start"],
            window_end=data["window_end"],
        )
        try:
            return order_place(
                customer=customer,
                vendor_id=cart.vendor_id,
                lines=cart.as_line_ins(),
                receive=receive,
                checkout_token=data["checkout_token"],
                note=data.get("note") or "",
                expected_total=form.expected_total,
            )
        except OutOfStock:
            raise
        except ValidationError as exc:
            # The inline address goes with the order it was typed for.
            transaction.set_rollback(True)
            add_service_error(form, exc)
            return None


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    customer = customer_profile_get_or_create(user=request.user)
    if request.method == "POST":
        # The same checkout sent twice (a double tap, a reload): back to the first order's payment.
        token = _uuid(request.POST.get("checkout_token"))
        placed = token and Order.objects.filter(checkout_token=token, customer=customer).first()
        if placed:
            return _to_payment(request, placed)
    cart = Cart(request.session)
    vendor = cart.vendor()
    if not cart or vendor is None:
        messages.info(request, _("Your basket is empty."))
        return redirect("orders:cart")
    now = timezone.now()
    meet_cells = selectors.meet_cells(vendor=vendor)
    pickup_points = selectors.pickup_points_near(vendor=vendor)
    addresses = list(customer.addresses.all())
    default_address = next((a for a in addresses if a.is_default), None)
    availability = vendor_availability(vendor_id=vendor.pk, now=now)
    initial = {
        "checkout_token": uuid.uuid4(),
        "fulfilment": Fulfilment.MEET if meet_cells else Fulfilment.PICKUP,
        "meet_cell": meet_cells[0].cell if meet_cells else "",
        "address": str(default_address.pk) if default_address else "new",
        "pickup_point": pickup_points[0].pk if pickup_points else None,
        "window": ASAP,
    }
    initial.update(
        reorder_prefill(
            cart.prefill,
            ways=ways_allowed(availability) if not availability.on_shift else None,
            meet=bool(meet_cells),
            address_ids={a.pk for a in addresses},
            point_ids={p.pk for p in pickup_points},
        )
    )
    form = CheckoutForm(
        request.POST or None,
        initial=initial,
        addresses=addresses,
        meet_cells=meet_cells,
        pickup_points=pickup_points,
        now=now,
        availability=availability,
    )
    if request.method == "POST" and form.is_valid():
        try:
            order = _place(form=form, customer=customer, cart=cart)
        except OutOfStock as exc:
            sold_out_record(request=request, exc=exc)  # the order rolled back; the miss stays
            messages.error(request, exc.messages[0])
            return redirect("orders:cart")
        if order is not None:
            cart.clear()
            return _to_payment(request, order)
    lines = cart.lines()
    return render(
        request,
        "orders/checkout.html",
        {
            "form": form,
            "vendor": vendor,
            "lines": lines,
            "subtotal": sum(line.line_total for line in lines),
            "meet_cells": meet_cells,
            "pickup_points": pickup_points,
            "checkout_config": {
                "tiles": _tiles(),
                "cells": [
                    {"cell": c.cell, "boundary": c.boundary, "vendor": c.is_vendor}
                    for c in meet_cells
                ],
            },
        },
    )


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _tiles() -> dict:
    return {"url": settings.MAP_TILE_URL, "attribution": settings.MAP_TILE_ATTRIBUTION}


def _refresh_payment(request: HttpRequest, order: Order) -> HttpResponse:
    try:
        order = order_payment_refresh(order_id=order.pk)
    except PaymentUnavailable:
        messages.info(request, _("We are still checking your payment. Check again in a moment."))
        return redirect("orders:detail", order_id=order.pk)
    # What happened (paid, declined, still checking, the time ran out) is said by the live status
    # part of the order page, which follows the order: a flash would outlive it.
    return redirect("orders:detail", order_id=order.pk)


@login_required
@never_cache
@require_GET
def paid(request: HttpRequest, order_id: int) -> HttpResponse:
    """Where the provider's card page sends the browser back. The provider is asked, not told."""
    return _refresh_payment(request, _own_order(request, order_id))


@login_required
@require_POST
def payment_refresh(request: HttpRequest, order_id: int) -> HttpResponse:
    return _refresh_payment(request, _own_order(request, order_id))


@login_required
@require_POST
def pay(request: HttpRequest, order_id: int) -> HttpResponse:
    """Pay (again) for an order still waiting for payment."""
    return _to_payment(request, _own_order(request, order_id))


# --- the customer's orders ----------------------------------------------------------------------


def _path(order: Order) -> list[tuple[str, str]]:
    """The steps of this kind of order, each named as the customer sees that status."""
    if order.fulfilment == Fulfilment.PICKUP:
        return [
            (Status.PLACED, _("Placed")),
            (Status.ACCEPTED, _("Accepted")),
            (Status.READY, _("Ready at the pickup point")),
            (Status.HANDED_OVER, _("Collected")),
        ]
    if order.fulfilment == Fulfilment.AT_CART:
        return [
            (Status.PLACED, _("Placed")),
            (Status.ACCEPTED, _("Accepted")),
            (Status.READY, pgettext("order step", "Ready at the cart")),
            (Status.HANDED_OVER, _("Handed over")),
        ]
    return [
        (Status.PLACED, _("Placed")),
        (Status.ACCEPTED, _("Accepted")),
        (Status.EN_ROUTE, _("On the way")),
        (Status.READY, _("Arrived")),
        (Status.HANDED_OVER, _("Handed over")),
    ]


def _steps(order: Order) -> list[dict]:
    """The path of this kind of order, with how far it got."""
    path = _path(order)
    reached = [s for s, _label in path]
    status = Status.HANDED_OVER if order.status == Status.COMPLETED else order.status
    at = reached.index(status) if status in reached else -1
    return [
        {"label": label, "state": "done" if i < at else "current" if i == at else "todo"}
        for i, (_status, label) in enumerate(path)
    ]


def _status_label(order: Order) -> str:
    """The status in the words of the current step ("Arrived", not "Ready")."""
    return dict(_path(order)).get(order.status) or str(order.get_status_display())


def _order_context(request: HttpRequest, order: Order) -> dict:
    now = timezone.now()
    return {
        "order": order,
        "handover_qr": handover_qr(request, order),
        "steps": _steps(order),
        "status_label": _status_label(order),
        "show_code": order.status in selectors.CODE_SHOWN,
        "cancellable": order.status in EDGES["cancel"][0],
        "vendor_cell": selectors.vendor_cell_for(order),
        "ended": order.status
        in (Status.FAILED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED, Status.REFUNDED),
        "ending": selectors.order_ending(order, now=now),
        "deadlines": selectors.order_deadlines(order, now=now),
        "pay_state": selectors.order_payment_state(order, now=now),
        "cancel_form": CancelForm(),
        "staff_reason": _staff_reason(order),
        "vendor_reason": _ended_by(order, OrderEvent.Role.VENDOR),
        "short_lines": [line for line in order.lines.all() if line.short_quantity],
        "reorderable": order.status in REORDERABLE,
    }


def _staff_reason(order: Order) -> str | None:
    """Why staff ended the order (their reason is for the customer too); None if they did not."""
    return _ended_by(order, OrderEvent.Role.STAFF)


def _ended_by(order: Order, role: str) -> str | None:
    """The reason of the last change when `role` made it; None if someone else did."""
    events = list(order.events.all())  # prefetched by the selector
    last = events[-1] if events else None
    if last is None or last.role != role or last.to_status != order.status:
        return None
    return last.reason


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    orders = (
        selectors.orders_of_customer(customer=customer)
        if customer is not None
        else Order.objects.none()
    )
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "orders/list.html", {"page": page, "reorderable": REORDERABLE})


@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _own_order(request, order_id)
    return _render_detail(request, order)


def _render_detail(
    request: HttpRequest,
    order: Order,
    *,
    problem_form: ProblemForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = _order_context(request, order)
    # A regular's delivery links to its subscription (the subscriptions app owns the relation).
    context["regular"] = getattr(order, "subscription_delivery", None)
    context["problem"] = selectors.problem_state(order)
    context["problem_form"] = problem_form or ProblemForm()
    context["order_config"] = {
        "ws": f"/ws/orders/{order.pk}/",
        "statusUrl": reverse("orders:status", args=[order.pk]),
        "tiles": _tiles(),
        "meet": {"cell": order.meet_cell, "boundary": _boundary(order.meet_cell)}
        if order.meet_cell
        else None,
    }
    context["order_i18n"] = {
        "live": _("Live"),
        "reconnecting": _("Connection lost, reconnecting…"),
        "meet": _("Meeting area"),
        "vendor": _("The vendor is around here"),
        # {distance}: a distance such as "200 m", formatted by the page in its language.
        "nearby": _("Almost there: the vendor is about {distance} from the meeting point."),
        "nearbyMarker": _("The vendor, about here"),
    }
    return render(request, "orders/detail.html", context, status=status)


def _boundary(cell: str) -> list[list[float]]:
    return cell_boundary(cell) if is_valid_cell(cell) else []


@login_required
@never_cache
@require_GET
def order_status(request: HttpRequest, order_id: int) -> HttpResponse:
    """The changing parts of the order page, fetched on each live message and on reconnect: the
    status, and the lines (a line the vendor could not supply changes what the customer pays)."""
    order = _own_order(request, order_id)
    return render(request, "orders/_live.html", _order_context(request, order))


@login_required
@require_POST
def cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _own_order(request, order_id)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        order_cancel(order_id=order.pk, customer=order.customer, reason=reason)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Your order is cancelled. You will not be charged."))
    return redirect("orders:detail", order_id=order.pk)


@login_required
@require_POST
def problem_report(request: HttpRequest, order_id: int) -> HttpResponse:
    """The customer reports a problem with a handed-over, paid order (opens a dispute)."""
    order = _own_order(request, order_id)
    form = ProblemForm(request.POST)
    if form.is_valid():
        try:
            order_problem_report(
                order_id=order.pk, customer=order.customer, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:  # DomainErrors included
            add_service_error(form, exc)
        else:
            messages.success(request, _("We got your report; our team will look into it."))
            return redirect("orders:detail", order_id=order.pk)
    return _render_detail(request, order, problem_form=form, status=400)


@login_required
@require_GET
def receipt(request: HttpRequest, order_id: int) -> HttpResponse:
    try:
        order = selectors.order_for_receipt(user=request.user, order_id=order_id)
    except Order.DoesNotExist as exc:
        raise Http404(_("No such order.")) from exc
    return render(request, "orders/receipt.html", {"order": order})


# --- the vendor's inbox -------------------------------------------------------------------------


def _inbox_vendor(request: HttpRequest) -> Vendor | None:
    vendor = _vendor(request)
    if vendor is None:
        messages.info(request, _("Only vendors receive orders. Apply to sell first."))
    return vendor


def _inbox_labels() -> dict[str, str]:
    return {
        Status.PLACED: _("New"),
        Status.ACCEPTED: _("Accepted"),
        Status.EN_ROUTE: _("On the way"),
        Status.READY: _("Ready"),
    }


def _inbox_context(vendor: Vendor) -> dict:
    groups = selectors.vendor_inbox(vendor=vendor)
    labels = _inbox_labels()
    return {
        "vendor": vendor,
        "groups": [(status, labels[status], orders) for status, orders in groups.items()],
        "waiting": sum(len(orders) for orders in groups.values()),
        "accept_form": AcceptForm(),
        "reject_form": RejectForm(),
        "hand_over_form": HandOverForm(),
    }


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    vendor = _inbox_vendor(request)
    if vendor is None:
        return redirect("vendors:apply")
    context = _inbox_context(vendor)
    context["inbox_config"] = {"ws": "/ws/vendor/orders/", "listUrl": reverse("orders:inbox-list")}
    context["inbox_i18n"] = {
        "live": _("Live: new orders ring here"),
        "reconnecting": _("Connection lost, reconnecting…"),
        "soundOn": _("Sound is on"),
        "newOrder": _("New order!"),
        # {n}: the order's number.
        "staffEnded": _("Order #{n} was cancelled by our support team. Don't hand it over."),
        "customerEnded": _("Order #{n} was cancelled by the customer. Don't hand it over."),
        "expiredEnded": _("Order #{n} expired: it was not accepted in time."),
        "otherEnded": _("Order #{n} is no longer open. Don't hand it over."),
    }
    return render(request, "orders/inbox.html", context)


@login_required
@never_cache
@require_GET
def inbox_list(request: HttpRequest) -> HttpResponse:
    vendor = _vendor(request)
    if vendor is None:
        raise Http404
    return render(request, "orders/_inbox_list.html", _inbox_context(vendor))


@login_required
@require_GET
def vendor_history(request: HttpRequest) -> HttpResponse:
    vendor = _inbox_vendor(request)
    if vendor is None:
        return redirect("vendors:apply")
    page = Paginator(selectors.vendor_history(vendor=vendor), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "orders/vendor_history.html", {"vendor": vendor, "page": page})


VENDOR_ACTIONS = {
    "accept": (
        AcceptForm,
        lambda order_id, vendor, data: order_accept(
            order_id=order_id, vendor=vendor, eta_minutes=data["eta_minutes"]
        ),
    ),
    "reject": (
        RejectForm,
        lambda order_id, vendor, data: order_reject(
            order_id=order_id, vendor=vendor, reason=data["reason"]
        ),
    ),
    "depart": (
        NoFieldsForm,
        lambda order_id, vendor, data: order_depart(order_id=order_id, vendor=vendor),
    ),
    "ready": (
        NoFieldsForm,
        lambda order_id, vendor, data: order_ready(order_id=order_id, vendor=vendor),
    ),
    "short": (
        LineShortForm,
        lambda order_id, vendor, data: order_line_short(
            order_id=order_id,
            vendor=vendor,
            line_id=data["line"],
            quantity=data["quantity"],
            reason=data["reason"],
        ),
    ),
    "cancel": (
        RejectForm,
        lambda order_id, vendor, data: order_vendor_cancel(
            order_id=order_id, vendor=vendor, reason=data["reason"]
        ),
    ),
    "hand-over": (
        HandOverForm,
        lambda order_id, vendor, data: order_hand_over(
            order_id=order_id, vendor=vendor, code=data["code"]
        ),
    ),
}


def _done_message(action: str, order: Order) -> str:
    n = {"n": order.pk}
    return {
        "accept": _("Order #%(n)s accepted. The customer is told."),
        "reject": _("Order #%(n)s rejected. The customer is not charged."),
        "depart": _("Order #%(n)s: on your way."),
        "ready": _("Order #%(n)s is ready."),
        "hand-over": _("Order #%(n)s handed over. Thank you!"),
        "short": _("Order #%(n)s: the customer is told and won't pay for what is missing."),
        "cancel": _("Order #%(n)s cancelled. The customer is told and not charged."),
    }[action] % n


@login_required
@require_POST
def vendor_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    if action not in VENDOR_ACTIONS:
        raise Http404
    vendor = _vendor(request)
    try:
        order = selectors.order_of_vendor(vendor=vendor, order_id=order_id)
    except Order.DoesNotExist as exc:
        raise Http404(_("No such order.")) from exc
    form_class, run = VENDOR_ACTIONS[action]
    form = form_class(request.POST)
    back = reverse("orders:inbox") + f"#order-{order.pk}"
    if not form.is_valid():
        errors = [e for field in form.errors.values() for e in field]
        messages.error(request, f"#{order.pk}: {errors[0]}")
        return redirect(back)
    try:
        order = run(order.pk, vendor, form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, f"#{order.pk}: {exc.messages[0]}")
    else:
        messages.success(request, _done_message(action, order))
    return redirect(back)
