"""Staff see exact positions here (and only here); nobody edits them by hand."""

from django.contrib import admin
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from .models import Ping, PingRejectCount, VendorPosition


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VendorPosition)
class VendorPositionAdmin(ReadOnlyAdmin):
    list_display = (
        "vendor",
        "on_shift",
        "presence",
        "last_ping_at",
        "lat",
        "lng",
        "accuracy_m",
        "public_cell",
    )
    list_filter = ("on_shift", "presence")
    search_fields = ("vendor__name", "vendor__user__email", "public_cell")
    list_select_related = ("vendor",)
    ordering = ("-last_ping_at",)


@admin.register(Ping)
class PingAdmin(ReadOnlyAdmin):
    list_display = (
        "vendor",
        "recorded_at",
        "received_at",
        "lat",
        "lng",
        "accuracy_m",
        "cell",
        "source",
    )
    list_filter = ("source",)
    search_fields = ("vendor__name", "cell")
    list_select_related = ("vendor",)
    date_hierarchy = "received_at"
    show_full_result_count = False


@admin.register(PingRejectCount)
class PingRejectCountAdmin(ReadOnlyAdmin):
    list_display = ("day", "reason", "vendor", "count")
    list_filter = ("reason", "day")
    search_fields = ("vendor__name",)
    list_select_related = ("vendor",)
    ordering = ("-day", "-count")

    def changelist_view(self, request, extra_context=None):
        # Totals by reason over what the filters select, above the list.
        response = super().changelist_view(request, extra_context)
        try:
            qs = response.context_data["cl"].queryset
        except (AttributeError, KeyError):
            return response
        response.context_data["subtitle"] = " · ".join(
            f"{row['reason']}: {row['total']}"
            for row in qs.values("reason").annotate(total=Sum("count")).order_by("-total")
        ) or _("No rejects")
        return response
