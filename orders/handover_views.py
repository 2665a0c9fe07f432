"""Hand-over by QR, the pages (issue 16, items 3 and 5): the vendor's scanner, and the link the
customer's QR holds. Thin: the writes go through orders.services (order_hand_over_by_token and
order_hand_over_checked, both ending in order_hand_over); the API twin is
orders.api.VendorHandOverApi."""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from o2o.errors import NotAllowed
from payments.errors import PaymentUnavailable

from . import selectors
from .forms import HandOverScanForm
from .models import Order
from .services import (
    HandoverTokenInvalid,
    InvalidTransition,
    handover_token_read,
    order_hand_over_by_token,
    order_hand_over_checked,
)
from .views import _inbox_vendor, _vendor


def _http_status(exc: ValidationError) -> int:
    """The status a refusal answers with, as the API's (orders.api.VendorHandOverApi)."""
    if isinstance(exc, NotAllowed):
        return 404
    if isinstance(exc, InvalidTransition):
        return 409
    if isinstance(exc, PaymentUnavailable):  # CodeCheckUnavailable: the try counter is down
        return 503
    return 400  # a forged or expired QR, a wrong code, too many wrong codes


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def vendor_scan(request: HttpRequest) -> HttpResponse:
    """The vendor's scanner: the phone's camera reads the customer's QR (static/js/scan.js), or
    the vendor types the order number and code. A POST hands over and shows the outcome, as the
    whole page, or only the outcome when the scanner's script asks (X-Requested-With: fetch)."""
    vendor = _inbox_vendor(request)
    if vendor is None:
        return redirect("vendors:apply")
    form = HandOverScanForm(request.POST if request.method == "POST" else None)
    outcome: dict[str, object] | None = None
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            errors = [e for field in form.errors.values() for e in field]
            outcome, status = {"error": errors[0]}, 400
        else:
            data = form.cleaned_data
            try:
                if data["text"]:
                    order = order_hand_over_by_token(text=data["text"], vendor=vendor)
                else:
                    order = order_hand_over_checked(
                        order_id=data["order"], vendor=vendor, code=data["code"]
                    )
            except ValidationError as exc:
                outcome, status = {"error": exc.messages[0]}, _http_status(exc)
            else:
                order = selectors.order_of_vendor(vendor=vendor, order_id=order.pk)
                outcome = {"order": order}
                form = HandOverScanForm()
    context = {"form": form, "outcome": outcome, "vendor": vendor}
    if request.headers.get("X-Requested-With") == "fetch":
        return render(request, "orders/_scan_outcome.html", context, status=status)
    context["scan_i18n"] = {
        "starting": _("Starting the camera…"),
        "scanning": _("Point the camera at the customer's QR code."),
        "sending": _("Handing over…"),
        "notOurs": _("That QR code is not a hand-over code. Scan the one on the customer's order."),
        "denied": _(
            "The camera is not allowed. Allow it in your browser's settings, or type the code "
            "below."
        ),
        "noCamera": _("No camera was found. Type the order number and code below."),
        "unsupported": _("This browser can't scan here. Type the order number and code below."),
        "failed": _("The connection failed. Try again."),
        "paused": _("The camera is off."),
    }
    return render(request, "orders/vendor_scan.html", context, status=status)


@never_cache
@require_GET
def handover_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the customer's QR, opened in a browser. The order's vendor gets a page to hand
    over with one tap (a GET never hands over); the customer, or anyone else, is asked to show the
    QR to the vendor. Nobody but the order's vendor and customer learns anything of the order."""
    try:
        claim = handover_token_read(text=token)
    except HandoverTokenInvalid as exc:
        return render(request, "orders/handover_link.html", {"error": exc.messages[0]}, status=400)
    user = request.user
    vendor = _vendor(request) if user.is_authenticated else None
    try:
        order = selectors.order_of_vendor(vendor=vendor, order_id=claim.order_id)
    except Order.DoesNotExist:
        pass
    else:
        context = {"order": order, "token": token, "form": HandOverScanForm()}
        return render(request, "orders/handover_link.html", context)
    customer = getattr(user, "customer", None) if user.is_authenticated else None
    own = Order.objects.filter(pk=claim.order_id, customer=customer).first() if customer else None
    if own is None and vendor is not None:
        return render(
            request,
            "orders/handover_link.html",
            {"error": _("This isn't one of your orders.")},
            status=404,
        )
    if not user.is_authenticated:
        # A vendor whose phone's camera app opened the link: sign in, then come back here.
        login_url = redirect_to_login(request.get_full_path())["Location"]
        return render(request, "orders/handover_link.html", {"login_url": login_url})
    return render(request, "orders/handover_link.html", {"own": own})
