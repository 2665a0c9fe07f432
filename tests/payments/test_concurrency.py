"""Races on real PostgreSQL connections, with the sandbox over HTTP: each test starts its calls
together from separate threads (each thread its own database connection)."""

import threading

import pytest
from django.db import connection

from payments import services
from payments.errors import PaymentError
from payments.gateways.sandbox import SandboxGateway
from payments.models import JournalTransaction, Payment, Refund
from payments.sandbox.models import (
    SandboxEvent,
    SandboxIdempotencyKey,
    SandboxIntent,
    SandboxWebhookDelivery,
)

from .conftest import RETURN_URL, over_http

pytestmark = [pytest.mark.postgres]
P = Payment.Status


def in_threads(n: int, work) -> list:
    """Run work(i) in n threads started together; an exception is returned, not raised."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:  # the caller's assertions report it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


@over_http
def test_a_capture_sent_twice_at_once_captures_once(sandbox, ledger_calls, monkeypatch):
    # Given an authorised payment, and two captures that both find it AUTHORISED before either
    # reaches the provider (they meet at a barrier just before the HTTP call)
    payment = sandbox.authorised(amount=4800)
    both_checked = threading.Barrier(2)
    original = SandboxGateway.capture

    def capture_after_both_checked(self, **kwargs):
        both_checked.wait(timeout=10)
        return original(self, **kwargs)

    monkeypatch.setattr(SandboxGateway, "capture", capture_after_both_checked)
    # When both capture at the same moment
    results = in_threads(2, lambda i: services.payment_capture(payment_id=payment.pk))
    # Then both see it captured, and the money was taken once: at the sandbox, here, in the ledger
    assert [r.status for r in results] == [P.CAPTURED, P.CAPTURED], results
    intent = sandbox.intent(payment)
    assert (intent.status, intent.amount_captured) == ("captured", 4800)
    assert SandboxEvent.objects.filter(intent=intent, type="intent.captured").count() == 1
    assert SandboxIdempotencyKey.objects.filter(key=f"payment-{payment.pk}-capture").count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_captured == 4800
    assert ledger_calls == [
        {"payment_id": payment.pk, "kind": "capture", "amount": 4800, "currency": "KRW"}
    ]
    assert sorted(
        JournalTransaction.objects.filter(payment_id=payment.pk).values_list("kind", flat=True)
    ) == ["capture", "commission", "provider_fee"]


@over_http
def test_one_idempotency_key_sent_five_times_at_once_creates_one_intent(sandbox):
    body = {"amount": 4800, "currency": "KRW", "reference": "order-9", "return_url": RETURN_URL}

    def create(i: int) -> dict:
        with sandbox.api() as api:
            response = api.post("intents", json=body, headers={"Idempotency-Key": "order-9-start"})
        assert response.status_code == 201, response.text
        return response.json()

    results = in_threads(5, create)
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["id"] for r in results}) == 1
    assert SandboxIntent.objects.count() == 1


@over_http
def test_checkout_started_twice_at_once_is_one_payment(sandbox):
    results = in_threads(3, lambda i: sandbox.start(order_id=11, amount=4800))
    assert all(isinstance(r, Payment) for r in results), results
    assert len({(r.pk, r.provider_ref) for r in results}) == 1
    assert Payment.objects.count() == SandboxIntent.objects.count() == 1


@over_http
def test_two_refunds_racing_for_more_than_is_left_give_back_only_what_was_taken(
    sandbox, ledger_calls
):
    # Given a captured payment of 4800
    payment = sandbox.authorised(amount=4800)
    services.payment_capture(payment_id=payment.pk)
    # When two refunds of 3000 are asked for at once
    results = in_threads(
        2,
        lambda i: services.payment_refund(payment_id=payment.pk, amount=3000, reason=f"r{i}"),
    )
    # Then one succeeds and the other is refused; 3000 went back, once
    assert sorted(type(r).__name__ for r in results) == ["PaymentError", "Refund"], results
    assert all(isinstance(r, Refund | PaymentError) for r in results)
    assert sandbox.intent(payment).amount_refunded == 3000
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 3000
    assert [c["kind"] for c in ledger_calls] == ["capture", "refund"]


@over_http
def test_two_workers_running_the_webhook_schedule_at_once_post_each_event_once(sandbox):
    # Given three paid payments, whose webhooks are due
    for order_id in (1, 2, 3):
        sandbox.paid(order_id=order_id)
    # When two workers run the delivery task at the same moment
    results = in_threads(2, lambda i: sandbox.deliver())
    # Then every delivery was attempted exactly once between them
    assert sum(r["sent"] for r in results) == 3, results
    assert list(SandboxWebhookDelivery.objects.values_list("attempts", flat=True)) == [1, 1, 1]
    assert set(Payment.objects.values_list("status", flat=True)) == {P.AUTHORISED}
