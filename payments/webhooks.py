"""Provider webhooks: verified, recorded once, then the intent fetched again and applied (the body
is only a hint). payments.services re-exports webhook_receive."""

import logging
from collections.abc import Mapping

from django.utils import timezone

from .errors import WebhookInvalid
from .gateways import get_gateway
from .gateways.base import WebhookSignatureError
from .models import Payment, WebhookEvent

log = logging.getLogger(__name__)


def webhook_receive(
    *, provider: str, body: bytes, headers: Mapping[str, str]
) -> WebhookEvent | None:
    """A provider's webhook: check its signature (and age), record its event id once, then fetch
    the intent again and apply it (the body is only a hint). Returns None for an event already
    handled. Raises UnknownProvider, WebhookInvalid (forged, too old, not an event) or
    PaymentUnavailable (the fetch failed: the event stays unprocessed, for the provider to retry)."""
    gateway = get_gateway(provider)
    try:
        notice = gateway.verify_webhook(
            body=body, headers={k.lower(): v for k, v in headers.items()}
        )
    except WebhookSignatureError as exc:
        raise WebhookInvalid(str(exc), code="invalid_signature") from exc
    event, created = WebhookEvent.objects.get_or_create(
        provider=provider,
        event_id=notice.event_id[:100],
        defaults={
            "type": notice.type[:60],
            "object_ref": notice.intent_ref[:64],
            "payload": notice.payload,
        },
    )
    if not created and event.processed_at is not None:
        return None
    payment = Payment.objects.filter(provider=provider, provider_ref=notice.intent_ref).first()
    if payment is None:
        log.warning(
            "%s webhook %s is about %s, which is not ours",
            provider,
            notice.event_id,
            notice.intent_ref,
        )
    else:
        from .services import payment_sync

        payment_sync(payment_id=payment.pk)
    WebhookEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(
        processed_at=timezone.now(), payment=payment
    )
    event.refresh_from_db()
    return event
