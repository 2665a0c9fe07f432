"""Favourite carts: the heart on a vendor's page, the customer's favourites page (where each cart
roughly is now: its public area only), the "tell me when it is near" switch, and the signed link
in its e-mails that stops them without logging in. Thin: every write is one service call. The
buttons are real forms (they work without JavaScript); static/js/favourites.js sends them with
fetch and gets JSON back."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tracking.selectors import public_states
from vendors.models import Vendor

from .forms import OnOffForm
from .models import FavouriteVendor
from .notifications import near_stop_favourite_id
from .selectors import favourites_of, usual_for_today
from .services import (
    customer_profile_get_or_create,
    favourite_add,
    favourite_notify_set,
    favourite_remove,
)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _public_vendor(slug: str) -> Vendor:
    vendor = Vendor.objects.filter(slug=slug, status=Vendor.Status.APPROVED).first()
    if vendor is None:
        raise Http404(_("No such vendor."))
    return vendor


def _on(request: HttpRequest) -> bool | None:
    form = OnOffForm(request.POST)
    return form.cleaned_data["on"] if form.is_valid() else None


def _answer(request: HttpRequest, *, on: bool, said: str, back: str) -> HttpResponse:
    """The button's new state: JSON for the page's script, else a message and the page again."""
    if _wants_json(request):
        return JsonResponse({"on": on, "said": said})
    messages.success(request, said)
    return redirect(back)


def _back(request: HttpRequest, default: str) -> str:
    """Back to the page the button was on: the favourites page or the vendor's page."""
    nxt = request.POST.get("next", "")
    favourites = reverse("customers:favourites")
    return nxt if nxt in (favourites, default) else default


@login_required
@require_POST
def favourite_set(request: HttpRequest, slug: str) -> HttpResponse:
    vendor = _public_vendor(slug)
    on = _on(request)
    back = _back(request, reverse("vendors:detail", args=[vendor.slug]))
    if on is None:
        if _wants_json(request):
            return JsonResponse({"error": _("Something went wrong; try again.")}, status=400)
        messages.error(request, _("Something went wrong; try again."))
        return redirect(back)
    customer = customer_profile_get_or_create(user=request.user)  # type: ignore[arg-type]  # logged in
    if on:
        favourite_add(customer=customer, vendor_id=vendor.pk)
        said = _("%(name)s is in your favourites.") % {"name": vendor.name}
    else:
        favourite_remove(customer=customer, vendor_id=vendor.pk)
        said = _("%(name)s is no longer a favourite.") % {"name": vendor.name}
    return _answer(request, on=on, said=said, back=back)


@login_required
@require_POST
def favourite_notify(request: HttpRequest, slug: str) -> HttpResponse:
    vendor = _public_vendor(slug)
    on = _on(request)
    back = reverse("customers:favourites")
    customer = customer_profile_get_or_create(user=request.user)  # type: ignore[arg-type]  # logged in
    try:
        if on is None:
            raise ValidationError(_("Something went wrong; try again."))
        favourite_notify_set(customer=customer, vendor_id=vendor.pk, notify_near=on)
    except ValidationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.messages[0]}, status=400)
        messages.error(request, exc.messages[0])
        return redirect(back)
    said = (
        _("We will tell you when %(name)s is near one of your addresses.")
        if on
        else _("You will not be told when %(name)s is near.")
    ) % {"name": vendor.name}
    return _answer(request, on=on, said=said, back=back)


@login_required
@require_GET
def favourites_page(request: HttpRequest) -> HttpResponse:
    customer = customer_profile_get_or_create(user=request.user)  # type: ignore[arg-type]  # logged in
    favourites = favourites_of(customer=customer)
    where = public_states(vendor_ids=[f.vendor_id for f in favourites])
    return render(
        request,
        "customers/favourites.html",
        {
            "rows": [(f, where.get(f.vendor_id)) for f in favourites],
            "usual": usual_for_today(customer, timezone.now()),
            "has_addresses": customer.addresses.exists(),
        },
    )


@csrf_exempt  # see the docstring
@require_http_methods(["GET", "POST"])
def favourite_stop(request: HttpRequest, token: str) -> HttpResponse:
    """The link in each near e-mail: stops them for that cart, without logging in (the signed
    token is the key). GET only asks to confirm, with one button: mail scanners and link
    previews open links by themselves, and must not switch anything off (RFC 8058 says so too).
    A bare POST stops (the button, or the mail app's one-click unsubscribe, List-Unsubscribe-Post);
    POST with `on=1` turns it back on. No CSRF token is needed: the signed token in the address is
    what authorises, and it only switches this one notice."""
    favourite_id = near_stop_favourite_id(token)
    if favourite_id is None:
        return render(request, "customers/favourite_stop.html", {"invalid": True}, status=400)
    favourite = (
        FavouriteVendor.objects.select_related("vendor", "customer").filter(pk=favourite_id).first()
    )
    if favourite is None:
        return render(request, "customers/favourite_stop.html", {"gone": True})
    if request.method == "GET":
        return render(
            request,
            "customers/favourite_stop.html",
            {"favourite": favourite, "ask": True, "token": token},
        )
    on = _on(request) is True
    favourite_notify_set(customer=favourite.customer, vendor_id=favourite.vendor_id, notify_near=on)
    return render(
        request, "customers/favourite_stop.html", {"favourite": favourite, "on": on, "token": token}
    )
