"""The same settings module runs embedded (nothing set) or on the real stack (DATABASE_URL and
REDIS_URL), and refuses to start in production without real secrets. Each case imports the
settings in a fresh interpreter with a clean environment, so nothing of the test run leaks in."""

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
REAL_DB = "postgres://o2o:secret@db.internal:5432/o2o"
REAL_REDIS = "redis://cache.internal:6379/0"

PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "embedded": settings.EMBEDDED,
    "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "inprocess_scheduler": settings.INPROCESS_SCHEDULER,
    "beat_scheduler": settings.CELERY_BEAT_SCHEDULER,
    "debug": settings.DEBUG,
}))
"""


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "o2o.settings",
        "O2O_IGNORE_DOTENV": "true",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings(**env: str) -> dict:
    result = _run(["-c", PRINT_SETTINGS], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _real_key() -> str:
    return secrets.token_urlsafe(64)


def test_nothing_set_runs_embedded():
    # Given an environment with no DATABASE_URL and no REDIS_URL
    # When the settings load
    s = _settings()
    # Then everything runs in-process: SQLite, in-memory channel layer, eager tasks, own scheduler
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["embedded"] is True
    assert s["channel_layer"] == "channels.layers.InMemoryChannelLayer"
    assert s["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert s["broker"] == "memory://"
    assert s["eager"] is True
    assert s["inprocess_scheduler"] is True
    assert s["debug"] is False


def test_database_and_redis_urls_select_the_real_stack():
    # Given DATABASE_URL and REDIS_URL
    # When the settings load
    s = _settings(DATABASE_URL=REAL_DB, REDIS_URL=REAL_REDIS)
    # Then PostgreSQL, channels-redis, the Redis cache and a real Celery broker with beat are used
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["embedded"] is False
    assert s["channel_layer"] == "channels_redis.core.RedisChannelLayer"
    assert s["cache"] == "o2o.cache.ResilientRedisCache"
    assert s["broker"] == REAL_REDIS
    assert s["eager"] is False
    assert s["inprocess_scheduler"] is False
    assert s["beat_scheduler"] == "django_celery_beat.schedulers:DatabaseScheduler"


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no-secret-key"),
        pytest.param({"SECRET_KEY": "short", "ALLOWED_HOSTS": "o2o.example"}, id="short-key"),
        pytest.param({"SECRET_KEY": "ab" * 40, "ALLOWED_HOSTS": "o2o.example"}, id="weak-key"),
        pytest.param(
            {"SECRET_KEY": "django-insecure-" + "k3y" * 20, "ALLOWED_HOSTS": "o2o.example"},
            id="generated-insecure-key",
        ),
        pytest.param({"SECRET_KEY": "REAL"}, id="no-allowed-hosts"),
        pytest.param(
            {"SECRET_KEY": "REAL", "ALLOWED_HOSTS": "o2o.example", "DATABASE_URL": ""},
            id="no-database",
        ),
        pytest.param(
            {"SECRET_KEY": "REAL", "ALLOWED_HOSTS": "o2o.example", "DEBUG": "true"}, id="debug-on"
        ),
    ],
)
def test_production_refuses_to_start_without_real_secrets(env):
    # Given DJANGO_ENV=production and a missing or unsafe setting
    env = {"DATABASE_URL": REAL_DB, **env}
    env = {k: (_real_key() if v == "REAL" else v) for k, v in env.items() if v != ""}
    # When the settings load
    result = _run(["-c", PRINT_SETTINGS], DJANGO_ENV="production", **env)
    # Then the process fails with ImproperlyConfigured
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_production_with_real_secrets_passes_the_deploy_check():
    # Given production with a long random SECRET_KEY and ALLOWED_HOSTS
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": _real_key(),
        "ALLOWED_HOSTS": "o2o.example",
        "DATABASE_URL": REAL_DB,
    }
    # When Django's deployment checklist runs, failing on warnings
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)
    # Then it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_collects_static_files_with_hashed_names(tmp_path):
    # Given production settings, as the Dockerfile builds the image
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": _real_key(),
        "ALLOWED_HOSTS": "build",
        "DATABASE_URL": REAL_DB,
        "STATIC_ROOT": str(tmp_path),
    }
    # When static files are collected with the manifest storage (every reference must resolve:
    # a missing file named in a CSS url() or a source map comment stops the build)
    result = _run(["manage.py", "collectstatic", "--noinput"], **env)
    # Then it succeeds, and the map's Leaflet is there under a hashed, compressed name
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())
    assert manifest["paths"]["vendor/leaflet/leaflet.js"].startswith("vendor/leaflet/leaflet.")
    assert (tmp_path / (manifest["paths"]["js/map.js"] + ".gz")).exists()
