"""Pages of the wellbeing check asked for by someone close to a subscriber (subscriptions.wellbeing):
the asker's form (anyone, signed in or not) and the subscriber's answer (signed in)."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from o2o.errors import NotAllowed
from o2o.forms import add_service_error

from .forms import WellbeingAnswerForm, WellbeingAskForm
from .models import Subscription
from .wellbeing import (
    LIVE,
    expired,
    wellbeing_request_answer,
    wellbeing_request_for,
    wellbeing_request_make,
)

ASKED = "o2o.wellbeing.asked"


@require_http_methods(["GET", "POST"])
def wellbeing_ask(request: HttpRequest) -> HttpResponse:
    form = WellbeingAskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            wellbeing_request_make(**form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            request.session[ASKED] = form.cleaned_data["subscriber_email"]
            return redirect("subscriptions:wellbeing-ask-sent")
    return render(request, "subscriptions/wellbeing_ask.html", {"form": form})


def wellbeing_ask_sent(request: HttpRequest) -> HttpResponse:
    sent = request.session.pop(ASKED, "")
    if not sent:
        return redirect("subscriptions:wellbeing-ask")
    return render(request, "subscriptions/wellbeing_ask.html", {"sent": sent})


@login_required
@require_http_methods(["GET", "POST"])
def wellbeing_answer(request: HttpRequest, token: uuid.UUID) -> HttpResponse:
    customer = getattr(request.user, "customer", None)
    try:
        if customer is None:
            raise NotAllowed(_("No such request."))
        ask = wellbeing_request_for(token=token, customer=customer)
    except NotAllowed as exc:
        raise Http404(_("No such request.")) from exc
    subscriptions = list(
        Subscription.objects.filter(customer=customer, status__in=LIVE).select_related("vendor")
    )
    form = WellbeingAnswerForm(request.POST or None, subscriptions=subscriptions)
    if request.method == "POST" and form.is_valid():
        agree = form.cleaned_data["answer"] == "agree"
        try:
            wellbeing_request_answer(
                token=token,
                customer=customer,
                agree=agree,
                subscription_id=form.cleaned_data["subscription"] or None,
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            if agree:
                messages.success(
                    request,
                    _("The wellbeing check is on; %(name)s will be told if something seems wrong.")
                    % {"name": ask.requester_name},
                )
                return redirect(
                    "subscriptions:detail", subscription_id=form.cleaned_data["subscription"]
                )
            messages.success(request, _("You declined; nothing changes."))
            return redirect("subscriptions:list")
    return render(
        request,
        "subscriptions/wellbeing_answer.html",
        {"ask": ask, "form": form, "expired": expired(ask), "subscriptions": subscriptions},
    )
