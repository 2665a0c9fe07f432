"""Partners and their webhook endpoints, the events they may receive, and the delivery log.

A PartnerEvent is stored once per domain event (o2o.effects.event_emit); each active endpoint
subscribed to its type gets one Delivery, tried on Svix's schedule (partners/effects.py). Every
try is a DeliveryAttempt: when, the HTTP status, the first bytes of the answer, how long it took.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Partner(models.Model):
    """A business that receives events: a pickup-point shop, an accounting system, a courier."""

    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="partners",
        verbose_name=_("owner"),
        help_text=_("Manages the endpoints over the API and is told when one is disabled."),
    )
    pickup_point = models.ForeignKey(
        "vendors.PickupPoint",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="partners",
        verbose_name=_("pickup point"),
        help_text=_("For a pickup-point shop: its staff hand orders over here."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Endpoint(models.Model):
    """A partner's URL that receives the event types it subscribed to, signed with its secret
    (Standard Webhooks). After a rotation the previous secret signs too, until it expires."""

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="endpoints", verbose_name=_("partner")
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("why disabled"), max_length=200, blank=True)
    # Failing since the first failed try after the last success; cleared by a success.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["partner_id", "pk"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return event_type in (self.event_types or [])


class PartnerEvent(models.Model):
    """One domain event, as partners receive it. `sequence` counts the events of its aggregate
    (order 42, vendor 7, payout 3) from 1 without gaps."""

    event_id = models.CharField(_("event id"), max_length=80, unique=True)
    type = models.CharField(_("type"), max_length=40, db_index=True)
    aggregate = models.CharField(_("aggregate"), max_length=30)
    aggregate_id = models.BigIntegerField(_("aggregate id"))
    sequence = models.BigIntegerField(_("sequence"))
    occurred_at = models.DateTimeField(_("occurred at"))
    data = models.JSONField(_("data"), default=dict)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner event")
        verbose_name_plural = _("partner events")
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate", "aggregate_id", "sequence"], name="partner_event_seq_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class Delivery(models.Model):
    """One event to one endpoint. A replay starts a new round on the same row: the effects of an
    earlier round stop. The aggregate and sequence are copied here for the ordering rule: a
    delivery waits while an earlier one of the same endpoint and aggregate is pending."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("partner delivery", "Pending")
        DELIVERED = "delivered", pgettext_lazy("webhook", "Delivered")
        FAILED = "failed", _("Given up")

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.ForeignKey(
        PartnerEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    aggregate = models.CharField(max_length=30)
    aggregate_id = models.BigIntegerField()
    sequence = models.BigIntegerField(_("sequence"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    round = models.PositiveIntegerField(_("replays"), default=0)
    attempts = models.PositiveIntegerField(pgettext_lazy("partner delivery", "attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(
        pgettext_lazy("partner delivery", "last error"), max_length=300, blank=True
    )
    created_at = models.DateTimeField(
        pgettext_lazy("partner delivery", "created at"), auto_now_add=True
    )
    finished_at = models.DateTimeField(
        pgettext_lazy("partner delivery", "finished at"), null=True, blank=True
    )

    class Meta:
        verbose_name = pgettext_lazy("webhook", "delivery")
        verbose_name_plural = pgettext_lazy("webhook", "deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_endpoint")
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "aggregate", "aggregate_id", "sequence"],
                condition=Q(status="pending"),
                name="delivery_pending_order",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} → {self.endpoint_id} ({self.status})"

    @property
    def effect_key(self) -> str:
        return delivery_effect_key(self.pk, self.round)


def delivery_effect_key(delivery_id: int, round_: int) -> str:
    """The durable effect that carries one round of a delivery."""
    return f"partner-delivery:{delivery_id}" + (f":replay:{round_}" if round_ else "")


class DeliveryAttempt(models.Model):
    """One HTTP try of a delivery (append-only)."""

    delivery = models.ForeignKey(
        Delivery,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        verbose_name=pgettext_lazy("webhook", "delivery"),
    )
    round = models.PositiveIntegerField(_("replays"), default=0)
    started_at = models.DateTimeField(pgettext_lazy("partner delivery", "started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    response_excerpt = models.TextField(_("response (start)"), blank=True)
    error = models.CharField(pgettext_lazy("partner delivery", "error"), max_length=300, blank=True)
    ok = models.BooleanField(pgettext_lazy("webhook", "delivered"), default=False)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.started_at:%Y-%m-%d %H:%M:%S} {self.status_code}"


class PointStaff(models.Model):
    """A person who works at a partner pickup point: their phone page (/partner/point/) lists the
    orders waiting there and hands them over with the customer's code. One point per person."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="point_staff",
        verbose_name=_("user"),
    )
    pickup_point = models.ForeignKey(
        "vendors.PickupPoint",
        on_delete=models.PROTECT,
        related_name="staff",
        verbose_name=_("pickup point"),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Untick to stop this person handing orders over.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("pickup point staff")
        verbose_name_plural = _("pickup point staff")
        ordering = ["pickup_point_id", "pk"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.pickup_point_id}"
