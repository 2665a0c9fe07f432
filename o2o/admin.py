"""Staff see every durable effect, its tries and errors, and can run a stuck or failed one again."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .effects import effect_retry_now
from .models import Effect, EffectAttempt


class EffectAttemptInline(admin.TabularInline):
    model = EffectAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "finished_at", "outcome", "error")
    readonly_fields = fields
    ordering = ("-number",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Effect)
class EffectAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "kind",
        "status",
        "attempts",
        "next_attempt_at",
        "deadline",
        "created_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("key",)
    date_hierarchy = "created_at"
    ordering = ("-pk",)
    readonly_fields = [f.name for f in Effect._meta.fields]
    inlines = [EffectAttemptInline]
    actions = ["retry_now"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(
        description=_("Run again now (failed or waiting effects)"), permissions=["change"]
    )
    def retry_now(self, request, queryset):
        done = sum(effect_retry_now(effect_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext(
                "%d effect will run again within seconds.",
                "%d effects will run again within seconds.",
                done,
            )
            % done,
            messages.SUCCESS,
        )
