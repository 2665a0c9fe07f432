"""Settings for the test suite.

DATABASE_URL / REDIS_URL are used when set. Otherwise PostgreSQL and Redis on 127.0.0.1 are used
when they answer, and SQLite / in-memory otherwise, in which case the tests that need the real
services are skipped with a reason (tests/conftest.py), never faked.
"""

import os
import socket

os.environ["O2O_IGNORE_DOTENV"] = "true"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if not os.environ.get("DATABASE_URL") and _answers("127.0.0.1", 5432):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/o2o"
if not os.environ.get("REDIS_URL") and _answers("127.0.0.1", 6379):
    os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/15"
os.environ.setdefault("DJANGO_ENV", "test")
# Tests never read a developer's .env, and tasks run where the test can see them.
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
os.environ["INPROCESS_SCHEDULER"] = "false"

from o2o.settings import *  # noqa: E402,F403
from o2o.settings import DATABASES, REDIS_URL  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Live broadcasts at the commit, where a test can see them (o2o.batching has tests of its own).
LIVE_COALESCE_S = 0.0
POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
REDIS = bool(REDIS_URL)
if POSTGRES:
    # Django's backend, except that its flush may empty the ledger tables (payments 0005).
    DATABASES["default"]["ENGINE"] = "tests.support.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("TEST_DATABASE_NAME", f"test_o2o_{os.getpid()}")
    }
if REDIS:
    # One Redis, separate keys per test run, so parallel runs don't read each other's messages.
    _run = os.environ.get("PYTEST_XDIST_WORKER", "main") + "-" + str(os.getpid())
    CACHES["default"]["KEY_PREFIX"] = f"o2o-test-{_run}"  # noqa: F405
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"o2o-test-{_run}"  # noqa: F405
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"anon": "10000/min", "user": "10000/min"},
}
# Like the API throttles: many tests sign up from 127.0.0.1, and the cache outlives each test. The
# password-reset and signup limits have their own tests (tests/o2o/test_guessing_limits.py).
FORM_LIMITS = {scope: {"address": 10**6, "account": 10**6} for scope in FORM_LIMITS}  # noqa: F405
