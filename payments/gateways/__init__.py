"""Payment provider adapters, chosen by name. settings.PAYMENT_GATEWAY names the one new payments
start on; a payment keeps the provider it started with."""

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.errors import UnknownProvider

from .base import PaymentGateway


@lru_cache(maxsize=8)
def _sandbox(
    base_url: str,
    secret_key: str,
    webhook_secret: str,
    connect_timeout: float,
    read_timeout: float,
    retries: int,
    tolerance: int,
) -> PaymentGateway:
    from .sandbox import SandboxGateway

    return SandboxGateway(
        base_url=base_url,
        secret_key=secret_key,
        webhook_secret=webhook_secret,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries=retries,
        webhook_tolerance=tolerance,
    )


def get_gateway(provider: str | None = None) -> PaymentGateway:
    """The adapter for `provider` (default: settings.PAYMENT_GATEWAY), configured from settings.
    One instance (and its connection pool) per configuration."""
    provider = provider or settings.PAYMENT_GATEWAY
    if provider == "sandbox":
        if not (settings.SANDBOX_SECRET_KEY and settings.SANDBOX_WEBHOOK_SECRET):
            raise ImproperlyConfigured(
                "The sandbox gateway needs SANDBOX_SECRET_KEY and SANDBOX_WEBHOOK_SECRET."
            )
        return _sandbox(
            settings.SANDBOX_BASE_URL,
            settings.SANDBOX_SECRET_KEY,
            settings.SANDBOX_WEBHOOK_SECRET,
            settings.PAYMENT_HTTP_CONNECT_TIMEOUT,
            settings.PAYMENT_HTTP_READ_TIMEOUT,
            settings.PAYMENT_HTTP_RETRIES,
            settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
        )
    raise UnknownProvider(f"No payment gateway called {provider!r}.")
