"""The vendor's round pages (phone-first): today's stops with one tap each (a plain form that
works without script; round.js queues the taps on the phone and replays them when back online),
and tomorrow's round with what to load on the cart."""

import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from o2o.errors import NotAllowed
from vendors.models import Vendor

from .models import RoundAction
from .round import Tap, round_act, round_next, round_of
from .round_html import stops_html


def _vendor(request: HttpRequest) -> Vendor | None:
    return getattr(request.user, "vendor", None) if hasattr(request.user, "vendor") else None


def _not_vendor(request: HttpRequest) -> HttpResponse:
    messages.info(request, _("Only vendors have a round. Apply to sell first."))
    return redirect("vendors:apply")


@login_required
@require_GET
def round_today(request: HttpRequest) -> HttpResponse:
    vendor = _vendor(request)
    if vendor is None:
        return _not_vendor(request)
    day = timezone.localdate()
    result = round_of(vendor=vendor, day=day, language=get_language() or "ko")
    by = _("by %(t)s")
    for stop in result.stops:
        if stop.window_end is not None:
            stop.by_text = by % {"t": timezone.localtime(stop.window_end).strftime("%H:%M")}
    # Translated once for the whole list (a 400-stop round shows each 400 times).
    words = {
        "regular": _("Regular"),
        "order": _("Order"),
        "note": _("Note:"),
        "if_not_home": _("If nobody is at home:"),
        "door": _("leave it at the door"),
        "tomorrow": _("bring it again on the next round"),
        "refund": _("don't leave it; the customer is refunded"),
        "code": _("Customer's code"),
        "wellbeing": _("Wellbeing check"),
        "well": _("Saw them, all well"),
        "concern": _("A concern"),
        "uncollected": _("Earlier deliveries are still at the door"),
        "note_optional": _("Note (optional)"),
        "delivered": _("Delivered"),
        "not_home": _("Nobody at home"),
    }
    return render(
        request,
        "subscriptions/round.html",
        {
            "round": result,
            "stops": result.stops,
            "stops_html": stops_html(result.stops, words),
            "tap_id": uuid.uuid4(),
            "config": {
                "apiUrl": reverse("api-round"),
                "actionsUrl": reverse("api-round-actions"),
                "day": day.isoformat(),
                "swUrl": reverse("round:sw"),
            },
        },
    )


@login_required
@require_POST
def round_tap(request: HttpRequest) -> HttpResponse:
    """One tap from the page without script (round.js sends them to the API instead)."""
    vendor = _vendor(request)
    if vendor is None:
        return _not_vendor(request)
    try:
        # The button says what and which stop ("delivered:<order>"); the stop's fields are named
        # after its order.
        what, _sep, order = request.POST.get("tap", "").partition(":")
        order_id = int(order)
        tap = Tap(
            client_id=uuid.UUID(request.POST.get("id", "")),
            order_id=order_id,
            action=what,
            tapped_at=parse_datetime(request.POST.get("tapped_at", "") or "") or None,
            code=request.POST.get(f"code-{order_id}", "")[:8],
            wellbeing=request.POST.get(f"wellbeing-{order_id}", ""),
            uncollected=request.POST.get(f"uncollected-{order_id}") == "on",
            note=request.POST.get(f"note-{order_id}", "")[:200],
        )
    except ValueError:
        messages.error(request, _("That tap could not be read. Try again."))
        return redirect("round:today")
    try:
        done = round_act(vendor=vendor, tap=tap)
    except NotAllowed as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if done.outcome == RoundAction.Outcome.REFUSED:
            messages.error(request, done.detail)
        else:
            messages.success(
                request,
                _("Stop %(id)s: %(outcome)s.")
                % {
                    "id": done.order_id,
                    "outcome": done.get_outcome_display(),
                },
            )
    return redirect("round:today")


@login_required
@require_GET
def round_tomorrow(request: HttpRequest) -> HttpResponse:
    vendor = _vendor(request)
    if vendor is None:
        return _not_vendor(request)
    day = timezone.localdate() + timedelta(days=1)
    result = round_next(vendor=vendor, day=day, language=get_language() or "ko")
    return render(request, "subscriptions/round_tomorrow.html", {"next": result})


@never_cache
@require_GET
def round_service_worker(request: HttpRequest) -> HttpResponse:
    """Keeps the round page and its script on the phone, so the round opens without a network;
    the taps made offline wait in the page's queue (round.js)."""
    from tracking.views import service_worker_source

    shell = [
        reverse("round:today"),
        static("css/app.css"),
        static("css/round.css"),
        static("js/app.js"),
        static("js/round.js"),
    ]
    response = HttpResponse(
        service_worker_source("o2o-round-v1", shell), content_type="text/javascript"
    )
    response["Service-Worker-Allowed"] = reverse("round:today")
    return response
