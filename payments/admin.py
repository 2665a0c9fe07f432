"""Payments in the admin: read-only records; every change goes through an action that calls a
service (capture, void, refund what is left, sync with the provider)."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from o2o.money import format_money

from . import ledger, services
from .models import (
    CommissionPlan,
    JournalTransaction,
    LedgerAccount,
    LedgerEntry,
    Payment,
    Refund,
    WebhookEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services: viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    fields = ("amount", "reason", "status", "provider_ref", "created_at", "succeeded_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _run(modeladmin, request, queryset, action: Callable[[Payment], object], done: str) -> None:
    count = 0
    for payment in queryset.order_by("pk"):
        try:
            action(payment)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{payment}: {exc.messages[0]}", messages.WARNING)
        else:
            count += 1
    if count:
        modeladmin.message_user(
            request,
            ngettext("%(n)d payment: %(done)s", "%(n)d payments: %(done)s", count)
            % {"n": count, "done": done},
            messages.SUCCESS,
        )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("pk", "order_id", "money", "status", "provider", "provider_ref", "created_at")
    list_filter = ("status", "provider")
    search_fields = ("=order_id", "provider_ref")
    date_hierarchy = "created_at"
    inlines = [RefundInline]
    actions = ["capture", "void", "refund_rest", "sync"]
    fields = (
        "order_id",
        ("amount", "currency"),
        "status",
        ("provider", "provider_ref"),
        "checkout_url",
        ("amount_captured", "amount_refunded"),
        ("card_brand", "card_last4"),
        ("failure_code", "failure_message"),
        ("created_at", "authorised_at", "captured_at", "closed_at", "updated_at"),
    )

    def has_change_permission(self, request, obj=None) -> bool:
        # The list's actions need "change"; a single record is only ever viewed.
        return obj is None and request.user.has_perm("payments.change_payment")

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj: Payment) -> str:
        return format_money(obj.amount, obj.currency)

    @admin.action(description=_("Capture the authorised money"), permissions=["change"])
    def capture(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p: services.payment_capture(payment_id=p.pk),
            str(_("captured")),
        )

    @admin.action(description=_("Void (release) the authorisation"), permissions=["change"])
    def void(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p: services.payment_void(payment_id=p.pk),
            str(_("voided")),
        )

    @admin.action(description=_("Refund everything not yet refunded"), permissions=["change"])
    def refund_rest(self, request, queryset):
        def refund(p: Payment) -> object:
            return services.payment_refund(
                payment_id=p.pk, amount=p.refundable, reason=f"by {request.user.email} (admin)"
            )

        _run(self, request, queryset, refund, str(_("refunded")))

    @admin.action(description=_("Sync with the provider"), permissions=["change"])
    def sync(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p: services.payment_sync(payment_id=p.pk),
            str(_("synced")),
        )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("pk", "payment", "amount", "status", "reason", "provider_ref", "created_at")
    list_filter = ("status",)
    search_fields = ("provider_ref", "reason")
    raw_id_fields = ("payment",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "provider", "type", "object_ref", "received_at", "processed_at")
    list_filter = ("provider", "type")
    search_fields = ("event_id", "object_ref")
    date_hierarchy = "received_at"


# --- commission plans ----------------------------------------------------------------------------


@admin.register(CommissionPlan)
class CommissionPlanAdmin(admin.ModelAdmin):
    """Staff add plans; a plan already in force can only be ended (valid until), never rewritten,
    so every order keeps the rate it was placed with (snapshotted on its lines anyway)."""

    list_display = ("__str__", "vendor", "category", "bps", "valid_from", "valid_until", "note")
    list_filter = ("category",)
    search_fields = ("vendor__name", "note")
    raw_id_fields = ("vendor",)
    date_hierarchy = "valid_from"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.valid_from <= timezone.now():
            return ("vendor", "category", "bps", "valid_from", "created_at")
        return ("created_at",)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.valid_from <= timezone.now():
            return False
        return super().has_delete_permission(request, obj)


# --- the ledger (read-only: it is written by services only) --------------------------------------


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    fields = ("account", "side", "amount")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "currency", "vendor", "balance")
    list_filter = ("kind", "currency")
    search_fields = ("code", "name")

    @admin.display(description=_("balance"))
    def balance(self, obj: LedgerAccount) -> str:
        return format_money(ledger.balance(obj), obj.currency)


@admin.register(JournalTransaction)
class JournalTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "kind",
        "key",
        "order_id",
        "vendor_id",
        "memo",
        "created_by",
        "created_at",
    )
    list_filter = ("kind", "currency")
    search_fields = ("key", "=order_id", "memo")
    date_hierarchy = "created_at"
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("pk", "transaction", "account", "side", "amount")
    list_filter = ("side", "account__kind")
    search_fields = ("account__code", "transaction__key")
    list_select_related = ("transaction", "account")
