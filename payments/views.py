"""Payments pages, thin over services and selectors.

Provider webhooks: POST /payments/webhooks/<provider>/, over services.webhook_receive. 400 for a
forged, replayed-too-old or malformed webhook; 200 for a new event and for one already handled;
404 for a provider we don't have; 503 when the provider could not be asked about it (it will
retry). Never a 500: an unexpected error is logged and answered 503, so the provider retries.

A vendor's money (payments.earnings, payments.statements): the earnings page, an order's money,
the statements and their CSV/PDF downloads. Staff (Django admin look, linked from the admin
index): the money dashboard and the manual ledger adjustment form.
"""

import logging
import re
import uuid
from datetime import timedelta
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.services import customer_profile_get_or_create
from o2o.money import MINOR_UNITS, format_money
from vendors.models import Vendor

from . import earnings, ledger, services, statements, vault
from .errors import PaymentUnavailable, UnknownProvider, WebhookInvalid
from .models import JournalTransaction, LedgerAccount, Settlement
from .selectors import ledger_account_known

log = logging.getLogger(__name__)


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> JsonResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        return _error("too_large", "The webhook body is too large.", 400)
    try:
        event = services.webhook_receive(provider=provider, body=body, headers=request.headers)
    except UnknownProvider:
        return _error("not_found", "No such payment provider.", 404)
    except WebhookInvalid as exc:
        return _error("invalid_signature", exc.messages[0], 400)
    except PaymentUnavailable as exc:
        return _error("unavailable", exc.messages[0], 503)
    except Exception:  # noqa: BLE001 - the provider must retry, never see a crash
        log.exception("%s webhook could not be handled", provider)
        return _error("error", "The webhook could not be handled now.", 503)
    return JsonResponse({"received": True, "duplicate": event is None})


# --- the vendor's earnings (pages) ---------------------------------------------------------------

# Only the vendor and staff see a vendor's money. Someone else's vendor, order or statement is 404
# (a 403 would tell it exists); a signed-in customer asking for "my earnings" is 403.

ORDERS_PER_PAGE = 20


def _own_vendor(request: HttpRequest) -> Vendor | None:
    user = request.user
    return getattr(user, "vendor", None) if hasattr(user, "vendor") else None


def _vendor_for(request: HttpRequest, vendor_id: int | None) -> Vendor:
    """The vendor whose money the request may see: its own, or (staff only) the one named."""
    own = _own_vendor(request)
    if vendor_id is None or (own is not None and own.pk == vendor_id):
        if own is None:
            raise PermissionDenied(_("Only vendors have earnings."))
        return own
    if not earnings.reads_the_books(request.user):
        raise Http404(_("No such vendor."))
    try:
        return Vendor.objects.get(pk=vendor_id)
    except Vendor.DoesNotExist as exc:
        raise Http404(_("No such vendor.")) from exc


def _earnings_page(request: HttpRequest, vendor: Vendor) -> HttpResponse:
    page = Paginator(earnings.vendor_orders(vendor_id=vendor.pk), ORDERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [earnings.order_row(row) for row in page.object_list]
    context = {
        "vendor": vendor,
        "earnings": earnings.vendor_earnings(vendor_id=vendor.pk),
        "page": page,
        "orders": rows,
        "statements": earnings.vendor_statements(vendor_id=vendor.pk)[:5],
        "is_own": _own_vendor(request) == vendor,
    }
    return render(request, "payments/earnings.html", context)


@login_required
@require_GET
def earnings_mine(request: HttpRequest) -> HttpResponse:
    """The signed-in vendor's earnings."""
    return _earnings_page(request, _vendor_for(request, None))


@login_required
@require_GET
def earnings_of_vendor(request: HttpRequest, vendor_id: int) -> HttpResponse:
    """A vendor's earnings for staff (and the vendor itself, at its own id)."""
    return _earnings_page(request, _vendor_for(request, vendor_id))


@login_required
@require_GET
def earnings_order(request: HttpRequest, order_id: int) -> HttpResponse:
    """One order's money, movement by movement, for its vendor (or staff)."""
    own = _own_vendor(request)
    if own is None and not earnings.reads_the_books(request.user):
        raise PermissionDenied(_("Only vendors have earnings."))
    vendor = own
    movements = earnings.order_movements(vendor_id=own.pk, order_id=order_id) if own else []
    if not movements and earnings.reads_the_books(request.user):
        vendor_id = earnings.order_vendor_id(order_id=order_id)
        vendor = Vendor.objects.filter(pk=vendor_id).first() if vendor_id else None
        if vendor is not None:
            movements = earnings.order_movements(vendor_id=vendor.pk, order_id=order_id)
    if not movements:
        raise Http404(_("No such order."))
    return render(
        request,
        "payments/earnings_order.html",
        {
            "vendor": vendor,
            "order_id": order_id,
            "movements": movements,
            "total": earnings.order_total(movements),
            "is_own": own == vendor,
        },
    )


# --- statements (one per settlement) -------------------------------------------------------------


def _int_or_404(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise Http404(_("No such vendor.")) from exc
    if number <= 0:
        raise Http404(_("No such vendor."))
    return number


def _settlement_for(request: HttpRequest, settlement_id: int) -> Settlement:
    """The settlement if it is the signed-in vendor's (or the user is staff); 404 otherwise."""
    settlements = Settlement.objects.select_related("vendor")
    if not earnings.reads_the_books(request.user):
        own = _own_vendor(request)
        if own is None:
            raise Http404(_("No such statement."))
        settlements = settlements.filter(vendor=own)
    try:
        return settlements.get(pk=settlement_id)
    except Settlement.DoesNotExist as exc:
        raise Http404(_("No such statement.")) from exc


@login_required
@require_GET
def statement_list(request: HttpRequest) -> HttpResponse:
    vendor = _vendor_for(request, _int_or_404(request.GET.get("vendor")))
    page = Paginator(earnings.vendor_statements(vendor_id=vendor.pk), ORDERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "payments/statements.html",
        {"vendor": vendor, "page": page, "is_own": _own_vendor(request) == vendor},
    )


@login_required
@require_GET
def statement_detail(request: HttpRequest, settlement_id: int, fmt: str = "") -> HttpResponse:
    settlement = _settlement_for(request, settlement_id)
    fmt = fmt or request.GET.get("format", "")
    if fmt and fmt not in statements.DOWNLOADS:
        raise Http404(_("No such format."))
    statement = statements.statement_build(settlement=settlement)
    if not statement.agrees:
        log.error("settlement %s: its figures differ from the ledger's", settlement.pk)
    if fmt:
        return statements.statement_response(statement, fmt)
    return render(
        request,
        "payments/statement.html",
        {
            "statement": statement,
            "s": settlement,
            "is_own": _own_vendor(request) == settlement.vendor,
        },
    )


# --- staff: the money dashboard and manual adjustments (Django admin pages) ----------------------

CHART_HEIGHT = 160
CHART_WIDTH = 960
CURRENCIES = [("KRW", "KRW")] + [(c, c) for c in sorted(MINOR_UNITS) if c != "KRW"]
CHART_SERIES = (
    ("gmv", gettext_lazy("Gross merchandise value")),
    ("commission", gettext_lazy("Commission")),
    ("refunds", gettext_lazy("Refunds")),
    ("payables", gettext_lazy("Owed to vendors")),
)


class DashboardRangeForm(forms.Form):
    """A range of local days for the dashboard (default: the last 30 days)."""

    start = forms.DateField(label=gettext_lazy("From"), required=False)
    end = forms.DateField(label=gettext_lazy("Until"), required=False)
    currency = forms.ChoiceField(label=gettext_lazy("Currency"), choices=CURRENCIES, required=False)

    @classmethod
    def defaults(cls) -> dict[str, str]:
        last = timezone.localdate()
        first = last - timedelta(days=29)
        return {"start": first.isoformat(), "end": last.isoformat(), "currency": "KRW"}

    def clean(self) -> dict:
        data = super().clean()
        last = data.get("end") or timezone.localdate()
        if not earnings.EARLIEST_DAY <= last <= earnings.LATEST_DAY:
            raise forms.ValidationError(earnings.day_range_error(last, last))
        first = data.get("start") or last - timedelta(days=29)
        error = earnings.day_range_error(first, last)
        if error:
            raise forms.ValidationError(error)
        data["first"], data["last"] = first, last
        data["currency"] = data.get("currency") or "KRW"
        return data


def _chart(days: list[earnings.Day]) -> dict:
    """Bar geometry of the days, drawn as inline SVG by the template: one group of bars per day,
    the chart CHART_WIDTH units wide whatever the range (the SVG scales to its box), heights in
    whole pixels scaled to the largest figure (integer arithmetic)."""
    keys = [k for k, _label in CHART_SERIES]
    top = max([1] + [max(getattr(d, k), 0) for d in days for k in keys])
    group = CHART_WIDTH / max(len(days), 1)  # geometry, not money
    bar = group * 0.8 / len(keys)
    groups = []
    for i, d in enumerate(days):
        bars = []
        for j, (key, label) in enumerate(CHART_SERIES):
            value = getattr(d, key)
            height = max(value, 0) * CHART_HEIGHT // top
            bars.append(
                {
                    "key": key,
                    "label": label,
                    "value": value,
                    "x": f"{i * group + j * bar:.2f}",
                    "y": CHART_HEIGHT - height,
                    "height": height,
                }
            )
        groups.append({"day": d.day, "x": f"{i * group:.2f}", "bars": bars})
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bar": f"{bar:.2f}",
        "top": top,
        "groups": groups,
        "series": CHART_SERIES,
        "label_every": max(1, -(-len(days) // 10)),
    }


def staff_only(view):
    """Staff pages: the admin's login for someone not signed in, 403 for a signed-in non-staff
    user (a redirect to a login they already passed would loop)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied(_("Staff only."))
        if not earnings.reads_the_books(request.user):
            raise PermissionDenied(_("Your staff account may not see the platform's money."))
        return view(request, *args, **kwargs)

    return wrapped


def _admin_context(request: HttpRequest, title: str) -> dict:
    from django.contrib import admin  # noqa: PLC0415 - only the staff pages need the admin site

    return {**admin.site.each_context(request), "title": title}


@staff_only
@require_GET
def money_dashboard(request: HttpRequest) -> HttpResponse:
    """Per day: gross merchandise value, commission, delivery fees kept, the provider's fees, the
    platform's net revenue, refunds and what is owed to vendors, from the ledger, with a bar chart
    and the range's totals."""
    form = DashboardRangeForm(request.GET or DashboardRangeForm.defaults())
    days: list[earnings.Day] = []
    currency = "KRW"
    if form.is_valid():
        data = form.cleaned_data
        currency = data["currency"]
        days = earnings.daily_totals(first=data["first"], last=data["last"], currency=currency)
    channels = _channels(form, currency)
    context = {
        **_admin_context(request, _("Money dashboard")),
        "form": form,
        "days": days,
        "totals": earnings.range_totals(days) if days else None,
        "currency": currency,
        "chart": _chart(days) if days else None,
        "channels": channels,
        "channel_labels": _channel_labels() if channels else [],
    }
    return render(request, "payments/money_dashboard.html", context)


def _channels(form: "DashboardRangeForm", currency: str) -> list:
    """Sales by channel per day, from the insight summaries (kept in KRW)."""
    from insights.staff import sales_by_channel  # noqa: PLC0415 - insights reads every app

    if not form.is_valid() or currency != "KRW":
        return []
    return sales_by_channel(first=form.cleaned_data["first"], last=form.cleaned_data["last"])


def _channel_labels() -> list[str]:
    from insights.models import Channel  # noqa: PLC0415

    return [str(label) for label in Channel.labels]


ADJUSTMENT_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _account_choices() -> list[tuple[str, str]]:
    """The ledger's accounts as (code, "code · name"), fixed ones first: what a staff member
    picks from (a vendor's payable account not yet used can be typed: vendor_payable:<id>)."""
    return [
        (a.code, f"{a.code} · {ledger.account_label(a)}")
        for a in LedgerAccount.objects.order_by("vendor_id", "code")
    ]


class AdjustmentForm(forms.Form):
    """A manual correction: `amount` from one account (debited) to another (credited), with a
    reason and an explicit confirmation. `token` is minted when the form is shown and is the
    ledger's key for this adjustment, so the same form sent twice posts once."""

    debit = forms.CharField(
        label=gettext_lazy("Debit account"),
        max_length=60,
        help_text=gettext_lazy("Its code, e.g. adjustments or vendor_payable:12."),
    )
    credit = forms.CharField(
        label=gettext_lazy("Credit account"),
        max_length=60,
        help_text=gettext_lazy("Its code, e.g. vendor_payable:12 or commission_revenue."),
    )
    amount = forms.IntegerField(
        label=gettext_lazy("Amount"),
        min_value=1,
        max_value=10**12,
        help_text=gettext_lazy("A whole number in the currency's minor unit (KRW: won)."),
    )
    currency = forms.ChoiceField(label=gettext_lazy("Currency"), choices=CURRENCIES, initial="KRW")
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Kept in the ledger with your name. Say why, and any ticket number."
        ),
    )
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "I checked both accounts and the amount. A posting cannot be edited or deleted; a "
            "mistake is corrected by another adjustment."
        ),
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=32)

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if not ADJUSTMENT_TOKEN.match(token):
            raise forms.ValidationError(_("This form is out of date: open it again."))
        return token

    def _account(self, field: str) -> str:
        code = self.cleaned_data[field].strip()
        if not ledger_account_known(code):
            raise forms.ValidationError(_("There is no ledger account %(code)s.") % {"code": code})
        return code

    def clean_debit(self) -> str:
        return self._account("debit")

    def clean_credit(self) -> str:
        return self._account("credit")


def _journal_admin_url(txn_id: int) -> str:
    return reverse("admin:payments_journaltransaction_change", args=[txn_id])


@staff_only
@require_http_methods(["GET", "POST"])
def adjustment_new(request: HttpRequest) -> HttpResponse:
    """Staff post a manual adjustment through ledger.adjustment_post, keyed by the form's token:
    a double submit (or a resent form) posts once and leads to the one posting."""
    if not request.user.has_perm("payments.add_journaltransaction"):
        raise PermissionDenied(_("You may not adjust the ledger."))
    if request.method == "POST":
        form = AdjustmentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            key = data["token"]
            try:
                txn = ledger.adjustment_post(
                    actor=request.user,
                    debit=data["debit"],
                    credit=data["credit"],
                    amount=data["amount"],
                    reason=data["reason"],
                    currency=data["currency"],
                    key=key,
                )
            except ledger.LedgerError as exc:
                done = JournalTransaction.objects.filter(key=f"adjustment:{key}").first()
                if done is not None:
                    messages.info(
                        request, _("This adjustment was already made; it was posted once.")
                    )
                    return redirect(_journal_admin_url(done.pk))
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.error_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc.messages)
            else:
                messages.success(
                    request,
                    _("Posted: %(amount)s from %(debit)s to %(credit)s.")
                    % {
                        "amount": format_money(data["amount"], data["currency"]),
                        "debit": data["debit"],
                        "credit": data["credit"],
                    },
                )
                return redirect(_journal_admin_url(txn.pk))
    else:
        form = AdjustmentForm(initial={"token": uuid.uuid4().hex, "currency": "KRW"})
    context = {
        **_admin_context(request, _("Manual ledger adjustment")),
        "form": form,
        "accounts": _account_choices(),
    }
    return render(request, "admin/payments/adjustment_form.html", context)


# --- the customer's saved cards (payments.vault) ---------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def cards(request: HttpRequest) -> HttpResponse:
    """The customer's saved cards: list, add one (on the provider's setup page, nothing charged),
    remove one. Back from the setup page (?setup_session=<ref>), the saved card is asked of the
    provider and kept, then the page is shown again without the parameter."""
    customer = customer_profile_get_or_create(user=request.user)
    here = reverse("payments:cards")
    try:
        if request.method == "POST":
            action = request.POST.get("action")
            if action == "add":
                return redirect(
                    vault.card_setup_start(customer=customer, return_url=vault.cards_page_url())
                )
            if action == "remove":
                card_id = _int_or_404(request.POST.get("card"))
                vault.card_detach(customer=customer, card_id=card_id)
                messages.success(request, _("The card was removed."))
                return redirect(here)
            return HttpResponse(status=400)
        if setup_ref := request.GET.get("setup_session"):
            vault.card_setup_complete(customer=customer, setup_ref=setup_ref)
            messages.success(request, _("The card is saved for later payments."))
            return redirect(here)
    except ValidationError as exc:
        if getattr(exc, "code", None) == "not_found":
            raise Http404 from exc
        messages.error(request, exc.messages[0])
        return redirect(here)
    return render(request, "payments/cards.html", {"cards": vault.cards_of(customer=customer)})
