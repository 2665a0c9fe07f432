"""The sandbox provider's records in the admin (its "dashboard"): read-only, plus sending a webhook
delivery again now."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.admin import ReadOnlyAdmin

from . import services
from .models import (
    SandboxCustomer,
    SandboxEvent,
    SandboxIdempotencyKey,
    SandboxIntent,
    SandboxPaymentMethod,
    SandboxPayout,
    SandboxRefund,
    SandboxSetupSession,
    SandboxWebhookDelivery,
)


@admin.register(SandboxIntent)
class SandboxIntentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "reference",
        "amount",
        "currency",
        "status",
        "amount_captured",
        "amount_refunded",
        "fee",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("id", "reference")
    date_hierarchy = "created_at"


@admin.register(SandboxRefund)
class SandboxRefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "intent", "amount", "reference", "created_at")
    search_fields = ("id", "reference", "intent__id")


@admin.register(SandboxIdempotencyKey)
class SandboxIdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "method", "path", "response_status", "created_at")
    search_fields = ("key", "path")


@admin.register(SandboxEvent)
class SandboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "intent", "created_at")
    list_filter = ("type",)
    search_fields = ("id", "intent__id")


@admin.register(SandboxWebhookDelivery)
class SandboxWebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "event",
        "status",
        "is_duplicate",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "is_duplicate")
    search_fields = ("event__id", "url")
    actions = ["send_again"]

    def has_change_permission(self, request, obj=None) -> bool:
        # The list's actions need "change"; a single record is only ever viewed.
        return obj is None and request.user.has_perm("sandbox.change_sandboxwebhookdelivery")

    @admin.action(description=_("Send again at the next run"), permissions=["change"])
    def send_again(self, request, queryset):
        count = queryset.exclude(status=SandboxWebhookDelivery.Status.PENDING).update(
            status=SandboxWebhookDelivery.Status.PENDING,
            next_attempt_at=timezone.now(),
            attempts=0,
        )
        self.message_user(request, f"{count} queued", messages.SUCCESS)


@admin.register(SandboxPayout)
class SandboxPayoutAdmin(ReadOnlyAdmin):
    """The sandbox bank's side: a payout to the "pending" test account waits here until it is
    marked paid or failed (as a bank would answer days later)."""

    list_display = (
        "id",
        "reference",
        "amount",
        "currency",
        "account_number",
        "status",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("id", "reference", "account_number")
    date_hierarchy = "created_at"
    actions = ["mark_paid", "mark_failed"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("sandbox.change_sandboxpayout")

    def _finish(self, request, queryset, *, paid: bool) -> None:
        done = 0
        for payout in queryset.filter(status=SandboxPayout.Status.PENDING):
            try:
                services.payout_finish(payout_id=payout.pk, paid=paid)
            except services.SandboxError as exc:
                self.message_user(request, f"{payout.pk}: {exc.message}", messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} finished", messages.SUCCESS)

    @admin.action(description=_("Bank: mark pending payouts paid"), permissions=["change"])
    def mark_paid(self, request, queryset):
        self._finish(request, queryset, paid=True)

    @admin.action(description=_("Bank: mark pending payouts failed"), permissions=["change"])
    def mark_failed(self, request, queryset):
        self._finish(request, queryset, paid=False)


@admin.register(SandboxCustomer)
class SandboxCustomerAdmin(ReadOnlyAdmin):
    list_display = ("id", "reference", "email", "created_at")
    search_fields = ("id", "reference", "email")


@admin.register(SandboxPaymentMethod)
class SandboxPaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "brand", "last4", "exp_month", "exp_year", "detached_at")
    search_fields = ("id", "customer__id", "last4")
    exclude = ("number",)  # the card number never shows, not even here


@admin.register(SandboxSetupSession)
class SandboxSetupSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer", "status", "payment_method", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "customer__id")
