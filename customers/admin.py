from django.contrib import admin

from .models import Address, CustomerProfile


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
