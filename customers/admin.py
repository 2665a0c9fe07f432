from django.contrib import admin

from .models import Address, CustomerProfile, FavouriteNearNotice, FavouriteVendor


class AddressInline(admin.TabularInline):
    model = Address
    extra = 0
    fields = ("label", "line1", "line2", "postal_code", "lat", "lng", "cell", "is_default")
    readonly_fields = ("cell",)


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "phone", "created_at")
    search_fields = ("user__email", "user__name", "phone")
    list_select_related = ("user",)
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    inlines = [AddressInline]

    def get_readonly_fields(self, request, obj=None):
        # The person behind a profile is chosen once, when staff create it.
        return ("user", "created_at") if obj else ("created_at",)


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = ("customer", "label", "line1", "is_default", "cell")
    list_filter = ("is_default",)
    search_fields = ("customer__user__email", "label", "line1", "postal_code")
    list_select_related = ("customer__user",)
    readonly_fields = ("cell",)


@admin.register(FavouriteVendor)
class FavouriteVendorAdmin(admin.ModelAdmin):
    list_display = ("customer", "vendor", "notify_near", "created_at")
    list_filter = ("notify_near",)
    search_fields = ("customer__user__email", "vendor__name", "vendor__slug")
    list_select_related = ("customer__user", "vendor")
    autocomplete_fields = ("customer", "vendor")
    readonly_fields = ("created_at",)


@admin.register(FavouriteNearNotice)
class FavouriteNearNoticeAdmin(admin.ModelAdmin):
    """What the near sweep recorded (and e-mailed): read only, a record of what was sent."""

    list_display = ("favourite", "shift_started_at", "address_label", "distance_m", "created_at")
    search_fields = ("favourite__customer__user__email", "favourite__vendor__name")
    list_select_related = ("favourite__customer__user", "favourite__vendor")
    readonly_fields = (
        "favourite",
        "shift_started_at",
        "address_label",
        "distance_m",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
