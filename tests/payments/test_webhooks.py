"""Webhooks from the sandbox to the platform, end to end over HTTP: signed deliveries, retries with
exponential backoff, repeats and reordering, and the platform acting once per event and ending in
the provider's true state."""

from datetime import timedelta

from django.utils import timezone

from payments import services
from payments.gateways.sandbox import SandboxGateway
from payments.models import Payment, WebhookEvent
from payments.sandbox import signing
from payments.sandbox.models import SandboxEvent, SandboxWebhookDelivery
from payments.sandbox.webhooks import backoff, duplicate_wanted

from .conftest import SLOW, over_http

P = Payment.Status
D = SandboxWebhookDelivery.Status


def deliveries(*types: str) -> list[SandboxWebhookDelivery]:
    qs = SandboxWebhookDelivery.objects.select_related("event").order_by("pk")
    return [d for d in qs if not types or d.event.type in types]


def test_backoff_doubles_from_the_base_and_is_capped(settings):
    settings.SANDBOX_WEBHOOK_BACKOFF_SECONDS = 5
    assert [backoff(n).total_seconds() for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert backoff(30) == timedelta(hours=1)


def test_the_share_of_repeated_events_is_fixed_by_the_event_id():
    ids = [f"evt_{i:06d}" for i in range(2000)]
    chosen = [duplicate_wanted(i, 0.2) for i in ids]
    assert 0.17 < sum(chosen) / len(ids) < 0.23
    assert chosen == [duplicate_wanted(i, 0.2) for i in ids]  # the same every time
    assert not any(duplicate_wanted(i, 0.0) for i in ids[:50])
    assert all(duplicate_wanted(i, 1.0) for i in ids[:50])


@over_http
def test_a_webhook_authorises_the_payment(sandbox, status_signals):
    # Given a customer who paid on the card page (the platform not told yet)
    payment = sandbox.paid(order_id=7)
    # When the scheduled task delivers the sandbox's webhooks
    assert sandbox.deliver() == {"sent": 1, "failed": 0}
    # Then the platform verified it, recorded the event and fetched the truth: authorised
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED
    event = WebhookEvent.objects.get()
    sent = SandboxEvent.objects.get()
    assert (event.event_id, event.type, event.object_ref) == (
        sent.id,
        "intent.authorised",
        payment.provider_ref,
    )
    assert event.payment_id == payment.pk and event.processed_at
    delivery = SandboxWebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (D.DELIVERED, 1, 200)
    assert [s["status"] for s in status_signals] == ["authorised"]
    # And nothing is due any more
    assert sandbox.deliver() == {"sent": 0, "failed": 0}


@over_http
def test_a_webhook_delivered_twice_acts_once(sandbox, settings, ledger_calls, status_signals):
    # Given a sandbox that sends every event a second time, later
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 1.0
    payment = sandbox.paid(order_id=7)
    sandbox.deliver()
    sandbox.api().post(f"intents/{payment.provider_ref}/capture", json={})  # captured out of band
    sandbox.deliver()
    assert Payment.objects.get(pk=payment.pk).status == P.CAPTURED
    # When the repeats arrive, 30 s later
    assert sandbox.deliver(now=timezone.now() + timedelta(seconds=31)) == {"sent": 2, "failed": 0}
    # Then each event was delivered twice but acted on once
    assert [(d.event.type, d.is_duplicate, d.status) for d in deliveries()] == [
        ("intent.authorised", False, D.DELIVERED),
        ("intent.authorised", True, D.DELIVERED),
        ("intent.captured", False, D.DELIVERED),
        ("intent.captured", True, D.DELIVERED),
    ]
    assert WebhookEvent.objects.count() == 2
    assert [c["kind"] for c in ledger_calls] == ["capture"]
    assert [s["status"] for s in status_signals] == ["authorised", "captured"]
    # And the repeats are not repeated again
    assert sandbox.deliver(now=timezone.now() + timedelta(hours=1)) == {"sent": 0, "failed": 0}


@over_http
def test_a_second_delivery_does_not_even_ask_the_provider(sandbox, settings, monkeypatch):
    # Given the body and signature of a delivered event
    payment = sandbox.paid()
    body = SandboxEvent.objects.get().body.encode()
    secret = settings.SANDBOX_WEBHOOK_SECRET
    headers = {"Sandbox-Signature": signing.header_value(secret=secret, body=body)}
    assert services.webhook_receive(provider="sandbox", body=body, headers=headers) is not None
    # When it is received again
    fetched = []
    original = SandboxGateway.get_intent
    monkeypatch.setattr(
        SandboxGateway, "get_intent", lambda self, **kw: fetched.append(kw) or original(self, **kw)
    )
    again = services.webhook_receive(provider="sandbox", body=body, headers=headers)
    # Then nothing happens: no answer, no fetch
    assert again is None and fetched == []
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED


@over_http
def test_out_of_order_webhooks_end_in_the_providers_true_state(
    sandbox, ledger_calls, status_signals
):
    # Given a payment authorised, captured and partly refunded at the sandbox
    payment = sandbox.paid(order_id=7)
    api = sandbox.api()
    api.post(f"intents/{payment.provider_ref}/capture", json={})
    api.post("refunds", json={"intent": payment.provider_ref, "amount": 1000})
    # And their webhooks arriving newest first
    now = timezone.now()
    for i, delivery in enumerate(reversed(deliveries())):
        SandboxWebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=now - timedelta(seconds=10 - i)
        )
    # When they are delivered
    assert sandbox.deliver(now=now) == {"sent": 3, "failed": 0}
    # Then the platform ends where the provider is, having moved forward only, once each step
    payment.refresh_from_db()
    intent = sandbox.intent(payment)
    assert (payment.status, payment.amount_captured, payment.amount_refunded) == (
        P.PARTIALLY_REFUNDED,
        intent.amount_captured,
        intent.amount_refunded,
    )
    assert [s["status"] for s in status_signals] == ["authorised", "captured", "partially_refunded"]
    assert [(c["kind"], c["amount"]) for c in ledger_calls] == [("capture", 4800), ("refund", 1000)]
    assert WebhookEvent.objects.filter(processed_at__isnull=False).count() == 3


@over_http
def test_a_failing_endpoint_is_retried_with_exponential_backoff(sandbox, settings):
    # Given a merchant whose webhook endpoint answers 404, and at most 4 attempts
    settings.SANDBOX_WEBHOOK_MAX_ATTEMPTS = 4
    payment = sandbox.paid()
    SandboxWebhookDelivery.objects.update(url=f"{sandbox.url}/payments/webhooks/nowhere/")
    t0 = timezone.now()
    delivery = SandboxWebhookDelivery.objects.get()
    # When the task runs at t0, and then every second for a minute
    attempts_at = []
    for second in range(61):
        if sandbox.deliver(now=t0 + timedelta(seconds=second))["failed"]:
            attempts_at.append(second)
    # Then it tried at 0, 5, 15 and 35 s (waits of 5, 10, 20 s), and gave up after the 4th
    assert attempts_at == [0, 5, 15, 35]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (D.FAILED, 4, 404)
    assert Payment.objects.get(pk=payment.pk).status == P.PENDING


@over_http
def test_a_retry_delivers_once_the_endpoint_is_back(sandbox):
    payment = sandbox.paid()
    good = SandboxWebhookDelivery.objects.get().url
    SandboxWebhookDelivery.objects.update(url="http://127.0.0.1:9/down/")
    t0 = timezone.now()
    assert sandbox.deliver(now=t0) == {"sent": 0, "failed": 1}
    assert "ConnectError" in SandboxWebhookDelivery.objects.get().last_error
    SandboxWebhookDelivery.objects.update(url=good)
    assert sandbox.deliver(now=t0 + timedelta(seconds=5)) == {"sent": 1, "failed": 0}
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED


@over_http
def test_a_webhook_the_platform_could_not_check_is_retried(sandbox, settings):
    # Given a customer who paid with the slow card, and a platform that waits 0.5 s for answers
    settings.SANDBOX_SLOW_SECONDS = 1.5
    settings.PAYMENT_HTTP_READ_TIMEOUT = 0.5
    payment = sandbox.paid(number=SLOW)
    t0 = timezone.now()
    # When the webhook arrives, the platform's fetch of the intent times out: it answers 503
    assert sandbox.deliver(now=t0) == {"sent": 0, "failed": 1}
    assert SandboxWebhookDelivery.objects.get().last_status_code == 503
    event = WebhookEvent.objects.get()
    assert event.processed_at is None
    assert Payment.objects.get(pk=payment.pk).status == P.PENDING
    # Then the retry is acted on
    assert sandbox.deliver(now=t0 + timedelta(seconds=5)) == {"sent": 1, "failed": 0}
    event.refresh_from_db()
    assert event.processed_at is not None
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED


@over_http
def test_the_scheduled_task_is_in_beats_schedule_and_delivers(sandbox, settings):
    from payments.sandbox.tasks import sandbox_webhooks_deliver

    entry = settings.CELERY_BEAT_SCHEDULE["sandbox-webhooks-deliver"]
    assert entry == {"task": "payments.sandbox.tasks.sandbox_webhooks_deliver", "schedule": 5.0}
    payment = sandbox.paid()
    sandbox_webhooks_deliver.delay()  # eager in tests, as in the embedded demo
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED
