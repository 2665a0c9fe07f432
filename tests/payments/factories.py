"""factory_boy factories for every payments and sandbox model. Records in a given state for tests
that don't need the provider; tests that do go through the services and the sandbox over HTTP."""

import json
from datetime import timedelta

import factory
from django.db import transaction
from django.utils import timezone
from factory.django import DjangoModelFactory

from payments import ledger
from payments.models import (
    CardCharge,
    CardSetup,
    CommissionPlan,
    Discrepancy,
    Dispute,
    JournalTransaction,
    LedgerAccount,
    LedgerEntry,
    Payment,
    Payout,
    PayoutAccount,
    Refund,
    SavedCard,
    Settlement,
    SettlementLine,
    VaultCustomer,
    WebhookEvent,
)
from payments.sandbox.models import (
    SandboxCustomer,
    SandboxEvent,
    SandboxIdempotencyKey,
    SandboxIntent,
    SandboxPaymentMethod,
    SandboxPayout,
    SandboxRefund,
    SandboxSetupSession,
    SandboxWebhookDelivery,
    new_event_id,
    new_intent_id,
    new_setup_id,
)
from tests.factories import CustomerProfileFactory, VendorFactory


class PaymentFactory(DjangoModelFactory):
    class Meta:
        model = Payment

    order_id = factory.Sequence(lambda n: 10_000 + n)
    amount = 4800
    currency = "KRW"
    provider = "sandbox"
    provider_ref = factory.Sequence(lambda n: f"pi_factory{n:08d}")
    checkout_url = factory.LazyAttribute(
        lambda o: f"http://127.0.0.1:8000/sandbox/pay/{o.provider_ref}/"
    )

    class Params:
        authorised = factory.Trait(
            status=Payment.Status.AUTHORISED, authorised_at=factory.LazyFunction(timezone.now)
        )
        captured = factory.Trait(
            status=Payment.Status.CAPTURED,
            authorised_at=factory.LazyFunction(timezone.now),
            captured_at=factory.LazyFunction(timezone.now),
            amount_captured=factory.SelfAttribute("amount"),
        )


class RefundFactory(DjangoModelFactory):
    class Meta:
        model = Refund

    payment = factory.SubFactory(PaymentFactory, captured=True)
    amount = 1200
    reason = "customer disputed one item"


class WebhookEventFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    provider = "sandbox"
    event_id = factory.LazyFunction(new_event_id)
    type = "intent.authorised"
    object_ref = "pi_factory"
    payload = factory.LazyAttribute(lambda o: {"id": o.event_id, "type": o.type})


class SandboxIntentFactory(DjangoModelFactory):
    class Meta:
        model = SandboxIntent

    id = factory.LazyFunction(new_intent_id)
    amount = 4800
    currency = "KRW"
    reference = factory.Sequence(lambda n: f"order-{n}")
    return_url = "https://shop.example/orders/7/paid/"
    checkout_url = factory.LazyAttribute(lambda o: f"http://127.0.0.1:8000/sandbox/pay/{o.id}/")


class SandboxRefundFactory(DjangoModelFactory):
    class Meta:
        model = SandboxRefund

    intent = factory.SubFactory(
        SandboxIntentFactory,
        status=SandboxIntent.Status.CAPTURED,
        amount_captured=4800,
        amount_refunded=1200,
    )
    amount = 1200


class SandboxIdempotencyKeyFactory(DjangoModelFactory):
    class Meta:
        model = SandboxIdempotencyKey

    key = factory.Sequence(lambda n: f"key-{n}")
    method = "POST"
    path = "/sandbox/api/v1/intents"
    fingerprint = "0" * 64
    response_status = 201
    response_body = factory.LazyFunction(lambda: {"id": "pi_x"})


class SandboxEventFactory(DjangoModelFactory):
    class Meta:
        model = SandboxEvent

    id = factory.LazyFunction(new_event_id)
    type = "intent.authorised"
    intent = factory.SubFactory(SandboxIntentFactory)
    body = factory.LazyAttribute(
        lambda o: json.dumps({"id": o.id, "type": o.type, "data": {"object": {"id": o.intent.id}}})
    )


class SandboxWebhookDeliveryFactory(DjangoModelFactory):
    class Meta:
        model = SandboxWebhookDelivery

    event = factory.SubFactory(SandboxEventFactory)
    url = "http://127.0.0.1:8000/payments/webhooks/sandbox/"
    next_attempt_at = factory.LazyFunction(timezone.now)


class CommissionPlanFactory(DjangoModelFactory):
    class Meta:
        model = CommissionPlan

    bps = 800
    valid_from = factory.LazyFunction(timezone.now)
    note = "a plan"


class LedgerAccountFactory(DjangoModelFactory):
    class Meta:
        model = LedgerAccount
        django_get_or_create = ("code",)

    code = ledger.PROVIDER_CLEARING
    name = "Provider clearing"
    kind = LedgerAccount.Kind.ASSET
    currency = "KRW"


def _balanced_entries(txn, create, extracted, **kwargs):
    if not create:
        return
    with transaction.atomic():
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(
                    transaction=txn,
                    account=ledger.account(ledger.ADJUSTMENTS),
                    side="D",
                    amount=500,
                ),
                LedgerEntry(
                    transaction=txn,
                    account=ledger.account(ledger.PROVIDER_CLEARING),
                    side="C",
                    amount=500,
                ),
            ]
        )


class JournalTransactionFactory(DjangoModelFactory):
    """A balanced manual adjustment of ₩500 (its two entries come with it)."""

    class Meta:
        model = JournalTransaction
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"adjustment:factory-{n}")
    kind = JournalTransaction.Kind.ADJUSTMENT
    currency = "KRW"
    memo = "a correction"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # The row and its entries in one database transaction, as ledger.post writes them: the
        # database refuses to commit a journal transaction without entries (payments 0005), and
        # a transactional test commits each statement outside one.
        with transaction.atomic():
            txn = super()._create(model_class, *args, **kwargs)
            _balanced_entries(txn, True, None)
        return txn


class LedgerEntryFactory(DjangoModelFactory):
    """One side of a factory-made balanced transaction (the other side comes with it)."""

    class Meta:
        model = LedgerEntry

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return JournalTransactionFactory().entries.order_by("pk").first()


# --- settlements, payouts, disputes, discrepancies -----------------------------------------------


def _day_start(n: int):
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=n)


class SettlementFactory(DjangoModelFactory):
    """A released settlement of ₩10,000 gross, ₩1,000 commission, ₩9,000 net (no lines: records in
    a given state; settlements with lines come from payments.settlement)."""

    class Meta:
        model = Settlement

    vendor = factory.SubFactory(VendorFactory)
    currency = "KRW"
    period_start = factory.Sequence(lambda n: _day_start(n + 1))
    period_end = factory.LazyAttribute(lambda o: o.period_start + timedelta(days=1))
    status = Settlement.Status.RELEASED
    gross = 10_000
    commission = 1_000
    net = 9_000


class SettlementLineFactory(DjangoModelFactory):
    """A line listing a factory-made adjustment (₩500) in a settlement."""

    class Meta:
        model = SettlementLine

    settlement = factory.SubFactory(SettlementFactory)
    journal_transaction = factory.SubFactory(JournalTransactionFactory)
    kind = JournalTransaction.Kind.ADJUSTMENT
    net = 500
    booked_at = factory.LazyFunction(timezone.now)


class PayoutAccountFactory(DjangoModelFactory):
    class Meta:
        model = PayoutAccount

    vendor = factory.SubFactory(VendorFactory)
    bank = "Sandbox Bank"
    account_number = factory.Sequence(lambda n: f"110{n:09d}")
    holder = "Kim Yakult"


class PayoutFactory(DjangoModelFactory):
    class Meta:
        model = Payout

    settlement = factory.SubFactory(SettlementFactory)
    vendor = factory.SelfAttribute("settlement.vendor")
    amount = factory.SelfAttribute("settlement.net")
    currency = "KRW"
    provider = "sandbox"


class DisputeFactory(DjangoModelFactory):
    class Meta:
        model = Dispute

    payment = factory.SubFactory(PaymentFactory, captured=True)
    order_id = factory.SelfAttribute("payment.order_id")
    vendor_id = factory.SelfAttribute("payment.vendor_id")
    reason = "a cold drink arrived warm"


class DiscrepancyFactory(DjangoModelFactory):
    class Meta:
        model = Discrepancy

    kind = Discrepancy.Kind.CAPTURE_MISMATCH
    object_ref = factory.Sequence(lambda n: f"payment:{n}")
    expected = "captured 4800"
    actual = "ledger 4700"


class SandboxPayoutFactory(DjangoModelFactory):
    class Meta:
        model = SandboxPayout

    amount = 9_000
    currency = "KRW"
    reference = factory.Sequence(lambda n: f"payout-{n}")
    bank = "Sandbox Bank"
    account_number = "110123456789"
    holder = "Kim Yakult"
    status = SandboxPayout.Status.PAID


# --- the customer vault ----------------------------------------------------------------------------


class SandboxCustomerFactory(DjangoModelFactory):
    class Meta:
        model = SandboxCustomer

    reference = factory.Sequence(lambda n: f"customer-{n}")


class SandboxPaymentMethodFactory(DjangoModelFactory):
    class Meta:
        model = SandboxPaymentMethod

    customer = factory.SubFactory(SandboxCustomerFactory)
    number = "4242424242424242"
    last4 = "4242"
    exp_month = 12
    exp_year = 2039


class SandboxSetupSessionFactory(DjangoModelFactory):
    class Meta:
        model = SandboxSetupSession

    id = factory.LazyFunction(new_setup_id)
    customer = factory.SubFactory(SandboxCustomerFactory)
    return_url = "https://shop.example/cards/"
    url = factory.LazyAttribute(lambda o: f"http://127.0.0.1:8000/sandbox/setup/{o.id}/")


class VaultCustomerFactory(DjangoModelFactory):
    class Meta:
        model = VaultCustomer

    customer = factory.SubFactory(CustomerProfileFactory)
    provider = "sandbox"
    provider_ref = factory.Sequence(lambda n: f"cus_factory{n:08d}")


class SavedCardFactory(DjangoModelFactory):
    class Meta:
        model = SavedCard

    customer = factory.SubFactory(CustomerProfileFactory)
    provider = "sandbox"
    provider_customer_ref = factory.Sequence(lambda n: f"cus_factory{n:08d}")
    payment_method_ref = factory.Sequence(lambda n: f"pm_factory{n:08d}")
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2039


class CardSetupFactory(DjangoModelFactory):
    class Meta:
        model = CardSetup

    customer = factory.SubFactory(CustomerProfileFactory)
    provider = "sandbox"
    provider_ref = factory.Sequence(lambda n: f"seti_factory{n:08d}")
    url = factory.LazyAttribute(lambda o: f"http://127.0.0.1:8000/sandbox/setup/{o.provider_ref}/")


class CardChargeFactory(DjangoModelFactory):
    class Meta:
        model = CardCharge

    payment = factory.SubFactory(PaymentFactory)
    card = factory.SubFactory(SavedCardFactory)
    idempotency_key = factory.Sequence(lambda n: f"charge-{n}")
