"""Telling people about an order: its live pages (websocket groups) and e-mail.

Group names: `order.<id>` (the customer's order page) and `vendor.<id>.orders` (the vendor's
inbox). Messages carry ids and the new status; pages fetch what they show (a message missed while
disconnected is recovered by the snapshot a page loads on reconnect).
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from o2o.realtime import broadcaster

from .models import Order, Status

log = logging.getLogger(__name__)

EMAIL_ON = {
    Status.PLACED: gettext_noop("Your order #%(id)s is placed; %(vendor)s will confirm it soon."),
    Status.ACCEPTED: gettext_noop("%(vendor)s accepted your order #%(id)s."),
    Status.REJECTED: gettext_noop(
        "%(vendor)s could not take your order #%(id)s. You will not be charged."
    ),
    Status.READY: gettext_noop("Your order #%(id)s is ready."),
    Status.HANDED_OVER: gettext_noop("Your order #%(id)s was handed over. Enjoy!"),
    Status.EXPIRED: gettext_noop(
        "Nobody could take your order #%(id)s in time. You will not be charged."
    ),
    Status.REFUNDED: gettext_noop("Your order #%(id)s was refunded."),
}


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def vendor_group(vendor_id: int) -> str:
    return f"vendor.{vendor_id}.orders"


def order_changed(*, order_id: int, status: str) -> None:
    try:
        order = Order.objects.select_related("vendor", "customer__user").get(pk=order_id)
    except Order.DoesNotExist:
        return
    message = {"type": "order.changed", "order_id": order_id, "status": status}
    broadcaster.send(order_group(order_id), message)
    broadcaster.send(vendor_group(order.vendor_id), message)
    template = EMAIL_ON.get(status)
    if template:
        _email(order, template)


def _email(order: Order, template: str) -> None:
    with translation.override(settings.LANGUAGE_CODE):
        body = _(template) % {"id": order.pk, "vendor": order.vendor.name}
        try:
            send_mail(
                subject=_("Order #%(id)s") % {"id": order.pk},
                message=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[order.customer.user.email],
            )
        except Exception:  # noqa: BLE001 - an e-mail that fails must not undo the order
            log.exception("order e-mail for #%s failed", order.pk)
