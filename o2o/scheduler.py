"""In-process scheduler for the embedded default.

On the real stack django-celery-beat sends CELERY_BEAT_SCHEDULE to the workers. With no broker
(embedded demo) this thread runs the same schedule in-process, so expiry, offline detection and
settlement still happen. Fixed intervals (seconds, timedelta) run at start and then every interval;
celery `crontab` entries (the nightly reconciliation) run at their wall-clock times in
CELERY_TIMEZONE, as beat runs them.
"""

import logging
import threading
import time
from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)


def _interval_seconds(schedule) -> float:
    if isinstance(schedule, crontab):
        # Seconds until its next wall-clock time after now (celery computes it in its timezone).
        return max(schedule.remaining_estimate(timezone.now()).total_seconds(), 0.0)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, int | float):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)
    if isinstance(run_every, timedelta):
        return run_every.total_seconds()
    raise ValueError(f"unsupported schedule {schedule!r}")


class InProcessScheduler(threading.Thread):
    def __init__(self, schedule: dict | None = None, tick: float = 1.0) -> None:
        super().__init__(name="o2o-scheduler", daemon=True)
        self.schedule = schedule if schedule is not None else settings.CELERY_BEAT_SCHEDULE
        self.tick = tick
        self.stopped = threading.Event()
        self.runs: dict[str, int] = {name: 0 for name in self.schedule}

    def stop(self) -> None:
        self.stopped.set()

    def run_due(self, now: float, next_at: dict[str, float]) -> None:
        from o2o.celery import app

        for name, entry in self.schedule.items():
            if now < next_at[name]:
                continue
            next_at[name] = now + _interval_seconds(entry["schedule"])
            close_old_connections()
            try:
                app.tasks[entry["task"]].apply(
                    args=entry.get("args", ()), kwargs=entry.get("kwargs", {})
                )
                self.runs[name] += 1
            except Exception:
                log.exception("scheduled task %s failed", name)
            finally:
                close_old_connections()

    def run(self) -> None:
        from o2o.celery import app

        app.loader.import_default_modules()  # task modules register on import
        start = time.monotonic()
        # Intervals run at once; a crontab entry waits for its time.
        next_at = {
            name: start + _interval_seconds(entry["schedule"])
            if isinstance(entry["schedule"], crontab)
            else start
            for name, entry in self.schedule.items()
        }
        while not self.stopped.is_set():
            self.run_due(time.monotonic(), next_at)
            self.stopped.wait(self.tick)
