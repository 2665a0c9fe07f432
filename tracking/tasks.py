"""Celery wrappers over tracking services: take nothing but plain values, safe to run twice."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def presence_sweep() -> dict[str, int]:
    return services.presence_sweep()


@shared_task(acks_late=True, ignore_result=True)
def public_cells_publish_due() -> int:
    return services.public_cells_publish_due()


@shared_task(acks_late=True, ignore_result=True)
def pings_purge_old() -> int:
    return services.pings_purge_old()


@shared_task(acks_late=True, ignore_result=True)
def favourites_near_notify() -> int:
    from .near import favourites_near_notify as run

    return run()
