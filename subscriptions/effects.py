"""What must follow a subscription's change, as durable effects (o2o.effects), registered by
o2o's app config (autodiscover_modules("effects")) like orders/effects.py:

    subscription.charge  charge an ordered Delivery's order to the subscription's saved card,
                         one row per try (key delivery:<id>:charge:<n>; the next try's row is
                         written by this one with its run_at): subscriptions.delivery
    subscription.email   the evening notice (delivery:<id>:notice) and the news that a delivery
                         could not be paid (delivery:<id>:payment_failed)
    subscription.fee_charge  charge a cancelled commitment's fee, one row per try
                         (subscription:<id>:fee:<n>): subscriptions.fees
    subscription.notify  e-mails about the subscription itself: paused (the customer's own pause),
                         the fee's receipt, or that the fee could not be charged

The charge is safe to run again: the provider sees the idempotency key delivery-<id>-try-<n>, and
every change is guarded in SQL. The provider not answering raises (the relay tries again with
backoff); a charge that may not be made (the subscription paused or cancelled, the order ended)
gives up with the reason, which the relay records on the effect.
"""

from __future__ import annotations

from o2o.effects import GiveUp, effect_handler

MONEY = {"queue": "money", "max_attempts": 40, "backoff_base": 2.0, "backoff_cap": 300.0}


@effect_handler("subscription.charge", **MONEY)
def subscription_charge(payload: dict) -> None:
    from .delivery import NotCharged, delivery_charge

    try:
        delivery_charge(delivery_id=payload["delivery_id"], attempt=payload["attempt"])
    except NotCharged as exc:
        raise GiveUp(f"not charged: {exc}") from exc


@effect_handler("subscription.fee_charge", **MONEY)
def subscription_fee_charge(payload: dict) -> None:
    from .fees import FeeNotCharged, cancellation_fee_charge

    try:
        cancellation_fee_charge(
            subscription_id=payload["subscription_id"], attempt=payload["attempt"]
        )
    except FeeNotCharged as exc:
        raise GiveUp(f"not charged: {exc}") from exc


@effect_handler(
    "subscription.notify",
    queue="notifications",
    max_attempts=10,
    backoff_base=30.0,
    backoff_cap=3600.0,
)
def subscription_notify(payload: dict) -> None:
    from .notifications import subscription_email

    subscription_email(
        subscription_id=payload["subscription_id"],
        what=payload["what"],
        pause_id=payload.get("pause_id"),
    )


@effect_handler(
    "subscription.email",
    queue="notifications",
    max_attempts=10,
    backoff_base=30.0,
    backoff_cap=3600.0,
)
def subscription_email(payload: dict) -> None:
    from .notifications import delivery_email

    delivery_email(
        delivery_id=payload["delivery_id"],
        what=payload["what"],
        action_url=payload.get("action_url", ""),
        outcome=payload.get("outcome", ""),
    )


@effect_handler(
    "subscription.wellbeing_request_email",
    queue="notifications",
    max_attempts=10,
    backoff_base=30.0,
    backoff_cap=3600.0,
)
def wellbeing_request_email(payload: dict) -> None:
    from .notifications import wellbeing_request_email as send

    send(request_id=payload["request_id"], what=payload["what"])


@effect_handler(
    "subscription.wellbeing_email",
    queue="notifications",
    max_attempts=20,
    backoff_base=15.0,
    backoff_cap=900.0,
)
def wellbeing_email(payload: dict) -> None:
    from .notifications import wellbeing_alert_email

    wellbeing_alert_email(flag_id=payload["flag_id"])
