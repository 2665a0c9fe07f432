"""The customer's one-tap "Order again" (orders.reorder makes the plan): the basket refilled with
what the cart has now, and the choices checkout starts from."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import Conflict

from .cart import Cart, OtherVendorInCart
from .models import Order
from .reorder import reorder_plan
from .views import _customer, _replace_confirm


@login_required
@require_POST
def order_again(request: HttpRequest, order_id: int) -> HttpResponse:
    """One tap: a received order's products in the basket, adjusted to what the cart has now,
    and on to checkout with last time's way to receive it filled in (orders.reorder)."""
    try:
        plan = reorder_plan(customer=_customer(request), order_id=order_id)
    except Order.DoesNotExist as exc:
        raise Http404(_("No such order.")) from exc
    except Conflict as exc:
        messages.error(request, exc.messages[0])
        return redirect("orders:detail", order_id=order_id)
    if plan.refusal:
        messages.error(request, plan.refusal)
        return redirect("orders:detail", order_id=order_id)
    cart = Cart(request.session)
    if request.POST.get("replace") or cart.vendor_id in (None, plan.vendor.pk):
        cart.clear()  # the basket becomes this order (a basket of another vendor's: asked first)
    try:
        missing = cart.refill(
            vendor=plan.vendor, lines=[(line.product_id, line.quantity) for line in plan.lines]
        )
    except OtherVendorInCart:
        return _replace_confirm(
            request,
            cart=cart,
            new_vendor=plan.vendor,
            action=reverse("orders:again", args=[plan.order_id]),
            fields={},
        )
    if not cart:  # sold meanwhile, between reading the cart and filling the basket
        messages.error(
            request,
            _("Nothing from this order is on %(name)s's cart now.") % {"name": plan.vendor.name},
        )
        return redirect("orders:detail", order_id=plan.order_id)
    choices = plan.choices
    cart.prefill_set(
        {
            "order_id": plan.order_id,
            "fulfilment": choices.fulfilment,
            "address": choices.address_id,
            "pickup_point": choices.pickup_point_id,
            "note": choices.note,
        }
    )
    changes = [c.message for c in plan.changes if c.product_id not in missing]
    changes += [
        _("%(name)s is sold out") % {"name": line.name}
        for line in plan.lines
        if line.product_id in missing
    ]
    if changes:
        messages.warning(
            request,
            _("Your basket holds your last order, with changes: %(changes)s.")
            % {"changes": "; ".join(changes)},
        )
    else:
        messages.success(request, _("Your basket holds your last order again. Check and pay."))
    return redirect("orders:checkout")
