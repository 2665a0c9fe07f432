"""Orders in the admin: read-only records (money, status and history change only through the
services), with the transitions staff may take as actions."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from o2o.money import format_money

from .models import Order, OrderEvent, OrderLine
from .services import order_expire_now, order_line_refund, order_staff_cancel


def _order_number(search_term: str) -> int | None:
    """The order number staff searched for ("1234" or "#1234"), if the search is one. ASCII digits
    only: str.isdigit() is also true of "²" and "①", which int() can't read; and no more digits
    than an id has (int() refuses thousands of them)."""
    term = search_term.strip().lstrip("#")
    if term.isascii() and term.isdigit() and len(term) <= 18:
        return int(term)
    return None


class StaffCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_(
            "The customer and the vendor are told this reason by e-mail and on their pages."
        ),
    )


class LineRefundForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=180,
        help_text=_("Kept with the refund; say why the customer gets this line's money back."),
    )


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OrderLineInline(_ReadOnlyInline):
    model = OrderLine
    fields = (
        "product",
        "name_ko",
        "name_en",
        "unit_price",
        "quantity",
        "line_total",
        "commission",
        "short_quantity",
        "short_reason",
    )
    readonly_fields = fields


class OrderEventInline(_ReadOnlyInline):
    model = OrderEvent
    fields = ("at", "from_status", "to_status", "role", "actor", "reason")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "vendor",
        "customer",
        "status",
        "fulfilment",
        "payment_method",
        "total_won",
        "created_at",
    )
    list_filter = ("status", "fulfilment", "payment_method", "created_at")
    search_fields = ("vendor__name", "customer__user__email", "delivery_address", "note")
    list_select_related = ("vendor", "customer__user")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderEventInline]
    actions = ["cancel_and_return_money", "expire_now"]
    fieldsets = (
        (None, {"fields": ("vendor", "customer", "status", "reason", "fulfilment", "note")}),
        (
            _("How to receive"),
            {
                "fields": (
                    "delivery_address",
                    "delivery_lat",
                    "delivery_lng",
                    "pickup_point",
                    "meet_cell",
                    "window_start",
                    "window_end",
                    "eta",
                )
            },
        ),
        (
            _("Money"),
            {
                "fields": (
                    "currency",
                    "subtotal",
                    "delivery_fee",
                    "total",
                    "commission_bps",
                    "payment_method",
                    "payment_id",
                    "receipt_email",
                )
            },
        ),
        (
            _("Times"),
            {
                "fields": (
                    "created_at",
                    "placed_at",
                    "accepted_at",
                    "handed_over_at",
                    "completed_at",
                    "expires_at",
                    "updated_at",
                    "checkout_token",
                )
            },
        ),
    )
    # Everything is read-only: an order changes through orders.services (the actions) only. The
    # handover code is left out: staff have no business showing it to anyone.
    readonly_fields = tuple(f for _title, spec in fieldsets for f in spec["fields"])

    def get_search_results(self, request, queryset, search_term):
        number = _order_number(search_term)
        if number is not None:
            return queryset.filter(
                Q(pk=number) | Q(customer__user__email__icontains=search_term.strip().lstrip("#"))
            ), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("total"), ordering="total")
    def total_won(self, obj: Order) -> str:
        return format_money(obj.total, obj.currency)

    def has_add_permission(self, request) -> bool:
        # Orders come from checkout (orders.services.order_place), never from here.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Money moved for them: they stay, and end through a transition.
        return False

    def _run(self, request, queryset, action, done_message) -> None:
        """Take `action(order_id)` on each selected order; say which could not be changed."""
        done = 0
        for order_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                action(order_id)
            except ValidationError as exc:
                self.message_user(request, f"#{order_id}: {exc.messages[0]}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done) % done, messages.SUCCESS)

    @admin.action(
        description=_("Cancel selected orders and return the money"),
        permissions=["change"],
    )
    def cancel_and_return_money(self, request, queryset):
        """A confirmation page with a required reason first; then order_staff_cancel on each."""
        form = StaffCancelForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._run(
                request,
                queryset,
                lambda order_id: order_staff_cancel(
                    order_id=order_id, actor=request.user, reason=reason
                ),
                lambda n: ngettext(
                    "%d order cancelled; its money is being returned.",
                    "%d orders cancelled; their money is being returned.",
                    n,
                ),
            )
            return None
        return TemplateResponse(
            request,
            "orders/admin_staff_cancel.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Cancel orders and return the money"),
                "opts": self.model._meta,
                "orders": queryset.select_related("vendor", "customer__user").order_by("pk"),
                "form": form,
                "action": "cancel_and_return_money",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(
        description=_("Expire selected orders nobody accepted yet (money released)"),
        permissions=["change"],
    )
    def expire_now(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda order_id: order_expire_now(order_id=order_id, actor=request.user),
            lambda n: ngettext(
                "%d order expired; its money is being released.",
                "%d orders expired; their money is being released.",
                n,
            ),
        )


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    """Order lines, read-only, searchable by order number: where staff refund a line."""

    list_display = (
        "id",
        "order",
        "name_ko",
        "quantity",
        "short_quantity",
        "line_total_won",
        "commission",
    )
    search_fields = ("order__vendor__name", "name_ko", "name_en")
    list_select_related = ("order",)
    actions = ["refund_lines"]
    readonly_fields = (
        "order",
        "product",
        "name_ko",
        "name_en",
        "unit_price",
        "quantity",
        "line_total",
        "commission_bps",
        "commission",
        "short_quantity",
        "short_reason",
    )
    fields = readonly_fields

    def get_search_results(self, request, queryset, search_term):
        number = _order_number(search_term)
        if number is not None:
            return queryset.filter(order_id=number), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("line total"), ordering="line_total")
    def line_total_won(self, obj: OrderLine) -> str:
        return format_money(obj.line_total, obj.order.currency)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Read-only pages; the refund action asks for the change permission itself.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(
        description=_("Refund selected lines to the customer (captured orders)"),
        permissions=["change"],
    )
    def refund_lines(self, request, queryset):
        """A confirmation page with a required reason first; then order_line_refund on each (less
        any units the vendor did not supply, which are refunded on their own)."""
        form = LineRefundForm(request.POST if "apply" in request.POST else None)
        lines = queryset.select_related("order").order_by("pk")
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            done = 0
            for line in lines:
                try:
                    order_line_refund(
                        order_id=line.order_id, line_id=line.pk, actor=request.user, reason=reason
                    )
                except ValidationError as exc:
                    message = f"#{line.order_id} / {line.pk}: {exc.messages[0]}"
                    self.message_user(request, message, messages.WARNING)
                else:
                    done += 1
            if done:
                message = ngettext(
                    "%d line refunded (or sent to the provider).",
                    "%d lines refunded (or sent to the provider).",
                    done,
                )
                self.message_user(request, message % done, messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "orders/admin_line_refund.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Refund order lines"),
                "opts": self.model._meta,
                "lines": lines,
                "form": form,
                "action": "refund_lines",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    """The append-only history of every order."""

    list_display = ("order", "from_status", "to_status", "role", "actor", "at")
    list_filter = ("to_status", "role")
    search_fields = ("order__vendor__name", "actor__email", "reason")
    list_select_related = ("order", "actor")
    date_hierarchy = "at"

    def get_search_results(self, request, queryset, search_term):
        number = _order_number(search_term)
        if number is not None:
            return queryset.filter(order_id=number), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
