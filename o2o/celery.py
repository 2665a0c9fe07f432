"""The Celery app. On the embedded default tasks run eagerly in-process (no broker needed).

Every task retries transient failures (the database or Redis restarting, a connection dropped)
with backoff and jitter, whatever else it retries: a task that retried only its own exception
lost its work on an OperationalError. Tasks are idempotent, acknowledged late and put back when
their worker dies (settings: CELERY_TASK_ACKS_LATE, CELERY_TASK_REJECT_ON_WORKER_LOST)."""

import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "o2o.settings")


def transient_errors() -> tuple[type[BaseException], ...]:
    """What a retry can cure: the database, Redis or the broker not answering for a moment."""
    from django.db import InterfaceError, OperationalError
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return (OperationalError, InterfaceError, RedisConnectionError, RedisTimeout, BrokerError)


class ResilientTask(Task):
    retry_backoff = 2
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 20

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except transient_errors() as exc:
            if self.app.conf.task_always_eager or self.request.called_directly:
                raise
            from django.db import close_old_connections

            close_old_connections()  # a connection the database dropped is not reused
            countdown = min(
                self.retry_backoff_max, self.retry_backoff * 2 ** (self.request.retries or 0)
            )
            raise self.retry(exc=exc, countdown=countdown) from exc


app = Celery("o2o", task_cls=ResilientTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
