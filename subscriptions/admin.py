"""Staff see every subscription and delivery; state changes go through the services, so the
state fields are read-only here."""

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from o2o.errors import DomainError

from .fees import fee_waive
from .models import (
    Delivery,
    RoundAction,
    Subscription,
    SubscriptionItem,
    SubscriptionPause,
    SubscriptionSkip,
    WellbeingFlag,
    WellbeingRequest,
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
    list_display = [
        "id",
        "customer",
        "vendor",
        "plan",
        "status",
        "starts_on",
        "paused_until",
        "fee_status",
    ]
    list_filter = ["status", "plan", "fee_status"]
    search_fields = ["customer__user__email", "vendor__name", "vendor__slug"]
    raw_id_fields = ["customer", "vendor", "address", "card"]
    readonly_fields = [
        "status",
        "paused_from",
        "paused_until",
        "pause_reason",
        "cancellation_fee",
        "fee_status",
        "fee_note",
        "cancelled_at",
        "created_at",
        "plan_months",
        "discount_bps",
        "cancel_fee_bps",
    ]
    inlines = [ItemInline, SkipInline, PauseInline]
    actions = ["waive_fee"]

    @admin.action(description=gettext_lazy("Waive the cancellation fee (not yet paid)"))
    def waive_fee(self, request, queryset):
        done = 0
        for sub in queryset:
            try:
                fee_waive(
                    subscription_id=sub.pk,
                    actor=request.user,
                    reason=_("waived from the admin"),
                )
            except DomainError as exc:
                self.message_user(request, f"#{sub.pk}: {exc.messages[0]}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(
                request, _("%(n)d cancellation fee(s) waived.") % {"n": done}, messages.SUCCESS
            )


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


@admin.register(WellbeingRequest)
class WellbeingRequestAdmin(admin.ModelAdmin):
    """Wellbeing checks asked for by someone close to a subscriber, and the answers. Read-only:
    only the subscriber answers (subscriptions.wellbeing)."""

    list_display = ["pk", "customer", "requester_email", "relation", "status", "created_at"]
    list_filter = ["status", "relation"]
    search_fields = ["customer__user__email", "requester_email"]
    raw_id_fields = ["customer", "subscription"]
    readonly_fields = ["token"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
