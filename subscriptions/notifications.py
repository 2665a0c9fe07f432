"""E-mails about a subscription's deliveries (the `subscription.email` effect, subscriptions/
effects.py): the evening notice of what comes tomorrow and what it costs, and the news that a
delivery could not be paid (the subscription is paused; how to fix the card). Written in the
platform's language, like the orders' e-mails; the words live in templates/subscriptions/email/.
A failure to send raises: the effect tries again later."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from o2o.money import format_money

from .models import Delivery
from .selectors import delivery_cost


def _absolute(path: str) -> str:
    base: str = settings.PLATFORM_BASE_URL
    return base.rstrip("/") + path


def delivery_email(*, delivery_id: int, what: str, action_url: str = "") -> None:
    """Send the `what` ("notice" or "payment_failed") e-mail of one Delivery. A notice for a
    Delivery no longer due (skipped, cancelled meanwhile) is not sent."""
    delivery = (
        Delivery.objects.select_related(
            "subscription__vendor", "subscription__customer__user", "order"
        )
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return
    if what == "notice" and delivery.status != Delivery.Status.DUE:
        return
    subscription = delivery.subscription
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "delivery": delivery,
            "subscription": subscription,
            "vendor": subscription.vendor.name,
            "subscription_url": _absolute(
                reverse("subscriptions:detail", kwargs={"subscription_id": subscription.pk})
            ),
            "cards_url": _absolute(reverse("payments:cards")),
            "action_url": action_url,
        }
        if what == "notice":
            cost = delivery_cost(subscription=subscription)
            context["items"] = list(subscription.items.select_related("product"))
            context["cost"] = {
                "items": format_money(cost.items, subscription.currency),
                "discount": format_money(cost.discount, subscription.currency),
                "delivery_fee": format_money(cost.delivery_fee, subscription.currency),
                "total": format_money(cost.total, subscription.currency),
                "has_discount": cost.discount > 0,
            }
            subject = _("Your regular delivery on %(date)s") % {"date": delivery.date.isoformat()}
            body = render_to_string("subscriptions/email/notice.txt", context)
        elif what == "payment_failed":
            subject = _("We could not take the payment for your regular delivery")
            body = render_to_string("subscriptions/email/payment_failed.txt", context)
        else:
            raise ValueError(f"unknown delivery e-mail {what!r}")
        send_mail(
            subject=subject,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[subscription.customer.user.email],
        )
