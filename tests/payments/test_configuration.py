"""Payment settings from the environment: safe defaults in development, no well-known sandbox keys
in production, and httpx installed for production (the adapter needs it)."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PRINT = """
import json
from django.conf import settings
from django.urls import NoReverseMatch, reverse
try:
    reverse("sandbox:pay", args=["pi_x"])
    mounted = True
except NoReverseMatch:
    mounted = False
print(json.dumps({
    "gateway": settings.PAYMENT_GATEWAY,
    "enabled": settings.SANDBOX_ENABLED,
    "mounted": mounted,
    "secret_key": settings.SANDBOX_SECRET_KEY,
    "webhook_secret": settings.SANDBOX_WEBHOOK_SECRET,
    "base_url": settings.SANDBOX_BASE_URL,
    "platform": settings.PLATFORM_BASE_URL,
}))
"""
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "p" * 20 + "r0duct10n-k3y-" + "x" * 30,
    "ALLOWED_HOSTS": "o2o.example",
    "DATABASE_URL": "postgres://o2o:secret@db.internal:5432/o2o",
}


def _run(**env: str) -> subprocess.CompletedProcess:
    clean = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "o2o.settings",
        "O2O_IGNORE_DOTENV": "true",
        **env,
    }
    code = "import django; django.setup()\n" + PRINT
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings(**env: str) -> dict:
    result = _run(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_development_runs_the_sandbox_in_the_same_server_with_dev_keys():
    s = _settings()
    assert (s["gateway"], s["enabled"], s["mounted"]) == ("sandbox", True, True)
    assert s["secret_key"] and s["webhook_secret"]
    assert s["base_url"] == s["platform"] == "http://127.0.0.1:8000"


def test_production_has_no_sandbox_keys_unless_given():
    s = _settings(**PRODUCTION)
    assert (s["secret_key"], s["webhook_secret"]) == ("", "")
    given = _settings(**PRODUCTION, SANDBOX_SECRET_KEY="sk_live_like", SANDBOX_WEBHOOK_SECRET="wh")
    assert (given["secret_key"], given["webhook_secret"]) == ("sk_live_like", "wh")


@pytest.mark.parametrize(
    "key",
    [
        "SANDBOX_SECRET_KEY=sk_sandbox_development_only",
        "SANDBOX_WEBHOOK_SECRET=whsec_sandbox_development_only",
    ],
)
def test_production_refuses_the_well_known_development_keys(key):
    name, value = key.split("=")
    result = _run(**PRODUCTION, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_another_gateway_unmounts_the_sandbox():
    s = _settings(PAYMENT_GATEWAY="toss")
    assert (s["enabled"], s["mounted"]) == (False, False)


def test_httpx_is_a_main_dependency_at_the_installed_version():
    project = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]
    assert f"httpx=={httpx.__version__}" in project["dependencies"]
    assert not any(d.startswith("httpx") for d in project["optional-dependencies"]["dev"])
