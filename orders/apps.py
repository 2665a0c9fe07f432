from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        from payments.signals import payment_status_changed

        from .services import on_payment_status_changed

        payment_status_changed.connect(
            on_payment_status_changed, dispatch_uid="orders.on_payment_status_changed"
        )
