from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.selectors import favourite_of
from o2o.errors import Conflict
from o2o.forms import add_service_error

from . import selectors
from .forms import LotCorrectForm, LotLoadForm, LotWriteOffForm, StockFormSet, VendorApplyForm
from .hours_forms import VendorHoursForm
from .models import StockLot, Vendor
from .services import (
    StockChange,
    korea_today,
    lot_correct,
    lot_load,
    lot_write_off,
    stock_set,
    vendor_apply,
    vendor_hours_set,
)


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
            "favourite": favourite_of(
                customer=getattr(request.user, "customer", None)
                if request.user.is_authenticated
                else None,
                vendor_id=vendor.pk,
            ),
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
        request,
        "vendors/stock.html",
        {
            "vendor": vendor,
            "formset": formset,
            "lines": lines,
            **_lots_context(vendor=vendor, products=[p for p, _q in rows]),
        },
    )


def _lots_context(*, vendor: Vendor, products: list) -> dict:
    """The stock page's lots: by product in selling order, the expired ones to take off first."""
    by_product = selectors.vendor_lots(vendor=vendor)
    names = {p.pk: p for p in products}
    groups = [(names[pid], lots) for pid, lots in by_product.items() if pid in names]
    expired = [lot for _p, lots in groups for lot in lots if lot.is_expired]
    for product, lots in groups:
        for lot in lots:
            lot.product = product  # the page shows names in its language without a query a lot
    return {
        "lot_groups": groups,
        "expired_lots": expired,
        "load_form": LotLoadForm(
            products=products, initial={"expires_on": korea_today().isoformat()}
        ),
        "write_off_reasons": LotWriteOffForm.base_fields["reason"].choices,
    }


@login_required
@require_POST
def lot_action(request: HttpRequest) -> HttpResponse:
    """The stock page's lot forms: load a lot, correct one's count, write units off with a reason.
    Every outcome is told on the stock page it redirects to."""
    vendor = _my_vendor(request)
    if vendor is None:
        messages.info(request, _("Only vendors have a cart to stock. Apply to sell first."))
        return redirect("vendors:apply")
    action = request.POST.get("action")
    if action == "load":
        form: LotLoadForm | LotCorrectForm | LotWriteOffForm = LotLoadForm(
            request.POST, products=selectors.products_active()
        )
    elif action == "correct":
        form = LotCorrectForm(request.POST)
    elif action == "write_off":
        form = LotWriteOffForm(request.POST)
    else:
        messages.error(request, _("Unknown action."))
        return redirect("vendors:stock")
    if not form.is_valid():
        errors = [
            f"{form.fields[f].label}: {e}" if f in form.fields else e
            for f, es in form.errors.items()
            for e in es
        ]
        messages.error(request, " ".join(str(e) for e in errors))
        return redirect("vendors:stock")
    data = form.cleaned_data
    try:
        if action == "load":
            lot = lot_load(
                vendor=vendor,
                actor=request.user,
                product_id=data["product"],
                quantity=data["quantity"],
                expires_on=data["expires_on"],
                best_before=data["best_before"],
            )
            done = _("Loaded %(n)s of %(name)s.") % {"n": lot.quantity, "name": lot.product.name}
        elif action == "correct":
            lot = lot_correct(
                lot_id=data["lot"], vendor=vendor, actor=request.user, quantity=data["quantity"]
            )
            done = _("%(name)s: the lot now holds %(n)s.") % {
                "name": lot.product.name,
                "n": lot.quantity,
            }
        else:
            lot = lot_write_off(
                lot_id=data["lot"],
                vendor=vendor,
                actor=request.user,
                reason=data["reason"],
                quantity=data["quantity"],
                note=data["note"],
            )
            done = _("%(name)s: written off. %(n)s left in the lot.") % {
                "name": lot.product.name,
                "n": lot.quantity,
            }
    except StockLot.DoesNotExist:
        messages.error(request, _("That lot is not on your cart."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect("vendors:stock")


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
