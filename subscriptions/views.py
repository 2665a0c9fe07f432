"""Customer pages for subscriptions (phone-first). Thin: forms shape input, services decide.
Someone else's subscription is a 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.services import customer_profile_get_or_create
from o2o.accounts.models import User
from o2o.errors import NotAllowed
from o2o.forms import add_service_error
from payments.models import SavedCard
from vendors.selectors import vendor_stock, vendors_public

from . import selectors, services
from .fees import fee_payment
from .forms import PauseForm, PreferencesForm, SkipForm, SubscriptionForm
from .models import Subscription


def _customer(request: HttpRequest):
    return getattr(request.user, "customer", None)


@login_required
@require_GET
def subscription_list(request: HttpRequest) -> HttpResponse:
    subs = list(selectors.subscriptions_of(customer=_customer(request)))
    upcoming = selectors.upcoming_deliveries_of(subscriptions=subs, n=3)
    rows = [(sub, upcoming[sub.pk]) for sub in subs]
    return render(request, "subscriptions/list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def subscription_new(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("vendor", "")
    if not slug:  # first choose the cart
        return render(request, "subscriptions/choose.html", {"vendors": vendors_public()})
    vendor = get_object_or_404(vendors_public(), slug=slug)
    assert isinstance(request.user, User)  # login_required
    customer = customer_profile_get_or_create(user=request.user)
    products = [stock.product for stock in vendor_stock(vendor=vendor)]
    form = SubscriptionForm(
        request.POST or None, addresses=customer.addresses.all(), products=products
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sub = services.subscription_create(
                customer=customer,
                vendor=vendor,
                address_id=data["address"],
                plan=data["plan"],
                items=[services.ItemIn(pid, qty) for pid, qty in form.items()],
                starts_on=data["starts_on"],
                weekdays=data["weekdays"] or None,
                every_n_days=data["every_n_days"],
                shortage_policy=data["shortage_policy"],
                not_at_home_policy=data["not_at_home_policy"],
                card_id=selectors.default_card_id(customer=customer),
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("You are subscribed."))
            return redirect("subscriptions:detail", subscription_id=sub.pk)
    card_id = selectors.default_card_id(customer=customer)
    card = SavedCard.objects.filter(pk=card_id).first() if card_id else None
    return render(request, "subscriptions/new.html", {"vendor": vendor, "form": form, "card": card})


def _own(request: HttpRequest, subscription_id: int) -> Subscription:
    try:
        return selectors.subscription_of(
            customer=_customer(request), subscription_id=subscription_id
        )
    except NotAllowed as exc:
        raise Http404(_("No such subscription.")) from exc


@login_required
@require_GET
def subscription_detail(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = _own(request, subscription_id)
    live = sub.status != Subscription.Status.CANCELLED
    context = {
        "sub": sub,
        "upcoming": selectors.upcoming_deliveries(subscription=sub),
        "fee": selectors.cancellation_fee_quote(subscription=sub) if live else 0,
        "live": live,
        "pause_form": PauseForm(),
        "preferences_form": PreferencesForm(
            initial={
                "shortage_policy": sub.shortage_policy,
                "not_at_home_policy": sub.not_at_home_policy,
                "wellbeing_check": sub.wellbeing_check,
                "contact_name": sub.wellbeing_contact_name,
                "contact_email": sub.wellbeing_contact_email,
                "consent": sub.wellbeing_consent_at is not None,
            }
        ),
        "recent": selectors.recent_deliveries(subscription=sub),
        "fee_payment": fee_payment(subscription_id=sub.pk) if sub.fee_status else None,
    }
    return render(request, "subscriptions/detail.html", context)


@login_required
@require_POST
def subscription_action(request: HttpRequest, subscription_id: int, action: str) -> HttpResponse:
    sub = _own(request, subscription_id)
    sid, customer = sub.pk, sub.customer
    try:
        if action == "pause":
            form = PauseForm(request.POST)
            if not form.is_valid():
                raise ValidationError(_("Choose a valid date."))
            services.subscription_pause(
                subscription_id=sid, customer=customer, until=form.cleaned_data["until"]
            )
            messages.success(request, _("Paused."))
        elif action == "resume":
            services.subscription_resume(subscription_id=sid, customer=customer)
            messages.success(request, _("Resumed."))
        elif action == "skip":
            skip = SkipForm(request.POST)
            if not skip.is_valid():
                raise ValidationError(_("Choose a valid date."))
            services.subscription_skip(
                subscription_id=sid, customer=customer, on=skip.cleaned_data["date"]
            )
            messages.success(request, _("That delivery is skipped."))
        elif action == "preferences":
            prefs = PreferencesForm(request.POST)
            if not prefs.is_valid():
                raise ValidationError([str(e) for errors in prefs.errors.values() for e in errors])
            data = prefs.cleaned_data
            services.subscription_preferences_set(
                subscription_id=sid,
                customer=customer,
                shortage_policy=data["shortage_policy"],
                not_at_home_policy=data["not_at_home_policy"],
                wellbeing_check=data["wellbeing_check"],
                contact_name=data["contact_name"],
                contact_email=data["contact_email"],
                consent=data["consent"],
            )
            messages.success(request, _("Saved. It applies from the next delivery."))
        elif action == "cancel":
            services.subscription_cancel(subscription_id=sid, customer=customer)
            messages.success(request, _("Your subscription is cancelled."))
        else:
            raise Http404
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect("subscriptions:detail", subscription_id=sub.pk)
