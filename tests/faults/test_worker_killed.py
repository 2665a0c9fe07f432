"""A Celery worker SIGKILLed in the middle of a capture, for real: uvicorn serves the app and the
sandbox provider, a `celery worker` process runs the order.capture effect kicked by the vendor's
hand-over, and the test kills the pool child and the worker while the provider's answer is on its
way (the provider has captured, or not yet). A new worker and one sweep later: one capture at the
provider, the order COMPLETED, the ledger balanced, every invariant holds."""

from datetime import timedelta

import pytest
from django.utils import timezone

from o2o.invariants import check_invariants
from o2o.models import Effect, EffectAttempt
from orders.models import Order, Status
from payments import ledger
from payments.models import JournalTransaction, Payment
from payments.sandbox.models import SandboxEvent, SandboxIntent

from .conftest import ready
from .stack import wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

HOLD = 5.0  # how long the provider's answer to the capture is held: the window for the kill


@pytest.mark.parametrize("when", ["after", "before"], ids=["provider-captured", "provider-not-yet"])
def test_a_worker_killed_mid_capture_captures_once_after_one_sweep(stack, shop, buyer, when):
    # Given a worker on the broker (starting while the order is made)
    first = stack.worker("first").launch()
    # And an order paid (authorised at the provider) and ready
    order = ready(shop, buyer, quantity=2)
    payment = Payment.objects.get(pk=order.payment_id)
    intent_id = payment.provider_ref
    stack.web.hold(HOLD, when)
    first.wait_ready()
    # When the vendor hands it over through the API (the capture effect is kicked to the worker)
    with stack.api(shop.vendor.user) as vendor_api:
        answer = vendor_api.post(
            f"/api/vendor/orders/{order.pk}/hand-over/", json={"code": order.handover_code}
        )
    assert answer.status_code == 200, answer.text
    # And the worker is killed while the provider's answer is on its way
    wait_until(
        lambda: ("capture", intent_id) in stack.web.hits(), timeout=20, what="the capture call"
    )
    if when == "after":
        wait_until(
            lambda: SandboxIntent.objects.get(pk=intent_id).status == "captured",
            timeout=10,
            what="the provider's capture",
        )
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.AUTHORISED
    first.kill()
    if when == "before":
        # (the provider drops the call its caller abandoned: it has not captured)
        wait_until(lambda: ("dropped", intent_id) in stack.web.hits(), timeout=10, what="drop")
        assert SandboxIntent.objects.get(pk=intent_id).status == "authorised"
    stack.web.hold(0)
    # Then the order is stuck for now: handed over, its capture leased to a relay that is dead
    capture = Effect.objects.get(key=f"order:{order.pk}:capture")
    assert (capture.status, capture.attempts) == (Effect.Status.PENDING, 1)
    assert capture.locked_until > timezone.now()
    assert Order.objects.get(pk=order.pk).status == Status.HANDED_OVER
    # When a new worker starts, the lease runs out (time moved on), and beat sends one sweep
    stack.worker("second").start()
    Effect.objects.filter(pk=capture.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    broker = stack.broker()
    try:
        broker.send("o2o.tasks.effects_sweep", queue="money")
        # Then that one sweep completes the order
        wait_until(
            lambda: Order.objects.get(pk=order.pk).status == Status.COMPLETED,
            timeout=30,
            every=0.2,
            what="the order to complete",
        )
        # And leaves no effect pending (the ones the dead worker had been sent are swept too)
        wait_until(
            lambda: not Effect.objects.filter(status=Effect.Status.PENDING).exists(),
            timeout=20,
            every=0.2,
            what="every effect to be done",
        )
    finally:
        broker.close()
    # And the provider captured once, all of it
    intent = SandboxIntent.objects.get(pk=intent_id)
    assert (intent.status, intent.amount_captured) == ("captured", order.total)
    assert SandboxEvent.objects.filter(intent_id=intent_id, type="intent.captured").count() == 1
    # And the platform booked it once: payment captured, one capture journal, the ledger balanced
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured) == (Payment.Status.CAPTURED, order.total)
    assert JournalTransaction.objects.filter(payment=payment, kind="capture").count() == 1
    assert ledger.unbalanced_transactions() == []
    # And the effect's tries tell the story: one cut off by the kill, then one done
    tries = list(
        EffectAttempt.objects.filter(effect=capture).order_by("number").values_list("outcome")
    )
    assert tries == [("running",), ("done",)]
    assert Effect.objects.filter(status=Effect.Status.FAILED).count() == 0
    report = check_invariants(grace=timedelta(0))
    assert report.ok, report.problems
    assert not report.attention, report.attention
