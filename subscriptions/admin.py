"""Staff see every subscription and delivery; state changes go through the services, so the
state fields are read-only here."""

from django.contrib import admin

from .models import (
    Delivery,
    RoundAction,
    Subscription,
    SubscriptionItem,
    SubscriptionPause,
    SubscriptionSkip,
    WellbeingFlag,
)


class ItemInline(admin.TabularInline):
    model = SubscriptionItem
    extra = 0
    raw_id_fields = ["product"]


class SkipInline(admin.TabularInline):
    model = SubscriptionSkip
    extra = 0


class PauseInline(admin.TabularInline):
    """Every pause, ended ones too (read-only: pauses change through the services)."""

    model = SubscriptionPause
    extra = 0
    can_delete = False
    readonly_fields = ["starts_on", "ends_on", "reason", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "vendor", "plan", "status", "starts_on", "paused_until"]
    list_filter = ["status", "plan"]
    search_fields = ["customer__user__email", "vendor__name", "vendor__slug"]
    raw_id_fields = ["customer", "vendor", "address", "card"]
    readonly_fields = [
        "status",
        "paused_from",
        "paused_until",
        "pause_reason",
        "cancellation_fee",
        "cancelled_at",
        "created_at",
        "plan_months",
        "discount_bps",
        "cancel_fee_bps",
    ]
    inlines = [ItemInline, SkipInline, PauseInline]


@admin.register(SubscriptionItem)
class SubscriptionItemAdmin(admin.ModelAdmin):
    list_display = ["subscription", "product", "quantity", "unit_price"]
    raw_id_fields = ["subscription", "product"]


@admin.register(SubscriptionSkip)
class SubscriptionSkipAdmin(admin.ModelAdmin):
    list_display = ["subscription", "date", "created_at"]
    raw_id_fields = ["subscription"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["subscription", "date", "status", "order", "reason", "created_at"]
    list_filter = ["status", "date"]
    raw_id_fields = ["subscription", "order"]
    readonly_fields = ["status", "order", "created_at"]


@admin.register(RoundAction)
class RoundActionAdmin(admin.ModelAdmin):
    """Every tap of every round, as the phone sent it: read-only (the round's services write)."""

    list_display = ["order", "round_date", "action", "outcome", "applied", "tapped_at", "vendor"]
    list_filter = ["outcome", "action", "round_date"]
    search_fields = ["vendor__name", "client_id"]
    raw_id_fields = ["order", "vendor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WellbeingFlag)
class WellbeingFlagAdmin(admin.ModelAdmin):
    """What vendors saw at subscribers' doors, and whether the contact was told. Read-only: a
    flag is a record of who saw what, never edited."""

    list_display = ["subscription", "kind", "created_at", "raised_by", "contact_told"]
    list_filter = ["kind", "contact_told"]
    search_fields = ["subscription__customer__user__email"]
    raw_id_fields = ["subscription", "order", "raised_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
