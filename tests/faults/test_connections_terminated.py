"""PostgreSQL connections terminated under the web server and the worker (pg_terminate_backend, again
and again) while orders are handed over (captures) and cancelled or rejected (voids), for real:
uvicorn serves the app and the sandbox provider, a `celery worker` process runs the effects. The
clients retry what failed, as people do. Once the dust settles and the sweep ran: every capture and
every void happened once at the provider, payments and orders agree, no effect is left pending,
every invariant holds."""

import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.db import close_old_connections
from django.utils import timezone

from o2o.effects import effects_run
from o2o.invariants import check_invariants
from o2o.models import Effect, EffectAttempt
from orders.models import Order, Status
from payments import ledger
from payments.models import JournalTransaction, Payment
from payments.sandbox.models import SandboxEvent, SandboxIntent

from .conftest import paid, ready
from .stack import own_backend_pid, terminate_backends

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


class Terminator(threading.Thread):
    """Terminates every other session on the test database every `every` seconds until stopped
    (this test's own Django connection is spared: it only watches)."""

    def __init__(self, *, spare: int, every: float) -> None:
        super().__init__(daemon=True)
        self.spare, self.every = spare, every
        self.stopped = threading.Event()
        self.rounds = self.terminated = 0

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.terminated += terminate_backends(exclude_pids=(self.spare,))
            self.rounds += 1

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def _act(client: httpx.Client, path: str, body: dict) -> int:
    """POST until the server answers 200, or 409 once an earlier try may have done it (its answer
    was lost with its connection), for up to 30 s. How many tries it took."""
    deadline = time.monotonic() + 30
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            response = client.post(path, json=body)
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if response.status_code == 200 or (response.status_code == 409 and attempt > 1):
            return attempt
        # A lost connection is a 503 (the database is away), never anything else
        assert response.status_code == 503, (path, response.status_code, response.text[:300])
        time.sleep(0.05)
    raise AssertionError(f"{path}: no answer in 30 s ({attempt} tries)")


def test_terminated_connections_during_captures_and_voids_lose_no_effect(stack, shop, buyer):
    # Given a worker on the broker (starting while the orders are made)
    worker = stack.worker("chaos").launch()
    # And three orders ready to hand over and three paid ones waiting for the vendor
    handing = [ready(shop, buyer) for _ in range(3)]
    cancelling = [paid(shop, buyer) for _ in range(2)]
    rejecting = paid(shop, buyer)
    worker.wait_ready()
    # And the provider a little slow to answer captures and voids (so they are in flight)
    stack.web.hold(0.4, "after")
    terminator = Terminator(spare=own_backend_pid(), every=0.25)
    tries = []
    # When the vendor hands over and rejects, and the customer cancels, through the API, while
    # every connection of the web server and the worker is terminated again and again
    terminator.start()
    try:
        with stack.api(shop.vendor.user) as vendor_api, stack.api(buyer) as customer_api:
            for order in handing:
                path = f"/api/vendor/orders/{order.pk}/hand-over/"
                tries.append(_act(vendor_api, path, {"code": order.handover_code}))
            for order in cancelling:
                path = f"/api/orders/{order.pk}/cancel/"
                tries.append(_act(customer_api, path, {"reason": "changed my mind"}))
            path = f"/api/vendor/orders/{rejecting.pk}/reject/"
            tries.append(_act(vendor_api, path, {"reason": "sold out"}))
        # (and for a while after, with the effects on their way)
        time.sleep(2.5)
    finally:
        terminator.stop()
    assert terminator.terminated >= 5, (terminator.rounds, terminator.terminated)
    # And the dust settles: the worker finishes what it is doing and stops; the provider is quick
    stack.web.hold(0)
    worker.stop()
    close_old_connections()
    # And the sweep runs, time moving on past every backoff and lease, until nothing is due
    now = timezone.now()
    for step in range(1, 30):
        if not Effect.objects.filter(status=Effect.Status.PENDING).exists():
            break
        effects_run(now=now + timedelta(minutes=10 * step), limit=200)
        close_old_connections()
    # Then no effect is left pending, none gave up
    assert (
        dict(Effect.objects.exclude(status=Effect.Status.DONE).values_list("key", "status")) == {}
    )
    # And each handed-over order was captured once at the provider and completed
    for order in handing:
        _money_moved_once(order, Status.COMPLETED, "captured", Payment.Status.CAPTURED)
    # And each cancelled or rejected order had its authorisation voided once
    for order in cancelling:
        _money_moved_once(order, Status.CANCELLED, "voided", Payment.Status.VOIDED)
    _money_moved_once(rejecting, Status.REJECTED, "voided", Payment.Status.VOIDED)
    # And the ledger balances, and every invariant holds, with no grace for anything in flight
    assert ledger.unbalanced_transactions() == []
    report = check_invariants(grace=timedelta(0))
    assert report.ok, report.problems
    assert not report.attention, report.attention
    # (what it took: the faults really hit the work in flight)
    failed_tries = EffectAttempt.objects.exclude(outcome="done").count()
    print(
        f"\n{terminator.terminated} backends terminated in {terminator.rounds} rounds; "
        f"API calls took {tries} tries; {failed_tries} effect tries failed or were cut off"
    )


def _money_moved_once(order: Order, order_status: str, intent_status: str, payment_status: str):
    order.refresh_from_db()
    payment = Payment.objects.get(pk=order.payment_id)
    intent = SandboxIntent.objects.get(pk=payment.provider_ref)
    assert (order.status, payment.status, intent.status) == (
        order_status,
        payment_status,
        intent_status,
    ), order.pk
    events = SandboxEvent.objects.filter(
        intent=intent, type__in=("intent.captured", "intent.voided")
    )
    assert list(events.values_list("type", flat=True)) == [f"intent.{intent_status}"], order.pk
    captures = JournalTransaction.objects.filter(payment=payment, kind="capture").count()
    assert captures == (1 if intent_status == "captured" else 0), order.pk
    if intent_status == "captured":
        assert payment.amount_captured == intent.amount_captured == order.total
