"""Partner events as durable effects (o2o.effects).

    event.publish                  (written by o2o.effects.event_emit in the change's transaction)
                                   store the event, one Delivery + partner.deliver per subscribed
                                   endpoint, all in one transaction (atomic: exactly once)
    partner.deliver                one signed POST per try, on Svix's schedule: at once, then after
                                   5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then given up
    partner.endpoint_disabled_email
                                   the owner of an endpoint disabled for failing is told

Ordering: a delivery waits (Defer, no try counted) while an earlier event of its aggregate is not
yet published or an earlier delivery of the same endpoint and aggregate is still pending; when a
delivery ends (delivered or given up) the next one waiting is run at once. Other aggregates and
other endpoints never wait for each other.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from o2o.effects import EVENT_KIND, Defer, effect_handler, effects_kick
from o2o.models import Effect

from . import notifications, outbound, services
from .events import event_body
from .models import Delivery, Endpoint

log = logging.getLogger(__name__)

# Svix's retry schedule: the delays after the 1st, 2nd, ... failed try.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(SCHEDULE) + 1
DEFER_MIN, DEFER_MAX = 5.0, 3600.0


class DeliveryFailed(Exception):
    """The endpoint did not answer 2xx: the relay tries again on the schedule."""


@effect_handler(EVENT_KIND, queue="notifications", atomic=True, max_attempts=25)
def event_publish(payload: dict) -> None:
    services.event_publish(event=payload)


@effect_handler(
    services.DELIVER_KIND,
    queue="notifications",
    schedule=SCHEDULE,
    max_attempts=MAX_ATTEMPTS,
    # The schedule takes ~28 h; an ordered delivery may first wait for earlier ones, at most until
    # the endpoint is disabled (PARTNER_DISABLE_AFTER_DAYS).
    deadline=timedelta(days=7),
    lease=timedelta(seconds=60),
    atomic=False,
)
def partner_deliver(payload: dict) -> None:
    delivery_id, round_ = payload["delivery_id"], payload.get("round", 0)
    delivery = (
        Delivery.objects.select_related("endpoint__partner", "event").filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.round != round_ or delivery.status != Delivery.Status.PENDING:
        return  # deleted, replayed meanwhile (the new round has its own effect), or finished
    endpoint = delivery.endpoint
    if not (endpoint.is_active and endpoint.partner.is_active):
        services.delivery_give_up(delivery_id=delivery.pk, round_=round_, reason="endpoint off")
        _run_next(delivery)
        return
    _wait_for_earlier(delivery)
    outcome = outbound.post(
        url=endpoint.url,
        msg_id=delivery.event.event_id,
        body=event_body(delivery.event),
        secrets_=services.endpoint_secrets(endpoint),
    )
    booked = services.delivery_attempt_record(
        delivery_id=delivery.pk,
        round_=round_,
        outcome=outcome,
        last=_this_try(delivery) >= MAX_ATTEMPTS,
    )
    if booked is None or booked.status != Delivery.Status.PENDING:
        _run_next(delivery)
        return
    raise DeliveryFailed(outcome.error or f"HTTP {outcome.status_code}")


def _this_try(delivery: Delivery) -> int:
    """Which try of this round this is (the relay counted it when it claimed the effect)."""
    tries = Effect.objects.filter(key=delivery.effect_key).values_list("attempts", flat=True)
    return tries.first() or 1


def _wait_for_earlier(delivery: Delivery) -> None:
    """Raise Defer while something earlier of the same aggregate must reach this endpoint first."""
    now = timezone.now()
    unpublished = Effect.objects.filter(
        kind=EVENT_KIND,
        status=Effect.Status.PENDING,
        key__startswith=f"evt_{delivery.aggregate}_{delivery.aggregate_id}_",
        payload__sequence__lt=delivery.sequence,
    )
    if unpublished.exists():
        raise Defer("an earlier event of this aggregate is not published yet", after=DEFER_MIN)
    while (blocker := services.delivery_blocker(delivery)) is not None:
        due = (
            Effect.objects.filter(key=blocker.effect_key, status=Effect.Status.PENDING)
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if due is None:
            # Its effect ended without booking an outcome (the relay gave up on a crashing
            # handler): it will never finish by itself, so it must not hold the others up.
            services.delivery_give_up(
                delivery_id=blocker.pk, round_=blocker.round, reason="no outcome recorded"
            )
            continue
        after = min(DEFER_MAX, max(DEFER_MIN, (due - now).total_seconds() + 1))
        raise Defer(f"waits for delivery {blocker.pk} (sequence {blocker.sequence})", after=after)


def _run_next(delivery: Delivery) -> None:
    """The delivery ended: the one waiting for it is due now."""
    waiting = services.delivery_next_waiting(delivery)
    if waiting is None:
        return
    key = waiting.effect_key
    Effect.objects.filter(key=key, status=Effect.Status.PENDING).update(
        next_attempt_at=timezone.now()
    )
    try:
        effects_kick({key: services.DELIVER_KIND})
    except Exception:  # noqa: BLE001 - the sweep runs it
        log.warning(
            "partner delivery %s: kick failed; the sweep runs it", waiting.pk, exc_info=True
        )


@effect_handler(
    services.DISABLED_EMAIL_KIND,
    queue="notifications",
    max_attempts=10,
    backoff_base=30.0,
    backoff_cap=3600.0,
)
def endpoint_disabled_email(payload: dict) -> None:
    endpoint = (
        Endpoint.objects.select_related("partner__owner").filter(pk=payload["endpoint_id"]).first()
    )
    if endpoint is not None:
        notifications.endpoint_disabled_email(endpoint=endpoint)
