"""The record and the summaries, read-only: they are written by the sales themselves and by the
refresh (insights.summaries), never by hand."""

from django.contrib import admin

from payments.admin import ReadOnlyAdmin

from .models import MissRecord, SaleRecord, SalesCube


@admin.register(SaleRecord)
class SaleRecordAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "vendor_id", "order_id", "product_id", "kind", "channel",
                    "units", "amount", "cell")  # fmt: skip
    list_filter = ("kind", "channel", "fulfilment", "day")
    search_fields = ("=order_id", "=vendor_id", "cell")
    date_hierarchy = "day"


@admin.register(MissRecord)
class MissRecordAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "kind", "product_id", "vendor_id", "cell")
    list_filter = ("kind", "day")
    search_fields = ("cell", "=product_id")
    exclude = ("asker",)


@admin.register(SalesCube)
class SalesCubeAdmin(ReadOnlyAdmin):
    list_display = ("day", "hour", "vendor_id", "product_id", "cell", "channel", "units", "amount")
    list_filter = ("channel", "weekday", "day")
    search_fields = ("=vendor_id", "cell")
