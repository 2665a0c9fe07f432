"""Partners in the admin: partners and their endpoints (event types picked from the known ones,
the secret shown once), the delivery log with every try (read-only), and replays."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from o2o.models import Effect

from . import outbound, services
from .events import event_type_choices
from .models import Delivery, DeliveryAttempt, Endpoint, Partner, PartnerEvent, PointStaff


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "pickup_point", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "owner__email")
    raw_id_fields = ("owner", "pickup_point")


@admin.register(PointStaff)
class PointStaffAdmin(admin.ModelAdmin):
    """The people of a pickup point: each hands orders over on /partner/point/."""

    list_display = ("user", "pickup_point", "is_active", "created_at")
    list_filter = ("is_active", "pickup_point")
    search_fields = ("user__email", "user__name", "pickup_point__name")
    list_select_related = ("user", "pickup_point")
    raw_id_fields = ("user",)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=event_type_choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Endpoint
        fields = ("partner", "url", "description", "event_types", "is_active")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            outbound.url_check(url)
        except outbound.UnsafeURL as exc:
            raise ValidationError(str(exc)) from exc
        return url


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = (
        "url",
        "partner",
        "is_active",
        "failing_since",
        "last_success_at",
        "disabled_at",
    )
    list_filter = ("is_active",)
    search_fields = ("url", "partner__name")
    raw_id_fields = ("partner",)
    actions = ["rotate_secret"]
    readonly_fields = (
        "secret_hint",
        "previous_secret_until",
        "failing_since",
        "last_success_at",
        "disabled_at",
        "disabled_reason",
        "created_at",
    )

    def get_readonly_fields(self, request, obj=None):
        return (("partner",) if obj is not None else ()) + self.readonly_fields

    @admin.display(description=_("signing secret"))
    def secret_hint(self, obj: Endpoint) -> str:
        return f"{obj.secret[:10]}…{obj.secret[-4:]}" if obj.secret else "-"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.secret = outbound.secret_new()
            super().save_model(request, obj, form, change)
            self.message_user(
                request,
                _("The endpoint's signing secret, shown this once: %(secret)s")
                % {"secret": obj.secret},
                messages.WARNING,
            )
            return
        # Through the service: turning an endpoint on clears its failure record, off gives up
        # its pending deliveries.
        services.endpoint_update(
            endpoint_id=obj.pk,
            url=obj.url,
            event_types=obj.event_types,
            description=obj.description,
            is_active=obj.is_active,
        )

    @admin.action(description=_("Rotate the signing secret"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset.order_by("pk"):
            secret = services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
            self.message_user(
                request,
                _("%(url)s: new signing secret, shown this once: %(secret)s")
                % {"url": endpoint.url, "secret": secret},
                messages.WARNING,
            )


class _ReadOnly(admin.ModelAdmin):
    """Written by services only: viewed, replayed from the list, never edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The list's actions need "change"; a single record is only ever viewed.
        perm = f"{self.model._meta.app_label}.change_{self.model._meta.model_name}"
        return obj is None and request.user.has_perm(perm)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ("started_at", "status_code", "duration_ms", "response_excerpt", "error", "round")
    readonly_fields = fields
    can_delete = False
    ordering = ("started_at", "pk")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _replayed(modeladmin, request, count: int) -> None:
    if count:
        modeladmin.message_user(
            request,
            ngettext("%(n)d delivery sent again.", "%(n)d deliveries sent again.", count)
            % {"n": count},
            messages.SUCCESS,
        )


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly):
    list_display = (
        "pk",
        "event_link",
        "event_type",
        "endpoint",
        "sequence",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "event__type")
    search_fields = ("=event__event_id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["replay"]
    fields = (
        ("event", "endpoint"),
        ("aggregate", "aggregate_id", "sequence"),
        ("status", "round", "attempts"),
        ("last_status_code", "last_error"),
        ("created_at", "finished_at"),
        "next_try",
    )
    readonly_fields = (
        "event",
        "endpoint",
        "aggregate",
        "aggregate_id",
        "sequence",
        "status",
        "round",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "finished_at",
        "next_try",
    )

    @admin.display(description=_("event"), ordering="event__event_id")
    def event_link(self, obj: Delivery) -> str:
        return obj.event.event_id

    @admin.display(description=_("type"), ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.display(description=_("next try"))
    def next_try(self, obj: Delivery):
        if obj.status != Delivery.Status.PENDING:
            return "-"
        due = (
            Effect.objects.filter(key=obj.effect_key, status=Effect.Status.PENDING)
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        return due or "-"

    @admin.action(description=_("Replay (send again)"), permissions=["change"])
    def replay(self, request, queryset):
        count = 0
        for delivery in queryset.order_by("sequence", "pk"):
            try:
                services.delivery_replay(delivery_id=delivery.pk)
            except ValidationError as exc:
                self.message_user(request, f"#{delivery.pk}: {exc.messages[0]}", messages.WARNING)
            else:
                count += 1
        _replayed(self, request, count)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    fields = ("endpoint", "status", "attempts", "last_status_code", "finished_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PartnerEvent)
class PartnerEventAdmin(_ReadOnly):
    list_display = ("event_id", "type", "aggregate", "aggregate_id", "sequence", "occurred_at")
    list_filter = ("type", "aggregate")
    search_fields = ("=event_id",)
    date_hierarchy = "occurred_at"
    inlines = [DeliveryInline]
    actions = ["replay_to_all"]
    fields = (
        "event_id",
        "type",
        ("aggregate", "aggregate_id", "sequence"),
        "occurred_at",
        "data_pretty",
    )
    readonly_fields = (
        "event_id",
        "type",
        "aggregate",
        "aggregate_id",
        "sequence",
        "occurred_at",
        "data_pretty",
    )

    @admin.display(description=_("data"))
    def data_pretty(self, obj: PartnerEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.data, ensure_ascii=False, indent=2))

    @admin.action(description=_("Replay to all subscribed endpoints"), permissions=["change"])
    def replay_to_all(self, request, queryset):
        count = 0
        for event in queryset.order_by("aggregate", "aggregate_id", "sequence"):
            count += services.event_replay(event_id=event.pk)
        _replayed(self, request, count)
