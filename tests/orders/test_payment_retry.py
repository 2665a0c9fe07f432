"""A declined card does not end the order: the payment stays open for another card (hard and soft
declines alike) while the order's payment window is open, with the stock reserved; when the
window closes the order ends as before (stock released, nothing held). Over real HTTP to the
sandbox on the live server, and a card racing the window's end on real PostgreSQL connections."""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from o2o.effects import effects_run
from orders.models import Order, Status
from orders.services import (
    order_payment_refresh,
    order_payment_start,
    orders_expire,
    orders_payments_disagreeing,
)
from payments.models import Payment
from payments.sandbox import services as sandbox
from payments.sandbox.models import SandboxIntent
from payments.sandbox.services import SandboxError
from tests.orders.conftest import place

pytestmark = pytest.mark.django_db(transaction=True)
APPROVE = "4242424242424242"
HARD = "4000000000000002"  # card_declined
SOFT = "4000000000009995"  # insufficient_funds
S = SandboxIntent.Status


@pytest.fixture
def sandbox_live(live_server, settings):
    settings.SANDBOX_BASE_URL = live_server.url
    settings.PLATFORM_BASE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_DUPLICATE_RATE = 0.0
    return live_server.url


def started(shop, buyer, *, window: timedelta | None = None) -> tuple[Order, SandboxIntent]:
    """An order waiting for payment, its payment started at the provider (the card page open)."""
    order = place(shop, buyer)
    if window is not None:
        # A whole second: the provider keeps the deadline to the second, so both end together.
        ends = (timezone.now() + window + timedelta(seconds=1)).replace(microsecond=0)
        Order.objects.filter(pk=order.pk).update(expires_at=ends)
    order_payment_start(order_id=order.pk, return_url=f"http://localhost/orders/{order.pk}/paid/")
    order.refresh_from_db()
    payment = Payment.objects.get(order_id=order.pk)
    return order, SandboxIntent.objects.get(pk=payment.provider_ref)


@pytest.mark.parametrize(
    "number, code", [(HARD, "card_declined"), (SOFT, "insufficient_funds")], ids=["hard", "soft"]
)
def test_a_declined_card_keeps_the_order_waiting_and_another_card_pays_it(
    sandbox_live, shop, buyer, number, code
):
    # Given an order whose payment window is open at the provider too
    order, intent = started(shop, buyer)
    assert intent.expires_at == order.expires_at.replace(microsecond=0)
    # When a card is declined (its webhook delivered, the customer back on the shop's page)
    sandbox.card_submit(intent_id=intent.id, number=number)
    effects_run()
    order = order_payment_refresh(order_id=order.pk)
    # Then the order still waits for payment with its stock reserved, the decline recorded
    assert order.status == Status.PENDING_PAYMENT
    assert shop.stock()[shop.yakult.sku] == 8
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.failure_code, payment.card_last4) == (
        "pending",
        code,
        number[-4:],
    )
    # And nothing sees a disagreement to fix
    assert orders_payments_disagreeing(grace=timedelta(0)) == []
    # When another card is approved
    sandbox.card_submit(intent_id=intent.id, number=APPROVE)
    effects_run()
    order = order_payment_refresh(order_id=order.pk)
    # Then the order is placed, the decline is history, and the stock stays taken
    assert order.status == Status.PLACED
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.card_last4) == ("authorised", "", "4242")
    assert shop.stock()[shop.yakult.sku] == 8


def test_after_the_window_the_order_ends_as_before_and_the_card_page_says_so(
    sandbox_live, shop, buyer
):
    # Given an order with a declined card and a window that is over
    order, intent = started(shop, buyer)
    sandbox.card_submit(intent_id=intent.id, number=HARD)
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk=order.pk).update(expires_at=past)
    SandboxIntent.objects.filter(pk=intent.id).update(expires_at=past)
    # When the sweep comes by and the money is looked after
    assert orders_expire()["unpaid"] == 1
    effects_run()
    # Then the order failed for not being paid in time, the stock is back, nothing held
    order.refresh_from_db()
    assert (order.status, order.reason) == (Status.FAILED, "not paid in time")
    assert order.expires_at == past  # the deadline missed stays to be shown
    assert shop.stock()[shop.yakult.sku] == 10
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.failure_code) == ("failed", "expired")
    # And the card page says the time ran out, and takes no card
    page = Client(headers={"accept-language": "en"}).get(f"/sandbox/pay/{intent.id}/")
    assert page.status_code == 200
    assert "The time to pay has run out" in page.content.decode()
    with pytest.raises(SandboxError):
        sandbox.card_submit(intent_id=intent.id, number=APPROVE)
    # And the customer's page and the API say why it ended
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(buyer)
    body = api.get(f"/api/orders/{order.pk}/").json()
    assert body["ending"]["code"] == "not_paid_in_time"
    assert body["ending"]["text"].startswith("The time to pay ran out at")
    assert body["payment"] is None


def test_paying_from_the_order_page_after_the_window_ends_the_order_at_once(
    sandbox_live, shop, buyer
):
    # Given an order whose window closed before the sweep came by
    order, _intent = started(shop, buyer)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = Client(headers={"accept-language": "en"}, SERVER_NAME="localhost")
    client.force_login(buyer)
    # When the customer presses "Try another card"
    response = client.post(f"/orders/{order.pk}/pay/", follow=True)
    # Then no card page: the order ended (not paid in time), its stock back, and the page says so
    assert response.redirect_chain == [(f"/orders/{order.pk}/", 302)]
    order.refresh_from_db()
    assert (order.status, order.reason) == (Status.FAILED, "not paid in time")
    assert shop.stock()[shop.yakult.sku] == 10
    assert "The time to pay ran out at" in response.content.decode()


def _race(intent_id: str, order_id: int, at: float, offsets: tuple[float, float]) -> dict:
    """A card approved on the card page and the expiry sweep, each at its moment near `at`."""
    barrier = threading.Barrier(2)
    outcome: dict = {}

    def card() -> None:
        try:
            barrier.wait()
            time.sleep(max(0.0, at + offsets[0] - time.time()))
            sandbox.card_submit(intent_id=intent_id, number=APPROVE)
            outcome["card"] = "authorised"
            order_payment_refresh(order_id=order_id)  # the browser back on the shop's page
        except SandboxError as exc:
            outcome["card"] = exc.code
        finally:
            connection.close()

    def sweep() -> None:
        try:
            barrier.wait()
            time.sleep(max(0.0, at + offsets[1] - time.time()))
            outcome["sweep"] = orders_expire()["unpaid"]
        finally:
            connection.close()

    threads = [threading.Thread(target=card), threading.Thread(target=sweep)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcome


def test_a_card_racing_the_end_of_the_window_never_leaves_money_held(sandbox_live, shop, buyer):
    rng = random.Random(14)
    # Well before the end, well after it (so that both outcomes are checked whatever the machine's
    # load), then moments at random around the end.
    moments = [(-0.5, 0.02), (0.3, 0.0)] + [
        (rng.uniform(-0.3, 0.03), rng.uniform(0.0, 0.05)) for _ in range(4)
    ]
    seen = set()
    for moment in moments:
        # Given an order whose payment window ends in a moment, a declined card already tried
        order, intent = started(shop, buyer, window=timedelta(milliseconds=1500))
        sandbox.card_submit(intent_id=intent.id, number=SOFT)
        at = order.expires_at.timestamp()
        # When another card is approved just before or after the end, as the sweep runs
        outcome = _race(intent.id, order.pk, at, moment)
        # ... and everything that follows has run (webhooks, effects, a later sweep, a sync)
        effects_run()
        time.sleep(max(0.0, at + 0.05 - time.time()))
        orders_expire()
        effects_run()
        order_payment_refresh(order_id=order.pk)
        effects_run()
        # Then either the order is placed with the money authorised and its stock taken...
        order.refresh_from_db()
        intent.refresh_from_db()
        payment = Payment.objects.get(order_id=order.pk)
        seen.add((outcome.get("card"), order.status))
        assert intent.amount_captured == 0
        if order.status == Status.PLACED:
            assert outcome["card"] == "authorised"
            assert (intent.status, payment.status) == (S.AUTHORISED, "authorised")
        else:
            # ... or it failed, its stock back, and no money is left held at the provider
            assert order.status == Status.FAILED, outcome
            assert intent.status in (S.FAILED, S.VOIDED), (outcome, intent.status)
            assert payment.status in ("failed", "voided"), outcome
        assert orders_payments_disagreeing(grace=timedelta(0)) == []
        # Tidy the stock for the next round: a placed order is cancelled (its money voided)
        if order.status == Status.PLACED:
            from orders.services import order_cancel

            order_cancel(order_id=order.pk, customer=order.customer)
            effects_run()
            intent.refresh_from_db()
            assert intent.status == S.VOIDED
        assert shop.stock()[shop.yakult.sku] == 10
    # The card won sometimes and lost sometimes: both were checked.
    assert {status for _card, status in seen} == {Status.PLACED, Status.FAILED}, seen
