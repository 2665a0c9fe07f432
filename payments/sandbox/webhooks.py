"""Posting the sandbox's events to merchants: signed, retried with exponential backoff, and — as
real providers do — sometimes sent twice and out of order.

A delivery is claimed with a conditional UPDATE (push its next attempt past a lease) before it is
posted, so two workers running the schedule at once never post the same attempt; no transaction is
held while the HTTP request is out.
"""

import hashlib
import logging
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.utils import timezone

from . import signing
from .models import SandboxWebhookDelivery

log = logging.getLogger(__name__)
D = SandboxWebhookDelivery.Status
LEASE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
DUPLICATE_AFTER = timedelta(seconds=30)


def duplicate_wanted(event_id: str, rate: float) -> bool:
    """Whether this event is sent a second time: a fixed share of events, decided by the event id
    (so tests and reruns see the same choice)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    bucket = int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    return bucket < rate


def backoff(attempts: int) -> timedelta:
    """Wait after the n-th failed attempt: base, 2 × base, 4 × base … capped at an hour."""
    seconds = settings.SANDBOX_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def _post(url: str, body: bytes, event_id: str) -> tuple[int | None, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "o2o-sandbox-webhooks/1",
        "Sandbox-Event-Id": event_id,
        signing.HEADER: signing.header_value(secret=settings.SANDBOX_WEBHOOK_SECRET, body=body),
    }
    timeout = settings.SANDBOX_WEBHOOK_TIMEOUT_SECONDS
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:200]
    return response.status_code, "" if response.is_success else response.text[:200]


def _attempt(delivery: SandboxWebhookDelivery, now: datetime) -> bool:
    event = delivery.event
    status_code, problem = _post(delivery.url, event.body.encode(), event.id)
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_attempt_at": now, "last_status_code": status_code}
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        fields.update(status=D.DELIVERED, delivered_at=now, last_error="")
    elif attempts >= settings.SANDBOX_WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=D.FAILED, last_error=problem or f"HTTP {status_code}")
    else:
        fields.update(next_attempt_at=now + backoff(attempts), last_error=problem)
    SandboxWebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    if (
        ok
        and not delivery.is_duplicate
        and duplicate_wanted(event.id, settings.SANDBOX_WEBHOOK_DUPLICATE_RATE)
    ):
        SandboxWebhookDelivery.objects.get_or_create(
            event=event,
            is_duplicate=True,
            defaults={"url": delivery.url, "next_attempt_at": now + DUPLICATE_AFTER},
        )
    if not ok:
        log.info(
            "webhook %s to %s failed (attempt %d): %s", event.id, delivery.url, attempts, problem
        )
    return ok


def deliveries_send_due(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Post every delivery that is due (oldest due first), at most `limit`. Safe to run twice and
    from several workers at once."""
    now = now or timezone.now()
    due = list(
        SandboxWebhookDelivery.objects.filter(status=D.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    sent = failed = 0
    for pk, due_at in due:
        claimed = SandboxWebhookDelivery.objects.filter(
            pk=pk, status=D.PENDING, next_attempt_at=due_at
        ).update(next_attempt_at=now + LEASE)
        if not claimed:
            continue
        delivery = SandboxWebhookDelivery.objects.select_related("event").get(pk=pk)
        if _attempt(delivery, now):
            sent += 1
        else:
            failed += 1
    return {"sent": sent, "failed": failed}
