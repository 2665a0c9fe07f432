from celery import shared_task

from . import peers, summaries


@shared_task(ignore_result=True)
def summaries_refresh() -> dict[str, int]:
    """Beat, every minute: the summaries catch up with the record (safe to run twice: the runs
    take one lock and each row is summarised once)."""
    return summaries.summaries_refresh()


@shared_task(ignore_result=True)
def peers_warm() -> int:
    """Beat, every half hour: the similar carts' figures computed before a page asks."""
    return peers.peers_warm()
