"""E-mails about a subscription's deliveries (the `subscription.email` effect, subscriptions/
effects.py): the evening notice of what comes tomorrow and what it costs, and the news that a
delivery could not be paid (the subscription is paused; how to fix the card). Written in the
platform's language, like the orders' e-mails; the words live in templates/subscriptions/email/.
A failure to send raises: the effect tries again later."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from o2o.money import format_money

from .models import Delivery, Subscription, WellbeingFlag, WellbeingRequest
from .selectors import delivery_cost


def _absolute(path: str) -> str:
    base: str = settings.PLATFORM_BASE_URL
    return base.rstrip("/") + path


def delivery_email(*, delivery_id: int, what: str, action_url: str = "", outcome: str = "") -> None:
    """Send the `what` ("notice", "payment_failed", "vendor_unavailable", "skipped" for want of
    stock, "not_at_home") e-mail of one Delivery. A notice for a Delivery no longer due (skipped,
    cancelled meanwhile) is not sent."""
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
            "outcome": {
                "door": _("It was left at your door."),
                "tomorrow": _("It will be brought again on the next round."),
                "refund": _("It was not left: the payment for it is returned to your card."),
            }.get(outcome, ""),
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
        elif what == "vendor_unavailable":
            subject = _("No regular delivery on %(date)s") % {"date": delivery.date.isoformat()}
            body = render_to_string("subscriptions/email/vendor_unavailable.txt", context)
        elif what == "skipped":
            subject = _("No regular delivery on %(date)s") % {"date": delivery.date.isoformat()}
            body = render_to_string("subscriptions/email/skipped.txt", context)
        elif what == "not_at_home":
            subject = _("We could not hand over your regular delivery")
            body = render_to_string("subscriptions/email/not_at_home.txt", context)
        else:
            raise ValueError(f"unknown delivery e-mail {what!r}")
        send_mail(
            subject=subject,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[subscription.customer.user.email],
        )


def wellbeing_alert_email(*, flag_id: int) -> None:
    """Tell the subscription's named contact what the vendor saw (a concern, or deliveries piling
    up at the door), at once. Only to the contact the subscriber named; never anything public."""
    flag = (
        WellbeingFlag.objects.select_related("subscription__vendor", "subscription__customer__user")
        .filter(pk=flag_id)
        .first()
    )
    if flag is None or not flag.subscription.wellbeing_contact_email:
        return
    subscription = flag.subscription
    with translation.override(settings.LANGUAGE_CODE):
        body = render_to_string(
            "subscriptions/email/wellbeing_alert.txt",
            {
                "flag": flag,
                "kind": flag.get_kind_display(),
                "contact": subscription.wellbeing_contact_name,
                "subscriber": subscription.customer.user.get_full_name()
                or subscription.customer.user.email,
                "vendor": subscription.vendor.name,
                "when": timezone.localtime(flag.created_at),
            },
        )
        send_mail(
            subject=_("Wellbeing check: please look in on %(name)s")
            % {"name": subscription.customer.user.get_full_name() or _("your contact")},
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[subscription.wellbeing_contact_email],
        )


def subscription_email(*, subscription_id: int, what: str, pause_id: int | None = None) -> None:
    """An e-mail about the subscription itself: "paused" (the customer paused it: until when, and
    which deliveries that leaves out), "fee_paid" (the cancellation fee's receipt) or "fee_unpaid"
    (it could not be charged; how it is settled). Not sent when things changed meanwhile (resumed,
    the fee waived)."""
    subscription = (
        Subscription.objects.select_related("vendor", "customer__user", "card")
        .filter(pk=subscription_id)
        .first()
    )
    if subscription is None:
        return
    fee_state = {"fee_paid": "paid", "fee_unpaid": "unpaid"}
    if what in fee_state and subscription.fee_status != fee_state[what]:
        return
    if what == "paused" and (
        subscription.status != Subscription.Status.PAUSED
        or subscription.pauses.order_by("-pk").values_list("pk", flat=True).first() != pause_id
    ):
        return  # resumed meanwhile, or paused again (that pause has its own e-mail)
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "subscription": subscription,
            "vendor": subscription.vendor.name,
            "fee": format_money(subscription.cancellation_fee, subscription.currency),
            "card": subscription.card,
            "subscription_url": _absolute(
                reverse("subscriptions:detail", kwargs={"subscription_id": subscription.pk})
            ),
        }
        subjects = {
            "paused": _("Your regular deliveries are paused"),
            "fee_paid": _("Receipt: the fee for ending your commitment early"),
            "fee_unpaid": _("We could not charge the fee for ending your commitment early"),
        }
        if what not in subjects:
            raise ValueError(f"unknown subscription e-mail {what!r}")
        send_mail(
            subject=str(subjects[what]),
            message=render_to_string(f"subscriptions/email/{what}.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[subscription.customer.user.email],
        )


def wellbeing_request_email(*, request_id: int, what: str) -> None:
    """A wellbeing check asked for by someone close to a subscriber: "ask" goes to the subscriber
    with the link to answer; "answer" tells the asker that the subscriber agreed (nothing else:
    no address, no vendor, no schedule). A "no" is not sent: the asker must not learn from it
    that the address belongs to a subscriber who did not want them involved."""
    ask = WellbeingRequest.objects.select_related("customer__user").filter(pk=request_id).first()
    if ask is None:
        return
    user = ask.customer.user
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "ask": ask,
            "relation": ask.get_relation_display(),
            "subscriber": user.get_full_name() or _("the person you named"),
            "answer_url": _absolute(
                reverse("subscriptions:wellbeing-answer", kwargs={"token": ask.token})
            ),
            "days": settings.WELLBEING_REQUEST_DAYS,
        }
        if what == "ask":
            subject = _("%(name)s asks for a wellbeing check at your deliveries") % {
                "name": ask.requester_name
            }
            recipient = user.email
        elif what == "answer":
            if ask.status != WellbeingRequest.Status.ACCEPTED:
                return
            subject = _("Your request for a wellbeing check was answered")
            recipient = ask.requester_email
        else:
            raise ValueError(f"unknown wellbeing request e-mail {what!r}")
        send_mail(
            subject=subject,
            message=render_to_string(f"subscriptions/email/wellbeing_{what}.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[recipient],
        )
