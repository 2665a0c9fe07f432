"""The stage of the fault tests: a private redis-server and uvicorn on the test database (one pair
per test module), Celery workers started by each test, and orders paid for real at the sandbox
provider (served by that uvicorn) and brought to where the fault is injected."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from orders.models import Order, Status
from orders.services import order_accept, order_payment_refresh, order_payment_start, order_ready
from tests.factories import AddressFactory, CustomerProfileFactory
from tests.orders.conftest import Shop, open_shop, place

from .stack import ARTIFACTS, Broker, PrivateRedis, Web, Worker, stack_env

APPROVE = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}


@dataclass
class Stack:
    redis: PrivateRedis
    web: Web
    workdir: Path
    workers: list[Worker] = field(default_factory=list)

    def worker(self, name: str) -> Worker:
        worker = Worker(
            env=stack_env(redis_url=self.redis.url, web_url=self.web.url),
            log=self.workdir / f"worker-{name}.log",
            name=name,
        )
        self.workers.append(worker)
        return worker

    def broker(self) -> Broker:
        return Broker(self.redis.url)

    def api(self, user) -> httpx.Client:
        """A client of the web server's API, signed in as `user` with a token."""
        token = Token.objects.get_or_create(user=user)[0].key
        return httpx.Client(
            base_url=self.web.url,
            headers={"Authorization": f"Token {token}", "Accept-Language": "en"},
            timeout=15,
        )


@pytest.fixture(scope="session")
def stack_base(django_db_setup):
    """One private Redis and one uvicorn for the fault tests of this test process, on its test
    database (logs in test-artifacts/faults/<xdist worker>/)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (apt-get install redis-server) for a private Redis")
    workdir = ARTIFACTS / os.environ.get("PYTEST_XDIST_WORKER", "main")
    workdir.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis(workdir / "redis.log")
    web = None
    try:
        redis.start()
        web = Web(redis_url=redis.url, workdir=workdir).start()
        yield redis, web, workdir
    finally:
        if web is not None:
            web.stop()
        redis.stop()


@pytest.fixture
def stack(stack_base, settings):
    """The stage for one test; the workers it started are stopped after it, whatever happened.
    The test's own process reaches the provider at the same uvicorn."""
    redis, web, workdir = stack_base
    web.hold(0)
    settings.SANDBOX_BASE_URL = settings.PLATFORM_BASE_URL = web.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    stage = Stack(redis=redis, web=web, workdir=workdir)
    try:
        yield stage
    finally:
        web.hold(0)
        for worker in stage.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.stop()


@pytest.fixture
def shop(vendor) -> Shop:
    return open_shop(vendor)


@pytest.fixture
def buyer(db):
    profile = CustomerProfileFactory()
    AddressFactory(customer=profile, is_default=True)
    return profile.user


def paid(shop: Shop, buyer, *, quantity: int = 1) -> Order:
    """An order placed and paid for real: the payment started at the provider (over HTTP), the
    card approved on its hosted page, the provider asked how it stands: PLACED."""
    order = place(shop, buyer, quantity=quantity)
    card_page = order_payment_start(order_id=order.pk, return_url="http://localhost/orders/paid/")
    response = Client().post(urlsplit(card_page).path, APPROVE)
    assert response.status_code == 302, response.content[:300]
    order = order_payment_refresh(order_id=order.pk)
    assert order.status == Status.PLACED, order.status
    return order


def ready(shop: Shop, buyer, **kwargs) -> Order:
    """Paid, accepted and waiting at the pickup point: the next step is the hand-over."""
    order = paid(shop, buyer, **kwargs)
    order_accept(order_id=order.pk, vendor=shop.vendor, eta_minutes=10)
    order_ready(order_id=order.pk, vendor=shop.vendor)
    return Order.objects.get(pk=order.pk)
