"""Project-wide housekeeping tasks."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(acks_late=True, ignore_result=True)
def sessions_purge_expired(batch_size: int = 5_000) -> int:
    """Delete expired sessions in bounded batches. Safe to run twice."""
    deleted = 0
    while True:
        ids = list(
            Session.objects.filter(expire_date__lt=timezone.now()).values_list(
                "session_key", flat=True
            )[:batch_size]
        )
        if not ids:
            return deleted
        deleted += Session.objects.filter(
            session_key__in=ids, expire_date__lt=timezone.now()
        ).delete()[0]


# --- durable effects (o2o.effects) ---------------------------------------------------------------


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=90,
    time_limit=110,
)
def effects_relay(keys: list[str] | None = None, queue: str | None = None) -> dict[str, int]:
    """Run due effects: the ones a commit just wrote (`keys`), or those of a queue's kinds (the
    sweep). Never retried itself: a failed effect keeps its row, with its own backoff."""
    from .effects import effects_run, kinds_of_queue

    # The budget keeps the relay well inside its soft time limit (90 s), whatever the handlers do.
    if keys is not None:
        return effects_run(keys=keys, limit=len(keys), budget_s=45)
    kinds = kinds_of_queue(queue) if queue else None
    return effects_run(kinds=kinds, limit=100, budget_s=45)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=30, time_limit=40)
def effects_sweep() -> dict[str, int]:
    """Beat, every few seconds: send a relay to each queue that has effects due (or run them
    here when Celery is eager). This is what makes effects independent of any kick."""
    from django.conf import settings

    from .effects import effects_due_queues, effects_run

    due = effects_due_queues()
    if settings.CELERY_TASK_ALWAYS_EAGER:
        if due:
            effects_run(limit=200)
        return due
    for queue in due:
        effects_relay.apply_async(kwargs={"queue": queue}, queue=queue)
    return due


@shared_task(acks_late=True, ignore_result=True)
def effects_purge() -> int:
    """Daily: forget effects done more than EFFECTS_KEEP_DAYS ago."""
    from datetime import timedelta

    from django.conf import settings

    from .effects import effects_purge as purge

    return purge(older_than=timedelta(days=settings.EFFECTS_KEEP_DAYS))
