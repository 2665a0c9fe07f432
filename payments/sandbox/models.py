"""The sandbox provider's own records. Nothing here is the platform's: the platform keeps its own
Payment, Refund and WebhookEvent and learns about these only over HTTP."""

import secrets

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_intent_id() -> str:
    return _new_id("pi")


def new_refund_id() -> str:
    return _new_id("re")


def new_event_id() -> str:
    return _new_id("evt")


class IntentStatus(models.TextChoices):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method", _("Waiting for the card")
    REQUIRES_ACTION = "requires_action", _("Waiting for the card holder's confirmation")
    AUTHORISED = "authorised", _("Authorised")
    CAPTURED = "captured", _("Captured")
    VOIDED = "voided", _("Voided")
    FAILED = "failed", _("Failed")


class SandboxIntent(models.Model):
    """A payment intent: created by the merchant, paid on the card page, then captured or voided."""

    Status = IntentStatus

    id = models.CharField(primary_key=True, max_length=40, default=new_intent_id, editable=False)
    amount = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    reference = models.CharField(_("merchant reference"), max_length=100, blank=True, db_index=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    return_url = models.URLField(max_length=500)
    webhook_url = models.URLField(max_length=500, blank=True)
    checkout_url = models.URLField(max_length=500)
    status = models.CharField(
        _("status"),
        max_length=24,
        choices=Status.choices,
        default=Status.REQUIRES_PAYMENT_METHOD,
    )
    amount_captured = models.BigIntegerField(_("amount captured"), default=0)
    amount_refunded = models.BigIntegerField(_("amount refunded"), default=0)
    # What the sandbox charges the merchant for the capture (services.capture_fee), fixed when it
    # is captured and kept when the money is refunded, as card acquirers do.
    fee = models.BigIntegerField(_("fee"), default=0)
    # The last decline while the intent waits for a card (Stripe's last_payment_error): another
    # card may still be tried until expires_at; "expired" once that time is over (then FAILED).
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    declines = models.PositiveSmallIntegerField(_("declined tries"), default=0)
    expires_at = models.DateTimeField(
        _("pay by"), null=True, blank=True, help_text=_("No card is taken after this time.")
    )
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # An off-session charge of a saved card (services.intent_create with payment_method): who and
    # which card, and, when it did not go through, what kind of no it was (services.DECLINE_KINDS:
    # "hard" never retry, "soft" retry later, "authentication_required" the card holder must
    # confirm on checkout_url).
    customer = models.ForeignKey(
        "SandboxCustomer", null=True, blank=True, on_delete=models.PROTECT, related_name="intents"
    )
    payment_method = models.ForeignKey(
        "SandboxPaymentMethod",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="intents",
    )
    off_session = models.BooleanField(default=False)
    decline_kind = models.CharField(max_length=24, blank=True)
    # The slow test card: this many of the next fetches answer after SANDBOX_SLOW_SECONDS.
    slow_fetches_left = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sandbox_intent"
        verbose_name = _("sandbox intent")
        verbose_name_plural = _("sandbox intents")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="sandbox_intent_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(amount_captured__gte=0, amount_captured__lte=F("amount")),
                name="sandbox_intent_captured_range",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_captured")),
                name="sandbox_intent_refunded_range",
            ),
            models.CheckConstraint(
                condition=Q(fee__gte=0, fee__lte=F("amount_captured")),
                name="sandbox_intent_fee_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=IntentStatus.values),
                name="sandbox_intent_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class SandboxRefund(models.Model):
    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", _("Succeeded")

    id = models.CharField(primary_key=True, max_length=40, default=new_refund_id, editable=False)
    intent = models.ForeignKey(SandboxIntent, on_delete=models.CASCADE, related_name="refunds")
    amount = models.BigIntegerField(_("amount"))
    reference = models.CharField(_("merchant reference"), max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUCCEEDED)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "sandbox_refund"
        verbose_name = _("sandbox refund")
        verbose_name_plural = _("sandbox refunds")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="sandbox_refund_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.id


class SandboxIdempotencyKey(models.Model):
    """The stored answer to a POST that carried an Idempotency-Key. A key is remembered only with a
    successful answer, in the same transaction as what the request did."""

    key = models.CharField(max_length=255, unique=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body")
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        db_table = "sandbox_idempotency_key"
        verbose_name = _("sandbox idempotency key")
        verbose_name_plural = _("sandbox idempotency keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.key


class SandboxEvent(models.Model):
    """Something that happened to an intent, as the webhook body tells it (frozen when it happened)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    type = models.CharField(max_length=40)
    intent = models.ForeignKey(SandboxIntent, on_delete=models.CASCADE, related_name="events")
    body = models.TextField(help_text="The exact JSON that is signed and posted.")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "sandbox_event"
        verbose_name = _("sandbox event")
        verbose_name_plural = _("sandbox events")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class SandboxWebhookDelivery(models.Model):
    """One attempt series to post an event to the merchant's webhook URL."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Gave up")

    event = models.ForeignKey(SandboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    is_duplicate = models.BooleanField(
        _("duplicate"), default=False, help_text="A second sending of an event already delivered."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "sandbox_webhook_delivery"
        verbose_name = _("sandbox webhook delivery")
        verbose_name_plural = _("sandbox webhook deliveries")
        ordering = ["-created_at"]
        constraints = [
            # One first sending and at most one repeat per event.
            models.UniqueConstraint(
                fields=["event", "is_duplicate"], name="sandbox_delivery_once_per_kind"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="sandbox_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.url}"


def new_payout_id() -> str:
    return _new_id("po")


class SandboxPayout(models.Model):
    """Money sent from the merchant's balance to a bank account. Its outcome depends on the test
    account number (services.PAYOUT_TEST_ACCOUNTS): paid at once, failed at once, or pending until
    finished from the sandbox's admin (or payout_finish in tests)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("In transit")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")

    id = models.CharField(primary_key=True, max_length=40, default=new_payout_id, editable=False)
    amount = models.BigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    reference = models.CharField(_("merchant reference"), max_length=100, blank=True, db_index=True)
    bank = models.CharField(max_length=40, blank=True)
    account_number = models.CharField(max_length=34)
    holder = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sandbox_payout"
        verbose_name = _("sandbox payout")
        verbose_name_plural = _("sandbox payouts")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="sandbox_payout_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.id


# --- the customer vault ---------------------------------------------------------------------------


def new_customer_id() -> str:
    return _new_id("cus")


def new_payment_method_id() -> str:
    return _new_id("pm")


def new_setup_id() -> str:
    return _new_id("seti")


class SandboxCustomer(models.Model):
    """A merchant's customer at the provider: the owner of saved cards (Stripe's Customer).
    `reference` is the merchant's own id for the person (e.g. "customer-42")."""

    id = models.CharField(primary_key=True, max_length=40, default=new_customer_id, editable=False)
    reference = models.CharField(_("merchant reference"), max_length=100, blank=True, db_index=True)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        db_table = "sandbox_customer"
        verbose_name = _("sandbox customer")
        verbose_name_plural = _("sandbox customers")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.id


class SandboxPaymentMethod(models.Model):
    """A card saved for a customer (token pm_...). The full test number stays here, server-side
    only, so that a later off-session charge behaves as that test card does
    (services.TEST_CARDS[number].off_session); the API shows brand, last4 and expiry only.
    Detached cards are kept (detached_at set) but can never be charged again."""

    id = models.CharField(
        primary_key=True, max_length=40, default=new_payment_method_id, editable=False
    )
    customer = models.ForeignKey(
        SandboxCustomer, on_delete=models.CASCADE, related_name="payment_methods"
    )
    number = models.CharField(max_length=19, help_text="The test card number (never shown).")
    brand = models.CharField(max_length=20, default="visa")
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    detached_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        db_table = "sandbox_payment_method"
        verbose_name = _("sandbox saved card")
        verbose_name_plural = _("sandbox saved cards")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12),
                name="sandbox_pm_exp_month_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class SandboxSetupSession(models.Model):
    """A hosted page that only saves a card for a customer, charging nothing (Stripe's Checkout in
    setup mode). OPEN until the card holder enters a card, then SUCCEEDED with the saved
    payment_method; the browser goes back to return_url?setup_session=<id>, and the merchant reads
    the outcome from the API (never from the browser)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting for the card")
        SUCCEEDED = "succeeded", _("Card saved")

    id = models.CharField(primary_key=True, max_length=40, default=new_setup_id, editable=False)
    customer = models.ForeignKey(
        SandboxCustomer, on_delete=models.CASCADE, related_name="setup_sessions"
    )
    return_url = models.URLField(max_length=500)
    url = models.URLField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    payment_method = models.OneToOneField(
        SandboxPaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sandbox_setup_session"
        verbose_name = _("sandbox card setup")
        verbose_name_plural = _("sandbox card setups")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", payment_method__isnull=True)
                | Q(status="succeeded", payment_method__isnull=False),
                name="sandbox_setup_card_when_succeeded",
            ),
        ]

    def __str__(self) -> str:
        return self.id
