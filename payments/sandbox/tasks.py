"""Celery wrappers over the sandbox: thin, plain values, safe to run twice."""

from celery import shared_task

from .webhooks import deliveries_send_due


@shared_task(acks_late=True, ignore_result=True)
def sandbox_webhooks_deliver() -> dict[str, int]:
    return deliveries_send_due()
