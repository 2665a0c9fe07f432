"""Payments, refunds and the provider webhooks received. Amounts are integers in the currency's
minor unit; the database keeps them in range. A payment refers to its order by id only (payments
never imports orders)."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the customer")
    AUTHORISED = "authorised", _("Authorised")
    CAPTURED = "captured", _("Captured")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    VOIDED = "voided", _("Voided")
    FAILED = "failed", _("Failed")


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Sent to the provider")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Payment(models.Model):
    """One order's payment at a provider. Its status moves only through payments.services:
    PENDING → AUTHORISED → CAPTURED → PARTIALLY_REFUNDED / REFUNDED; AUTHORISED → VOIDED;
    PENDING → FAILED."""

    Status = PaymentStatus

    order_id = models.BigIntegerField(_("order"), unique=True)
    amount = models.BigIntegerField(_("amount"), help_text=_("In the currency's minor unit."))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True)
    checkout_url = models.URLField(_("checkout page"), max_length=500, blank=True)
    amount_captured = models.BigIntegerField(_("amount captured"), default=0)
    amount_refunded = models.BigIntegerField(_("amount refunded"), default=0)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=200, blank=True)
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last4 = models.CharField(_("card ending"), max_length=4, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    authorised_at = models.DateTimeField(_("authorised at"), null=True, blank=True)
    captured_at = models.DateTimeField(_("captured at"), null=True, blank=True)
    closed_at = models.DateTimeField(
        _("closed at"), null=True, blank=True, help_text=_("When it was voided or failed.")
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_captured__gte=0, amount_captured__lte=F("amount")),
                name="payment_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_captured")),
                name="payment_refunded_within_captured",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="payment_provider_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk} (order {self.order_id})"

    @property
    def refundable(self) -> int:
        return self.amount_captured - self.amount_refunded


class Refund(models.Model):
    Status = RefundStatus

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(_("amount"))
    reason = models.CharField(_("reason"), max_length=200)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=RefundStatus.values), name="refund_status_valid"
            ),
            models.UniqueConstraint(
                fields=["provider_ref"],
                condition=~Q(provider_ref=""),
                name="refund_provider_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.pk} of payment {self.payment_id}"

    @property
    def idempotency_key(self) -> str:
        return f"refund-{self.pk}"


class WebhookEvent(models.Model):
    """A provider's webhook, recorded once per event id (the unique constraint is what makes a
    second delivery do nothing)."""

    provider = models.CharField(_("provider"), max_length=20)
    event_id = models.CharField(_("event id"), max_length=100)
    type = models.CharField(_("type"), max_length=60)
    object_ref = models.CharField(_("about"), max_length=64, blank=True)
    payload = models.JSONField(_("payload"))
    payment = models.ForeignKey(
        Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_events"
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id} {self.type}"
