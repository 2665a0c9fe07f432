"""Telling a partner's owner about their endpoints, by e-mail (in the site's language)."""

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from .models import Endpoint


def endpoint_disabled_email(*, endpoint: Endpoint) -> None:
    """The endpoint was disabled for failing: what, since when, and how to turn it on again. A
    failure raises: the effect tries again later."""
    since = endpoint.failing_since or endpoint.disabled_at
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Your webhook endpoint was disabled")
        body = _(
            "We disabled the webhook endpoint %(url)s of %(partner)s: every delivery to it has "
            "failed since %(since)s (%(reason)s). No events are sent to it now.\n\n"
            "Fix the endpoint, then turn it on again (PATCH /api/partner/endpoints/%(id)s/ with "
            '{"is_active": true}) and ask us to replay what you missed.'
        ) % {
            "url": endpoint.url,
            "partner": endpoint.partner.name,
            "since": date_format(localtime(since), "DATETIME_FORMAT") if since else "-",
            "reason": endpoint.disabled_reason,
            "id": endpoint.pk,
        }
    send_mail(subject, body, None, [endpoint.partner.owner.email])
