"""The pickup point's phone page (/partner/point/): its people see the orders waiting there and
hand each over with the code the customer shows, through orders' order_collect_at_point (the same
guarded edge and attempt limits as the partner API and the vendor)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from o2o.errors import NotAllowed
from orders.services import InvalidTransition, order_collect_at_point

from . import selectors
from .forms import CollectForm
from .models import PointStaff

REFRESH_SECONDS = 20


def _point_staff(request: HttpRequest) -> PointStaff:
    staff = selectors.point_staff_of(user=request.user)
    if staff is None:
        raise PermissionDenied(_("This page is for the staff of a pickup point."))
    return staff


def _orders_context(staff: PointStaff) -> dict:
    point_id = staff.pickup_point_id
    return {
        "point": staff.pickup_point,
        "waiting": list(selectors.point_orders_waiting(point_id=point_id)),
        "collected": list(selectors.point_collections_recent(point_id=point_id)),
        "now": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
    }


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def point(request: HttpRequest) -> HttpResponse:
    staff = _point_staff(request)
    if request.method == "POST":
        _collect(request, staff)
        return redirect(reverse("partners:point"), permanent=False)
    return render(request, "partners/point.html", _orders_context(staff))


@login_required
@never_cache
@require_GET
def point_orders(request: HttpRequest) -> HttpResponse:
    """The changing part of the page, fetched every REFRESH_SECONDS by static/js/point.js."""
    staff = _point_staff(request)
    return render(request, "partners/_point_orders.html", _orders_context(staff))


def _collect(request: HttpRequest, staff: PointStaff) -> None:
    """Hand one order over; the outcome is a message on the page the browser goes back to."""
    form = CollectForm(request.POST)
    if not form.is_valid():
        errors = [str(e) for field in form.errors.values() for e in field]
        messages.error(request, errors[0])
        return
    order_id = form.cleaned_data["order"]
    try:
        order = order_collect_at_point(
            order_id=order_id,
            point_id=staff.pickup_point_id,
            code=form.cleaned_data["code"],
            actor=staff.user,
        )
    except NotAllowed:
        messages.error(
            request, _("#%(id)s: this order is not for this pickup point.") % {"id": order_id}
        )
    except InvalidTransition:
        messages.error(request, _refused(order_id))
    except ValidationError as exc:  # a wrong code, too many, or the counter can't be reached
        messages.error(request, f"#{order_id}: {exc.messages[0]}")
    else:
        messages.success(
            request,
            _("#%(id)s handed over. Thank you!") % {"id": order.pk},
        )


def _refused(order_id: int) -> str:
    """Why an order of this point can't be handed over now."""
    found = selectors.point_order_status(order_id=order_id)
    status = found[1] if found else ""
    if status in selectors.COLLECTED:
        return _("#%(id)s was already collected.") % {"id": order_id}
    return _("#%(id)s is not waiting to be collected (it may have been cancelled).") % {
        "id": order_id
    }
