"""Durable effects (a transactional outbox) and per-aggregate event sequences.

An Effect is work that must follow a committed change (capture, void, refund, payout, e-mail,
partner event, another app's reaction): written in the change's transaction under a unique key,
executed by the relay (o2o.effects) until done. See o2o/effects.py for the guarantees.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy


class Effect(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("effect", "Pending")
        DONE = "done", pgettext_lazy("effect", "Done")
        FAILED = "failed", pgettext_lazy("effect", "Failed (needs staff)")

    kind = models.CharField(pgettext_lazy("effect", "kind"), max_length=60)
    key = models.CharField(pgettext_lazy("effect", "key"), max_length=200, unique=True)
    payload = models.JSONField(pgettext_lazy("effect", "payload"), default=dict, blank=True)
    status = models.CharField(
        pgettext_lazy("effect", "status"),
        max_length=10,
        choices=Status.choices,
        default=Status.PENDING,
    )
    attempts = models.PositiveIntegerField(pgettext_lazy("effect", "attempts"), default=0)
    next_attempt_at = models.DateTimeField(pgettext_lazy("effect", "next attempt at"))
    # A claimed effect is leased to one relay until this time; a relay killed mid-run leaves the
    # lease to run out, and the next sweep claims the effect again.
    locked_until = models.DateTimeField(
        pgettext_lazy("effect", "leased until"), null=True, blank=True
    )
    deadline = models.DateTimeField(pgettext_lazy("effect", "deadline"))
    last_error = models.TextField(pgettext_lazy("effect", "last error"), blank=True, default="")
    created_at = models.DateTimeField(pgettext_lazy("effect", "created at"), auto_now_add=True)
    updated_at = models.DateTimeField(pgettext_lazy("effect", "updated at"), auto_now=True)
    done_at = models.DateTimeField(pgettext_lazy("effect", "done at"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("effect", "effect")
        verbose_name_plural = pgettext_lazy("effect", "effects")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="effect_pending_due",
            ),
            models.Index(fields=["kind", "status"], name="effect_kind_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.status})"


class EffectAttempt(models.Model):
    """One try of an effect: started when a relay claims it, finished with its outcome. A try
    with no finish is one whose relay died (killed worker, lost connection)."""

    class Outcome(models.TextChoices):
        RUNNING = "running", pgettext_lazy("effect", "Running (or the relay died)")
        DONE = "done", pgettext_lazy("effect", "Done")
        RETRY = "retry", pgettext_lazy("effect", "Will retry")
        FAILED = "failed", pgettext_lazy("effect", "Failed")

    effect = models.ForeignKey(Effect, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField(pgettext_lazy("effect", "try"))
    started_at = models.DateTimeField(pgettext_lazy("effect", "started at"))
    finished_at = models.DateTimeField(
        pgettext_lazy("effect", "finished at"), null=True, blank=True
    )
    outcome = models.CharField(
        pgettext_lazy("effect", "outcome"),
        max_length=10,
        choices=Outcome.choices,
        default=Outcome.RUNNING,
    )
    error = models.TextField(pgettext_lazy("effect", "error"), blank=True, default="")

    class Meta:
        verbose_name = pgettext_lazy("effect", "effect attempt")
        verbose_name_plural = pgettext_lazy("effect", "effect attempts")
        constraints = [
            models.UniqueConstraint(fields=["effect", "number"], name="effect_attempt_once")
        ]

    def __str__(self) -> str:
        return f"try {self.number} of effect {self.effect_id}: {self.outcome}"


class AggregateSequence(models.Model):
    """The last event sequence number given out per aggregate (order 42, vendor 7, payout 3)."""

    aggregate = models.CharField(max_length=30)
    aggregate_id = models.BigIntegerField()
    last = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "aggregate_id"], name="aggregate_seq_once")
        ]

    def __str__(self) -> str:
        return f"{self.aggregate} {self.aggregate_id}: {self.last}"
