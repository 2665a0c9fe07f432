"""The in-process scheduler (embedded default) runs Celery beat's schedule: intervals at once and
then every interval, crontab entries (the nightly reconciliation) at their wall-clock time."""

import subprocess
import sys
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

import o2o.tasks  # noqa: F401 - registers the task the schedule names
from o2o.scheduler import InProcessScheduler, _interval_seconds

from .test_settings_modes import BASE_DIR


def test_reconciliation_is_scheduled_nightly_at_its_local_time():
    # Given the project's schedule
    entry = settings.CELERY_BEAT_SCHEDULE["reconciliation-run"]
    # Then reconciliation is a crontab at RECONCILIATION_AT (04:00 by default), not an interval
    assert isinstance(entry["schedule"], crontab)
    hour, minute = (int(p) for p in settings.RECONCILIATION_AT.split(":"))
    assert entry["schedule"].hour == {hour}
    assert entry["schedule"].minute == {minute}


def test_a_crontab_entry_waits_for_its_wall_clock_time_in_the_celery_timezone():
    # Given a crontab two minutes from now, local time (CELERY_TIMEZONE)
    soon = timezone.localtime(timezone.now()) + timedelta(minutes=2)
    schedule = crontab(hour=soon.hour, minute=soon.minute)
    # When the scheduler asks how long to wait
    wait = _interval_seconds(schedule)
    # Then it is about two minutes (the current minute's seconds already passed), never a day
    assert 60 <= wait <= 120


@pytest.mark.django_db(transaction=True)
def test_run_due_runs_intervals_and_leaves_a_crontab_entry_until_its_time():
    # Given an interval entry and a crontab entry one hour away
    later = timezone.localtime(timezone.now()) + timedelta(hours=1)
    schedule = {
        "purge": {"task": "o2o.tasks.sessions_purge_expired", "schedule": 30.0},
        "nightly": {
            "task": "o2o.tasks.sessions_purge_expired",
            "schedule": crontab(hour=later.hour, minute=later.minute),
        },
    }
    expired = Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )
    scheduler = InProcessScheduler(schedule=schedule)
    next_at = {
        "purge": 100.0,
        "nightly": 100.0 + _interval_seconds(schedule["nightly"]["schedule"]),
    }
    # When the scheduler ticks at t=100 s
    scheduler.run_due(100.0, next_at)
    # Then the interval task ran and is next due 30 s later; the crontab one has not run
    assert scheduler.runs == {"purge": 1, "nightly": 0}
    assert not Session.objects.filter(pk=expired.pk).exists()
    assert next_at["purge"] == 130.0
    assert 3000 <= next_at["nightly"] - 100.0 <= 3600
    # And when its time comes, it runs and is next due about a day later
    scheduler.run_due(next_at["nightly"], next_at)
    assert scheduler.runs["nightly"] == 1


@pytest.mark.parametrize("value", ["25:00", "4", "04:60", "four"])
def test_a_bad_reconciliation_time_refuses_to_start(value):
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.DEBUG"],
        cwd=BASE_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "o2o.settings",
            "O2O_IGNORE_DOTENV": "true",
            "RECONCILIATION_AT": value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "RECONCILIATION_AT must be HH:MM" in result.stderr
