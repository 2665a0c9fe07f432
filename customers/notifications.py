"""E-mails to customers about their favourite carts (the customers.favourite_near_email effect).
Written in the platform's language like the other e-mails; they name the cart and the approximate
area only (a distance rounded to 100 m from the customer's own address label), never a position.
Each carries a signed link that stops these e-mails without logging in (and the List-Unsubscribe
headers, so a mail app can offer the same in one tap). A failure to send raises: the effect tries
again later."""

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from .models import FavouriteNearNotice

STOP_SALT = "customers.favourite-near-stop"


def near_stop_token(*, favourite_id: int) -> str:
    return signing.dumps(favourite_id, salt=STOP_SALT)


def near_stop_favourite_id(token: str) -> int | None:
    """The favourite a stop link is for; None when the link was not made by us."""
    try:
        value = signing.loads(token, salt=STOP_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _absolute(path: str) -> str:
    base: str = settings.PLATFORM_BASE_URL
    return base.rstrip("/") + path


def favourite_near_email(*, notice_id: int) -> None:
    """Send the notice's e-mail, unless the customer turned the notices off (or removed the
    favourite) since it was recorded."""
    notice = (
        FavouriteNearNotice.objects.select_related("favourite__vendor", "favourite__customer__user")
        .filter(pk=notice_id, favourite__notify_near=True)
        .first()
    )
    if notice is None:
        return
    favourite = notice.favourite
    stop_url = _absolute(
        reverse("customers:favourite-stop", args=[near_stop_token(favourite_id=favourite.pk)])
    )
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "vendor": favourite.vendor.name,
            "distance": notice.distance_m,
            "label": notice.address_label,
            "vendor_url": _absolute(reverse("vendors:detail", args=[favourite.vendor.slug])),
            "favourites_url": _absolute(reverse("customers:favourites")),
            "stop_url": stop_url,
        }
        message = EmailMessage(
            subject=_("%(vendor)s is near you") % {"vendor": favourite.vendor.name},
            body=render_to_string("customers/email/favourite_near.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[favourite.customer.user.email],
            headers={
                "List-Unsubscribe": f"<{stop_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
    message.send()
