"""Shared pieces of the payments tests: the sandbox reached over real HTTP (pytest-django's live
server), test cards, a customer paying on the hosted page, and recorders for the ledger call site
and the payment.status_changed effects."""

import threading
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import get_resolver

from payments import ledger, services
from payments.models import Payment
from payments.sandbox.models import SandboxIntent
from payments.sandbox.webhooks import deliveries_send_due

# Tests that reach the sandbox over HTTP need committed data (the live server has its own
# connections), so they are transactional; flushing only these apps' tables after each keeps them
# fast (a full flush of every table costs ~0.8 s here).
PAYMENT_APPS = ["o2o", "payments", "payments.sandbox"]
over_http = pytest.mark.django_db(transaction=True, available_apps=PAYMENT_APPS)

APPROVE = "4242 4242 4242 4242"
DECLINE = "4000 0000 0000 0002"
INSUFFICIENT = "4000 0000 0000 9995"
CHALLENGE = "4000 0000 0000 3220"
SLOW = "4000 0000 0000 0077"
RETURN_URL = "https://shop.example/orders/7/paid/"


def card(number: str = APPROVE, expiry: str = "12/39", cvc: str = "123") -> dict:
    return {"number": number, "expiry": expiry, "cvc": cvc}


def pay(checkout_url: str, number: str = APPROVE, client: Client | None = None):
    """The customer's browser posts the card form of the hosted page (no redirects followed)."""
    return (client or Client()).post(urlsplit(checkout_url).path, card(number))


@dataclass
class Sandbox:
    url: str

    def api(self, key: str | None = None) -> httpx.Client:
        """A raw client of the sandbox API, as a merchant would use it."""
        return httpx.Client(
            base_url=f"{self.url}/sandbox/api/v1/",
            headers={"Authorization": f"Bearer {key or settings.SANDBOX_SECRET_KEY}"},
            timeout=10,
        )

    def start(self, order_id: int = 7, amount: int = 4800, **kwargs) -> Payment:
        return services.payment_start(
            order_id=order_id, amount=amount, currency="KRW", return_url=RETURN_URL, **kwargs
        )

    def paid(self, order_id: int = 7, amount: int = 4800, number: str = APPROVE) -> Payment:
        """A payment started and paid on the card page, the platform not told yet."""
        payment = self.start(order_id=order_id, amount=amount)
        response = pay(payment.checkout_url, number)
        assert response.status_code == 302, response.content[:500]
        return payment

    def authorised(self, order_id: int = 7, amount: int = 4800) -> Payment:
        payment = self.paid(order_id=order_id, amount=amount)
        payment = services.payment_sync(payment_id=payment.pk)
        assert payment.status == Payment.Status.AUTHORISED
        return payment

    @staticmethod
    def intent(payment: Payment) -> SandboxIntent:
        return SandboxIntent.objects.get(pk=payment.provider_ref)

    @staticmethod
    def deliver(now: datetime | None = None) -> dict[str, int]:
        """One run of the scheduled webhook task."""
        return deliveries_send_due(now=now)


@pytest.fixture(scope="session", autouse=True)
def _urls_loaded() -> None:
    """Import the URLconf (and every app's views and forms) once with all apps installed: an
    over_http test runs with only the payments apps in the registry, too few to import them."""
    get_resolver().url_patterns  # noqa: B018


@pytest.fixture
def sandbox(live_server, settings) -> Sandbox:
    """The platform and the sandbox both at the live server: payments go over real HTTP."""
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    settings.SANDBOX_WEBHOOK_BACKOFF_SECONDS = 5.0
    settings.SANDBOX_WEBHOOK_MAX_ATTEMPTS = 8
    return Sandbox(live_server.url)


@pytest.fixture
def ledger_calls(monkeypatch) -> list[dict]:
    """Every call of the ledger's one call site, from any thread (the ledger still records)."""
    calls: list[dict] = []
    lock = threading.Lock()
    real = ledger.ledger_record

    def record(**kwargs) -> None:
        real(**kwargs)
        with lock:
            calls.append(kwargs)

    monkeypatch.setattr(ledger, "ledger_record", record)
    return calls


class _StatusEffects:
    """The payment.status_changed effects written so far (one per committed status change), in
    order, as {payment_id, order_id, status}: what payments tells orders."""

    def _rows(self) -> list[dict]:
        from o2o.models import Effect

        return [
            dict(e)
            for e in Effect.objects.filter(kind="payment.status_changed")
            .order_by("pk")
            .values_list("payload", flat=True)
        ]

    def __iter__(self):
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())

    def __getitem__(self, i):
        return self._rows()[i]

    def __eq__(self, other) -> bool:
        return self._rows() == list(other)


@pytest.fixture
def status_signals() -> _StatusEffects:
    return _StatusEffects()
