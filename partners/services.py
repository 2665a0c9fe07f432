"""Every write of partners: endpoints (create, update, rotate, disable, delete), storing an event
and fanning it out to the subscribed endpoints, recording a delivery's try, replays.

Deliveries are durable effects (o2o.effects): a `partner.deliver` row per delivery round, written
in the transaction that creates (or replays) the delivery; partners/effects.py carries them out.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from o2o.effects import effect_add

from . import conf, outbound
from .events import EVENT_TYPES
from .models import Delivery, DeliveryAttempt, Endpoint, Partner, PartnerEvent

log = logging.getLogger(__name__)

DELIVER_KIND = "partner.deliver"
DISABLED_EMAIL_KIND = "partner.endpoint_disabled_email"
MAX_DESCRIPTION = 200


# --- endpoints ------------------------------------------------------------------------------------


def _clean(*, url: str | None = None, event_types: list[str] | None = None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    if url is not None:
        url = url.strip()
        try:
            outbound.url_check(url)
        except outbound.UnsafeURL as exc:
            errors["url"] = [str(exc)]
        cleaned["url"] = url
    if event_types is not None:
        unknown = sorted(set(event_types) - set(EVENT_TYPES))
        if unknown:
            errors["event_types"] = [
                _("Unknown event types: %(types)s") % {"types": ", ".join(unknown)}
            ]
        # Kept in the catalogue's order, once each.
        cleaned["event_types"] = [t for t in EVENT_TYPES if t in set(event_types)]
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def endpoint_create(
    *, partner: Partner, url: str, event_types: list[str], description: str = ""
) -> tuple[Endpoint, str]:
    """A new endpoint with a fresh secret. Returns the endpoint and its secret (shown once)."""
    cleaned = _clean(url=url, event_types=event_types)
    secret = outbound.secret_new()
    endpoint = Endpoint.objects.create(
        partner=partner,
        description=description.strip()[:MAX_DESCRIPTION],
        secret=secret,
        **cleaned,
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *,
    endpoint_id: int,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> Endpoint:
    """Change an endpoint. Turning it on again clears its failure record."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint_id)
    for field, value in _clean(url=url, event_types=event_types).items():
        setattr(endpoint, field, value)
    if description is not None:
        endpoint.description = description.strip()[:MAX_DESCRIPTION]
    if is_active is True and not endpoint.is_active:
        endpoint.is_active = True
        endpoint.disabled_at = None
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
    elif is_active is False and endpoint.is_active:
        _disable(endpoint, reason=_("turned off by its owner"), now=timezone.now())
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint_id: int, now: datetime | None = None) -> str:
    """A new secret signs from now on; the current one keeps signing beside it for the overlap
    (PARTNER_SECRET_OVERLAP_HOURS), so the partner can switch without losing an event."""
    now = now or timezone.now()
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint_id)
    secret = outbound.secret_new()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + conf.rotation_overlap()
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return secret


def endpoint_secrets(endpoint: Endpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous during the overlap."""
    now = now or timezone.now()
    found = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and endpoint.previous_secret_until > now
    ):
        found.append(endpoint.previous_secret)
    return found


@transaction.atomic
def endpoint_delete(*, endpoint_id: int) -> None:
    """Delete an endpoint and its delivery log (its pending deliveries' effects find nothing)."""
    Endpoint.objects.filter(pk=endpoint_id).delete()


def _disable(endpoint: Endpoint, *, reason: str, now: datetime) -> None:
    """Turn the endpoint off (caller saves) and give up its pending deliveries."""
    endpoint.is_active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:200]
    Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, finished_at=now, last_error=_("endpoint disabled")
    )


# --- events in, deliveries out -----------------------------------------------------------------


def event_publish(*, event: dict[str, Any]) -> PartnerEvent:
    """Store an event (payload of o2o.effects.event_emit) once, and give every active endpoint
    subscribed to its type a delivery. Inside the transaction of the `event.publish` effect, so
    the event, its deliveries and their effects commit together; running it again adds nothing."""
    PartnerEvent.objects.bulk_create(
        [
            PartnerEvent(
                event_id=event["id"],
                type=event["type"],
                aggregate=event["aggregate"],
                aggregate_id=event["aggregate_id"],
                sequence=event["sequence"],
                occurred_at=parse_datetime(event["occurred_at"]) or timezone.now(),
                data=event.get("data") or {},
            )
        ],
        ignore_conflicts=True,
    )
    stored = PartnerEvent.objects.get(event_id=event["id"])
    endpoints = Endpoint.objects.filter(is_active=True, partner__is_active=True).exclude(
        deliveries__event=stored
    )
    for endpoint in endpoints.order_by("pk"):
        if endpoint.wants(stored.type):
            _delivery_start(endpoint=endpoint, event=stored)
    return stored


def _delivery_start(*, endpoint: Endpoint, event: PartnerEvent) -> Delivery:
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        event=event,
        aggregate=event.aggregate,
        aggregate_id=event.aggregate_id,
        sequence=event.sequence,
    )
    _deliver_later(delivery)
    return delivery


def _deliver_later(delivery: Delivery) -> None:
    effect_add(
        kind=DELIVER_KIND,
        key=delivery.effect_key,
        payload={"delivery_id": delivery.pk, "round": delivery.round},
    )


def delivery_blocker(delivery: Delivery) -> Delivery | None:
    """The earliest delivery of the same endpoint and aggregate, earlier in sequence, still
    pending: this one waits for it (ordering per aggregate)."""
    return (
        Delivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            aggregate=delivery.aggregate,
            aggregate_id=delivery.aggregate_id,
            sequence__lt=delivery.sequence,
            status=Delivery.Status.PENDING,
        )
        .order_by("sequence")
        .first()
    )


def delivery_next_waiting(delivery: Delivery) -> Delivery | None:
    """The pending delivery that waits for this one (the next in sequence), if any."""
    return (
        Delivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            aggregate=delivery.aggregate,
            aggregate_id=delivery.aggregate_id,
            sequence__gt=delivery.sequence,
            status=Delivery.Status.PENDING,
        )
        .order_by("sequence")
        .first()
    )


@transaction.atomic
def delivery_attempt_record(
    *, delivery_id: int, round_: int, outcome: outbound.Outcome, last: bool
) -> Delivery | None:
    """Book one try: the attempt row, the delivery's state, the endpoint's health. `last`: no
    more tries follow a failure (given up). An endpoint failing for PARTNER_DISABLE_AFTER_DAYS
    with no success is disabled, its pending deliveries given up and its owner told (an effect).
    Returns None when the delivery is gone or another round took over."""
    now = timezone.now()
    # The endpoint first, then the delivery: the order in which disabling an endpoint locks them.
    endpoint_id = Delivery.objects.filter(pk=delivery_id).values_list("endpoint_id", flat=True)
    endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id.first()).first()  # type: ignore[misc]
    delivery = (
        Delivery.objects.select_for_update()
        .filter(pk=delivery_id, round=round_, status=Delivery.Status.PENDING)
        .first()
    )
    if endpoint is None or delivery is None:
        return None
    DeliveryAttempt.objects.create(
        delivery=delivery,
        round=round_,
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        response_excerpt=outcome.excerpt,
        error=outcome.error[:300],
        ok=outcome.ok,
    )
    delivery.attempts = F("attempts") + 1
    fields = ["attempts", "last_status_code", "last_error", "status", "finished_at"]
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error[:300]
    if outcome.ok:
        delivery.status = Delivery.Status.DELIVERED
        delivery.finished_at = now
        endpoint.failing_since = None
        endpoint.last_success_at = now
        endpoint.save(update_fields=["failing_since", "last_success_at"])
    else:
        if last:
            delivery.status = Delivery.Status.FAILED
            delivery.finished_at = now
        if endpoint.failing_since is None:
            endpoint.failing_since = outcome.started_at
            endpoint.save(update_fields=["failing_since"])
        elif endpoint.is_active and endpoint.failing_since <= now - conf.disable_after():
            delivery.save(update_fields=fields)
            endpoint_disable_for_failing(endpoint=endpoint, now=now)
            delivery.refresh_from_db()
            return delivery
    delivery.save(update_fields=fields)
    delivery.refresh_from_db()
    return delivery


def endpoint_disable_for_failing(*, endpoint: Endpoint, now: datetime) -> None:
    """Inside a transaction, with the endpoint locked: disable it and tell its owner, once."""
    days = conf.disable_after().total_seconds() / 86400
    _disable(
        endpoint,
        reason=_("failing for %(days)s days with no success") % {"days": f"{days:g}"},
        now=now,
    )
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
    log.warning(
        "partner endpoint %s disabled: failing since %s", endpoint.pk, endpoint.failing_since
    )
    effect_add(
        kind=DISABLED_EMAIL_KIND,
        key=f"partner-endpoint-disabled:{endpoint.pk}:{int(now.timestamp())}",
        payload={"endpoint_id": endpoint.pk},
    )


@transaction.atomic
def delivery_give_up(*, delivery_id: int, round_: int, reason: str) -> bool:
    """Stop a pending delivery without sending (its endpoint is off)."""
    return bool(
        Delivery.objects.filter(
            pk=delivery_id, round=round_, status=Delivery.Status.PENDING
        ).update(status=Delivery.Status.FAILED, finished_at=timezone.now(), last_error=reason[:300])
    )


# --- replays (staff) ----------------------------------------------------------------------------


def _replay(delivery: Delivery) -> None:
    """A new round of a delivery (locked by the caller): pending again, with its own effect."""
    delivery.round += 1
    delivery.status = Delivery.Status.PENDING
    delivery.finished_at = None
    delivery.save(update_fields=["round", "status", "finished_at"])
    _deliver_later(delivery)


@transaction.atomic
def delivery_replay(*, delivery_id: int) -> Delivery:
    """Send a delivery again (the same webhook-id: receivers recognise it), whatever became of it.
    Refused while its endpoint is off: turn the endpoint on first."""
    delivery = Delivery.objects.select_for_update().select_related("endpoint").get(pk=delivery_id)
    if not delivery.endpoint.is_active:
        raise ValidationError(_("The endpoint is disabled; enable it before replaying."))
    _replay(delivery)
    return delivery


@transaction.atomic
def event_replay(*, event_id: int) -> int:
    """Send an event again to every active endpoint subscribed to its type now: a new round of
    its delivery where there is one, a first delivery where there is none. Returns how many."""
    event = PartnerEvent.objects.get(pk=event_id)
    count = 0
    endpoints = Endpoint.objects.filter(is_active=True, partner__is_active=True).order_by("pk")
    for endpoint in endpoints:
        if not endpoint.wants(event.type):
            continue
        delivery = (
            Delivery.objects.select_for_update().filter(endpoint=endpoint, event=event).first()
        )
        if delivery is None:
            _delivery_start(endpoint=endpoint, event=event)
        else:
            _replay(delivery)
        count += 1
    return count
