from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = _("Tracking")

    def ready(self) -> None:
        from vendors.signals import stock_changed, vendor_status_changed

        from .realtime import on_stock_changed, on_vendor_status_changed

        stock_changed.connect(on_stock_changed, dispatch_uid="tracking.on_stock_changed")
        vendor_status_changed.connect(
            on_vendor_status_changed, dispatch_uid="tracking.on_vendor_status_changed"
        )
