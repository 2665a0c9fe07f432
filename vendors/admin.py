import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import F, Sum
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import services
from .models import (
    Category,
    LotAdjustment,
    LotAllocation,
    OpeningHours,
    PickupPoint,
    Product,
    ServiceCell,
    Stock,
    StockLot,
    Vendor,
    VendorHours,
    WasteRecord,
)

log = logging.getLogger(__name__)


class VendorHoursInline(admin.TabularInline):
    model = VendorHours
    extra = 0
    fields = ("weekday", "opens", "closes")


class StockInline(admin.TabularInline):
    model = Stock
    extra = 0
    fields = ("product", "quantity", "updated_at")
    readonly_fields = ("product", "quantity", "updated_at")
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ServiceCellInline(admin.TabularInline):
    model = ServiceCell
    extra = 0
    fields = ("cell",)
    readonly_fields = ("cell",)
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class VendorActionForm(ActionForm):
    """The admin list's action bar, with the reason the vendor will see on their dashboard."""

    reason = forms.CharField(
        label=_("Reason shown to the vendor"),
        required=False,
        max_length=200,
        strip=True,
    )


def _run_status_action(modeladmin, request, queryset, service, done_message):
    # The reason is shown to the vendor: only what staff typed for them, never who acted. Who acted
    # goes to the object's admin history (LogEntry) and the log, seen by staff only.
    reason = (request.POST.get("reason") or "").strip()[:200]
    done = 0
    for vendor in queryset.order_by("pk"):
        try:
            moved = service(vendor_id=vendor.pk, reason=reason)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{vendor}: {exc.messages[0]}", messages.WARNING)
        else:
            done += 1
            modeladmin.log_change(
                request,
                moved,
                gettext("Status changed to %(status)s.") % {"status": moved.get_status_display()},
            )
            log.info("vendor %s moved to %s by user %s", moved.pk, moved.status, request.user.pk)
    if done:
        modeladmin.message_user(request, done_message(done), messages.SUCCESS)


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "status", "status_changed_at", "items_on_cart", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "slug", "user__email", "phone")
    # Status moves only through the actions (services), never by editing the field.
    readonly_fields = (
        "user",
        "slug",
        "status",
        "status_reason",
        "status_changed_at",
        "home_cell",
        "created_at",
    )
    fields = (
        "user",
        "name",
        "slug",
        "bio",
        "photo",
        "phone",
        "status",
        "status_reason",
        "status_changed_at",
        "home_lat",
        "home_lng",
        "home_cell",
        "created_at",
    )
    inlines = [VendorHoursInline, StockInline, ServiceCellInline]
    actions = ["approve", "suspend", "reject"]
    action_form = VendorActionForm
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .annotate(_items=Sum("stock__quantity", default=0))
        )

    @admin.display(description=_("items on cart"), ordering="_items")
    def items_on_cart(self, obj) -> int:
        return obj._items

    def has_add_permission(self, request) -> bool:
        # A vendor is created by applying (vendors.services.vendor_apply), not in admin.
        return False

    @admin.action(description=_("Approve selected vendors"), permissions=["change"])
    def approve(self, request, queryset):
        _run_status_action(
            self,
            request,
            queryset,
            services.vendor_approve,
            lambda n: ngettext("%d vendor approved.", "%d vendors approved.", n) % n,
        )

    @admin.action(description=_("Suspend selected vendors"), permissions=["change"])
    def suspend(self, request, queryset):
        _run_status_action(
            self,
            request,
            queryset,
            services.vendor_suspend,
            lambda n: ngettext("%d vendor suspended.", "%d vendors suspended.", n) % n,
        )

    @admin.action(description=_("Reject selected applications"), permissions=["change"])
    def reject(self, request, queryset):
        _run_status_action(
            self,
            request,
            queryset,
            services.vendor_reject,
            lambda n: ngettext("%d application rejected.", "%d applications rejected.", n) % n,
        )


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("slug", "name_ko", "name_en", "position")
    list_editable = ("position",)
    search_fields = ("slug", "name_ko", "name_en")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name_ko", "name_en", "category", "price", "currency", "is_active")
    list_filter = ("is_active", "category")
    search_fields = ("sku", "name_ko", "name_en")
    list_select_related = ("category",)


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    """Read-only: stock changes through the vendor's page/API (stock_set), never by hand here."""

    list_display = ("vendor", "product", "quantity", "updated_at")
    list_filter = ("vendor__status", "product__category")
    search_fields = ("vendor__name", "product__name_ko", "product__name_en", "product__sku")
    list_select_related = ("vendor", "product")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 1


@admin.register(PickupPoint)
class PickupPointAdmin(admin.ModelAdmin):
    list_display = ("name", "address", "is_active", "cell")
    list_filter = ("is_active",)
    search_fields = ("name", "address")
    readonly_fields = ("cell",)
    inlines = [OpeningHoursInline]


@admin.register(ServiceCell)
class ServiceCellAdmin(admin.ModelAdmin):
    list_display = ("vendor", "cell")
    search_fields = ("vendor__name", "cell")
    list_select_related = ("vendor",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Lots change through the services (the vendor's page/API, the actions here), never by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StockLot)
class StockLotAdmin(_ReadOnlyAdmin):
    list_display = (
        "vendor",
        "product",
        "quantity",
        "quantity_loaded",
        "expires_on",
        "best_before",
        "sell_by",
        "is_expired",
        "loaded_at",
    )
    list_filter = ("expires_on", "vendor__status", "product__category")
    search_fields = ("vendor__name", "product__name_ko", "product__name_en", "product__sku")
    list_select_related = ("vendor", "product")
    date_hierarchy = "loaded_at"
    actions = ["write_off_expired"]

    @admin.display(boolean=True, description=_("expired"))
    def is_expired(self, obj: StockLot) -> bool:
        return obj.is_expired

    def has_change_permission(self, request, obj=None) -> bool:
        # The write-off action needs it; the change form itself stays read-only (no fields).
        return obj is None and request.user.is_staff

    @admin.action(description=_("Write off the expired units of the selected lots"))
    def write_off_expired(self, request: HttpRequest, queryset) -> None:
        done = 0
        for lot in queryset.filter(quantity__gt=0).select_related("vendor"):
            if not lot.is_expired:
                continue
            services.lot_write_off(
                lot_id=lot.pk,
                vendor=lot.vendor,
                actor=request.user,
                reason=LotAdjustment.Reason.EXPIRED,
                note=gettext("by staff"),
            )
            done += 1
        self.message_user(
            request,
            ngettext("Wrote off %(n)s expired lot.", "Wrote off %(n)s expired lots.", done)
            % {"n": done},
            messages.SUCCESS,
        )


@admin.register(LotAllocation)
class LotAllocationAdmin(_ReadOnlyAdmin):
    list_display = ("reference", "lot", "quantity", "released", "created_at")
    search_fields = ("=reference",)
    list_select_related = ("lot__product", "lot__vendor")


@admin.register(LotAdjustment)
class LotAdjustmentAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "vendor", "product", "kind", "reason", "delta", "note", "actor")
    list_filter = ("kind", "reason", "lot__vendor", "lot__product")
    search_fields = ("lot__vendor__name", "lot__product__name_ko", "note")
    list_select_related = ("lot__product", "lot__vendor", "actor")
    date_hierarchy = "created_at"

    @admin.display(description=_("vendor"), ordering="lot__vendor__name")
    def vendor(self, obj: LotAdjustment):
        return obj.lot.vendor

    @admin.display(description=_("product"), ordering="lot__product__name_ko")
    def product(self, obj: LotAdjustment):
        return obj.lot.product


@admin.register(WasteRecord)
class WasteAdmin(LotAdjustmentAdmin):
    """Staff's waste report: units written off, and their value at today's price, by vendor,
    product and reason, for whatever the filters select (the summary above the list)."""

    change_list_template = "admin/vendors/wasterecord/change_list.html"
    list_display = ("created_at", "vendor", "product", "units", "value", "reason", "note", "actor")
    list_filter = ("reason", "lot__vendor", "lot__product", "lot__product__category__slug")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind=LotAdjustment.Kind.WRITE_OFF)

    @admin.display(description=_("units"))
    def units(self, obj: LotAdjustment) -> int:
        return obj.units

    @admin.display(description=_("value"))
    def value(self, obj: LotAdjustment) -> int:
        return obj.units * obj.lot.product.price

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["waste_summary"] = list(
                context["cl"]
                .queryset.order_by()
                .values("lot__vendor__name", "lot__product__name_ko", "reason")
                .annotate(
                    units=Sum(-F("delta")),
                    value=Sum(-F("delta") * F("lot__product__price")),
                )
                .order_by("-value", "lot__vendor__name", "lot__product__name_ko")[:200]
            )
            reasons = dict(LotAdjustment.Reason.choices)
            for row in context["waste_summary"]:
                row["reason_label"] = reasons.get(row["reason"], row["reason"])
        return response
