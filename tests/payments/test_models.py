"""What the database itself guarantees about payments (amounts in range, one payment per order, one
record per provider reference and per webhook event), and a property test of the state machine:
whatever order the provider's answers arrive in, a payment only moves forward along the graph,
ends where the provider is, and the ledger sees each movement once."""

import dataclasses
import itertools
from unittest import mock

import pytest
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from o2o.models import Effect
from payments import ledger, services
from payments.gateways.base import IntentStatus, ProviderIntent, ProviderRefund
from payments.models import Payment, Refund, WebhookEvent
from payments.sandbox.models import SandboxIntent

from .factories import (
    PaymentFactory,
    RefundFactory,
    SandboxIntentFactory,
    SandboxRefundFactory,
    WebhookEventFactory,
)

pytestmark = pytest.mark.django_db
P = Payment.Status


def refused(**kwargs) -> bool:
    try:
        with transaction.atomic():
            PaymentFactory(**kwargs)
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": 0},
        {"amount": -100},
        {"amount": 100, "amount_captured": 101},
        {"amount_captured": -1},
        {"amount_captured": 100, "amount_refunded": 101},
        {"amount_refunded": -1},
        {"status": "lost"},
    ],
)
def test_the_database_keeps_amounts_and_status_in_range(fields):
    assert refused(**fields)


def test_one_payment_per_order_and_per_provider_reference():
    PaymentFactory(order_id=1, provider_ref="pi_same")
    assert refused(order_id=1)
    assert refused(order_id=2, provider_ref="pi_same")
    assert not refused(order_id=3, provider_ref="pi_same", provider="toss")
    # Payments not yet started at the provider have no reference, and there may be many
    assert not refused(order_id=4, provider_ref="") and not refused(order_id=5, provider_ref="")


def test_refunds_are_positive_and_their_provider_reference_unique():
    refund = RefundFactory(provider_ref="re_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        RefundFactory(amount=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        RefundFactory(payment=refund.payment, provider_ref="re_1")


def test_a_webhook_event_is_recorded_once_per_provider():
    WebhookEventFactory(event_id="evt_1")
    WebhookEventFactory(event_id="evt_1", provider="toss")
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookEventFactory(event_id="evt_1")
    assert WebhookEvent.objects.count() == 2


def test_the_sandbox_keeps_its_amounts_in_range_too():
    SandboxRefundFactory()
    for fields in ({"amount": 0}, {"amount_captured": 4801}, {"amount_refunded": 1}):
        with pytest.raises(IntegrityError), transaction.atomic():
            SandboxIntentFactory(**fields)
    assert SandboxIntent.objects.count() == 1


# --- the state machine, by property ------------------------------------------------------------

AMOUNT = 4800


@st.composite
def provider_histories(draw) -> list[ProviderIntent]:
    """One intent's life at the provider, as the snapshots a fetch could return, oldest first."""

    def snap(status, captured=0, refunds=()):
        return ProviderIntent(
            ref="pi_prop",
            status=status,
            amount=AMOUNT,
            currency="KRW",
            amount_captured=captured,
            amount_refunded=sum(r.amount for r in refunds),
            card_last4="4242",
            refunds=tuple(refunds),
        )

    history = [snap(IntentStatus.PENDING)]
    if draw(st.booleans()):
        return [*history, snap(IntentStatus.FAILED)]
    history.append(snap(IntentStatus.AUTHORISED))
    ending = draw(st.sampled_from(["stay", "void", "capture"]))
    if ending == "void":
        history.append(snap(IntentStatus.VOIDED))
    elif ending == "capture":
        captured = draw(st.integers(min_value=1, max_value=AMOUNT))
        history.append(snap(IntentStatus.CAPTURED, captured))
        refunds: list[ProviderRefund] = []
        left = captured
        for i in range(draw(st.integers(min_value=0, max_value=3))):
            if not left:
                break
            amount = draw(st.integers(min_value=1, max_value=left))
            left -= amount
            refunds.append(ProviderRefund(ref=f"re_prop{i}", amount=amount, succeeded=True))
            history.append(snap(IntentStatus.CAPTURED, captured, refunds))
    return history


_orders = itertools.count(1)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=provider_histories(), data=st.data())
def test_any_order_of_answers_moves_forward_only_and_ends_at_the_truth(
    history, data, django_capture_on_commit_callbacks
):
    # Given a payment, and the provider's answers to its fetches arriving in any order (stale
    # ones late, some twice), the last answer being the provider's current state
    answers = data.draw(st.lists(st.sampled_from(history), max_size=8)) + [history[-1]]
    payment = PaymentFactory(order_id=next(_orders), amount=AMOUNT, provider_ref="")
    Payment.objects.filter(pk=payment.pk).update(provider_ref=f"pi_prop{payment.pk}")
    gateway = mock.Mock()
    gateway.get_intent.side_effect = [
        dataclasses.replace(
            a,
            refunds=tuple(dataclasses.replace(r, ref=f"{r.ref}-{payment.pk}") for r in a.refunds),
        )
        for a in answers
    ]
    moves: list[str] = []
    money: list[tuple[str, int]] = []

    try:
        with (
            mock.patch.object(services, "get_gateway", return_value=gateway),
            mock.patch.object(
                ledger, "ledger_record", lambda **kw: money.append((kw["kind"], kw["amount"]))
            ),
            django_capture_on_commit_callbacks(execute=True),
        ):
            # When the platform syncs once per answer
            for _ in answers:
                services.payment_sync(payment_id=payment.pk)
    finally:
        moves.extend(
            e["status"]
            for e in Effect.objects.filter(kind="payment.status_changed")
            .order_by("pk")
            .values_list("payload", flat=True)
            if e["payment_id"] == payment.pk
        )
    # Then every move was an edge of the graph, starting from PENDING
    for before, after in itertools.pairwise([P.PENDING, *moves]):
        assert after in services.TRANSITIONS[before], (before, after, moves)
    # And the payment is where the provider is, with the same amounts
    payment.refresh_from_db()
    truth = history[-1]
    assert payment.status in services.AGREES[truth.status], (payment.status, truth)
    assert (payment.amount_captured, payment.amount_refunded) == (
        truth.amount_captured,
        truth.amount_refunded,
    )
    # And the ledger saw the capture once and each refund once
    assert money == [("capture", truth.amount_captured)] * (truth.amount_captured > 0) + [
        ("refund", r.amount) for r in truth.refunds
    ]
    assert Refund.objects.filter(payment=payment).count() == len(truth.refunds)
