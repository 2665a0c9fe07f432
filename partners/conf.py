"""The partner-event settings, with their defaults (override any of them in o2o/settings.py)."""

from datetime import timedelta

from django.conf import settings


def allow_private_urls() -> bool:
    """Endpoints on loopback / private / link-local addresses (SSRF) are refused unless allowed:
    by default only while developing (DEBUG) or testing."""
    default = settings.DEBUG or getattr(settings, "DJANGO_ENV", "") == "test"
    return bool(getattr(settings, "PARTNER_ALLOW_PRIVATE_URLS", default))


def disable_after() -> timedelta:
    """An endpoint failing this long without a single success is disabled (Svix: 5 days)."""
    return timedelta(days=float(getattr(settings, "PARTNER_DISABLE_AFTER_DAYS", 5)))


def rotation_overlap() -> timedelta:
    """After a rotation, deliveries are signed with the old secret too for this long."""
    return timedelta(hours=float(getattr(settings, "PARTNER_SECRET_OVERLAP_HOURS", 24)))


def connect_timeout() -> float:
    return float(getattr(settings, "PARTNER_HTTP_CONNECT_TIMEOUT", 2.0))


def total_timeout() -> float:
    return float(getattr(settings, "PARTNER_HTTP_TIMEOUT", 10.0))


# How much of a partner's answer is read and kept in the delivery log.
RESPONSE_EXCERPT_BYTES = 2048
