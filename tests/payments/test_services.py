"""Payment services against the sandbox over real HTTP (pytest-django's live server): each
transition allowed and refused, the provider's state as the truth, slow and unreachable providers,
and the ledger's one call site per money movement. Refusals that never reach the provider run
without it."""

import json

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import translation

from payments import services
from payments.errors import (
    InvalidTransition,
    PaymentError,
    PaymentRefused,
    PaymentUnavailable,
    UnknownProvider,
)
from payments.gateways import get_gateway
from payments.gateways.base import GatewayRefused, GatewayUnavailable
from payments.gateways.sandbox import SandboxGateway
from payments.models import Payment, Refund
from payments.sandbox.models import SandboxIntent, SandboxRefund

from .conftest import APPROVE, CHALLENGE, DECLINE, INSUFFICIENT, RETURN_URL, SLOW, over_http, pay
from .factories import PaymentFactory

P = Payment.Status


# --- start ---------------------------------------------------------------------------------------


@over_http
def test_start_opens_an_intent_at_the_sandbox(sandbox, live_server):
    # When checkout starts the payment of order 7
    payment = sandbox.start(order_id=7, amount=4800, description="순자네 카트 주문 #7")
    # Then the payment waits for the customer, with the sandbox's intent and card page
    assert payment.status == P.PENDING
    assert (payment.amount, payment.currency, payment.provider) == (4800, "KRW", "sandbox")
    intent = sandbox.intent(payment)
    assert payment.checkout_url == f"{live_server.url}/sandbox/pay/{intent.id}/"
    assert (intent.amount, intent.reference, intent.description) == (
        4800,
        "order-7",
        "순자네 카트 주문 #7",
    )
    assert intent.return_url == RETURN_URL
    assert intent.webhook_url == f"{live_server.url}/payments/webhooks/sandbox/"
    # And starting it again, even after the answer was lost, is the same payment and intent
    assert sandbox.start(order_id=7).pk == payment.pk
    Payment.objects.filter(pk=payment.pk).update(provider_ref="", checkout_url="")
    again = sandbox.start(order_id=7, amount=4800, description="순자네 카트 주문 #7")
    assert (again.pk, again.provider_ref) == (payment.pk, intent.id)
    assert SandboxIntent.objects.count() == 1


@over_http
def test_start_with_the_sandbox_unreachable_is_unavailable_then_works(sandbox, settings):
    # Given a sandbox nobody answers at
    live = settings.SANDBOX_BASE_URL
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 1
    # When checkout starts the payment
    with pytest.raises(PaymentUnavailable):
        sandbox.start(order_id=7)
    # Then the payment waits without an intent, and starting again once it is back works
    assert Payment.objects.get(order_id=7).provider_ref == ""
    settings.SANDBOX_BASE_URL = live
    payment = sandbox.start(order_id=7)
    assert payment.provider_ref and SandboxIntent.objects.count() == 1


@pytest.mark.django_db
def test_start_refuses_another_amount_for_the_same_order():
    PaymentFactory(order_id=7, amount=4800)
    with pytest.raises(InvalidTransition):
        services.payment_start(order_id=7, amount=5000, currency="KRW", return_url=RETURN_URL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": 0},
        {"amount": -1},
        {"amount": 10.5},
        {"amount": True},
        {"currency": "XYZ"},
        {"return_url": "/relative/"},
        {"return_url": "javascript:alert(1)"},
    ],
)
@pytest.mark.django_db
def test_start_refuses_bad_input_before_calling_anyone(kwargs):
    args = {"order_id": 7, "amount": 4800, "currency": "KRW", "return_url": RETURN_URL, **kwargs}
    with pytest.raises(PaymentError) as raised:
        services.payment_start(**args)
    assert type(raised.value) is PaymentError  # refused here, not by (or for want of) a provider
    assert not Payment.objects.exists()


# --- authorise (sync) ----------------------------------------------------------------------------


@over_http
def test_paid_card_is_authorised_on_sync(sandbox, status_signals, ledger_calls):
    # Given a started payment: syncing before the customer pays changes nothing
    payment = sandbox.start(order_id=7)
    assert services.payment_sync(payment_id=payment.pk).status == P.PENDING
    # When the customer pays with the approve card and the platform syncs
    pay(payment.checkout_url)
    payment = services.payment_sync(payment_id=payment.pk)
    # Then the payment is authorised, with the card's last digits, and orders are told once
    assert payment.status == P.AUTHORISED
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.authorised_at is not None
    assert status_signals == [{"payment_id": payment.pk, "order_id": 7, "status": "authorised"}]
    assert json.loads(json.dumps(list(status_signals))) == status_signals  # plain values only
    # And no money moved yet
    assert ledger_calls == []
    # And syncing again changes nothing and tells nobody
    services.payment_sync(payment_id=payment.pk)
    assert len(status_signals) == 1


@pytest.mark.parametrize(
    "number, code", [(DECLINE, "card_declined"), (INSUFFICIENT, "insufficient_funds")]
)
@over_http
def test_a_declined_card_leaves_the_payment_pending_with_its_decline(
    sandbox, status_signals, number, code
):
    # A decline is not the end (the customer may try another card): the payment stays pending,
    # no status change is signalled, and the decline is kept to be shown
    payment = sandbox.paid(number=number)
    payment = services.payment_sync(payment_id=payment.pk)
    assert payment.status == P.PENDING
    assert payment.failure_code == code and payment.failure_message
    assert payment.card_last4 == number.replace(" ", "")[-4:]
    assert payment.closed_at is None
    assert status_signals == []
    # Another card authorises it, and the decline is history
    assert pay(payment.checkout_url, APPROVE).status_code == 302
    payment = services.payment_sync(payment_id=payment.pk)
    assert (payment.status, payment.failure_code, payment.failure_message) == (P.AUTHORISED, "", "")
    assert [s["status"] for s in status_signals] == ["authorised"]


@over_http
def test_challenge_card_stays_pending_until_the_card_holder_approves(sandbox):
    payment = sandbox.start()
    assert pay(payment.checkout_url, CHALLENGE).status_code == 302
    assert services.payment_sync(payment_id=payment.pk).status == P.PENDING
    Client().post(f"/sandbox/pay/{payment.provider_ref}/challenge/", {"decision": "approve"})
    assert services.payment_sync(payment_id=payment.pk).status == P.AUTHORISED


@over_http
def test_slow_provider_leaves_the_payment_as_it_is(sandbox, settings, status_signals):
    # Given a customer who paid with the slow card, and a platform that waits 0.5 s for answers
    settings.SANDBOX_SLOW_SECONDS = 1.5
    settings.PAYMENT_HTTP_READ_TIMEOUT = 0.5
    payment = sandbox.paid(number=SLOW)
    # When the platform syncs
    with translation.override("en"), pytest.raises(PaymentUnavailable) as raised:
        services.payment_sync(payment_id=payment.pk)
    # Then it is told clearly the provider is unavailable, and the payment has not moved
    assert raised.value.code == "unavailable"
    assert "try again" in raised.value.messages[0]
    assert Payment.objects.get(pk=payment.pk).status == P.PENDING
    assert status_signals == []
    # And the next sync, once the provider answers in time, authorises it
    assert services.payment_sync(payment_id=payment.pk).status == P.AUTHORISED


# --- capture -------------------------------------------------------------------------------------


@over_http
def test_capture_takes_the_money_once(sandbox, ledger_calls, status_signals):
    # Given an authorised payment of 4800
    payment = sandbox.authorised(order_id=7, amount=4800)
    # When it is captured, and then captured again
    captured = services.payment_capture(payment_id=payment.pk)
    again = services.payment_capture(payment_id=payment.pk)
    # Then it is captured once: at the sandbox, here, in the ledger and in the signals
    assert captured.status == again.status == P.CAPTURED
    assert captured.amount_captured == 4800 and captured.captured_at
    intent = sandbox.intent(payment)
    assert (intent.status, intent.amount_captured) == ("captured", 4800)
    assert ledger_calls == [
        {"payment_id": payment.pk, "kind": "capture", "amount": 4800, "currency": "KRW"}
    ]
    assert [s["status"] for s in status_signals] == ["authorised", "captured"]
    # And a captured payment can't be voided
    with pytest.raises(InvalidTransition):
        services.payment_void(payment_id=payment.pk)
    assert sandbox.intent(payment).status == "captured"


@over_http
def test_partial_capture_takes_part_and_releases_the_rest(sandbox, ledger_calls):
    payment = sandbox.authorised(amount=4800)
    captured = services.payment_capture(payment_id=payment.pk, amount=3600)
    assert (captured.status, captured.amount_captured) == (P.CAPTURED, 3600)
    assert sandbox.intent(payment).amount_captured == 3600
    assert [c["amount"] for c in ledger_calls] == [3600]


@over_http
def test_capture_made_at_the_provider_already_is_taken_as_the_truth(sandbox, ledger_calls):
    # Given an authorised payment the sandbox has already captured (out of band: a lost answer)
    payment = sandbox.authorised()
    sandbox.api().post(f"intents/{payment.provider_ref}/capture", json={"amount": 1000})
    # When the platform captures another amount (the provider refuses: not authorised any more)
    result = services.payment_capture(payment_id=payment.pk, amount=2000)
    # Then the provider's capture stands, recorded once
    assert (result.status, result.amount_captured) == (P.CAPTURED, 1000)
    assert [c["amount"] for c in ledger_calls] == [1000]


@pytest.mark.parametrize("status", [P.PENDING, P.FAILED, P.VOIDED])
@pytest.mark.django_db
def test_only_an_authorised_payment_can_be_captured(status, ledger_calls):
    payment = PaymentFactory(status=status)
    with translation.override("en"), pytest.raises(InvalidTransition, match="Only an authorised"):
        services.payment_capture(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == status
    assert ledger_calls == []


@pytest.mark.parametrize("amount", [0, 4801, -3])
@pytest.mark.django_db
def test_capture_of_an_amount_that_does_not_fit_is_refused(amount):
    payment = PaymentFactory(authorised=True, amount=4800)
    with pytest.raises(PaymentError) as raised:
        services.payment_capture(payment_id=payment.pk, amount=amount)
    assert type(raised.value) is PaymentError
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED


# --- void ----------------------------------------------------------------------------------------


@over_http
def test_void_releases_an_authorised_payment(sandbox, status_signals, ledger_calls):
    payment = sandbox.authorised()
    voided = services.payment_void(payment_id=payment.pk)
    assert voided.status == P.VOIDED and voided.closed_at
    assert sandbox.intent(payment).status == "voided"
    assert services.payment_void(payment_id=payment.pk).status == P.VOIDED  # again: no-op
    assert [s["status"] for s in status_signals] == ["authorised", "voided"]
    assert ledger_calls == []


@pytest.mark.parametrize("status", [P.PENDING, P.CAPTURED, P.REFUNDED, P.FAILED])
@pytest.mark.django_db
def test_only_an_authorised_payment_can_be_voided(status):
    payment = PaymentFactory(status=status)
    with translation.override("en"), pytest.raises(InvalidTransition, match="can be voided"):
        services.payment_void(payment_id=payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == status


# --- refund --------------------------------------------------------------------------------------


@over_http
def test_refunds_in_parts_then_in_full(sandbox, ledger_calls, status_signals):
    # Given a captured payment of 4800
    payment = sandbox.authorised(order_id=7, amount=4800)
    services.payment_capture(payment_id=payment.pk)
    # When 1200 is refunded, then the remaining 3600
    first = services.payment_refund(payment_id=payment.pk, amount=1200, reason="one item missing")
    partly = Payment.objects.get(pk=payment.pk)
    second = services.payment_refund(payment_id=payment.pk, amount=3600, reason="cancelled")
    # Then each refund succeeded at the sandbox, and the payment walked to REFUNDED
    assert (first.status, second.status) == (Refund.Status.SUCCEEDED, Refund.Status.SUCCEEDED)
    assert first.provider_ref.startswith("re_") and first.reason == "one item missing"
    assert (partly.status, partly.amount_refunded) == (P.PARTIALLY_REFUNDED, 1200)
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (P.REFUNDED, 4800)
    assert sandbox.intent(payment).amount_refunded == 4800
    # And the ledger saw the capture and each refund once
    assert [(c["kind"], c["amount"]) for c in ledger_calls] == [
        ("capture", 4800),
        ("refund", 1200),
        ("refund", 3600),
    ]
    assert [s["status"] for s in status_signals] == [
        "authorised",
        "captured",
        "partially_refunded",
        "refunded",
    ]
    # And nothing more can be refunded
    with pytest.raises(InvalidTransition):
        services.payment_refund(payment_id=payment.pk, amount=1, reason="again")


@pytest.mark.parametrize("status", [P.PENDING, P.AUTHORISED, P.VOIDED, P.FAILED, P.REFUNDED])
@pytest.mark.django_db
def test_only_a_captured_payment_can_be_refunded(status):
    payment = PaymentFactory(status=status)
    with translation.override("en"), pytest.raises(InvalidTransition, match="Only a captured"):
        services.payment_refund(payment_id=payment.pk, amount=100, reason="x")
    assert not Refund.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"amount": 0}, {"amount": "100"}, {"reason": "  "}, {"amount": 3001}, {"amount": 2501}],
    ids=["zero", "text", "no-reason", "more-than-captured", "more-than-left"],
)
@pytest.mark.django_db
def test_refund_must_fit_what_is_left_and_say_why(kwargs):
    # Given 3000 captured, 500 of it being refunded already
    payment = PaymentFactory(captured=True, amount=4800, amount_captured=3000)
    Refund.objects.create(payment=payment, amount=500, reason="pending one")
    # When a refund that doesn't fit, or has no reason, is asked for
    with pytest.raises(PaymentError) as raised:
        services.payment_refund(
            **{"payment_id": payment.pk, "amount": 100, "reason": "x", **kwargs}
        )
    # Then it is refused here, before the provider is asked
    assert type(raised.value) is PaymentError
    assert Refund.objects.count() == 1


@over_http
def test_refund_that_could_not_be_sent_is_sent_again_by_sync(sandbox, settings, ledger_calls):
    # Given a captured payment, and a refund asked for while the provider can't be reached
    payment = sandbox.authorised()
    services.payment_capture(payment_id=payment.pk)
    live = settings.SANDBOX_BASE_URL
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9"
    settings.PAYMENT_HTTP_RETRIES = 0
    with pytest.raises(PaymentUnavailable):
        services.payment_refund(payment_id=payment.pk, amount=1000, reason="late")
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.PENDING
    # When the provider is back and the payment is synced (twice)
    settings.SANDBOX_BASE_URL = live
    services.payment_sync(payment_id=payment.pk)
    services.payment_sync(payment_id=payment.pk)
    # Then the refund went through once
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert SandboxRefund.objects.count() == 1
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 1000
    assert [c["kind"] for c in ledger_calls] == ["capture", "refund"]


class PendingRefundAnswers(httpx.BaseTransport):
    """The provider's answer to a new refund says "pending" (a card network that takes days),
    whatever the sandbox did; every other answer passes through as it is."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/refunds"):
            response.read()
            body = {**json.loads(response.content), "status": "pending"}
            return httpx.Response(response.status_code, json=body)
        return response


@over_http
def test_a_refund_the_provider_has_not_made_yet_is_booked_when_it_is(
    sandbox, settings, ledger_calls
):
    # Given a captured payment, and a provider that answers a refund with "pending"
    payment = sandbox.authorised()
    services.payment_capture(payment_id=payment.pk)
    pending = _gateway(sandbox.url, settings, PendingRefundAnswers())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "_gateway", lambda payment: pending)
        # When the platform refunds
        refund = services.payment_refund(payment_id=payment.pk, amount=1_000, reason="cold")
    # Then nothing is booked yet: the refund waits under the provider's reference
    assert refund.status == Refund.Status.PENDING and refund.provider_ref.startswith("re_")
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0
    assert [c["kind"] for c in ledger_calls] == ["capture"]
    # When the provider lists it as made and the payment is synced (twice)
    services.payment_sync(payment_id=payment.pk)
    services.payment_sync(payment_id=payment.pk)
    # Then it is booked once, and was never sent twice
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 1_000
    assert SandboxRefund.objects.count() == 1
    assert [c["kind"] for c in ledger_calls] == ["capture", "refund"]


@over_http
def test_refunds_made_at_the_provider_are_recorded_and_win(sandbox, ledger_calls):
    # Given a captured payment, 700 of it refunded at the provider (its dashboard)
    payment = sandbox.authorised()
    services.payment_capture(payment_id=payment.pk)
    sandbox.api().post("refunds", json={"intent": payment.provider_ref, "amount": 700})
    # When the platform syncs (twice)
    payment = services.payment_sync(payment_id=payment.pk)
    services.payment_sync(payment_id=payment.pk)
    # Then that refund is recorded once
    assert (payment.status, payment.amount_refunded) == (P.PARTIALLY_REFUNDED, 700)
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.reason) == (
        700,
        Refund.Status.SUCCEEDED,
        "Refunded at the provider",
    )
    # And when the rest is refunded there too, a refund asked for here is refused by the provider
    sandbox.api().post("refunds", json={"intent": payment.provider_ref, "amount": 4100})
    with pytest.raises(PaymentRefused) as raised:
        services.payment_refund(payment_id=payment.pk, amount=500, reason="x")
    assert raised.value.code == "amount_too_large"
    assert Refund.objects.get(reason="x").status == Refund.Status.FAILED
    payment = services.payment_sync(payment_id=payment.pk)
    assert (payment.status, payment.amount_refunded) == (P.REFUNDED, 4800)
    assert [c["amount"] for c in ledger_calls] == [4800, 700, 4100]


# --- giving the money back, whatever its stage ---------------------------------------------------


@over_http
def test_return_all_voids_an_authorisation(sandbox):
    payment = sandbox.authorised()
    assert services.payment_return_all(payment_id=payment.pk, reason="rejected").status == P.VOIDED
    assert services.payment_return_all(payment_id=payment.pk, reason="rejected").status == P.VOIDED
    assert sandbox.intent(payment).status == "voided"


@over_http
def test_return_all_refunds_what_is_left_of_a_capture_once(sandbox, ledger_calls):
    # Given a captured payment, 1000 of it refunded already
    payment = sandbox.authorised(amount=4800)
    services.payment_capture(payment_id=payment.pk)
    services.payment_refund(payment_id=payment.pk, amount=1000, reason="one item")
    # When all the money is returned, twice
    first = services.payment_return_all(payment_id=payment.pk, reason="not collected")
    second = services.payment_return_all(payment_id=payment.pk, reason="not collected")
    # Then the rest was refunded once
    assert (first.status, first.amount_refunded) == (P.REFUNDED, 4800)
    assert second.status == P.REFUNDED
    assert list(Refund.objects.order_by("pk").values_list("amount", "reason")) == [
        (1000, "one item"),
        (3800, "not collected"),
    ]
    assert sandbox.intent(payment).amount_refunded == 4800
    assert [c["amount"] for c in ledger_calls] == [4800, 1000, 3800]


@over_http
def test_return_all_of_an_unpaid_payment_changes_nothing(sandbox):
    payment = sandbox.start()
    assert services.payment_return_all(payment_id=payment.pk, reason="expired").status == P.PENDING
    assert sandbox.intent(payment).status == "requires_payment_method"


# --- the provider is the truth ------------------------------------------------------------------


@over_http
def test_sync_walks_the_graph_to_the_providers_state(sandbox, ledger_calls, status_signals):
    # Given a payment the sandbox authorised, captured and partly refunded without the platform
    payment = sandbox.paid(order_id=7)
    api = sandbox.api()
    api.post(f"intents/{payment.provider_ref}/capture", json={})
    api.post("refunds", json={"intent": payment.provider_ref, "amount": 800})
    # When the platform syncs once
    payment = services.payment_sync(payment_id=payment.pk)
    # Then it went step by step along the graph to the provider's state
    assert (payment.status, payment.amount_captured, payment.amount_refunded) == (
        P.PARTIALLY_REFUNDED,
        4800,
        800,
    )
    assert [s["status"] for s in status_signals] == [
        "authorised",
        "captured",
        "partially_refunded",
    ]
    assert [(c["kind"], c["amount"]) for c in ledger_calls] == [("capture", 4800), ("refund", 800)]


@over_http
def test_an_order_reaction_that_fails_does_not_undo_the_payment_and_is_tried_again(
    sandbox, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from o2o import effects
    from o2o.models import Effect

    # Given the orders side fails to react (a bug, a database hiccup)
    handler = effects.REGISTRY["payment.status_changed"]
    calls = []

    def explode(payload):
        calls.append(payload["status"])
        raise RuntimeError("orders is down")

    monkeypatch.setitem(
        effects.REGISTRY,
        "payment.status_changed",
        effects.Handler(**{**handler.__dict__, "func": explode}),
    )
    # When the payment is authorised
    payment = services.payment_sync(payment_id=sandbox.paid().pk)
    # Then the payment stays authorised, and its effect waits for another try, with the error
    assert Payment.objects.get(pk=payment.pk).status == P.AUTHORISED
    effect = Effect.objects.get(kind="payment.status_changed")
    assert (effect.status, effect.attempts, calls) == ("pending", 1, ["authorised"])
    assert "orders is down" in effect.last_error
    # When the orders side is back and the sweep runs after the backoff
    monkeypatch.undo()
    effects.effects_run(now=timezone.now() + timedelta(minutes=5))
    # Then the effect is done
    effect.refresh_from_db()
    assert (effect.status, effect.attempts) == ("done", 2)


# --- the adapter ---------------------------------------------------------------------------------


class FlakyTransport(httpx.BaseTransport):
    """Fails the first `failures` requests with a connection error, then passes them on."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inner = httpx.HTTPTransport()
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if len(self.seen) <= self.failures:
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


def _gateway(url: str, settings, transport=None) -> SandboxGateway:
    return SandboxGateway(
        base_url=url,
        secret_key=settings.SANDBOX_SECRET_KEY,
        webhook_secret=settings.SANDBOX_WEBHOOK_SECRET,
        retries=2,
        retry_pause=0.01,
        transport=transport,
    )


@over_http
def test_adapter_retries_a_connection_error_with_the_same_key(sandbox, settings):
    # Given a network that drops the first two attempts
    transport = FlakyTransport(failures=2)
    gateway = _gateway(sandbox.url, settings, transport)
    # When the platform creates an intent
    intent = gateway.create_intent(
        amount=4800,
        currency="KRW",
        reference="order-1",
        description="",
        return_url=RETURN_URL,
        webhook_url="",
        idempotency_key="order-1-start",
    )
    # Then the third attempt got through, every attempt with the same key, and one intent exists
    assert intent.ref.startswith("pi_")
    assert [r.headers["Idempotency-Key"] for r in transport.seen] == ["order-1-start"] * 3
    assert SandboxIntent.objects.count() == 1
    # And a network that never comes back makes it give up after its retries
    transport = FlakyTransport(failures=5)
    with pytest.raises(GatewayUnavailable):
        _gateway(sandbox.url, settings, transport).get_intent(ref=intent.ref)
    assert len(transport.seen) == 3


@over_http
def test_adapter_with_a_wrong_key_is_refused(sandbox, settings):
    gateway = SandboxGateway(base_url=sandbox.url, secret_key="sk_not_it", webhook_secret="")
    with pytest.raises(GatewayRefused) as raised:
        gateway.get_intent(ref="pi_x")
    assert (raised.value.code, raised.value.status) == ("unauthenticated", 401)


def test_gateways_are_chosen_by_name(settings):
    assert get_gateway("sandbox").name == "sandbox"
    assert get_gateway().name == "sandbox"  # settings.PAYMENT_GATEWAY
    with pytest.raises(UnknownProvider):
        get_gateway("stripe")
    settings.SANDBOX_WEBHOOK_SECRET = ""
    with pytest.raises(ImproperlyConfigured):
        get_gateway("sandbox")
