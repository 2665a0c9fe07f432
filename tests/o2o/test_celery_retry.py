"""Every task retries the failures a retry can cure (the database or Redis restarting), not only
its own: before, a capture task that retried only PaymentUnavailable lost its work on an
OperationalError. The retry is real Celery machinery (apply runs the retries in-process)."""

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from o2o.celery import ResilientTask, app


@pytest.fixture
def not_eager():
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = before


@pytest.mark.parametrize(
    "error", [OperationalError("the database system is shutting down"), RedisConnectionError()]
)
def test_a_task_schedules_a_retry_of_a_transient_failure(db, not_eager, error):
    # `db`: the retry path closes a connection the database dropped, which touches the thread's
    # connection (refused without the fixture once an earlier test of the run has opened it).
    calls = []

    @app.task(bind=True, name=f"tests.flaky.{type(error).__name__}")
    def flaky(self):
        calls.append(self.request.retries)
        raise error

    assert isinstance(flaky, ResilientTask)
    # The worker would put it back on the queue with a backoff (Retry is Celery's signal)
    with pytest.raises(Retry) as retry:
        flaky.apply()
    assert retry.value.exc is error
    assert retry.value.when == 2  # seconds, doubling with each retry
    assert calls == [0]


def test_a_task_does_not_retry_a_bug(not_eager):
    calls = []

    @app.task(bind=True, name="tests.buggy")
    def buggy(self):
        calls.append(1)
        raise KeyError("a bug: retrying won't help")

    with pytest.raises(KeyError):
        buggy.apply().get()
    assert calls == [1]
