"""The platform calling the sandbox in its own process, served by uvicorn (ASGI) as in the demo and
in production: a webhook request whose handler fetches the intent from the same server must not
deadlock (Django runs each ASGI request's sync code in a thread context of its own)."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings

from payments import services
from payments.models import Payment
from payments.sandbox.models import SandboxWebhookDelivery
from payments.sandbox.webhooks import deliveries_send_due

from .conftest import RETURN_URL, card, over_http

pytestmark = [pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "test-artifacts" / "payments-uvicorn.log"


@pytest.fixture
def uvicorn_url(transactional_db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    db = settings.DATABASES["default"]  # inside a test: the test database
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "o2o.settings",
        "O2O_IGNORE_DOTENV": "true",
        "DJANGO_ENV": "development",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "CONN_MAX_AGE": "0",
        "REDIS_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "INPROCESS_SCHEDULER": "false",
        "SANDBOX_BASE_URL": url,
        "PLATFORM_BASE_URL": url,
    }
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "o2o.asgi:application", "--host", "127.0.0.1"]
            + ["--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                pytest.fail(f"uvicorn did not start:\n{LOG.read_text()[-3000:]}")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@over_http
def test_a_webhook_served_by_uvicorn_fetches_the_intent_from_the_same_server(uvicorn_url, settings):
    # Given the platform and the sandbox both in one uvicorn process
    settings.SANDBOX_BASE_URL = settings.PLATFORM_BASE_URL = uvicorn_url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0
    payment = services.payment_start(order_id=1, amount=4800, currency="KRW", return_url=RETURN_URL)
    assert payment.checkout_url.startswith(uvicorn_url)
    # And a customer paying on its card page, as a browser does (CSRF cookie and token)
    with httpx.Client(base_url=uvicorn_url) as browser:
        page = browser.get(payment.checkout_url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        paid = browser.post(
            payment.checkout_url,
            data={**card(), "csrfmiddlewaretoken": token},
            headers={"Referer": payment.checkout_url},
        )
    assert paid.status_code == 302
    assert paid.headers["location"] == f"{RETURN_URL}?intent={payment.provider_ref}"
    # When the sandbox's webhook is posted to the server, whose handler asks the same server
    started = time.monotonic()
    delivery_result = deliveries_send_due()
    elapsed = time.monotonic() - started
    # Then it was answered at once (no deadlock, no timeout) and the payment is authorised
    assert delivery_result == {"sent": 1, "failed": 0}, SandboxWebhookDelivery.objects.values()
    assert elapsed < settings.PAYMENT_HTTP_READ_TIMEOUT
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.AUTHORISED
