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
