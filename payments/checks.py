"""Checks and small values shared by the ways a payment starts (payments.services.payment_start,
payments.vault.payment_charge_off_session)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.urls import reverse
from django.utils.translation import gettext as _

from o2o.money import MINOR_UNITS

from .errors import PaymentError


def payment_args_check(
    *, amount: int, currency: str, commission: int, platform_fee: int, return_url: str
) -> None:
    """What a new payment is given, checked: PaymentError naming the field otherwise."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PaymentError({"amount": _("Enter a whole amount above zero, in minor units.")})
    for field, value in (("commission", commission), ("platform_fee", platform_fee)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PaymentError({field: _("Enter a whole amount of zero or more, in minor units.")})
    if commission + platform_fee > amount:
        raise PaymentError({"commission": _("The platform's part can't exceed the amount.")})
    if currency not in MINOR_UNITS:
        raise PaymentError({"currency": _("Unknown currency.")})
    return_url_check(return_url)


def return_url_check(return_url: str) -> None:
    """Where a provider's page sends the browser back: a full http(s) address."""
    try:
        URLValidator(schemes=["http", "https"])(return_url)
    except ValidationError as exc:
        raise PaymentError({"return_url": _("Give a full http(s) address.")}) from exc


def webhook_url(provider: str) -> str:
    """Where `provider` posts its webhooks to us."""
    return settings.PLATFORM_BASE_URL.rstrip("/") + reverse(
        "payments:webhook", kwargs={"provider": provider}
    )
