"""Celery wrappers over subscriptions.delivery: thin, take dates (or nothing), safe to run twice
(unique rows and effect keys are the guard), bounded batches. Beat runs them in Korea time
(settings.CELERY_BEAT_SCHEDULE): the notice the evening before (SUBSCRIPTION_NOTICE_HOUR), the
orders from SUBSCRIPTION_ORDER_HOUR (every few minutes for an hour, each run a bounded batch), and
the completeness check at night. The task class is o2o.celery.ResilientTask (the app's default):
a lost database connection is retried with backoff, not lost."""

from datetime import date, timedelta

from celery import shared_task

from . import delivery
from .selectors import today


@shared_task(acks_late=True, ignore_result=True)
def deliveries_prepare(on: str | None = None) -> dict[str, int]:
    """The evening before: tomorrow's Deliveries and their notices (`on`: an ISO date)."""
    day = date.fromisoformat(on) if on else today() + timedelta(days=1)
    done = delivery.deliveries_prepare(on=day)
    return {"due": done.due, "skipped": done.skipped, "noticed": done.noticed}


@shared_task(acks_late=True, ignore_result=True)
def deliveries_place(
    on: str | None = None, limit: int = delivery.PLACE_BATCH_SIZE
) -> dict[str, int]:
    """The morning: today's due Deliveries into orders and charges, `limit` per run."""
    day = date.fromisoformat(on) if on else today()
    return delivery.deliveries_place(on=day, limit=limit)


@shared_task(acks_late=True, ignore_result=True)
def deliveries_check(through: str | None = None) -> int:
    """Nightly: due days without exactly one settled Delivery become discrepancies."""
    day = date.fromisoformat(through) if through else today()
    return delivery.deliveries_check(through=day)
