from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from o2o.errors import Conflict
from o2o.forms import add_service_error

from . import selectors
from .forms import StockFormSet, VendorApplyForm
from .hours_forms import VendorHoursForm
from .models import Vendor
from .services import StockChange, stock_set, vendor_apply, vendor_hours_set


@require_GET
def vendor_list(request: HttpRequest) -> HttpResponse:
    vendors = list(selectors.vendors_listed().order_by("-products_left", "name"))
    availability = selectors.availability_of(vendors=vendors)
    for v in vendors:
        v.availability = availability[v.pk]  # type: ignore[attr-defined]
    return render(request, "vendors/list.html", {"vendors": vendors})


@require_GET
def vendor_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        vendor = selectors.vendor_public_detail(slug=slug)
    except Vendor.DoesNotExist as exc:
        raise Http404(_("No such vendor.")) from exc
    return render(
        request,
        "vendors/detail.html",
        {
            "vendor": vendor,
            "availability": selectors.availability_of(vendors=[vendor])[vendor.pk],
            # "N left" for the live updates (the same message as the page's own "N left").
            "left_one": ngettext("%(n)s left", "%(n)s left", 1),
            "left_other": ngettext("%(n)s left", "%(n)s left", 2),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def vendor_apply_view(request: HttpRequest) -> HttpResponse:
    if hasattr(request.user, "vendor"):
        return redirect("vendors:dashboard")
    form = VendorApplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            vendor_apply(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            if Vendor.objects.filter(user=request.user).exists():
                # The other submit of a double tap got there first: go where it went.
                return redirect("vendors:dashboard")
            add_service_error(form, exc)
        else:
            messages.success(
                request, _("Thank you! We will review your application and tell you by e-mail.")
            )
            return redirect("vendors:dashboard")
    return render(request, "vendors/apply.html", {"form": form})


def _my_vendor(request: HttpRequest) -> Vendor | None:
    return getattr(request.user, "vendor", None) if hasattr(request.user, "vendor") else None


@login_required
@require_GET
def vendor_dashboard(request: HttpRequest) -> HttpResponse:
    vendor = _my_vendor(request)
    if vendor is None:
        return redirect("vendors:apply")
    return render(request, "vendors/dashboard.html", {"vendor": vendor})


@login_required
@require_http_methods(["GET", "POST"])
def stock_edit(request: HttpRequest) -> HttpResponse:
    """The vendor's own cart stock. Only a vendor reaches it, and only for their own cart."""
    vendor = _my_vendor(request)
    if vendor is None:
        messages.info(request, _("Only vendors have a cart to stock. Apply to sell first."))
        return redirect("vendors:apply")
    rows = selectors.stock_editor_rows(vendor=vendor)
    products = {p.pk: p for p, _q in rows}
    if request.method == "POST":
        formset = StockFormSet(request.POST)
        if formset.is_valid():
            changes = [
                StockChange(
                    product_id=f.cleaned_data["product_id"],
                    quantity=f.cleaned_data["quantity"],
                    expected=f.cleaned_data["expected"],
                )
                for f in formset.forms
                if f.cleaned_data and f.cleaned_data["quantity"] != f.cleaned_data["expected"]
            ]
            try:
                if changes:
                    stock_set(vendor=vendor, actor=request.user, changes=changes)
            except Conflict as exc:
                messages.error(request, exc.messages[0])
                return redirect("vendors:stock")
            except ValidationError as exc:
                formset._non_form_errors = formset.error_class(exc.messages)
            else:
                if changes:
                    messages.success(
                        request,
                        ngettext(
                            "Saved %(n)s change to your cart.",
                            "Saved %(n)s changes to your cart.",
                            len(changes),
                        )
                        % {"n": len(changes)},
                    )
                else:
                    messages.info(request, _("Nothing changed."))
                return redirect("vendors:stock")
        else:
            messages.error(request, _("Some quantities need fixing; see below."))
    else:
        formset = StockFormSet(
            initial=[{"product_id": p.pk, "expected": q, "quantity": q} for p, q in rows]
        )
    lines = []
    for form in formset.forms:
        pid = form["product_id"].value()
        try:
            product = products.get(int(pid))
        except (TypeError, ValueError):
            product = None
        lines.append((form, product))
    return render(
        request, "vendors/stock.html", {"vendor": vendor, "formset": formset, "lines": lines}
    )


@login_required
@require_http_methods(["GET", "POST"])
def hours_edit(request: HttpRequest) -> HttpResponse:
    """The vendor's own weekly working hours: what customers may order ahead for while off shift."""
    vendor = _my_vendor(request)
    if vendor is None:
        messages.info(request, _("Only vendors have working hours. Apply to sell first."))
        return redirect("vendors:apply")
    spans = selectors.vendor_hours(vendor_ids=[vendor.pk])[vendor.pk]
    form = VendorHoursForm(request.POST or None, spans=spans)
    if request.method == "POST" and form.is_valid():
        days = form.days()
        try:
            vendor_hours_set(vendor=vendor, days=days)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            if days:
                messages.success(request, _("Your working hours are saved."))
            else:
                messages.success(
                    request,
                    _(
                        "You have no working hours now: customers can order only while you are on shift."
                    ),
                )
            return redirect("vendors:hours")
    return render(request, "vendors/hours.html", {"vendor": vendor, "form": form})
